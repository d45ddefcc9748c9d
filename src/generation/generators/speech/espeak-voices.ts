import { CACHE_MANAGER } from '@nestjs/cache-manager';
import { Inject, Injectable } from '@nestjs/common';
import type { Cache } from 'cache-manager';
import { z } from 'zod';
import { KilnConfig } from '../../../config/config.js';
import { exitError, runProcess } from '../../../process/child-process.js';

/** The installed voices change only when packages do. */
const VOICES_TTL_MS = 3_600_000;
const LIST_TIMEOUT_MS = 10_000;

export const voiceListSchema = z
  .object({
    voices: z.array(
      z.object({
        language: z.string().meta({ description: 'Pass as `voice`.', example: 'en-us' }),
        name: z.string().meta({ example: 'English (America)' }),
        gender: z.enum(['male', 'female', 'unknown']),
        otherLanguages: z.array(z.string()).meta({
          description: 'Codes this voice also answers to (`en` for English voices).',
        }),
      }),
    ),
    variants: z.array(z.string()).meta({
      description: 'Append one to a voice with `+`, e.g. `en-us+f3`.',
      example: ['f3', 'm2', 'whisper'],
    }),
  })
  .meta({ id: 'SpeechVoices' });
export type VoiceList = z.output<typeof voiceListSchema>;

const GENDERS = { M: 'male', F: 'female' } as const;

/** `espeak-ng --voices` lines: priority, language, age/gender, name, file, other languages. */
function parseVoices(stdout: string) {
  return stdout
    .split('\n')
    .slice(1)
    .flatMap((line) => {
      const match = /^\s*\d+\s+(\S+)\s+\S*\/(\S)\s+(\S+)\s+(\S+)\s*(.*)$/.exec(line);
      if (!match) return [];
      const [, language = '', gender = '', name = '', file = '', others = ''] = match;
      return [
        {
          language,
          name: name.replaceAll('_', ' '),
          gender: GENDERS[gender as keyof typeof GENDERS] ?? ('unknown' as const),
          file,
          otherLanguages: [...others.matchAll(/\((\S+) \d+\)/g)].map(([, code = '']) => code),
        },
      ];
    });
}

/** The voices and variants espeak-ng has installed, listed once an hour. */
@Injectable()
export class EspeakVoices {
  /** The last list read, for validating requests without waiting. */
  private latest?: VoiceList;

  constructor(
    @Inject(CACHE_MANAGER) private readonly cache: Cache,
    private readonly config: KilnConfig,
  ) {}

  list(): Promise<VoiceList> {
    return this.cache.wrap('speech:voices', () => this.read(), VOICES_TTL_MS);
  }

  /**
   * Whether `voice` (a language code, optionally `+variant`) names something installed, by the
   * last list read; `undefined` before any was.
   */
  knows(voice: string): boolean | undefined {
    if (!this.latest) return undefined;
    const { voices, variants } = this.latest;
    const [language = '', variant] = voice.toLowerCase().split('+');
    const known = voices.some(
      (entry) => entry.language === language || entry.otherLanguages.includes(language),
    );
    return (
      known && (variant === undefined || variants.some((name) => name.toLowerCase() === variant))
    );
  }

  private async read(): Promise<VoiceList> {
    const [voices, variants] = await Promise.all([
      this.run(['--voices']),
      this.run(['--voices=variant']),
    ]);
    this.latest = {
      voices: parseVoices(voices).map(({ file: _file, ...voice }) => voice),
      variants: parseVoices(variants).map(({ file }) => file.replace(/^!v\//, '')),
    };
    return this.latest;
  }

  private async run(args: string[]): Promise<string> {
    const path = this.config.generators.espeakNgPath;
    let stdout = '';
    const result = await runProcess(path, {
      args,
      signal: AbortSignal.timeout(LIST_TIMEOUT_MS),
      onStdoutLine: (line) => (stdout += `${line}\n`),
    });
    if (result.code !== 0) throw exitError(path, result);
    return stdout;
  }
}
