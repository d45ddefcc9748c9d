import { Injectable, Logger } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { Repository } from 'typeorm';
import type { OwnerScope } from '../auth/principal.js';
import type { StoredArtifact } from '../artifacts/artifact-store.service.js';
import { columnsOf, rowToEntity } from '../database/row-to-entity.js';
import { KilnConfig } from '../config/config.js';
import { Sql } from '../database/sql.service.js';
import { KilnMetrics } from '../metrics/kiln-metrics.js';
import { JobEvents, jobEvent } from './job-events.service.js';
import type { JobStep } from '../generation/job-steps.js';
import { FINAL_STATUSES, Job, type JobStatus } from './job.entity.js';

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

/** The owner a statement must match; null lets an admin act on any job. */
const ownerFilter = (scope: OwnerScope) => (scope.all ? null : scope.ownerId);

/**
 * The worker's side of a job's life. Every change is a conditional UPDATE that checks the
 * current status and, once running, the attempt number: a cancelled job is never started,
 * and a late or duplicate worker can never overwrite a newer attempt or a finished job.
 */
@Injectable()
export class JobLifecycle {
  private readonly logger = new Logger('Jobs');
  private readonly columns: string;
  /** How long an attempt holds its job without renewing the lease: the worker lock's duration. */
  private readonly leaseMs: number;

  constructor(
    @InjectRepository(Job) private readonly jobs: Repository<Job>,
    private readonly sql: Sql,
    private readonly events: JobEvents,
    private readonly metrics: KilnMetrics,
    config: KilnConfig,
  ) {
    this.columns = columnsOf(jobs);
    this.leaseMs = config.worker.lockMs;
  }

  /**
   * pending (or processing, once the lease of an attempt whose worker died has lapsed) →
   * processing, as a new attempt holding a fresh lease. A dead worker's attempt counts: a job that
   * kills its worker every time still fails once its attempts are used up.
   */
  async claim(id: string): Promise<Claim> {
    const job = await this.transition(
      `UPDATE jobs SET status = 'processing', current_step = 'preparing', progress = 0,
         attempts = attempts + 1, lease_expires_at = now() + $2::int * interval '1 millisecond',
         started_at = coalesce(started_at, now()), updated_at = now()
       WHERE id = $1 AND (status = 'pending' OR (status = 'processing'
         AND attempts < max_attempts AND (lease_expires_at IS NULL OR lease_expires_at < now())))`,
      [id, this.leaseMs],
    );
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
    const [row] = await this.sql.query<{
      status: JobStatus;
      attempts: number;
      max_attempts: number;
      lease_ms: number | null;
    }>(
      `SELECT status, attempts, max_attempts,
         (extract(epoch FROM lease_expires_at - now()) * 1000)::float8 AS lease_ms
       FROM jobs WHERE id = $1`,
      [id],
    );
    if (!row || FINAL_STATUSES.includes(row.status)) return { outcome: 'finished' };
    const lapsed = (row.lease_ms ?? 0) <= 0;
    if (row.status === 'processing' && lapsed && row.attempts >= row.max_attempts) {
      const failed = await this.fail(
        id,
        `The worker running its last attempt (${row.attempts} of ${row.max_attempts}) stopped.`,
        row.attempts,
      );
      return failed ? { outcome: 'exhausted', job: failed } : { outcome: 'leased', retryInMs: 0 };
    }
    // Measured by the database's clock, so a worker's clock skew cannot cut a lease short.
    return { outcome: 'leased', retryInMs: Math.max(0, Math.ceil(row.lease_ms ?? 0)) };
  }

  /**
   * Extends the lease of a running attempt. `held` is false once the job has moved on (finished,
   * or taken over after the lease lapsed): the attempt must stop and write nothing more.
   */
  async renewLease(job: Job): Promise<{ held: boolean; cancelRequested: boolean }> {
    const [row] = await this.sql.query<{ cancel_requested_at: Date | null }>(
      `UPDATE jobs SET lease_expires_at = now() + $3::int * interval '1 millisecond'
       WHERE id = $1 AND attempts = $2 AND status = 'processing'
       RETURNING cancel_requested_at`,
      [job.id, job.attempts, this.leaseMs],
    );
    return { held: row !== undefined, cancelRequested: row?.cancel_requested_at != null };
  }

