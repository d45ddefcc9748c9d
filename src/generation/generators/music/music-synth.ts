import { type Instrument, type Mode, type MusicStyle, styleFromPrompt } from './prompt-style.js';
import { encodeWav } from './wav.js';

export interface MusicRequest {
  prompt: string;
  durationSeconds: number;
  seed: number;
}

export interface RenderHooks {
  signal: AbortSignal;
  onProgress(fraction: number): void;
}

/** Output sample rate; the output is always stereo. */
export const SAMPLE_RATE = 44_100;

// About 0.37 s of audio between yields to the event loop.
const CHUNK_FRAMES = 16_384;
const PEAK_LEVEL = 10 ** (-1 / 20); // -1 dBFS
const FADE_OUT_SECONDS = 0.75;

// ---------------------------------------------------------------------------------------------
// Oscillator sources

// Large enough that reading the nearest entry, without interpolation, keeps the error spurs near
// -70 dB, which saves a quarter of the time in the oscillator loops.
const TABLE_SIZE = 1 << 14;
const TABLE_MASK = TABLE_SIZE - 1;
const NOISE_SIZE = 1 << 16;
const NOISE_MASK = NOISE_SIZE - 1;

const SINE_PERIOD = Float64Array.from({ length: TABLE_SIZE }, (_, i) =>
  Math.sin((2 * Math.PI * i) / TABLE_SIZE),
);

