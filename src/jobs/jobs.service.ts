import { randomUUID } from 'node:crypto';
import { Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import type { OwnerScope } from '../auth/principal.js';
import { ArtifactStore } from '../artifacts/artifact-store.service.js';
import type { Artifact } from '../artifacts/artifact.entity.js';
import { Backplane } from '../backplane/backplane.js';
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
import { GeneratorAvailability } from '../generation/generator-availability.service.js';
import { GeneratorRegistry } from '../generation/generator.registry.js';
import { KilnMetrics } from '../metrics/kiln-metrics.js';
import { JobEvents } from './job-events.service.js';
import { JobLifecycle } from './job-lifecycle.service.js';
import { JobQueue } from './job-queue.service.js';
import { type ListJobsQuery, type QueueStats, submitJobSchema } from './job.dto.js';
import { FINAL_STATUSES, INITIAL_JOB_STATE, Job } from './job.entity.js';
import { JobRepository } from './job.repository.js';

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

@Injectable()
export class JobsService implements OnApplicationBootstrap {
  private readonly logger = new Logger('Jobs');

  constructor(
    private readonly jobs: JobRepository,
    private readonly registry: GeneratorRegistry,
    private readonly availability: GeneratorAvailability,
    private readonly queue: JobQueue,
    private readonly lifecycle: JobLifecycle,
    private readonly events: JobEvents,
    private readonly artifacts: ArtifactStore,
    private readonly metrics: KilnMetrics,
    private readonly config: KilnConfig,
    private readonly backplane: Backplane,
    private readonly outages: DependencyOutages,
  ) {}

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
    const job = await this.jobs.findOne(id, scope);
    if (!job) throw notFound(`No job ${id}.`);
    return job;
  }

  /** Newest first, keyset-paginated on (created_at, id). */
  async list(
    query: ListJobsQuery,
    scope: OwnerScope,
  ): Promise<{ items: Job[]; nextCursor: string | null }> {
    const rows = await this.jobs.find(
      {
        status: query.status,
        kind: query.kind,
        before: query.cursor ? decodeCursor(query.cursor) : undefined,
        limit: query.limit + 1,
      },
      scope,
    );
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
    const [totals, queues] = await Promise.all([this.jobs.totals(), this.queue.counts()]);
    return { ...totals, backend: this.config.queueBackend, queues };
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

  /** The new jobs' rows; a job whose Idempotency-Key was seen before is left out. */
  private async insert(
    jobs: NewJob[],
    ownerId: string,
    { idempotencyKey, batchId }: { idempotencyKey?: string; batchId?: string },
  ): Promise<Job[]> {
    const inserted = await this.jobs.insert(
      jobs.map((job) =>
        Object.assign(new Job(), INITIAL_JOB_STATE, job, {
          maxAttempts: this.config.jobs.maxAttemptsByKind[job.kind] ?? this.config.jobs.maxAttempts,
          ownerId,
          idempotencyKey: idempotencyKey ?? null,
          batchId: batchId ?? null,
        }),
      ),
    );
    for (const job of inserted) this.metrics.jobsSubmitted.inc({ kind: job.kind });
    return inserted;
  }

  /** The job an Idempotency-Key already names, if this request is the same one again. */
  private async replay(job: NewJob, ownerId: string, idempotencyKey?: string): Promise<Job> {
    const earlier = await this.jobs.findByIdempotencyKey(ownerId, idempotencyKey);
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
    // While the backplane is known to be down, not even the timeout is waited for.
    if (!this.backplane.available) return;
    try {
      await withTimeout(this.queue.enqueue(jobs), ENQUEUE_TIMEOUT_MS, 'enqueue');
    } catch (error) {
      // The backplane down, or connected but not answering in time.
      if (isUnavailable(error) || error instanceof TimeoutError) {
        this.outages.failed(this.backplane.dependency, error);
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
