import { InjectQueue } from '@nestjs/bullmq';
import { Injectable, Logger } from '@nestjs/common';
import type { Job as BullJob, JobState } from 'bullmq';
import {
  Backplane,
  type BackplaneQueue,
  type BackplaneWorker,
  QUEUE_NAMES,
} from '../backplane/backplane.js';
import { isUnavailable } from '../common/unavailable.js';
import { KilnConfig } from '../config/config.js';
import type { Resources } from '../generation/generator.js';
import { GeneratorRegistry } from '../generation/generator.registry.js';
import { KilnMetrics } from '../metrics/kiln-metrics.js';
import { ScrapeCollectors } from '../metrics/scrape-collectors.service.js';
import { PRIORITY } from './job.entity.js';

/** Most entries one clean call removes per queue and state; the next run takes the rest. */
const CLEAN_BATCH = 10_000;

/** A BullMQ job carries only what routing needs; the row holds the rest. */
export interface QueuedJobData {
  kind: string;
}
export type QueuedJob = BullJob<QueuedJobData, void, string>;
type JobsQueue = BackplaneQueue<QueuedJobData>;

export interface Enqueueable {
  id: string;
  kind: string;
  priority: number;
  maxAttempts: number;
}

export interface WorkerSettings {
  concurrency: number;
  lockMs: number;
  stalledCheckIntervalMs: number;
}

/**
 * Kiln counts a stalled job's attempts itself (a dead worker's attempt is one of its attempts),
 * so BullMQ's own stall limit must never fail a job that has attempts left.
 */
const UNLIMITED_STALLS = 1_000_000;

/** The one port to BullMQ: nothing else in Kiln touches a Queue or builds a Worker. */
@Injectable()
export class JobQueue {
  private readonly queues: Record<Resources, JobsQueue>;
  private readonly logger = new Logger('Queue');

  constructor(
    @InjectQueue(QUEUE_NAMES.cpu) cpu: JobsQueue,
    @InjectQueue(QUEUE_NAMES.gpu) gpu: JobsQueue,
    private readonly registry: GeneratorRegistry,
    private readonly backplane: Backplane,
    private readonly config: KilnConfig,
    metrics: KilnMetrics,
    collectors: ScrapeCollectors,
  ) {
    this.queues = { cpu, gpu };
    for (const queue of [cpu, gpu]) {
      // Without a listener BullMQ prints every error to stderr, a stack per reconnect attempt. A
      // lost connection is reported already, by the backplane, whose connection the queues share.
      queue.on('error', (error) => {
        if (!isUnavailable(error)) this.logger.warn(`Queue ${queue.name}: ${error.message}`);
      });
    }
    collectors.register(async () => {
      for (const [queue, counts] of Object.entries(await this.counts())) {
        for (const [state, count] of Object.entries(counts))
          metrics.queueJobs.set({ queue, state, backend: config.queueBackend }, count);
      }
    });
  }

  /** Safe to repeat: the job id is the row id, and BullMQ ignores an id it already holds. */
  async enqueue(jobs: readonly Enqueueable[]): Promise<void> {
    const byQueue = new Map<JobsQueue, Enqueueable[]>();
    for (const job of jobs) {
      const queue = this.queueOf(job.kind);
      byQueue.set(queue, [...(byQueue.get(queue) ?? []), job]);
    }
    await Promise.all(
      [...byQueue].map(([queue, group]) =>
        // addBulk wraps even one job in a MULTI: the submit path's single job goes straight in.
        group.length === 1
          ? queue.add(group[0]!.kind, { kind: group[0]!.kind }, this.jobOptions(group[0]!))
          : queue.addBulk(
              group.map((job) => ({
                name: job.kind,
                data: { kind: job.kind },
                opts: this.jobOptions(job),
              })),
            ),
      ),
    );
  }

  private jobOptions(job: Enqueueable) {
    return {
      jobId: job.id,
      // BullMQ runs lower numbers first; Kiln's API runs higher priorities first.
      priority: PRIORITY.max + 1 - job.priority,
      attempts: job.maxAttempts,
      backoff: { type: 'exponential', delay: this.config.jobs.retryDelayMs },
      removeOnComplete: true,
      removeOnFail: { count: 1000 },
    };
  }

  /** Removes a job that no worker holds; false when it is running (locked). */
  async remove(id: string, kind: string): Promise<boolean> {
    return (await this.queueOf(kind).remove(id)) === 1;
  }

  async states(
    jobs: readonly { id: string; kind: string }[],
  ): Promise<Map<string, JobState | 'unknown'>> {
    const states = await Promise.all(jobs.map((job) => this.queueOf(job.kind).getJobState(job.id)));
    return new Map(jobs.map((job, index) => [job.id, states[index] ?? 'unknown']));
  }

  async counts(): Promise<Record<string, Record<string, number>>> {
    const entries = await Promise.all(
      Object.values(this.queues).map(async (queue) => [
        queue.name,
        await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'failed'),
      ]),
    );
    return Object.fromEntries(entries) as Record<string, Record<string, number>>;
  }

  /** Drops BullMQ's own completed and failed entries older than `graceMs`; returns how many. */
  async clean(graceMs: number): Promise<number> {
    const removed = await Promise.all(
      Object.values(this.queues).flatMap((queue) =>
        (['completed', 'failed'] as const).map((state) => queue.clean(graceMs, CLEAN_BATCH, state)),
      ),
    );
    return removed.reduce((sum, ids) => sum + ids.length, 0);
  }

  /** Starts a worker on the queue of the given resources, on a connection of its own. */
  work(
    resources: Resources,
    handler: (job: QueuedJob, token: string | undefined) => Promise<void>,
    settings: WorkerSettings,
  ): BackplaneWorker<QueuedJobData> {
    return this.backplane.worker<QueuedJobData>(QUEUE_NAMES[resources], handler, {
      concurrency: settings.concurrency,
      lockDuration: settings.lockMs,
      stalledInterval: settings.stalledCheckIntervalMs,
      maxStalledCount: UNLIMITED_STALLS,
    });
  }

  private queueOf(kind: string): JobsQueue {
    return this.queues[this.registry.require(kind).resources];
  }
}
