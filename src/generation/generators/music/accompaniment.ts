import { type Drum } from './instruments.js';

type Feel = 'slow' | 'medium' | 'fast';

export function feelOf(tempoBpm: number): Feel {
  return tempoBpm < 90 ? 'slow' : tempoBpm < 118 ? 'medium' : 'fast';
}

/** [beat in bar, length in beats, chord tones (0-2 low to high, 3 = lowest an octave up)]. */
export type ChordStep = readonly [number, number, readonly number[]];
export const TRIAD: readonly number[] = [0, 1, 2];

export const PIANO_PATTERNS: Record<Feel, readonly ChordStep[]> = {
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

export const PLUCK_PATTERNS: Record<Feel, readonly ChordStep[]> = {
  slow: arpeggio([0, 1, 2, 3], 1),
  medium: arpeggio([0, 1, 2, 3, 2, 1, 0, 1], 0.5),
  fast: arpeggio([0, 1, 2, 3, 2, 1, 0, 1], 0.5),
};

/** [beat in bar, length in beats, semitones above the chord root]. */
type BassStep = readonly [number, number, number];

export const BASS_PATTERNS: Record<Feel, readonly BassStep[]> = {
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

export const DRUM_PATTERNS: Record<Feel, readonly DrumStep[]> = {
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
export const DRUM_FILL: readonly DrumStep[] = [
  [3.5, 'snare', 0.6],
  [3.75, 'snare', 0.75],
];
