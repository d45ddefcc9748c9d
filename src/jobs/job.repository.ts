import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { Repository } from 'typeorm';
import type { ColumnMetadata } from 'typeorm/metadata/ColumnMetadata.js';
import type { OwnerScope } from '../auth/principal.js';
import { columnsOf, rowToEntity } from '../database/row-to-entity.js';
import { Sql } from '../database/sql.service.js';
import type { JobStep } from '../generation/job-steps.js';
import type { Enqueueable } from './job-queue.service.js';
import { FINAL_STATUSES, Job, type JobStatus } from './job.entity.js';

/** A status or step as a literal in a statement's fixed text, checked against the entity's types. */
const literal = (value: JobStatus | JobStep) => `'${value}'`;
const FINAL = FINAL_STATUSES.map(literal).join(', ');
const UNFINISHED = `${literal('pending')}, ${literal('processing')}`;

/** The database fills these in; a submission writes every other column of its job. */
const ASSIGNED_BY_DATABASE = ['created_at', 'updated_at'];

/** The owner a statement must match; null lets an admin act on any job. */
const ownerOf = (scope: OwnerScope) => (scope.all ? null : scope.ownerId);

/** What a claim that matched nothing finds in the row. */
export interface ClaimState {
  status: JobStatus;
  attempts: number;
  maxAttempts: number;
  /** Left of the lease, by the database's clock; null or negative once it has lapsed. */
  leaseMs: number | null;
}

export interface StatusTotals {
  pending: number;
  processing: number;
  completed: number;
  failed: number;
  cancelled: number;
  oldestPendingAgeSeconds: number | null;
  /** Mean run time of jobs completed in the last 24 hours. */
  meanProcessingSeconds: number | null;
}

export type Backlog = Pick<StatusTotals, 'pending' | 'processing' | 'oldestPendingAgeSeconds'>;

/** One kind's jobs created since a time, with the requested percentiles of wait and run. */
export interface KindTotals {
  kind: string;
  submitted: number;
  completed: number;
  failed: number;
  cancelled: number;
  wait: (number | null)[] | null;
  run: (number | null)[] | null;
}

export interface JobFilter {
  status?: JobStatus;
  kind?: string;
  /** Keyset pagination: only jobs older than this one, newest first. */
  before?: { createdAt: Date; id: string };
  limit: number;
}

/**
 * Every statement on `jobs`. A change of state is a conditional UPDATE that checks the current
 * status and, once running, the attempt number, so a late or duplicate worker can never
 * overwrite a newer attempt or a finished job; each answers the new row, or null when its
 * condition did not hold.
 */
@Injectable()
export class JobRepository {
  private readonly columns: string;
  /** The columns a submission writes, from the entity's metadata. */
  private readonly written: ColumnMetadata[];
  /**
   * Two fixed texts, as `Sql` prepares them: one job binds a value per column, a batch an array
   * per column (one-element arrays cost a single submission more to encode).
   */
  private readonly insertOne: string;
  private readonly insertMany: string;

  constructor(
    @InjectRepository(Job) private readonly entities: Repository<Job>,
    private readonly sql: Sql,
  ) {
    this.columns = columnsOf(entities);
    this.written = entities.metadata.columns.filter(
      (column) => !ASSIGNED_BY_DATABASE.includes(column.databaseName),
    );
    const insertInto = (rows: string) =>
      `INSERT INTO jobs (${this.written.map((column) => column.databaseName).join(', ')}) ${rows}
       ON CONFLICT (owner_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
       RETURNING id, ${ASSIGNED_BY_DATABASE.join(', ')}`;
    const casts = (suffix: string) =>
      this.written.map((column, i) => `$${i + 1}::${String(column.type)}${suffix}`).join(', ');
    this.insertOne = insertInto(`VALUES (${casts('')})`);
    this.insertMany = insertInto(`SELECT * FROM unnest(${casts('[]')})`);
  }

  /**
   * One INSERT for one job or a whole batch; a job whose Idempotency-Key was seen before is
   * left out of the answer. It reads back only what the database adds, the timestamps: the rest
   * is what was written, and reading it back costs a submission dearly.
   */
  async insert(jobs: Job[]): Promise<Job[]> {
    const one = jobs.length === 1 ? jobs[0] : undefined;
    const rows = await this.sql.query<{ id: string; created_at: Date; updated_at: Date }>(
      one ? this.insertOne : this.insertMany,
      this.written.map((column): unknown =>
        one ? column.getEntityValue(one) : jobs.map((job): unknown => column.getEntityValue(job)),
      ),
    );
    const written = new Map(rows.map((row) => [row.id, row]));
    return jobs.flatMap((job) => {
      const row = written.get(job.id);
      return row
        ? [Object.assign(job, { createdAt: row.created_at, updatedAt: row.updated_at })]
        : [];
    });
  }

  findOne(id: string, scope: OwnerScope): Promise<Job | null> {
    return this.entities.findOneBy(scope.all ? { id } : { id, ownerId: scope.ownerId });
  }

