import { join } from 'node:path';
import { Injectable } from '@nestjs/common';
import { z } from 'zod';
import { KilnConfig } from '../../../config/config.js';
import { NotStartedError, exitError, runProcess } from '../../../process/child-process.js';
import {
  type Availability,
  type GeneratedOutput,
  type GenerationContext,
  type Generator,
  KilnGenerator,
} from '../../generator.js';
import { EspeakVoices } from './espeak-voices.js';
import { NonRetryableError } from '../../../common/non-retryable-error.js';

export const SPEECH_TEXT_MAX = 5_000;

const VOICES_ROUTE = 'GET /api/v1/generators/speech/voices';

/** `knows` says whether a voice is installed (`undefined`: not known yet, so accepted). */
const speechInput = (knows: (voice: string) => boolean | undefined) =>
  z.strictObject({
    text: z.string().trim().min(1).max(SPEECH_TEXT_MAX).meta({ description: 'What to say.' }),
    voice: z
      .string()
      .regex(/^[a-z]{2,3}(-[a-z0-9]+)*(\+[a-z0-9_]+)?$/i, 'expected a voice such as en-us or en+f3')
      .refine(
        (voice) => knows(voice) ?? true,
        `Not an installed voice; ${VOICES_ROUTE} lists them.`,
      )
      .default('en')
      .meta({ description: `A language code from ${VOICES_ROUTE}, optionally with \`+variant\`.` }),
    speed: z.int().min(80).max(450).default(175).meta({ description: 'Words per minute.' }),
    pitch: z.int().min(0).max(99).default(50).meta({ description: '0 (low) to 99 (high).' }),
  });
type SpeechInput = ReturnType<typeof speechInput>;

/** Text to speech through the espeak-ng binary (Debian's `espeak-ng` package): a mono WAV. */
@Injectable()
@KilnGenerator()
export class SpeechGenerator implements Generator<SpeechInput> {
  readonly kind = 'speech';
  readonly version = '1';
  readonly description = 'Text to speech with espeak-ng, to a WAV file.';
  readonly resources = 'cpu';
  readonly input: SpeechInput;
  readonly example = { text: 'Your report is ready.', voice: 'en-us', speed: 160 };

  constructor(
    private readonly voices: EspeakVoices,
    private readonly config: KilnConfig,
  ) {
    this.input = speechInput((voice) => voices.knows(voice));
  }

  private get path(): string {
    return this.config.generators.espeakNgPath;
  }

  async checkAvailability(signal: AbortSignal): Promise<Availability> {
    try {
      const result = await runProcess(this.path, { args: ['--version'], signal });
      if (result.code !== 0)
        return { available: false, reason: exitError(this.path, result).message };
      // Read now, so that requests are checked against the installed voices from the start.
      await this.voices.list();
      return { available: true };
    } catch (error) {
      if (!(error instanceof NotStartedError)) throw error;
      return {
        available: false,
        reason: `${error.message}; install Debian's espeak-ng package or set ESPEAK_NG_PATH`,
      };
    }
  }

  async generate(
    input: z.output<SpeechInput>,
    { signal, progress, tempDir }: GenerationContext,
  ): Promise<GeneratedOutput> {
    progress('preparing');
    await this.voices.list();
    // Accepted before the list was read, or uninstalled since.
    if (!this.voices.knows(input.voice))
      throw new NonRetryableError(`Unknown voice '${input.voice}'; ${VOICES_ROUTE} lists them.`);
    progress('generating', 0.1);
    const path = join(await tempDir(), 'speech.wav');
    const result = await runProcess(this.path, {
      // The text goes through stdin, never the command line.
      args: ['-v', input.voice, '-s', String(input.speed), '-p', String(input.pitch)].concat([
        '-b',
        '1',
        '-w',
        path,
        '--stdin',
      ]),
      stdin: input.text,
      signal,
    });
    if (result.code !== 0) throw exitError(this.path, result);
    return { path, contentType: 'audio/wav', extension: 'wav' };
  }
}
