import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Injectable, Logger } from '@nestjs/common';
import { DelayedError, UnrecoverableError } from 'bullmq';
import { ArtifactStore } from '../artifacts/artifact-store.service.js';
import { isUnavailable } from '../common/unavailable.js';
import { KilnConfig } from '../config/config.js';
import type { GenerationContext } from '../generation/generator.js';
import { GeneratorRegistry } from '../generation/generator.registry.js';
import { JobEvents } from '../jobs/job-events.service.js';
import { JobLifecycle } from '../jobs/job-lifecycle.service.js';
import type { QueuedJob } from '../jobs/job-queue.service.js';
import type { Job } from '../jobs/job.entity.js';
import { AbortReason, untilAborted } from './abort-reason.js';
import { DatabaseOutage } from './database-outage.js';
import { GpuSlots } from './gpu-slots.js';
import { LeaseRenewal } from './lease-renewal.js';
import { ProgressReporter } from './progress-reporter.js';
import { NonRetryableError } from '../common/non-retryable-error.js';

const errorMessage = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** How long a job waits in the queue when PostgreSQL could not be reached to start it. */
const OUTAGE_POSTPONE_MS = 2_000;
/** The least a job waits for another attempt's lease; the lease's own end decides beyond it. */
const LEASE_POSTPONE_MS = 250;

/** A failed attempt that will run again: BullMQ schedules it with its backoff. */
class AttemptFailed extends Error {
  override name = 'AttemptFailed';
}

const cancelled = () => new AbortReason('cancelled', 'Cancelled.');

/**
 * An outage met by Kiln's own statements. A generator's errors never reach the runner's caller as
 * they are (they are settled into the errors BullMQ acts on), so a model server that is down
 * still costs its job an attempt.
 */
const isOutage = (error: unknown): error is Error =>
  !(
    error instanceof AttemptFailed ||
    error instanceof UnrecoverableError ||
    error instanceof DelayedError
  ) && isUnavailable(error);

/** Runs one BullMQ job: claim the row, generate, store the artifact, settle the row. */
@Injectable()
export class JobRunner {
  private readonly logger = new Logger('JobRunner');
  /** The jobs this process runs now, so a cancel broadcast or shutdown can abort them. */
  private readonly running = new Map<string, AbortController>();
  /** Fires at shutdown: writes that wait out an outage give up, so the worker can close. */
  private readonly stopping = new AbortController();

  constructor(
    private readonly lifecycle: JobLifecycle,
    private readonly registry: GeneratorRegistry,
    private readonly artifacts: ArtifactStore,
    private readonly config: KilnConfig,
    private readonly gpus: GpuSlots,
    private readonly outage: DatabaseOutage,
    events: JobEvents,
  ) {
    events.onCancelRequest((id) => this.abort(id, cancelled()));
  }

  get runningCount(): number {
    return this.running.size;
  }

  /** Aborts every running attempt; they hand their jobs back to the queue. */
  shutDown(): void {
    this.stopping.abort();
    for (const id of this.running.keys())
      this.abort(id, new AbortReason('shutdown', 'Worker shutting down.'));
  }

  async run(queued: QueuedJob, token: string | undefined): Promise<void> {
    const id = queued.id;
    if (!id) throw new UnrecoverableError('A queued job has no id');
    const controller = new AbortController();
    // Registered before the claim, so a cancel broadcast sent right after it is not missed.
    this.running.set(id, controller);
    try {
      const claimedAt = Date.now();
      const claim = await this.lifecycle.claim(id);
      switch (claim.outcome) {
        case 'finished':
        case 'exhausted':
          return;
        case 'leased':
          // Another attempt runs it now (or its worker died and the lease is lapsing).
          return await this.postpone(queued, token, Math.max(claim.retryInMs, LEASE_POSTPONE_MS));
        case 'claimed':
          if (claim.job.cancelRequestedAt) controller.abort(cancelled());
          return await this.attempt(claim.job, claimedAt, queued, token, controller);
      }
    } catch (error) {
      if (!isOutage(error)) throw error;
      // Not the job's fault (PostgreSQL unreachable at its claim, say): it waits, and no attempt
      // is counted.
      this.outage.report(error);
      return await this.postpone(queued, token, OUTAGE_POSTPONE_MS);
    } finally {
      this.running.delete(id);
    }
  }