/** One period of a sum of harmonics, scaled to peak 1. */
function harmonicTable(amplitudes: readonly number[]): Float32Array {
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
function seriesTable(harmonics: number, oddOnly: boolean): Float32Array {
  return harmonicTable(
    Array.from({ length: harmonics }, (_, h) => (oddOnly && h % 2 === 1 ? 0 : 1 / (h + 1))),
  );
}

/** mulberry32: a tiny, fast, well-mixed 32-bit PRNG returning floats in [0, 1). */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** FNV-1a over UTF-16 code units. */
function hashString(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
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

const SINE = harmonicTable([1]);
const WHITE_NOISE = noiseTable(false);
const BRIGHT_NOISE = noiseTable(true);

// ---------------------------------------------------------------------------------------------
// Instruments

/** tone: one wavetable oscillator; chorus: two detuned ones spread left and right; fm: bells. */
type VoiceKind = 'tone' | 'chorus' | 'fm' | 'noise';

/** How far apart in the stereo field (each side of centre) a chorus puts its two oscillators. */
const CHORUS_SPREAD = 0.6;

interface Patch {
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

type PitchedInstrument = Exclude<Instrument, 'drums'>;

const PATCHES: Record<PitchedInstrument, Patch> = {
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

type Drum = 'kick' | 'snare' | 'hat';

const NOISE = { ...TONE, kind: 'noise', sustain: 0, attack: 0.001 } as const;

/** Each drum is one or more voices, each with the MIDI pitch it sounds at. */
const DRUM_VOICES: Record<Drum, readonly (readonly [Patch, number])[]> = {
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

// ---------------------------------------------------------------------------------------------
// Score: notes with their per-sample parameters precomputed

interface Note {
  kind: VoiceKind;
  table: Float32Array;
  start: number;
  /** Frames from the start until release; the attack and decay play within them. */
  hold: number;
  /** First frame after the release. */
  end: number;
  attack: number;
  /** Per-frame factor of the decay towards sustain. */
  decayFactor: number;
  sustain: number;
  release: number;
  /** Envelope level when the release begins. */
  releaseLevel: number;
  /** Table positions per frame. */
  step: number;
  /** The second oscillator: a chorus's detuned twin or an FM modulator. */
  step2: number;
  /** FM modulation depth in table positions. */
  modDepth: number;
  /** Extra table positions per frame at this point of the glide, shrinking by glideFactor. */
  glide: number;
  glideFactor: number;
  gainLeft: number;
  gainRight: number;
  /** Oscillator state (a noise voice's read position), carried from one block to the next. */
  phase: number;
  phase2: number;
}

function midiToHz(midi: number): number {
  return 440 * 2 ** ((midi - 69) / 12);
}

function perFrameFactor(timeConstantSeconds: number): number {
  return Math.exp(-1 / (timeConstantSeconds * SAMPLE_RATE));
}

class ScoreWriter {
  readonly notes: Note[] = [];

  constructor(
    private readonly beatFrames: number,
    private readonly random: () => number,
  ) {}

  play(patch: Patch, midi: number, atBeat: number, beats: number, velocity: number): void {
    const level = patch.gain * velocity * (0.85 + 0.15 * this.random());
    const pitch = midi + 12 * patch.octave;
    const start = Math.round(atBeat * this.beatFrames);
    const hold = Math.max(1, Math.round(beats * this.beatFrames));
    const attack = Math.max(1, Math.round(patch.attack * SAMPLE_RATE));
    const release = Math.max(1, Math.round(patch.release * SAMPLE_RATE));
    const decayFactor = perFrameFactor(patch.decay);
    const releaseLevel =
      hold <= attack
        ? hold / attack
        : patch.sustain + (1 - patch.sustain) * decayFactor ** (hold - attack);
    const toStep = TABLE_SIZE / SAMPLE_RATE;
    const pan = patch.kind === 'chorus' ? -CHORUS_SPREAD : patch.pan;
    // Equal-power panning.
    const angle = ((pan + 1) * Math.PI) / 4;
    this.notes.push({
      kind: patch.kind,
      table: patch.table,
      start,
      hold,
      end: start + hold + release,
      attack,
      decayFactor,
      sustain: patch.sustain,
      release,
      releaseLevel,
      step: midiToHz(pitch - patch.detune / 200) * toStep,
      step2:
        patch.kind === 'fm'
          ? midiToHz(pitch) * patch.modRatio * toStep
          : midiToHz(pitch + patch.detune / 200) * toStep,
      modDepth: (patch.modIndex * TABLE_SIZE) / (2 * Math.PI),
      glide: patch.glide * toStep,
      glideFactor: perFrameFactor(patch.glideTime),
      gainLeft: level * Math.cos(angle),
      gainRight: level * Math.sin(angle),
      phase: patch.kind === 'noise' ? Math.floor(this.random() * NOISE_SIZE) : 0,
      phase2: 0,
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Composition

const SCALES: Record<Mode, readonly number[]> = {
  major: [0, 2, 4, 5, 7, 9, 11],
  minor: [0, 2, 3, 5, 7, 8, 10],
};

/** Chord roots as scale degrees (0 = tonic), one chord a bar. */
const PROGRESSIONS: Record<Mode, readonly (readonly number[])[]> = {
  major: [
    [0, 4, 5, 3],
    [0, 5, 3, 4],
    [0, 3, 0, 4],
    [5, 3, 0, 4],
  ],
  minor: [
    [0, 5, 2, 6],
    [0, 3, 6, 2],
    [0, 6, 5, 6],
    [0, 3, 4, 0],
  ],
};

type Feel = 'slow' | 'medium' | 'fast';

function feelOf(tempoBpm: number): Feel {
  return tempoBpm < 90 ? 'slow' : tempoBpm < 118 ? 'medium' : 'fast';
}

/** [beat in bar, length in beats, chord tones (0-2 low to high, 3 = lowest an octave up)]. */
type ChordStep = readonly [number, number, readonly number[]];
const TRIAD: readonly number[] = [0, 1, 2];

const PIANO_PATTERNS: Record<Feel, readonly ChordStep[]> = {
  // Broken chord left ringing, as with the sustain pedal down.
  slow: [
    [0, 4, [0]],
    [1, 3, [1]],
    [2, 2, [2]],
    [3, 1, [3]],
  ],
  medium: [
    [0, 1.5, TRIAD],
    [1.5, 0.5, [1, 2]],
    [2, 1.5, TRIAD],
    [3.5, 0.5, [1, 2]],
  ],
  fast: [
    [0, 0.5, TRIAD],
    [0.75, 0.25, TRIAD],
    [1.5, 0.5, TRIAD],
    [2.5, 0.5, TRIAD],
    [3.5, 0.5, TRIAD],
  ],
};

const arpeggio = (tones: readonly number[], beats: number): ChordStep[] =>
  tones.map((tone, i) => [i * beats, beats, [tone]]);

const PLUCK_PATTERNS: Record<Feel, readonly ChordStep[]> = {
  slow: arpeggio([0, 1, 2, 3], 1),
  medium: arpeggio([0, 1, 2, 3, 2, 1, 0, 1], 0.5),
  fast: arpeggio([0, 1, 2, 3, 2, 1, 0, 1], 0.5),
};

/** [beat in bar, length in beats, semitones above the chord root]. */
type BassStep = readonly [number, number, number];

const BASS_PATTERNS: Record<Feel, readonly BassStep[]> = {
  slow: [[0, 4, 0]],
  medium: [
    [0, 1.5, 0],
    [1.5, 0.5, 12],
    [2, 1.5, 0],
    [3.5, 0.5, 7],
  ],
  // Octave bounce on eighths.
  fast: Array.from({ length: 8 }, (_, i): BassStep => [i / 2, 0.45, i % 2 === 0 ? 0 : 12]),
};

/** [beat in bar, drum, velocity]. */
type DrumStep = readonly [number, Drum, number];

const eighthHats = (velocity: number): DrumStep[] =>
  Array.from({ length: 8 }, (_, i): DrumStep => [
    i / 2,
    'hat',
    i % 2 === 0 ? velocity : velocity * 0.6,
  ]);

const DRUM_PATTERNS: Record<Feel, readonly DrumStep[]> = {
  slow: [[0, 'kick', 0.9], [2.5, 'kick', 0.7], [2, 'snare', 0.6], ...eighthHats(0.5)],
  medium: [
    [0, 'kick', 1],
    [2, 'kick', 0.85],
    [2.5, 'kick', 0.6],
    [1, 'snare', 0.9],
    [3, 'snare', 0.9],
    ...eighthHats(0.7),
  ],
  // Four on the floor with accented off-beat hats.
  fast: [
    [0, 'kick', 1],
    [1, 'kick', 1],
    [2, 'kick', 1],
    [3, 'kick', 1],
    [1, 'snare', 0.9],
    [3, 'snare', 0.9],
    ...eighthHats(0.5).map(([at, drum, v]): DrumStep => [at, drum, at % 1 === 0 ? v : 1]),
  ],
};

// Played at the end of every phrase.
const DRUM_FILL: readonly DrumStep[] = [
  [3.5, 'snare', 0.6],
  [3.75, 'snare', 0.75],
];

/** Bar-long rhythms, in beats, the melody draws from. */
const MELODY_RHYTHMS: readonly (readonly number[])[] = [
  [1, 1, 1, 1],
  [2, 1, 1],
  [1, 0.5, 0.5, 2],
  [1.5, 0.5, 2],
  [0.5, 0.5, 1, 2],
  [3, 1],
  [1, 1, 2],
];
const MELODY_STEPS = [-2, -1, -1, 0, 1, 1, 2];
const MELODY_TOP_DEGREE = 10;
const REST_CHANCE = 0.12;
const VARIATION_CHANCE = 0.25;
const MELODY_INSTRUMENTS: readonly PitchedInstrument[] = ['lead', 'flute', 'bells'];
// Chord instruments that can carry the tune when no melody instrument was asked for.
const FALLBACK_MELODY_INSTRUMENTS: readonly PitchedInstrument[] = ['piano', 'pluck'];

interface MelodyNote {
  atBeat: number;
  beats: number;
  degree: number;
}

function pick<T>(items: readonly T[], random: () => number): T {
  return items[Math.floor(random() * items.length)]!;
}

/** Semitones above the tonic of a scale degree, which may lie in another octave. */
function degreeSemitones(scale: readonly number[], degree: number): number {
  const octave = Math.floor(degree / 7);
  return 12 * octave + scale[degree - 7 * octave]!;
}

/** The same pitch class as `midi`, moved into the octave [low, low + 12). */
function foldIntoOctave(midi: number, low: number): number {
  return low + ((((midi - low) % 12) + 12) % 12);
}

/** The nearest degree that belongs to the chord built on `root`. */
function nearestChordDegree(degree: number, root: number): number {
  const isChordTone = (d: number) => [0, 2, 4].includes((((d - root) % 7) + 7) % 7);
  for (let distance = 0; ; distance++) {
    if (isChordTone(degree - distance)) return degree - distance;
    if (isChordTone(degree + distance)) return degree + distance;
  }
}

const clampDegree = (degree: number) => Math.min(MELODY_TOP_DEGREE, Math.max(0, degree));

/** A phrase as long as the progression: a random walk over the scale, landing on chord tones. */
function writeMotif(progression: readonly number[], random: () => number): MelodyNote[] {
  const motif: MelodyNote[] = [];
  let degree = 4;
  progression.forEach((root, bar) => {
    let atBeat = bar * 4;
    pick(MELODY_RHYTHMS, random).forEach((beats, i) => {
      degree = clampDegree(degree + pick(MELODY_STEPS, random));
      // Strong beats sit on the chord so the tune follows the harmony.
      if (i === 0) degree = clampDegree(nearestChordDegree(degree, root));
      if (i === 0 || random() >= REST_CHANCE) motif.push({ atBeat, beats, degree });
      atBeat += beats;
    });
  });
  return motif;
}

function composeScore(style: MusicStyle, totalFrames: number, random: () => number): Note[] {
  const beatFrames = (SAMPLE_RATE * 60) / style.tempoBpm;
  const bars = Math.ceil(totalFrames / (4 * beatFrames));
  const scale = SCALES[style.mode];
  const progression = pick(PROGRESSIONS[style.mode], random);
  const feel = feelOf(style.tempoBpm);
  // The tonic sits between G2 and F#3; parts are voiced relative to it.
  const tonic = 43 + Math.floor(random() * 12);
  const score = new ScoreWriter(beatFrames, random);
  const has = (instrument: Instrument) => style.instruments.includes(instrument);

  const melodyInstruments = MELODY_INSTRUMENTS.filter(has);
  const melodyPatches = (
    melodyInstruments.length > 0
      ? melodyInstruments
      : FALLBACK_MELODY_INSTRUMENTS.filter(has).slice(0, 1)
  ).map((instrument) => PATCHES[instrument]);
  const motif = writeMotif(progression, random);

  for (let bar = 0; bar < bars; bar++) {
    const root = progression[bar % progression.length]!;
    const barBeat = bar * 4;
    // Chord tones folded into the octave from tonic + 10 (F3 to E4 up): inversions that move
    // smoothly from chord to chord.
    const triad = [root, root + 2, root + 4]
      .map((d) => foldIntoOctave(tonic + degreeSemitones(scale, d), tonic + 10))
      .sort((a, b) => a - b);
    const chordTones = [...triad, triad[0]! + 12];
    const playChord = (patch: Patch, pattern: readonly ChordStep[], velocity: number) => {
      for (const [at, beats, tones] of pattern) {
        for (const tone of tones) {
          score.play(patch, chordTones[tone]!, barBeat + at, beats, velocity);
        }
      }
    };

    if (has('pad')) playChord(PATCHES.pad, [[0, 4, TRIAD]], 1);
    if (has('piano')) playChord(PATCHES.piano, PIANO_PATTERNS[feel], 0.8);
    if (has('pluck')) playChord(PATCHES.pluck, PLUCK_PATTERNS[feel], 0.8);
    if (has('bass')) {
      // Bass roots between C2 and B2.
      const bassRoot = foldIntoOctave(tonic + degreeSemitones(scale, root), 36);
      for (const [at, beats, semitones] of BASS_PATTERNS[feel]) {
        score.play(PATCHES.bass, bassRoot + semitones, barBeat + at, beats, 1);
      }
    }
    if (has('drums')) {
      const phraseEnd = bar % progression.length === progression.length - 1;
      const hits = phraseEnd ? [...DRUM_PATTERNS[feel], ...DRUM_FILL] : DRUM_PATTERNS[feel];
      for (const [at, drum, velocity] of hits) {
        for (const [patch, midi] of DRUM_VOICES[drum]) {
          score.play(patch, midi, barBeat + at, 0.25, velocity);
        }
      }
    }
  }

  // The motif comes back once per pass through the progression, varied after the first pass and
  // handed round the melody instruments.
  for (let phrase = 0; melodyPatches.length > 0 && phrase * progression.length < bars; phrase++) {
    const patch = melodyPatches[phrase % melodyPatches.length]!;
    const phraseBeat = phrase * progression.length * 4;
    for (const note of motif) {
      if (phraseBeat + note.atBeat >= bars * 4) break;
      const degree =
        phrase > 0 && random() < VARIATION_CHANCE
          ? clampDegree(note.degree + (random() < 0.5 ? -1 : 1))
          : note.degree;
      const midi = tonic + 12 + degreeSemitones(scale, degree);
      score.play(patch, midi, phraseBeat + note.atBeat, note.beats * 0.9, 1);
    }
  }
  return score.notes.sort((a, b) => a.start - b.start);
}

// ---------------------------------------------------------------------------------------------
// Rendering

// The envelope is evaluated exactly at block edges and ramped linearly within blocks, which keeps
// the per-sample work to one add instead of a serial multiply-add chain.
const ENVELOPE_BLOCK = 256;

/** Linear attack, exponential decay towards sustain, linear release. */
function envelopeAt(note: Note, t: number): number {
  if (t < note.attack && t < note.hold) return t / note.attack;
  if (t < note.hold) {
    return note.sustain + (1 - note.sustain) * note.decayFactor ** (t - note.attack);
  }
  return note.releaseLevel * (1 - (t - note.hold) / note.release);
}

/** Where the envelope's current formula ends, so that no block straddles a corner. */
function stageEnd(note: Note, t: number): number {
  const attackEnd = Math.min(note.attack, note.hold);
  return t < attackEnd ? attackEnd : t < note.hold ? note.hold : note.hold + note.release;
}

/** Adds `count` frames of a voice at output frame `from`, its level ramping by `slope` a frame. */
type BlockRenderer = (
  note: Note,
  from: number,
  count: number,
  level: number,
  slope: number,
  left: Float32Array,
  right: Float32Array,
) => void;

// The hot loops below index the output only within [from, from + count), inside the chunk, and
// tables only at phases kept in [0, TABLE_SIZE) or masked, so their non-null assertions hold.

const renderTone: BlockRenderer = (note, from, count, level, slope, left, right) => {
  const { table, step, glideFactor, gainLeft, gainRight } = note;
  let { phase, glide } = note;
  for (let i = from, stop = from + count; i < stop; i++) {
    const v = table[phase | 0]! * level;
    left[i]! += v * gainLeft;
    right[i]! += v * gainRight;
    level += slope;
    phase += step + glide;
    glide *= glideFactor;
    if (phase >= TABLE_SIZE) phase -= TABLE_SIZE;
  }
  note.phase = phase;
  note.glide = glide;
};

/** Two detuned oscillators; the first leans left and the second, with mirrored gains, right. */
const renderChorus: BlockRenderer = (note, from, count, level, slope, left, right) => {
  const { table, step, step2, gainLeft, gainRight } = note;
  let { phase, phase2 } = note;
  for (let i = from, stop = from + count; i < stop; i++) {
    const a = table[phase | 0]! * level;
    const b = table[phase2 | 0]! * level;
    left[i]! += a * gainLeft + b * gainRight;
    right[i]! += a * gainRight + b * gainLeft;
    level += slope;
    phase += step;
    if (phase >= TABLE_SIZE) phase -= TABLE_SIZE;
    phase2 += step2;
    if (phase2 >= TABLE_SIZE) phase2 -= TABLE_SIZE;
  }
  note.phase = phase;
  note.phase2 = phase2;
};

/** Two-operator FM: the modulation index follows the envelope, so bells mellow as they ring. */
const renderFm: BlockRenderer = (note, from, count, level, slope, left, right) => {
  const { table, step, step2, modDepth, gainLeft, gainRight } = note;
  let { phase, phase2 } = note;
  for (let i = from, stop = from + count; i < stop; i++) {
    const modulation = table[phase2 | 0]!;
    // The modulated position may fall outside the period on either side: floor, then wrap.
    const v = table[Math.floor(phase + modDepth * level * modulation) & TABLE_MASK]! * level;
    left[i]! += v * gainLeft;
    right[i]! += v * gainRight;
    level += slope;
    phase += step;
    if (phase >= TABLE_SIZE) phase -= TABLE_SIZE;
    phase2 += step2;
    if (phase2 >= TABLE_SIZE) phase2 -= TABLE_SIZE;
  }
  note.phase = phase;
  note.phase2 = phase2;
};

const renderNoise: BlockRenderer = (note, from, count, level, slope, left, right) => {
  const { table, gainLeft, gainRight } = note;
  let position = note.phase;
  for (let i = from, stop = from + count; i < stop; i++) {
    const v = table[position & NOISE_MASK]! * level;
    left[i]! += v * gainLeft;
    right[i]! += v * gainRight;
    level += slope;
    position++;
  }
  note.phase = position;
};

const RENDERERS: Record<VoiceKind, BlockRenderer> = {
  tone: renderTone,
  chorus: renderChorus,
  fm: renderFm,
  noise: renderNoise,
};

/**
 * Adds the part of `note` that falls in frames [from, to) into the output. Notes carry their
 * oscillator state, so each must be rendered in order of time, as the chunk loop does.
 */
function renderNote(
  note: Note,
  from: number,
  to: number,
  left: Float32Array,
  right: Float32Array,
): void {
  const render = RENDERERS[note.kind];
  const stop = Math.min(to, note.end);
  let frame = Math.max(from, note.start);
  let level = envelopeAt(note, frame - note.start);
  while (frame < stop) {
    const t = frame - note.start;
    const count = Math.min(ENVELOPE_BLOCK, stop - frame, stageEnd(note, t) - t);
    const target = envelopeAt(note, t + count);
    render(note, frame, count, level, (target - level) / count, left, right);
    level = target;
    frame += count;
  }
}

/**
 * Applies the fade-out (the last `fade` frames) to frames [from, to), which are final once their
 * chunk is rendered, and returns their peak, so that mastering needs no extra pass.
 */
function finishChunk(
  left: Float32Array,
  right: Float32Array,
  from: number,
  to: number,
  fade: number,
): number {
  const frames = left.length;
  let peak = 0;
  for (let i = from; i < to; i++) {
    const remaining = (frames - i) / fade;
    // Quadratic, so the fade sounds even rather than dropping off at the end.
    const gain = remaining < 1 ? remaining * remaining : 1;
    const l = (left[i]! *= gain);
    const r = (right[i]! *= gain);
    peak = Math.max(peak, Math.abs(l), Math.abs(r));
  }
  return peak;
}

function applyGain(gain: number, left: Float32Array, right: Float32Array): void {
  for (let i = 0; i < left.length; i++) {
    left[i]! *= gain;
    right[i]! *= gain;
  }
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Renders a piece for the prompt as a stereo 16-bit WAV. Deterministic: the same request gives
 * the same bytes. Works in chunks, yielding to the event loop between them, checking the signal
 * before each and reporting progress after each.
 */
export async function renderMusic(request: MusicRequest, hooks: RenderHooks): Promise<Buffer> {
  const { prompt, durationSeconds, seed } = request;
  if (!Number.isFinite(durationSeconds) || durationSeconds < 0) {
    throw new RangeError(`durationSeconds must be a finite number >= 0, got ${durationSeconds}`);
  }
  const totalFrames = Math.round(durationSeconds * SAMPLE_RATE);
  const random = mulberry32(hashString(`${seed}\u0000${prompt}`));
  const notes = composeScore(styleFromPrompt(prompt), totalFrames, random);
  const left = new Float32Array(totalFrames);
  const right = new Float32Array(totalFrames);

  const fade = Math.min(Math.round(FADE_OUT_SECONDS * SAMPLE_RATE), Math.floor(totalFrames / 4));
  let active: Note[] = [];
  let next = 0;
  let done = 0;
  let peak = 0;
  do {
    hooks.signal.throwIfAborted();
    const to = Math.min(totalFrames, done + CHUNK_FRAMES);
    for (let note = notes[next]; note !== undefined && note.start < to; note = notes[++next]) {
      active.push(note);
    }
    active = active.filter((note) => note.end > done);
    for (const note of active) renderNote(note, done, to, left, right);
    peak = Math.max(peak, finishChunk(left, right, done, to, fade));
    done = to;
    hooks.onProgress(totalFrames === 0 ? 1 : done / totalFrames);
    await yieldToEventLoop();
  } while (done < totalFrames);
  hooks.signal.throwIfAborted();

  // Normalising to PEAK_LEVEL also guarantees the int16 conversion never clips.
  if (peak > 0) applyGain(PEAK_LEVEL / peak, left, right);
  return encodeWav([left, right], SAMPLE_RATE);
}
