import { CHORUS_SPREAD, type Patch, type VoiceKind } from './instruments.js';
import { NOISE_SIZE, TABLE_SIZE } from './wavetables.js';

/** Output sample rate; the output is always stereo. */
export const SAMPLE_RATE = 44_100;

/** A note of the score, with its per-sample parameters precomputed. */
export interface Note {
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

export class ScoreWriter {
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
