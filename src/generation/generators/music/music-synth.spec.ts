import { describe, expect, it } from 'vitest';
import { type MusicRequest, type RenderHooks, renderMusic } from './music-synth.js';
import { styleFromPrompt } from './prompt-style.js';
import { SAMPLE_RATE } from './score.js';
import { encodeWav, parseWavHeader } from './wav.js';

const HEADER_BYTES = 44;
// -1 dBFS on the int16 scale.
const PEAK_SAMPLE = Math.round(10 ** (-1 / 20) * 32767);

function quietHooks(onProgress: (fraction: number) => void = () => {}): RenderHooks {
  return { signal: new AbortController().signal, onProgress };
}

function render(request: MusicRequest): Promise<Buffer> {
  return renderMusic(request, quietHooks());
}

function sampleStats(wav: Buffer): { peak: number; rms: number; min: number } {
  let peak = 0;
  let min = 0;
  let sumOfSquares = 0;
  const count = (wav.length - HEADER_BYTES) / 2;
  for (let at = HEADER_BYTES; at < wav.length; at += 2) {
    const sample = wav.readInt16LE(at);
    peak = Math.max(peak, Math.abs(sample));
    min = Math.min(min, sample);
    sumOfSquares += sample * sample;
  }
  return { peak, min, rms: Math.sqrt(sumOfSquares / count) / 32767 };
}

describe('encodeWav', () => {
  it('writes interleaved, clamped, rounded little-endian int16 samples', () => {
    const wav = encodeWav([Float32Array.of(0, 1, 2), Float32Array.of(-1, -2, 0.5)], 8000);
    expect(parseWavHeader(wav)).toEqual({
      sampleRate: 8000,
      channels: 2,
      bitsPerSample: 16,
      dataBytes: 12,
      durationSeconds: 3 / 8000,
    });
    const samples = Array.from({ length: 6 }, (_, i) => wav.readInt16LE(HEADER_BYTES + 2 * i));
    expect(samples).toEqual([0, -32767, 32767, -32767, 32767, 16384]);
  });
});