  findByIdempotencyKey(ownerId: string, idempotencyKey?: string): Promise<Job | null> {
    return this.entities.findOneBy({ ownerId, idempotencyKey });
  }

  /** Newest first, on (created_at, id). */
  find(filter: JobFilter, scope: OwnerScope): Promise<Job[]> {
    const builder = this.entities
      .createQueryBuilder('job')
      .where(scope.all ? 'true' : 'job.ownerId = :ownerId', { ownerId: scope.ownerId })
      .orderBy('job.createdAt', 'DESC')
      .addOrderBy('job.id', 'DESC')
      .take(filter.limit);
    if (filter.status) builder.andWhere('job.status = :status', { status: filter.status });
    if (filter.kind) builder.andWhere('job.kind = :kind', { kind: filter.kind });
    if (filter.before) {
      const { createdAt, id } = filter.before;
      builder.andWhere('(job.createdAt, job.id) < (:createdAt, :id)', { createdAt, id });
    }
    return builder.getMany();
  }

  /**
   * pending (or processing, once the lease of an attempt whose worker died has lapsed) →
   * processing, as a new attempt holding a fresh lease of `leaseMs`.
   */
  claim(id: string, leaseMs: number): Promise<Job | null> {
    return this.change(
      `UPDATE jobs SET status = ${literal('processing')}, current_step = ${literal('preparing')},
         progress = 0, attempts = attempts + 1,
         lease_expires_at = now() + $2::int * interval '1 millisecond',
         started_at = coalesce(started_at, now()), updated_at = now()
       WHERE id = $1 AND (status = ${literal('pending')} OR (status = ${literal('processing')}
         AND attempts < max_attempts AND (lease_expires_at IS NULL OR lease_expires_at < now())))`,
      [id, leaseMs],
    );
  }

  async claimState(id: string): Promise<ClaimState | null> {
    const [row] = await this.sql.query<ClaimState>(
      `SELECT status, attempts, max_attempts AS "maxAttempts",
         (extract(epoch FROM lease_expires_at - now()) * 1000)::float8 AS "leaseMs"
       FROM jobs WHERE id = $1`,
      [id],
    );
    return row ?? null;
  }

  /** Null once the attempt no longer holds the job (finished, or taken over). */
  async renewLease(job: Job, leaseMs: number): Promise<{ cancelRequestedAt: Date | null } | null> {
    const [row] = await this.sql.query<{ cancel_requested_at: Date | null }>(
      `UPDATE jobs SET lease_expires_at = now() + $3::int * interval '1 millisecond'
       WHERE id = $1 AND attempts = $2 AND status = ${literal('processing')}
       RETURNING cancel_requested_at`,
      [job.id, job.attempts, leaseMs],
    );
    return row ? { cancelRequestedAt: row.cancel_requested_at } : null;
  }

  progress(job: Job, step: JobStep, progress: number): Promise<Job | null> {
    return this.change(
      `UPDATE jobs SET current_step = $3, progress = $4, updated_at = now()
       WHERE id = $1 AND attempts = $2 AND status = ${literal('processing')}`,
      [job.id, job.attempts, step, progress],
    );
  }

  complete(job: Job, artifactSha256: string): Promise<Job | null> {
    return this.change(
      `UPDATE jobs SET status = ${literal('completed')}, current_step = ${literal('completed')},
         progress = 1, artifact_sha256 = $3, error = NULL, lease_expires_at = NULL,
         finished_at = now(), updated_at = now()
       WHERE id = $1 AND attempts = $2 AND status = ${literal('processing')}`,
      [job.id, job.attempts, artifactSha256],
    );
  }

  /** Back to pending; `countAttempt: false` also takes the attempt back. */
  requeue(job: Job, { error, countAttempt }: { error?: string; countAttempt: boolean }) {
    return this.change(
      `UPDATE jobs SET status = ${literal('pending')}, current_step = ${literal('queued')},
         progress = 0, error = coalesce($3, error),
         attempts = attempts - CASE WHEN $4::bool THEN 0 ELSE 1 END,
         lease_expires_at = NULL, updated_at = now()
       WHERE id = $1 AND attempts = $2 AND status = ${literal('processing')}`,
      [job.id, job.attempts, error ?? null, countAttempt],
    );
  }

  /** Any unfinished job, or only while `attempt` is its current one. */
  fail(id: string, error: string, attempt?: number): Promise<Job | null> {
    return this.change(
      `UPDATE jobs SET status = ${literal('failed')}, current_step = ${literal('failed')},
         error = $2, lease_expires_at = NULL, finished_at = now(), updated_at = now()
       WHERE id = $1 AND status IN (${UNFINISHED}) AND ($3::int IS NULL OR attempts = $3)`,
      [id, error, attempt ?? null],
    );
  }

  cancelIfPending(id: string, scope: OwnerScope): Promise<Job | null> {
    return this.change(
      `UPDATE jobs SET status = ${literal('cancelled')}, current_step = ${literal('cancelled')},
         finished_at = now(), updated_at = now()
       WHERE id = $1 AND ($2::text IS NULL OR owner_id = $2) AND status = ${literal('pending')}`,
      [id, ownerOf(scope)],
    );
  }

