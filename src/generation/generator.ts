import type { LoggerService } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import type { z } from 'zod';
import type { JobStep } from './job-steps.js';

/** Which worker pool runs a kind: GPU and CPU work scale and fail apart. */
export type Resources = 'cpu' | 'gpu';

export type GenerationStep = Extract<
  JobStep,
  'loading_model' | 'preparing' | 'generating' | 'saving'
>;

export interface GenerationContext {
  readonly jobId: string;
  /** This attempt's number, from 1; one handed back at shutdown runs again under its number. */
  readonly attempt: number;
  /** When the job was submitted: the same on every attempt, unlike the clock. */
  readonly submittedAt: Date;
  /**
   * For GPU kinds on a worker that found GPUs: the UUID (as nvidia-smi prints it) of the GPU this
   * job should use, e.g. as `CUDA_VISIBLE_DEVICES`.
   */
  readonly gpu?: string;
  /** Fires on cancel, timeout or shutdown; `signal.reason` says which. */
  readonly signal: AbortSignal;
  /** Reports the current step and, optionally, the fraction of the whole job done (0..1). */
  readonly progress: (step: GenerationStep, fraction?: number) => void;
  /** A directory of this attempt's own, created on first use and removed afterwards. */
  readonly tempDir: () => Promise<string>;
  readonly logger: LoggerService;
}

/** A generator's result: bytes in memory, or a file it wrote (inside its temp dir). */
export type GeneratedOutput = { contentType: string; extension: string } & (
  { data: Buffer } | { path: string }
);

/** Whether this process can run a kind now; `reason` says what is missing when it cannot. */
export type Availability = { available: true } | { available: false; reason: string };

export interface Generator<Input extends z.ZodType = z.ZodType> {
  /** The `kind` clients submit; lowercase words joined by dashes. */
  readonly kind: string;
  /** Part of every input hash: bump it when the same input would give other bytes. */
  readonly version: string;
  readonly description: string;
  readonly resources: Resources;
  readonly input: Input;
  /** An input shown in the API docs. */
  readonly example: z.input<Input>;
  generate(input: z.output<Input>, context: GenerationContext): Promise<GeneratedOutput>;
  /**
   * What the kind needs outside Kiln (a binary, a model server), checked at start and every
   * GENERATOR_CHECK_INTERVAL_MS; give up when `signal` fires. Absent: nothing is needed.
   */
  checkAvailability?(signal: AbortSignal): Promise<Availability>;
}

/** A provider that yields several generators, one per configured entry (commands, model servers). */
export interface GeneratorFamily {
  generators(): Generator[];
}

/**
 * Marks a provider as a generator, or as a GeneratorFamily; the registry discovers every one at
 * start.
 */
export const KilnGenerator = DiscoveryService.createDecorator();
