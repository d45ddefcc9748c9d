import { Injectable } from '@nestjs/common';
import { z } from 'zod';
import {
  type GeneratedOutput,
  type Generator,
  KilnGenerator,
} from '../src/generation/generator.js';

const noopInput = z.strictObject({ tag: z.string().max(100).default('') });

/** Does no work, so a benchmark measures Kiln's own cost per job. Registered only by the benchmark. */
@Injectable()
@KilnGenerator()
export class NoopGenerator implements Generator<typeof noopInput> {
  readonly kind = 'noop';
  readonly version = '1';
  readonly description = 'Does nothing (benchmarks only).';
  readonly resources = 'cpu';
  readonly input = noopInput;
  readonly example = { tag: 'x' };

  generate(): Promise<GeneratedOutput> {
    return Promise.resolve({
      data: Buffer.from('noop'),
      contentType: 'text/plain',
      extension: 'txt',
    });
  }
}