  private async attempt(
    job: Job,
    claimedAt: number,
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
      () => controller.abort(cancelled()),
      logger,
    );
    const lease = new LeaseRenewal(
      job,
      claimedAt,
      this.lifecycle,
      this.config.worker.lockMs,
      {
        onLost: () => controller.abort(new AbortReason('superseded', 'The job moved on.')),
        onCancelRequested: () => controller.abort(cancelled()),
      },
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
      // A late attempt stores nothing: the job has moved on without it.
      if (!(await lease.held())) controller.signal.throwIfAborted();
      const artifact = await this.durably(() => this.artifacts.store(output));
      await progress.close();
      const completed = await this.durably(() => this.lifecycle.complete(job, artifact));
      if (!completed) logger.warn('Finished, but the job had moved on (cancelled or taken over)');
    } catch (error) {
      await progress.close();
      await this.settleFailure(job, queued, token, controller.signal, error, logger);
    } finally {
      lease.stop();
      clearTimeout(timer);
      if (gpu) this.gpus.release(gpu);
      if (tempDirReady) await rm(tempDir, { recursive: true, force: true });
    }
  }

  /** Cancelled, handed back at shutdown, superseded, retried later, or failed for good. */
  private async settleFailure(
    job: Job,
    queued: QueuedJob,
    token: string | undefined,
    signal: AbortSignal,
    error: unknown,
    logger: Logger,
  ): Promise<void> {
    const reason: unknown = signal.aborted ? signal.reason : undefined;
    if (reason instanceof AbortReason && reason.kind === 'superseded') {
      logger.warn(`Attempt ${job.attempts} stopped: its lease lapsed and the job moved on`);
      return;
    }
    if (reason instanceof AbortReason && reason.kind === 'cancelled') {
      await this.durably(() => this.lifecycle.cancelled(job.id));
      return;
    }
    if (reason instanceof AbortReason && reason.kind === 'shutdown') {
      // With PostgreSQL down the row keeps its lease, which lapses: the next claim takes it over.
      await this.lifecycle.handBack(job).catch((failure: unknown) => {
        if (!isUnavailable(failure)) throw failure;
      });
      return await this.postpone(queued, token, 0);
    }
    const message = reason instanceof AbortReason ? reason.message : errorMessage(error);
    // Attempts are counted in PostgreSQL, where a dead worker's attempt counts too.
    if (job.attempts >= job.maxAttempts || error instanceof NonRetryableError) {
      await this.durably(() => this.lifecycle.fail(job.id, message, job.attempts));
      throw new UnrecoverableError(message);
    }
    logger.warn({
      msg: 'Attempt failed, will retry',
      jobId: job.id,
      kind: job.kind,
      attempt: job.attempts,
      maxAttempts: job.maxAttempts,
      error: message,
    });
    await this.durably(() => this.lifecycle.retryLater(job, message));
    // BullMQ schedules the retry with its backoff.
    throw new AttemptFailed(message);
  }

  /** A write that waits out a PostgreSQL outage, until shutdown. */
  private durably<T>(write: () => Promise<T>): Promise<T> {
    return this.outage.retry(write, this.stopping.signal);
  }

  /** Back to the queue for `delayMs`, without counting an attempt. */
  private async postpone(
    queued: QueuedJob,
    token: string | undefined,
    delayMs: number,
  ): Promise<never> {
    await queued.moveToDelayed(Date.now() + delayMs, token);
    throw new DelayedError();
  }

  private abort(id: string, reason: AbortReason): void {
    this.running.get(id)?.abort(reason);
  }
}