describe('renderMusic', () => {
  it('writes a 44.1 kHz stereo 16-bit WAV with exactly round(duration * rate) frames', async () => {
    for (const durationSeconds of [2.5, 1.2345]) {
      const wav = await render({ prompt: 'calm piano', durationSeconds, seed: 1 });
      const frames = Math.round(durationSeconds * SAMPLE_RATE);
      const header = parseWavHeader(wav);
      expect(header).toMatchObject({ sampleRate: 44_100, channels: 2, bitsPerSample: 16 });
      expect(header.dataBytes).toBe(frames * 4);
      expect(wav.length).toBe(HEADER_BYTES + frames * 4);
      expect(header.durationSeconds).toBeCloseTo(frames / SAMPLE_RATE, 9);
    }
  });

  it('renders an empty WAV for a zero duration', async () => {
    const progress: number[] = [];
    const wav = await renderMusic(
      { prompt: 'anything', durationSeconds: 0, seed: 1 },
      quietHooks((fraction) => progress.push(fraction)),
    );
    expect(parseWavHeader(wav).dataBytes).toBe(0);
    expect(progress).toEqual([1]);
  });

  it('rejects a negative or non-finite duration', async () => {
    for (const durationSeconds of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      await expect(render({ prompt: 'x', durationSeconds, seed: 1 })).rejects.toThrow(RangeError);
    }
  });

  it('gives the same bytes for the same request and different bytes for another seed', async () => {
    const request = { prompt: 'upbeat jazz with flute and drums', durationSeconds: 4, seed: 42 };
    const first = await render(request);
    const again = await render({ ...request });
    const otherSeed = await render({ ...request, seed: 43 });
    const otherPrompt = await render({ ...request, prompt: 'dark ambient bells' });
    expect(again.equals(first)).toBe(true);
    expect(otherSeed.equals(first)).toBe(false);
    expect(otherPrompt.equals(first)).toBe(false);
  });

  it('is audible and normalised to -1 dBFS without ever clipping', async () => {
    const prompts = [
      'a song',
      'slow sad piano',
      'fast happy techno drums',
      'calm ambient pad with bells',
      'rock guitar bass drums 180 bpm',
      'piano strings guitar bass synth lead flute bells percussion',
    ];
    for (const [seed, prompt] of prompts.entries()) {
      const stats = sampleStats(await render({ prompt, durationSeconds: 20, seed }));
      expect(stats.rms, prompt).toBeGreaterThan(0.05);
      expect(stats.peak, prompt).toBeLessThanOrEqual(PEAK_SAMPLE);
      expect(stats.peak, prompt).toBeGreaterThan(PEAK_SAMPLE - 2);
      expect(stats.min, prompt).toBeGreaterThan(-32768);
    }
  });

  it('fades out to silence at the end', async () => {
    const wav = await render({ prompt: 'fast techno drums', durationSeconds: 3, seed: 5 });
    const lastFrame = [wav.readInt16LE(wav.length - 4), wav.readInt16LE(wav.length - 2)];
    expect(lastFrame.map(Math.abs).every((sample) => sample < 50)).toBe(true);
  });

  it('reports non-decreasing progress that ends at 1', async () => {
    const progress: number[] = [];
    await renderMusic(
      { prompt: 'happy piano', durationSeconds: 5, seed: 3 },
      quietHooks((fraction) => progress.push(fraction)),
    );
    expect(progress.length).toBeGreaterThan(5);
    expect(progress.every((fraction, i) => fraction >= (progress[i - 1] ?? 0))).toBe(true);
    expect(progress.at(-1)).toBe(1);
  });

  it('lets the event loop run between chunks', async () => {
    let ticked = false;
    setImmediate(() => {
      ticked = true;
    });
    const seen: boolean[] = [];
    await renderMusic(
      { prompt: 'a song', durationSeconds: 3, seed: 1 },
      quietHooks(() => seen.push(ticked)),
    );
    expect(seen[0]).toBe(false);
    expect(seen.at(-1)).toBe(true);
  });

  it('rejects with the reason of an already aborted signal, without rendering', async () => {
    const reason = new Error('cancelled before start');
    const progress: number[] = [];
    const rendering = renderMusic(
      { prompt: 'a song', durationSeconds: 10, seed: 1 },
      { signal: AbortSignal.abort(reason), onProgress: (fraction) => progress.push(fraction) },
    );
    await expect(rendering).rejects.toBe(reason);
    expect(progress).toEqual([]);
  });

  it('stops rendering when aborted mid-way', async () => {
    const controller = new AbortController();
    const reason = new Error('cancelled mid-render');
    const progress: number[] = [];
    const rendering = renderMusic(
      { prompt: 'a song', durationSeconds: 10, seed: 1 },
      {
        signal: controller.signal,
        onProgress: (fraction) => {
          progress.push(fraction);
          if (progress.length === 1) controller.abort(reason);
        },
      },
    );
    await expect(rendering).rejects.toBe(reason);
    expect(progress).toHaveLength(1);
    expect(progress[0]).toBeLessThan(1);
  });
});

describe('styleFromPrompt', () => {
  it('reads tempo, mode and instruments from the words of the prompt', () => {
    const slow = styleFromPrompt('slow sad piano');
    const fast = styleFromPrompt('fast happy techno drums');
    expect(slow.tempoBpm).toBeLessThan(fast.tempoBpm);
    expect(slow.mode).toBe('minor');
    expect(fast.mode).toBe('major');
    expect(slow.instruments).toEqual(['piano']);
    expect(fast.instruments).toContain('drums');
    expect(fast.instruments).not.toContain('piano');
  });

  it('lets an explicit bpm win over tempo words', () => {
    expect(styleFromPrompt('fast energetic dance at 92 BPM').tempoBpm).toBe(92);
    expect(styleFromPrompt('120bpm lullaby').tempoBpm).toBe(120);
    expect(styleFromPrompt('1000 bpm').tempoBpm).toBe(220);
  });

  it('understands plurals and capitals, and falls back to a default band', () => {
    expect(styleFromPrompt('Strings and BELLS').instruments).toEqual(['pad', 'bells']);
    const plain = styleFromPrompt('something nice');
    expect(plain.instruments.length).toBeGreaterThan(1);
    expect(plain.tempoBpm).toBeGreaterThan(styleFromPrompt('slow').tempoBpm);
    expect(styleFromPrompt('constructor toString').instruments).toEqual(plain.instruments);
  });
});
