import { randomUUID } from 'node:crypto';
import { Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { Repository } from 'typeorm';
import type { ColumnMetadata } from 'typeorm/metadata/ColumnMetadata.js';
import type { OwnerScope } from '../auth/principal.js';
import { ArtifactStore } from '../artifacts/artifact-store.service.js';
import type { Artifact } from '../artifacts/artifact.entity.js';
import { canonicalJson, sha256Hex } from '../common/canonical-json.js';
import { DependencyOutages } from '../common/dependency-outages.service.js';
import {
  type FieldError,
  ProblemError,
  badRequest,
  conflict,
  notFound,
  validationFailed,
} from '../common/problem.js';
import { TimeoutError, withTimeout } from '../common/timeout.js';
import { isUnavailable } from '../common/unavailable.js';
import { parseWith } from '../common/validation.js';
import { KilnConfig } from '../config/config.js';
import { Sql } from '../database/sql.service.js';
import { GeneratorAvailability } from '../generation/generator-availability.service.js';
import { GeneratorRegistry } from '../generation/generator.registry.js';
import { KilnMetrics } from '../metrics/kiln-metrics.js';
import { RedisService } from '../redis/redis.service.js';
import { JobEvents } from './job-events.service.js';
import { JobLifecycle } from './job-lifecycle.service.js';
import { JobQueue } from './job-queue.service.js';
import { type ListJobsQuery, type QueueStats, submitJobSchema } from './job.dto.js';
import { FINAL_STATUSES, INITIAL_JOB_STATE, Job } from './job.entity.js';

/** A validated submission, ready to insert. */
interface NewJob {
  id: string;
  kind: string;
  input: Record<string, unknown>;
  inputHash: string;
  generatorVersion: string;
  priority: number;
}

export interface Submitted {
  job: Job;
  /** False when an Idempotency-Key matched an earlier submission. */
  created: boolean;
}

/** Enqueueing must not hold a submit hostage while Redis is down: the reconciler catches up. */
const ENQUEUE_TIMEOUT_MS = 2_000;

/** The database fills these in; a submission writes every other column of its job. */
const ASSIGNED_BY_DATABASE = ['created_at', 'updated_at'];

@Injectable()
export class JobsService implements OnApplicationBootstrap {
  private readonly logger = new Logger('Jobs');
  /** The columns a submission writes, from the entity's metadata. */
  private readonly written: ColumnMetadata[];
  /**
   * Two fixed texts, as `Sql` prepares them: one job binds a value per column, a batch an array
   * per column (one-element arrays nearly doubled a submission's encoding cost).
   */
  private readonly insertOne: string;
  private readonly insertMany: string;

  constructor(
    @InjectRepository(Job) private readonly jobs: Repository<Job>,
    private readonly sql: Sql,
    private readonly registry: GeneratorRegistry,
    private readonly availability: GeneratorAvailability,
    private readonly queue: JobQueue,
    private readonly lifecycle: JobLifecycle,
    private readonly events: JobEvents,
    private readonly artifacts: ArtifactStore,
    private readonly metrics: KilnMetrics,
    private readonly config: KilnConfig,
    private readonly redis: RedisService,
    private readonly outages: DependencyOutages,
  ) {
    this.written = jobs.metadata.columns.filter(
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

  /** Counters start at zero for every kind, so rate() and increase() see a process's first jobs. */
  onApplicationBootstrap(): void {
    for (const kind of this.registry.kinds) {
      this.metrics.jobsSubmitted.inc({ kind }, 0);
      for (const status of FINAL_STATUSES) this.metrics.jobsFinished.inc({ kind, status }, 0);
    }
  }

  async submit(body: unknown, ownerId: string, idempotencyKey?: string): Promise<Submitted> {
    const parsed = this.validate(body, '#');
    if (!parsed.ok) throw validationFailed(parsed.errors);
    this.availability.require([parsed.job.kind]);
    const [job] = await this.insert([parsed.job], ownerId, { idempotencyKey });
    if (!job)
      return { job: await this.replay(parsed.job, ownerId, idempotencyKey), created: false };
    await this.enqueue([job]);
    return { job, created: true };
  }

  /** All items are validated first, then inserted in one statement: all or nothing. */
  async submitBatch(items: unknown[], ownerId: string): Promise<{ batchId: string; jobs: Job[] }> {
    if (items.length > this.config.jobs.batchMax) {
      throw validationFailed([
        { pointer: '#/jobs', detail: `At most ${this.config.jobs.batchMax} jobs per batch.` },
      ]);
    }
    const valid: NewJob[] = [];
    const errors: FieldError[] = [];
    items.forEach((item, index) => {
      const parsed = this.validate(item, `#/jobs/${index}`);
      if (parsed.ok) valid.push(parsed.job);
      else errors.push(...parsed.errors);
    });
    if (errors.length > 0) throw validationFailed(errors);
    this.availability.require(valid.map((job) => job.kind));
    const batchId = randomUUID();
    const jobs = await this.insert(valid, ownerId, { batchId });
    await this.enqueue(jobs);
    return { batchId, jobs };
  }

  /** Another owner's job answers 404 like a missing one: its existence is not revealed. */
  async get(id: string, scope: OwnerScope): Promise<Job> {
    const job = await this.jobs.findOneBy(scope.all ? { id } : { id, ownerId: scope.ownerId });
    if (!job) throw notFound(`No job ${id}.`);
    return job;
  }

  /** Newest first, keyset-paginated on (created_at, id). */
  async list(
    query: ListJobsQuery,
    scope: OwnerScope,
  ): Promise<{ items: Job[]; nextCursor: string | null }> {
    const builder = this.jobs
      .createQueryBuilder('job')
      .where(scope.all ? 'true' : 'job.ownerId = :ownerId', { ownerId: scope.ownerId })
      .orderBy('job.createdAt', 'DESC')
      .addOrderBy('job.id', 'DESC')
      .take(query.limit + 1);
    if (query.status) builder.andWhere('job.status = :status', { status: query.status });
    if (query.kind) builder.andWhere('job.kind = :kind', { kind: query.kind });
    if (query.cursor) {
      const { createdAt, id } = decodeCursor(query.cursor);
      builder.andWhere('(job.createdAt, job.id) < (:createdAt, :id)', { createdAt, id });
    }
    const rows = await builder.getMany();
    const items = rows.slice(0, query.limit);
    const last = items.at(-1);
    return {
      items,
      nextCursor: rows.length > query.limit && last ? encodeCursor(last) : null,
    };
  }

  /**
   * A pending job is cancelled at once. A running one is marked and its worker told, wherever
   * it runs; the job turns `cancelled` when its generator stops. A finished job is a 409.
   */
  async cancel(id: string, scope: OwnerScope): Promise<{ job: Job; immediate: boolean }> {
    const cancelled = await this.lifecycle.cancelIfPending(id, scope);
    if (cancelled) {
      await this.queue.remove(id, cancelled.kind).catch((error: Error) => {
        // A leftover queue entry is harmless: the worker's claim skips a cancelled job.
        this.logger.warn(`Could not remove cancelled job ${id} from its queue: ${error.message}`);
      });
      return { job: cancelled, immediate: true };
    }
    const running = await this.lifecycle.requestCancel(id, scope);
    if (running) {
      this.events.requestCancel(id);
      return { job: running, immediate: false };
    }
    const job = await this.get(id, scope);
    throw conflict('job-finished', `Job ${id} has already finished (${job.status}).`, {
      jobStatus: job.status,
    });
  }

  async result(
    id: string,
    scope: OwnerScope,
  ): Promise<{ job: Job; artifact: Artifact; path: string }> {
    const job = await this.get(id, scope);
    if (job.status !== 'completed' || !job.artifactSha256) {
      throw conflict('job-not-completed', `Job ${id} has no result: it is ${job.status}.`, {
        jobStatus: job.status,
      });
    }
    const artifact = await this.artifacts.find(job.artifactSha256);
    if (!artifact) throw new Error(`Artifact ${job.artifactSha256} of job ${id} is missing`);
    return { job, artifact, path: this.artifacts.pathOf(artifact.sha256) };
  }

  async stats(): Promise<QueueStats> {
    const [row, queues] = await Promise.all([
      this.sql.one<Omit<QueueStats, 'queues'>>(`
        SELECT
          count(*) FILTER (WHERE status = 'pending')::int    AS pending,
          count(*) FILTER (WHERE status = 'processing')::int AS processing,
          count(*) FILTER (WHERE status = 'completed')::int  AS completed,
          count(*) FILTER (WHERE status = 'failed')::int     AS failed,
          count(*) FILTER (WHERE status = 'cancelled')::int  AS cancelled,
          extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'pending'))::float8
            AS "oldestPendingAgeSeconds",
          avg(extract(epoch FROM finished_at - started_at))
            FILTER (WHERE status = 'completed' AND finished_at > now() - interval '24 hours')::float8
            AS "meanProcessingSeconds"
        FROM jobs`),
      this.queue.counts(),
    ]);
    return { ...row, queues };
  }

  /** Reports every problem at once: the envelope's fields and the generator input's. */
  private validate(
    body: unknown,
    base: string,
  ): { ok: true; job: NewJob } | { ok: false; errors: FieldError[] } {
    const envelope = parseWith(submitJobSchema, body, base);
    const { kind, input: rawInput } = (envelope.ok ? envelope.value : (body ?? {})) as Record<
      string,
      unknown
    >;
    const parsed =
      typeof kind === 'string' ? this.registry.parseInput(kind, rawInput, base) : undefined;
    if (!envelope.ok || !parsed?.ok) {
      const errors = [
        ...(envelope.ok ? [] : envelope.errors),
        ...(parsed?.ok === false ? parsed.errors : []),
      ];
      // Both checks may flag the same field (a missing `input`): say it once.
      const byField = new Map(
        errors.map((error) => ['pointer' in error ? error.pointer : error.parameter, error]),
      );
      return { ok: false, errors: [...byField.values()] };
    }
    const { generator, input } = parsed;
    const { priority } = envelope.value;
    return {
      ok: true,
      job: {
        id: randomUUID(),
        kind: generator.kind,
        input,
        inputHash: sha256Hex(
          canonicalJson({ kind: generator.kind, version: generator.version, input }),
        ),
        generatorVersion: generator.version,
        priority,
      },
    };
  }

  /**
   * One INSERT for one job or a whole batch; an Idempotency-Key seen before inserts nothing. It
   * returns only what the database adds, the timestamps: reading the whole row back cost a fifth
   * of a submission's CPU.
   */
  private async insert(
    jobs: NewJob[],
    ownerId: string,
    { idempotencyKey, batchId }: { idempotencyKey?: string; batchId?: string },
  ): Promise<Job[]> {
    // Sources to Object.assign, not spreads into one literal: on Node 20 spreading two objects
    // into one took ~11 µs per job, Object.assign 0.4 µs.
    const entities = jobs.map((job) =>
      Object.assign(new Job(), INITIAL_JOB_STATE, job, {
        maxAttempts: this.config.jobs.maxAttemptsByKind[job.kind] ?? this.config.jobs.maxAttempts,
        ownerId,
        idempotencyKey: idempotencyKey ?? null,
        batchId: batchId ?? null,
      }),
    );
    const one = entities.length === 1 ? entities[0] : undefined;
    const rows = await this.sql.query<{ id: string; created_at: Date; updated_at: Date }>(
      one ? this.insertOne : this.insertMany,
      this.written.map((column): unknown =>
        one
          ? column.getEntityValue(one)
          : entities.map((job): unknown => column.getEntityValue(job)),
      ),
    );
    const written = new Map(rows.map((row) => [row.id, row]));
    const inserted = entities.flatMap((job) => {
      const row = written.get(job.id);
      return row
        ? [Object.assign(job, { createdAt: row.created_at, updatedAt: row.updated_at })]
        : [];
    });
    for (const job of inserted) this.metrics.jobsSubmitted.inc({ kind: job.kind });
    return inserted;
  }

  /** The job an Idempotency-Key already names, if this request is the same one again. */
  private async replay(job: NewJob, ownerId: string, idempotencyKey?: string): Promise<Job> {
    const earlier = await this.jobs.findOneBy({ ownerId, idempotencyKey });
    if (!earlier) throw new Error(`Insert of job ${job.id} returned no row`);
    if (earlier.inputHash !== job.inputHash || earlier.priority !== job.priority) {
      throw new ProblemError(
        'idempotency-key-reused',
        'This Idempotency-Key was used for a different request.',
        { extensions: { jobId: earlier.id } },
      );
    }
    return earlier;
  }

  /** The rows are written: a job that could not be enqueued now waits for the reconciler. */
  private async enqueue(jobs: Job[]): Promise<void> {
    // While Redis is known to be down, not even the timeout is waited for.
    if (!this.redis.available) return;
    try {
      await withTimeout(this.queue.enqueue(jobs), ENQUEUE_TIMEOUT_MS, 'enqueue');
    } catch (error) {
      // Redis down, or connected but not answering in time.
      if (isUnavailable(error) || error instanceof TimeoutError) {
        this.outages.failed('redis', error);
        return;
      }
      this.logger.warn(
        `Enqueue of ${jobs.length} job(s) failed; the reconciler will retry: ${(error as Error).message}`,
      );
    }
  }
}

function encodeCursor(job: Job): string {
  return Buffer.from(JSON.stringify([job.createdAt.toISOString(), job.id])).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as [
      string,
      string,
    ];
    const date = new Date(createdAt);
    if (Number.isNaN(date.getTime()) || !/^[0-9a-f-]{36}$/.test(id)) throw new Error('bad cursor');
    return { createdAt: date, id };
  } catch {
    throw badRequest('Invalid cursor.', [
      { parameter: 'cursor', detail: 'Use a nextCursor from a previous page.' },
    ]);
  }
}
