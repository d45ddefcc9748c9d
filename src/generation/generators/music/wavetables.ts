import { mulberry32 } from './random.js';

// Large enough that reading the nearest entry, without interpolation, keeps the error spurs near
// -70 dB, which saves a quarter of the time in the oscillator loops.
export const TABLE_SIZE = 1 << 14;
export const TABLE_MASK = TABLE_SIZE - 1;
export const NOISE_SIZE = 1 << 16;
export const NOISE_MASK = NOISE_SIZE - 1;

const SINE_PERIOD = Float64Array.from({ length: TABLE_SIZE }, (_, i) =>
  Math.sin((2 * Math.PI * i) / TABLE_SIZE),
);

/** One period of a sum of harmonics, scaled to peak 1. */
export function harmonicTable(amplitudes: readonly number[]): Float32Array {
  const table = new Float32Array(TABLE_SIZE);
  let peak = 0;
  for (let i = 0; i < TABLE_SIZE; i++) {
    // Harmonic h at position i is the base sine at h * i, wrapped into the period.
    const v = amplitudes.reduce(
      (sum, a, h) => sum + a * SINE_PERIOD[((h + 1) * i) & TABLE_MASK]!,
      0,
    );
    table[i] = v;
    peak = Math.max(peak, Math.abs(v));
  }
  return table.map((v) => v / peak);
}

/** 1/n (saw) or odd-only 1/n (square) series, cut off to stay well below Nyquist. */
export function seriesTable(harmonics: number, oddOnly: boolean): Float32Array {
  return harmonicTable(
    Array.from({ length: harmonics }, (_, h) => (oddOnly && h % 2 === 1 ? 0 : 1 / (h + 1))),
  );
}

function noiseTable(differentiate: boolean): Float32Array {
  // A fixed seed: the noise is part of the instrument, not of the song.
  const random = mulberry32(0x5eed);
  const table = new Float32Array(NOISE_SIZE);
  let previous = 0;
  for (let i = 0; i < NOISE_SIZE; i++) {
    const white = random() * 2 - 1;
    // A first difference tilts white noise towards the highs, which suits hi-hats.
    table[i] = differentiate ? (white - previous) / 2 : white;
    previous = white;
  }
  return table;
}

export const SINE = harmonicTable([1]);
export const WHITE_NOISE = noiseTable(false);
export const BRIGHT_NOISE = noiseTable(true);
