import { type VoiceKind } from './instruments.js';
import { type Note } from './score.js';
import { NOISE_MASK, TABLE_MASK, TABLE_SIZE } from './wavetables.js';

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
export function renderNote(
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
