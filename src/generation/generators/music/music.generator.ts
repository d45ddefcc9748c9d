import { Injectable } from '@nestjs/common';
import { z } from 'zod';
import {
  type GeneratedOutput,
  type GenerationContext,
  type Generator,
  KilnGenerator,
} from '../../generator.js';
import { renderMusic } from './music-synth.js';

const MAX_DURATION_SECONDS = 300;

const musicInput = z.strictObject({
  prompt: z
    .string()
    .trim()
    .min(1)
    .max(500)
    .meta({
      description:
        'Words set the tempo (slow, fast, "90 bpm"), the mood (happy, sad, dark) and the instruments ' +
        '(piano, bass, strings, bells, drums, flute, synth).',
    }),
  duration: z
    .number()
    .min(1)
    .max(MAX_DURATION_SECONDS)
    .default(10)
    .meta({ description: 'Length in seconds.' }),
  seed: z
    .int()
    .min(0)
    .max(2 ** 32 - 1)
    .default(0)
    .meta({ description: 'Another seed gives another take on the same prompt.' }),
});

/** A WAV (44.1 kHz, 16-bit stereo) rendered by a small synthesizer; the same input gives the same bytes. */
@Injectable()
@KilnGenerator()
export class MusicGenerator implements Generator<typeof musicInput> {
  readonly kind = 'music';
  readonly version = '1';
  readonly description = 'Music from a text prompt, rendered to a WAV file.';
  readonly resources = 'cpu';
  readonly input = musicInput;
  readonly example = { prompt: 'calm ambient piano with soft strings', duration: 8 };

  async generate(
    input: z.output<typeof musicInput>,
    { signal, progress }: GenerationContext,
  ): Promise<GeneratedOutput> {
    progress('generating', 0);
    const data = await renderMusic(
      { prompt: input.prompt, durationSeconds: input.duration, seed: input.seed },
      { signal, onProgress: (fraction) => progress('generating', fraction * 0.95) },
    );
    return { data, contentType: 'audio/wav', extension: 'wav' };
  }
}
