import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Injectable, Logger } from '@nestjs/common';
import { DelayedError, UnrecoverableError } from 'bullmq';
import { ArtifactStore } from '../cache/artifact-store.service.js';
import { KilnConfig } from '../config/config.js';
import { type GenerationContext, NonRetryableError } from '../generation/generator.js';
import { GeneratorRegistry } from '../generation/generator.registry.js';
import { JobEvents } from '../jobs/job-events.service.js';
import { JobLifecycle } from '../jobs/job-lifecycle.service.js';
import type { QueuedJob } from '../jobs/job-queue.service.js';
import type { Job } from '../jobs/job.entity.js';
import { AbortReason, untilAborted } from './abort-reason.js';
import { GpuSlots } from './gpu-slots.js';
import { ProgressReporter } from './progress-reporter.js';

const errorMessage = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** Runs one BullMQ job: claim the row, generate, store the artifact, settle the row. */
@Injectable()
export class JobRunner {
  private readonly logger = new Logger('JobRunner');
  /** The jobs this process runs now, so a cancel broadcast or shutdown can abort them. */
  private readonly running = new Map<string, AbortController>();

  constructor(
    private readonly lifecycle: JobLifecycle,
    private readonly registry: GeneratorRegistry,
    private readonly artifacts: ArtifactStore,
    private readonly config: KilnConfig,
    private readonly gpus: GpuSlots,
    events: JobEvents,
  ) {
    events.onCancelRequest((id) => this.abort(id, new AbortReason('cancelled', 'Cancelled.')));
  }

  get runningCount(): number {
    return this.running.size;
  }

  abortAll(reason: AbortReason): void {
    for (const id of this.running.keys()) this.abort(id, reason);
  }

  async run(queued: QueuedJob, token: string | undefined): Promise<void> {
    const id = queued.id;
    if (!id) throw new UnrecoverableError('A queued job has no id');
    const controller = new AbortController();
    // Registered before the claim, so a cancel broadcast sent right after it is not missed.
    this.running.set(id, controller);
    try {
      const job = await this.lifecycle.claim(id);
      if (!job) return; // cancelled or finished meanwhile: nothing to run
      if (job.cancelRequestedAt) controller.abort(new AbortReason('cancelled', 'Cancelled.'));
      await this.attempt(job, queued, token, controller);
    } finally {
      this.running.delete(id);
    }
  }

  private async attempt(
    job: Job,
    queued: QueuedJob,
    token: string | undefined,
    controller: AbortController,
  ): Promise<void> {
    const logger = new Logger(`${job.kind} ${job.id}`);
    const timeoutMs = this.config.worker.timeoutMsByKind[job.kind] ?? this.config.worker.timeoutMs;
    const timer = setTimeout(
      () => controller.abort(new AbortReason('timeout', `Timed out after ${timeoutMs} ms.`)),
      timeoutMs,
    );
    const progress = new ProgressReporter(
      job,
      this.lifecycle,
      this.config.worker.progressIntervalMs,
      () => controller.abort(new AbortReason('cancelled', 'Cancelled.')),
      logger,
    );
    const tempDir = join(this.config.storage.tempDir, `${job.id}-${job.attempts}`);
    let tempDirReady: Promise<string> | undefined;
    let gpu: string | undefined;
    try {
      const generator = this.registry.require(job.kind);
      const input = generator.input.safeParse(job.input);
      if (!input.success)
        throw new NonRetryableError(`Stored input no longer valid: ${input.error.message}`);
      if (generator.resources === 'gpu') gpu = this.gpus.acquire();
      const context: GenerationContext = {
        jobId: job.id,
        attempt: job.attempts,
        submittedAt: job.createdAt,
        gpu,
        signal: controller.signal,
        progress: (step, fraction) => progress.report(step, fraction),
        tempDir: () => (tempDirReady ??= mkdir(tempDir, { recursive: true }).then(() => tempDir)),
        logger,
      };
      const output = await untilAborted(
        generator.generate(input.data, context),
        controller.signal,
        this.config.worker.abortSettleMs,
      );
      progress.report('saving');
      const artifact = await this.artifacts.store(output);
      await progress.close();
      const completed = await this.lifecycle.complete(job, artifact);
      if (!completed) logger.warn('Finished, but the job had moved on (cancelled or taken over)');
    } catch (error) {
      await progress.close();
      await this.settleFailure(job, queued, token, controller.signal, error, logger);
    } finally {
      clearTimeout(timer);
      if (gpu) this.gpus.release(gpu);
      if (tempDirReady) await rm(tempDir, { recursive: true, force: true });
    }
  }

  /** Cancelled, handed back at shutdown, retried later, or failed for good. */
  private async settleFailure(
    job: Job,
    queued: QueuedJob,
    token: string | undefined,
    signal: AbortSignal,
    error: unknown,
    logger: Logger,
  ): Promise<void> {
    const reason: unknown = signal.aborted ? signal.reason : undefined;
    if (reason instanceof AbortReason && reason.kind === 'cancelled') {
      await this.lifecycle.cancelled(job.id);
      return;
    }
    if (reason instanceof AbortReason && reason.kind === 'shutdown') {
      await this.lifecycle.handBack(job);
      await queued.moveToDelayed(Date.now(), token);
      throw new DelayedError();
    }
    const message = reason instanceof AbortReason ? reason.message : errorMessage(error);
    const lastAttempt = queued.attemptsMade + 1 >= (queued.opts.attempts ?? 1);
    if (lastAttempt || error instanceof NonRetryableError) {
      logger.warn(`Failed for good: ${message}`);
      await this.lifecycle.fail(job.id, message, job.attempts);
      throw new UnrecoverableError(message);
    }
    logger.warn(`Attempt ${job.attempts} failed, will retry: ${message}`);
    await this.lifecycle.retryLater(job, message);
    // Rethrown so BullMQ schedules the retry with its backoff.
    throw error instanceof Error ? error : new Error(message);
  }

  private abort(id: string, reason: AbortReason): void {
    this.running.get(id)?.abort(reason);
  }
}
