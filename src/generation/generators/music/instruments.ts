import { type Instrument } from './prompt-style.js';
import { BRIGHT_NOISE, harmonicTable, seriesTable, SINE, WHITE_NOISE } from './wavetables.js';

/** tone: one wavetable oscillator; chorus: two detuned ones spread left and right; fm: bells. */
export type VoiceKind = 'tone' | 'chorus' | 'fm' | 'noise';

/** How far apart in the stereo field (each side of centre) a chorus puts its two oscillators. */
export const CHORUS_SPREAD = 0.6;

export interface Patch {
  kind: VoiceKind;
  table: Float32Array;
  /** Seconds of linear attack. */
  attack: number;
  /** Time constant, in seconds, of the exponential decay towards `sustain`. */
  decay: number;
  sustain: number;
  /** Seconds of linear release after the note is let go. */
  release: number;
  gain: number;
  /** -1 (left) to 1 (right); a chorus ignores it and uses ±CHORUS_SPREAD. */
  pan: number;
  /** Chorus: cents between its two oscillators. */
  detune: number;
  /** Octaves above the part's register. */
  octave: number;
  /** Hz added at the onset and gliding away with `glideTime` (a kick drum's thump). */
  glide: number;
  glideTime: number;
  /** FM: modulator frequency as a ratio of the carrier, and peak modulation index in radians. */
  modRatio: number;
  modIndex: number;
}

const TONE = {
  kind: 'tone',
  detune: 0,
  octave: 0,
  pan: 0,
  glide: 0,
  glideTime: 1,
  modRatio: 0,
  modIndex: 0,
} as const;

export type PitchedInstrument = Exclude<Instrument, 'drums'>;

export const PATCHES: Record<PitchedInstrument, Patch> = {
  piano: {
    ...TONE,
    table: harmonicTable([1, 0.5, 0.3, 0.2, 0.12, 0.08, 0.05, 0.03]),
    attack: 0.004,
    decay: 0.7,
    sustain: 0,
    release: 0.25,
    gain: 0.3,
    pan: -0.2,
  },
  pad: {
    ...TONE,
    kind: 'chorus',
    table: seriesTable(12, false),
    attack: 0.45,
    decay: 1.2,
    sustain: 0.7,
    release: 0.8,
    gain: 0.09,
    detune: 18,
  },
  pluck: {
    ...TONE,
    table: harmonicTable([1, 0.6, 0.4, 0.25, 0.15, 0.1, 0.06]),
    attack: 0.003,
    decay: 0.25,
    sustain: 0,
    release: 0.1,
    gain: 0.25,
    pan: -0.35,
  },
  bass: {
    ...TONE,
    table: harmonicTable([1, 0.45, 0.15, 0.06]),
    attack: 0.008,
    decay: 0.4,
    sustain: 0.6,
    release: 0.08,
    gain: 0.55,
  },
  lead: {
    ...TONE,
    table: seriesTable(15, true),
    attack: 0.02,
    decay: 0.3,
    sustain: 0.7,
    release: 0.1,
    gain: 0.22,
    pan: 0.25,
  },
  flute: {
    ...TONE,
    table: harmonicTable([1, 0.25, 0.1, 0.04]),
    attack: 0.07,
    decay: 0.5,
    sustain: 0.85,
    release: 0.15,
    gain: 0.35,
    pan: 0.3,
  },
  bells: {
    ...TONE,
    kind: 'fm',
    table: SINE,
    attack: 0.002,
    decay: 1.1,
    sustain: 0,
    release: 0.6,
    gain: 0.3,
    pan: 0.4,
    octave: 1,
    modRatio: 3.5,
    modIndex: 2,
  },
};

export type Drum = 'kick' | 'snare' | 'hat';

const NOISE = { ...TONE, kind: 'noise', sustain: 0, attack: 0.001 } as const;

/** Each drum is one or more voices, each with the MIDI pitch it sounds at. */
export const DRUM_VOICES: Record<Drum, readonly (readonly [Patch, number])[]> = {
  kick: [
    [
      {
        ...TONE,
        table: SINE,
        attack: 0.001,
        decay: 0.15,
        sustain: 0,
        release: 0.05,
        gain: 0.9,
        glide: 110,
        glideTime: 0.035,
      },
      31,
    ],
  ],
  snare: [
    [{ ...NOISE, table: WHITE_NOISE, decay: 0.06, release: 0.05, gain: 0.35, pan: 0.1 }, 0],
    [
      { ...TONE, table: SINE, attack: 0.001, decay: 0.04, sustain: 0, release: 0.03, gain: 0.3 },
      54,
    ],
  ],
  hat: [[{ ...NOISE, table: BRIGHT_NOISE, decay: 0.02, release: 0.02, gain: 0.3, pan: 0.3 }, 0]],
};
