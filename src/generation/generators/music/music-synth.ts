import { composeScore } from './composition.js';
import { renderNote } from './note-rendering.js';
import { styleFromPrompt } from './prompt-style.js';
import { hashString, mulberry32 } from './random.js';
import { type Note, SAMPLE_RATE } from './score.js';
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

// About 0.37 s of audio between yields to the event loop.
const CHUNK_FRAMES = 16_384;
const PEAK_LEVEL = 10 ** (-1 / 20); // -1 dBFS
const FADE_OUT_SECONDS = 0.75;

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
