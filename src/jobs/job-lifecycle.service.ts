import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { Repository } from 'typeorm';
import type { OwnerScope } from '../auth/principal.js';
import type { StoredArtifact } from '../cache/artifact-store.service.js';
import { columnsOf, rowToEntity } from '../database/row-to-entity.js';
import { Sql } from '../database/sql.service.js';
import { KilnMetrics } from '../metrics/kiln-metrics.js';
import { JobEvents, jobEvent } from './job-events.service.js';
import { FINAL_STATUSES, Job, type JobStep } from './job.entity.js';

/** The owner a statement must match; null lets an admin act on any job. */
const ownerFilter = (scope: OwnerScope) => (scope.all ? null : scope.ownerId);

/**
 * The worker's side of a job's life. Every change is a conditional UPDATE that checks the
 * current status and, once running, the attempt number: a cancelled job is never started,
 * and a late or duplicate worker can never overwrite a newer attempt or a finished job.
 */
@Injectable()
export class JobLifecycle {
  private readonly columns: string;

  constructor(
    @InjectRepository(Job) private readonly jobs: Repository<Job>,
    private readonly sql: Sql,
    private readonly events: JobEvents,
    private readonly metrics: KilnMetrics,
  ) {
    this.columns = columnsOf(jobs);
  }

  /** pending (or processing, after a worker died) → processing, as a new attempt. */
  async claim(id: string): Promise<Job | null> {
    const job = await this.transition(
      `UPDATE jobs SET status = 'processing', current_step = 'preparing', progress = 0,
         attempts = attempts + 1, started_at = coalesce(started_at, now()), updated_at = now()
       WHERE id = $1 AND status IN ('pending', 'processing')`,
      [id],
    );
    if (job?.attempts === 1 && job.startedAt) {
      this.metrics.jobWait.observe(
        { kind: job.kind },
        (job.startedAt.getTime() - job.createdAt.getTime()) / 1000,
      );
    }
    return job;
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
         artifact_sha256 = $3, error = NULL, finished_at = now(), updated_at = now()
       WHERE id = $1 AND attempts = $2 AND status = 'processing'`,
      [job.id, job.attempts, artifact.sha256],
    );
  }

  /** A failed attempt that will run again after its backoff. */
  retryLater(job: Job, error: string): Promise<Job | null> {
    return this.transition(
      `UPDATE jobs SET status = 'pending', current_step = 'queued', progress = 0, error = $3,
         updated_at = now()
       WHERE id = $1 AND attempts = $2 AND status = 'processing'`,
      [job.id, job.attempts, error],
    );
  }

  /** An attempt stopped by shutdown: back to the queue, its attempt not counted. */
  handBack(job: Job): Promise<Job | null> {
    return this.transition(
      `UPDATE jobs SET status = 'pending', current_step = 'queued', progress = 0,
         attempts = attempts - 1, updated_at = now()
       WHERE id = $1 AND attempts = $2 AND status = 'processing'`,
      [job.id, job.attempts],
    );
  }

  /** The last failure. Without an attempt (a stall detected by BullMQ) any unfinished job fails. */
  fail(id: string, error: string, attempt?: number): Promise<Job | null> {
    return this.transition(
      `UPDATE jobs SET status = 'failed', current_step = 'failed', error = $2,
         finished_at = now(), updated_at = now()
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
      `UPDATE jobs SET status = 'cancelled', current_step = 'cancelled', finished_at = now(),
         updated_at = now()
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

  /** Every final status is reached through here: count it once, where it happens. */
  private count(job: Job): void {
    if (!FINAL_STATUSES.includes(job.status)) return;
    this.metrics.jobsFinished.inc({ kind: job.kind, status: job.status });
    if (job.status === 'completed' && job.startedAt && job.finishedAt) {
      this.metrics.jobDuration.observe(
        { kind: job.kind },
        (job.finishedAt.getTime() - job.startedAt.getTime()) / 1000,
      );
    }
  }
}