  /** Stored, so a worker that missed the broadcast still sees it. */
  requestCancel(id: string, scope: OwnerScope): Promise<Job | null> {
    return this.change(
      `UPDATE jobs SET cancel_requested_at = coalesce(cancel_requested_at, now()), updated_at = now()
       WHERE id = $1 AND ($2::text IS NULL OR owner_id = $2) AND status = ${literal('processing')}`,
      [id, ownerOf(scope)],
    );
  }

  cancelled(id: string): Promise<Job | null> {
    return this.change(
      `UPDATE jobs SET status = ${literal('cancelled')}, current_step = ${literal('cancelled')},
         lease_expires_at = NULL, finished_at = now(), updated_at = now()
       WHERE id = $1 AND status IN (${UNFINISHED})`,
      [id],
    );
  }

  totals(): Promise<StatusTotals> {
    return this.sql.one<StatusTotals>(`
      SELECT
        count(*) FILTER (WHERE status = ${literal('pending')})::int    AS pending,
        count(*) FILTER (WHERE status = ${literal('processing')})::int AS processing,
        count(*) FILTER (WHERE status = ${literal('completed')})::int  AS completed,
        count(*) FILTER (WHERE status = ${literal('failed')})::int     AS failed,
        count(*) FILTER (WHERE status = ${literal('cancelled')})::int  AS cancelled,
        extract(epoch FROM now() - min(created_at) FILTER (WHERE status = ${literal('pending')}))::float8
          AS "oldestPendingAgeSeconds",
        avg(extract(epoch FROM finished_at - started_at))
          FILTER (WHERE status = ${literal('completed')} AND finished_at > now() - interval '24 hours')::float8
          AS "meanProcessingSeconds"
      FROM jobs`);
  }

  /** Read on the unfinished-jobs index only. */
  backlog(): Promise<Backlog> {
    return this.sql.one<Backlog>(
      `SELECT count(*) FILTER (WHERE status = ${literal('pending')})::int AS pending,
         count(*) FILTER (WHERE status = ${literal('processing')})::int AS processing,
         extract(epoch FROM now() - min(created_at) FILTER (WHERE status = ${literal('pending')}))::float8
           AS "oldestPendingAgeSeconds"
       FROM jobs WHERE status IN (${UNFINISHED})`,
    );
  }

  /** percentile_cont interpolates between the two nearest samples: exact, not an average of averages. */
  totalsByKind(since: Date, quantiles: readonly number[]): Promise<KindTotals[]> {
    return this.sql.query<KindTotals>(
      `SELECT kind,
         count(*)::int AS submitted,
         count(*) FILTER (WHERE status = ${literal('completed')})::int AS completed,
         count(*) FILTER (WHERE status = ${literal('failed')})::int AS failed,
         count(*) FILTER (WHERE status = ${literal('cancelled')})::int AS cancelled,
         percentile_cont($2::float8[]) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - created_at))
           FILTER (WHERE started_at IS NOT NULL) AS wait,
         percentile_cont($2::float8[]) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at))
           FILTER (WHERE status = ${literal('completed')}) AS run
       FROM jobs WHERE created_at >= $1
       GROUP BY kind ORDER BY kind`,
      [since, quantiles],
    );
  }

  /** Unfinished jobs no running attempt holds (pending, or their lease lapsed), oldest first. */
  unheld(limit: number): Promise<Enqueueable[]> {
    return this.sql.query<Enqueueable>(
      `SELECT id, kind, priority, max_attempts AS "maxAttempts" FROM jobs
       WHERE status = ${literal('pending')} OR (status = ${literal('processing')}
         AND (lease_expires_at IS NULL OR lease_expires_at < now()))
       ORDER BY created_at LIMIT $1`,
      [limit],
    );
  }

  async processingAmong(ids: string[]): Promise<Set<string>> {
    const rows = await this.sql.query<{ id: string }>(
      `SELECT id FROM jobs WHERE id = ANY($1::uuid[]) AND status = ${literal('processing')}`,
      [ids],
    );
    return new Set(rows.map((row) => row.id));
  }

  /** At most `limit` final jobs that finished over `retentionMs` ago, oldest first. */
  async deleteFinished(retentionMs: number, limit: number): Promise<number> {
    const row = await this.sql.one<{ count: number }>(
      `WITH deleted AS (
         DELETE FROM jobs WHERE id IN (
           SELECT id FROM jobs
           WHERE status IN (${FINAL}) AND finished_at < now() - $1 * interval '1 millisecond'
           ORDER BY finished_at LIMIT $2)
         RETURNING 1)
       SELECT count(*)::int AS count FROM deleted`,
      [retentionMs, limit],
    );
    return row.count;
  }

  private async change(update: string, parameters: unknown[]): Promise<Job | null> {
    const [row] = await this.sql.query(`${update} RETURNING ${this.columns}`, parameters);
    return row ? rowToEntity(this.entities, row) : null;
  }
}
