import { endianness } from 'node:os';

const HEADER_BYTES = 44;
const BYTES_PER_SAMPLE = 2;
const PCM_FORMAT = 1;

export interface WavInfo {
  sampleRate: number;
  channels: number;
  bitsPerSample: number;
  dataBytes: number;
  durationSeconds: number;
}

/**
 * Canonical RIFF/WAVE file, PCM 16-bit little-endian, channels interleaved. Samples are clamped to
 * [-1, 1] and scaled by 32767, so -32768 never occurs and the waveform stays symmetric.
 */
export function encodeWav(channels: Float32Array[], sampleRate: number): Buffer {
  const first = channels[0];
  if (first === undefined) throw new RangeError('encodeWav needs at least one channel');
  const frames = first.length;
  if (channels.some((channel) => channel.length !== frames)) {
    throw new RangeError('encodeWav channels must all have the same length');
  }
  const channelCount = channels.length;
  const blockAlign = channelCount * BYTES_PER_SAMPLE;
  const dataBytes = frames * blockAlign;
  // A fresh ArrayBuffer starts at offset 0, so the samples after the 44-byte header are aligned.
  const bytes = new ArrayBuffer(HEADER_BYTES + dataBytes);
  const buffer = Buffer.from(bytes);

  buffer.write('RIFF', 0, 'ascii');
  buffer.writeUInt32LE(HEADER_BYTES - 8 + dataBytes, 4);
  buffer.write('WAVE', 8, 'ascii');
  buffer.write('fmt ', 12, 'ascii');
  buffer.writeUInt32LE(16, 16);
  buffer.writeUInt16LE(PCM_FORMAT, 20);
  buffer.writeUInt16LE(channelCount, 22);
  buffer.writeUInt32LE(sampleRate, 24);
  buffer.writeUInt32LE(sampleRate * blockAlign, 28);
  buffer.writeUInt16LE(blockAlign, 32);
  buffer.writeUInt16LE(BYTES_PER_SAMPLE * 8, 34);
  buffer.write('data', 36, 'ascii');
  buffer.writeUInt32LE(dataBytes, 40);

  // A typed array is far faster than DataView writes; it uses host byte order, fixed up below.
  const samples = new Int16Array(bytes, HEADER_BYTES, frames * channelCount);
  channels.forEach((channel, c) => {
    for (let i = 0, at = c; i < frames; i++, at += channelCount) {
      const v = channel[i]! || 0; // NaN becomes silence
      // Adding 32768.5 and truncating rounds like Math.round, at twice its speed.
      samples[at] = (((v > 1 ? 1 : v < -1 ? -1 : v) * 32767 + 32768.5) | 0) - 32768;
    }
  });
  if (endianness() === 'BE') buffer.subarray(HEADER_BYTES).swap16();
  return buffer;
}

/** Reads the format and data size of a PCM WAV file, walking its chunks. */
export function parseWavHeader(buf: Buffer): WavInfo {
  if (
    buf.length < 12 ||
    buf.toString('ascii', 0, 4) !== 'RIFF' ||
    buf.toString('ascii', 8, 12) !== 'WAVE'
  ) {
    throw new Error('not a RIFF/WAVE file');
  }
  let format: Omit<WavInfo, 'dataBytes' | 'durationSeconds'> | undefined;
  for (let at = 12; at + 8 <= buf.length;) {
    const id = buf.toString('ascii', at, at + 4);
    const size = buf.readUInt32LE(at + 4);
    if (id === 'fmt ') {
      format = {
        channels: buf.readUInt16LE(at + 10),
        sampleRate: buf.readUInt32LE(at + 12),
        bitsPerSample: buf.readUInt16LE(at + 22),
      };
    } else if (id === 'data') {
      if (format === undefined) throw new Error('WAV data chunk comes before its fmt chunk');
      const bytesPerSecond = (format.sampleRate * format.channels * format.bitsPerSample) / 8;
      return { ...format, dataBytes: size, durationSeconds: size / bytesPerSecond };
    }
    // Chunks are padded to an even size.
    at += 8 + size + (size % 2);
  }
  throw new Error('WAV file has no data chunk');
}
