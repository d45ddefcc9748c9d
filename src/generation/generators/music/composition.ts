import {
  BASS_PATTERNS,
  type ChordStep,
  DRUM_FILL,
  DRUM_PATTERNS,
  feelOf,
  PIANO_PATTERNS,
  PLUCK_PATTERNS,
  TRIAD,
} from './accompaniment.js';
import { DRUM_VOICES, type Patch, PATCHES, type PitchedInstrument } from './instruments.js';
import { type Instrument, type Mode, type MusicStyle } from './prompt-style.js';
import { pick } from './random.js';
import { type Note, SAMPLE_RATE, ScoreWriter } from './score.js';

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

export function composeScore(style: MusicStyle, totalFrames: number, random: () => number): Note[] {
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