  /** Returns whether a cancel has been requested: a second path for a lost broadcast. */
  async progress(job: Job, step: JobStep, progress: number): Promise<{ cancelRequested: boolean }> {
    const updated = await this.transition(
      `UPDATE jobs SET current_step = $3, progress = $4, updated_at = now()
       WHERE id = $1 AND attempts = $2 AND status = 'processing'`,
      [job.id, job.attempts, step, progress],
    );
    return { cancelRequested: updated?.cancelRequestedAt != null };
  }

  /** Completes the job with the artifact the store has already recorded. */
  complete(job: Job, artifact: StoredArtifact): Promise<Job | null> {
    return this.transition(
      `UPDATE jobs SET status = 'completed', current_step = 'completed', progress = 1,
         artifact_sha256 = $3, error = NULL, lease_expires_at = NULL, finished_at = now(),
         updated_at = now()
       WHERE id = $1 AND attempts = $2 AND status = 'processing'`,
      [job.id, job.attempts, artifact.sha256],
    );
  }

  /** A failed attempt that will run again after its backoff. */
  retryLater(job: Job, error: string): Promise<Job | null> {
    return this.transition(
      `UPDATE jobs SET status = 'pending', current_step = 'queued', progress = 0, error = $3,
         lease_expires_at = NULL, updated_at = now()
       WHERE id = $1 AND attempts = $2 AND status = 'processing'`,
      [job.id, job.attempts, error],
    );
  }

  /** An attempt stopped by shutdown: back to the queue, its attempt not counted. */
  handBack(job: Job): Promise<Job | null> {
    return this.transition(
      `UPDATE jobs SET status = 'pending', current_step = 'queued', progress = 0,
         attempts = attempts - 1, lease_expires_at = NULL, updated_at = now()
       WHERE id = $1 AND attempts = $2 AND status = 'processing'`,
      [job.id, job.attempts],
    );
  }

  /** The last failure. Without an attempt (the queue gave up on it) any unfinished job fails. */
  fail(id: string, error: string, attempt?: number): Promise<Job | null> {
    return this.transition(
      `UPDATE jobs SET status = 'failed', current_step = 'failed', error = $2,
         lease_expires_at = NULL, finished_at = now(), updated_at = now()
       WHERE id = $1 AND status IN ('pending', 'processing') AND ($3::int IS NULL OR attempts = $3)
      `,
      [id, error, attempt ?? null],
    );
  }

  /** The API's cancel of a job no worker runs: final at once. */
  cancelIfPending(id: string, scope: OwnerScope): Promise<Job | null> {
    return this.transition(
      `UPDATE jobs SET status = 'cancelled', current_step = 'cancelled', finished_at = now(),
         updated_at = now()
       WHERE id = $1 AND ($2::text IS NULL OR owner_id = $2) AND status = 'pending'`,
      [id, ownerFilter(scope)],
    );
  }

  /** The API's cancel of a running job: stored, so a worker that missed the broadcast still sees it. */
  requestCancel(id: string, scope: OwnerScope): Promise<Job | null> {
    return this.transition(
      `UPDATE jobs SET cancel_requested_at = coalesce(cancel_requested_at, now()), updated_at = now()
       WHERE id = $1 AND ($2::text IS NULL OR owner_id = $2) AND status = 'processing'`,
      [id, ownerFilter(scope)],
    );
  }

  /** The worker's side of a cancel, once the generator has stopped. */
  cancelled(id: string): Promise<Job | null> {
    return this.transition(
      `UPDATE jobs SET status = 'cancelled', current_step = 'cancelled', lease_expires_at = NULL,
         finished_at = now(), updated_at = now()
       WHERE id = $1 AND status IN ('pending', 'processing')`,
      [id],
    );
  }

  /** Runs one conditional UPDATE; publishes and returns the new row, or null if nothing matched. */
  private async transition(update: string, parameters: unknown[]): Promise<Job | null> {
    const [row] = await this.sql.query(`${update} RETURNING ${this.columns}`, parameters);
    if (!row) return null;
    const job = rowToEntity(this.jobs, row);
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
