import { Injectable, Logger } from '@nestjs/common';
import type { OwnerScope } from '../auth/principal.js';
import type { StoredArtifact } from '../artifacts/artifact.entity.js';
import { KilnConfig } from '../config/config.js';
import { KilnMetrics } from '../metrics/kiln-metrics.js';
import { JobEvents, jobEvent } from './job-events.service.js';
import type { JobStep } from '../generation/job-steps.js';
import { FINAL_STATUSES, type Job } from './job.entity.js';
import { JobRepository } from './job.repository.js';

/** What a worker's claim of a queued job found. */
export type Claim =
  /** A new attempt, holding the job's lease. */
  | { outcome: 'claimed'; job: Job }
  /** Final (or gone): nothing to run. */
  | { outcome: 'finished' }
  /** Another attempt holds the lease: try again once it may have lapsed. */
  | { outcome: 'leased'; retryInMs: number }
  /** The attempt holding it died, and it was the last one: the job has failed now. */
  | { outcome: 'exhausted'; job: Job };

/**
 * A job's changes of state, as the worker and a cancel make them: each is one of the
 * repository's conditional updates (a cancelled job is never started, a late attempt overwrites
 * nothing), published to whoever streams the job and counted once it is final.
 */
@Injectable()
export class JobLifecycle {
  private readonly logger = new Logger('Jobs');
  /** How long an attempt holds its job without renewing the lease: the worker lock's duration. */
  private readonly leaseMs: number;

  constructor(
    private readonly jobs: JobRepository,
    private readonly events: JobEvents,
    private readonly metrics: KilnMetrics,
    config: KilnConfig,
  ) {
    this.leaseMs = config.worker.lockMs;
  }

  /**
   * pending (or processing, once the lease of an attempt whose worker died has lapsed) →
   * processing, as a new attempt holding a fresh lease. A dead worker's attempt counts: a job that
   * kills its worker every time still fails once its attempts are used up.
   */
  async claim(id: string): Promise<Claim> {
    const job = await this.published(this.jobs.claim(id, this.leaseMs));
    if (job) {
      if (job.attempts === 1 && job.startedAt) {
        this.metrics.jobWait.observe(
          { kind: job.kind },
          (job.startedAt.getTime() - job.createdAt.getTime()) / 1000,
        );
      }
      return { outcome: 'claimed', job };
    }
    return this.unclaimable(id);
  }

  /** Why a claim matched nothing, and what follows from it. */
  private async unclaimable(id: string): Promise<Claim> {
    const state = await this.jobs.claimState(id);
    if (!state || FINAL_STATUSES.includes(state.status)) return { outcome: 'finished' };
    const lapsed = (state.leaseMs ?? 0) <= 0;
    if (state.status === 'processing' && lapsed && state.attempts >= state.maxAttempts) {
      const failed = await this.fail(
        id,
        `The worker running its last attempt (${state.attempts} of ${state.maxAttempts}) stopped.`,
        state.attempts,
      );
      return failed ? { outcome: 'exhausted', job: failed } : { outcome: 'leased', retryInMs: 0 };
    }
    // Measured by the database's clock, so a worker's clock skew cannot cut a lease short.
    return { outcome: 'leased', retryInMs: Math.max(0, Math.ceil(state.leaseMs ?? 0)) };
  }

  /**
   * Extends the lease of a running attempt. `held` is false once the job has moved on (finished,
   * or taken over after the lease lapsed): the attempt must stop and write nothing more.
   */
  async renewLease(job: Job): Promise<{ held: boolean; cancelRequested: boolean }> {
    const renewed = await this.jobs.renewLease(job, this.leaseMs);
    return { held: renewed !== null, cancelRequested: renewed?.cancelRequestedAt != null };
  }

  /** Returns whether a cancel has been requested: a second path for a lost broadcast. */
  async progress(job: Job, step: JobStep, progress: number): Promise<{ cancelRequested: boolean }> {
    const updated = await this.published(this.jobs.progress(job, step, progress));
    return { cancelRequested: updated?.cancelRequestedAt != null };
  }

  /** Completes the job with the artifact the store has already recorded. */
  complete(job: Job, artifact: StoredArtifact): Promise<Job | null> {
    return this.published(this.jobs.complete(job, artifact.sha256));
  }

  /** A failed attempt that will run again after its backoff. */
  retryLater(job: Job, error: string): Promise<Job | null> {
    return this.published(this.jobs.requeue(job, { error, countAttempt: true }));
  }

  /** An attempt stopped by shutdown: back to the queue, its attempt not counted. */
  handBack(job: Job): Promise<Job | null> {
    return this.published(this.jobs.requeue(job, { countAttempt: false }));
  }

  /** The last failure. Without an attempt (the queue gave up on it) any unfinished job fails. */
  fail(id: string, error: string, attempt?: number): Promise<Job | null> {
    return this.published(this.jobs.fail(id, error, attempt));
  }

  /** The API's cancel of a job no worker runs: final at once. */
  cancelIfPending(id: string, scope: OwnerScope): Promise<Job | null> {
    return this.published(this.jobs.cancelIfPending(id, scope));
  }

  /** The API's cancel of a running job: stored, so a worker that missed the broadcast still sees it. */
  requestCancel(id: string, scope: OwnerScope): Promise<Job | null> {
    return this.published(this.jobs.requestCancel(id, scope));
  }

  /** The worker's side of a cancel, once the generator has stopped. */
  cancelled(id: string): Promise<Job | null> {
    return this.published(this.jobs.cancelled(id));
  }

  /** Publishes and counts a change that happened; null if its condition did not hold. */
  private async published(change: Promise<Job | null>): Promise<Job | null> {
    const job = await change;
    if (!job) return null;
    this.events.publishUpdate(jobEvent(job));
    this.count(job);
    return job;
  }

  /** Every final status is reached through here: count and log it once, where it happens. */
  private count(job: Job): void {
    if (!FINAL_STATUSES.includes(job.status)) return;
    this.metrics.jobsFinished.inc({ kind: job.kind, status: job.status });
    const runMs =
      job.startedAt && job.finishedAt ? job.finishedAt.getTime() - job.startedAt.getTime() : null;
    if (job.status === 'completed' && runMs !== null) {
      this.metrics.jobDuration.observe({ kind: job.kind }, runMs / 1000);
    }
    this.logger.log({
      msg: `Job ${job.status}`,
      jobId: job.id,
      kind: job.kind,
      status: job.status,
      attempts: job.attempts,
      queueMs: job.startedAt ? job.startedAt.getTime() - job.createdAt.getTime() : null,
      runMs,
      error: job.status === 'completed' ? undefined : (job.error ?? undefined),
    });
  }
}
