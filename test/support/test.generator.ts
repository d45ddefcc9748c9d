import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable } from '@nestjs/common';
import { z } from 'zod';
import {
  type GeneratedOutput,
  type GenerationContext,
  type Generator,
  KilnGenerator,
} from '../../src/generation/generator.js';

const testInput = z.strictObject({
  /** Fail this many attempts before succeeding. */
  failTimes: z.int().min(0).default(0),
  /** Work this long, reporting progress, before finishing. */
  holdMs: z.int().min(0).default(0),
  /** Keep working when aborted, as a badly written generator would. */
  ignoreAbort: z.boolean().default(false),
  /** Makes otherwise equal inputs distinct. */
  tag: z.string().default(''),
});

export interface TestCall {
  attempts: number[];
  sawAbort?: string;
}

/** A generator whose behaviour each test scripts through its input; it records what happened. */
@Injectable()
@KilnGenerator()
export class TestGenerator implements Generator<typeof testInput> {
  static readonly calls = new Map<string, TestCall>();

  readonly kind = 'test';
  readonly version = '1';
  readonly description = 'Scripted behaviour for tests.';
  readonly resources = 'cpu';
  readonly input = testInput;
  readonly example = { holdMs: 10 };

  async generate(
    input: z.output<typeof testInput>,
    { jobId, signal, progress }: GenerationContext,
  ): Promise<GeneratedOutput> {
    const call = TestGenerator.calls.get(jobId) ?? { attempts: [] };
    TestGenerator.calls.set(jobId, call);
    call.attempts.push(Date.now());
    signal.addEventListener('abort', () => {
      call.sawAbort = (signal.reason as Error).message;
    });
    const steps = Math.max(1, Math.ceil(input.holdMs / 20));
    for (let step = 1; step <= steps && input.holdMs > 0; step++) {
      if (!input.ignoreAbort) signal.throwIfAborted();
      await sleep(input.holdMs / steps);
      progress('generating', step / steps);
    }
    if (call.attempts.length <= input.failTimes) {
      throw new Error(`Scripted failure ${call.attempts.length} of ${input.failTimes}`);
    }
    return {
      data: Buffer.from(`test output ${input.tag}`),
      contentType: 'text/plain',
      extension: 'txt',
    };
  }
}
