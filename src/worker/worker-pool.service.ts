import {
  type BeforeApplicationShutdown,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import type { Worker } from 'bullmq';
import { settlesWithin } from '../common/settles-within.js';
import { KilnConfig } from '../config/config.js';
import { JobLifecycle } from '../jobs/job-lifecycle.service.js';
import { JobQueue, type QueuedJob } from '../jobs/job-queue.service.js';
import { AbortReason } from './abort-reason.js';
import { JobRunner } from './job-runner.service.js';

/** After the grace period, how long handed-back jobs get to settle before a forced close. */
const HANDBACK_MS = 5_000;

/** The BullMQ workers of this process, started at boot and drained at shutdown. */
@Injectable()
export class WorkerPool implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Worker');
  private workers: Worker[] = [];

  constructor(
    private readonly queue: JobQueue,
    private readonly runner: JobRunner,
    private readonly lifecycle: JobLifecycle,
    private readonly config: KilnConfig,
  ) {}

  onApplicationBootstrap(): void {
    const { worker } = this.config;
    const cpu = this.queue.work('cpu', (job, token) => this.runner.run(job, token), {
      concurrency: worker.cpuConcurrency,
      lockMs: worker.lockMs,
      stalledCheckIntervalMs: worker.stalledCheckIntervalMs,
      maxStalledCount: worker.maxStalledCount,
    });
    cpu.on('failed', (job) => void this.onFailed(job));
    cpu.on('error', (error) => this.logger.warn(`Worker error: ${error.message}`));
    this.workers = [cpu];
    this.logger.log(`Processing ${cpu.name} with concurrency ${worker.cpuConcurrency}`);
  }

  /**
   * Stop taking work and let running jobs finish within the grace period; then abort the rest,
   * which hand their jobs back to the queue for another worker.
   */
  async beforeApplicationShutdown(): Promise<void> {
    const closed = Promise.all(this.workers.map((worker) => worker.close()));
    if (await settlesWithin(closed, this.config.worker.shutdownGraceMs)) return;
    this.logger.warn(`Grace period over: handing ${this.runner.runningCount} job(s) back`);
    this.runner.abortAll(new AbortReason('shutdown', 'Worker shutting down.'));
    if (await settlesWithin(closed, HANDBACK_MS)) return;
    const forced = Promise.all(this.workers.map((worker) => worker.close(true)));
    // A worker whose Redis came back empty can wait for ever on its blocking connection.
    if (await settlesWithin(forced, HANDBACK_MS)) return;
    this.logger.warn('Workers did not close; their connections will be dropped');
  }

  /** A job BullMQ gave up on outside the runner (stalled too often) still ends failed. */
  private async onFailed(job: QueuedJob | undefined): Promise<void> {
    if (!job?.id || !(await job.isFailed().catch(() => false))) return;
    await this.lifecycle
      .fail(job.id, job.failedReason || 'The queue gave up on this job.')
      .catch((error: Error) =>
        this.logger.warn(`Could not mark ${job.id} failed: ${error.message}`),
      );
  }
}
