import {
  type BeforeApplicationShutdown,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { Backplane, type BackplaneWorker } from '../backplane/backplane.js';
import { DependencyOutages } from '../common/dependency-outages.service.js';
import { settlesWithin } from '../common/timeout.js';
import { isUnavailable } from '../common/unavailable.js';
import { KilnConfig } from '../config/config.js';
import type { Resources } from '../generation/generator.js';
import { GpuMonitor } from '../gpu/gpu-monitor.service.js';
import { JobLifecycle } from '../jobs/job-lifecycle.service.js';
import { JobQueue, type QueuedJob, type QueuedJobData } from '../jobs/job-queue.service.js';
import { DatabaseOutage } from './database-outage.js';
import { JobRunner } from './job-runner.service.js';

/** After the grace period, how long handed-back jobs get to settle before a forced close. */
const HANDBACK_MS = 5_000;

/**
 * The BullMQ workers of this process, one per queue it serves, each with its own concurrency;
 * started at boot and drained at shutdown.
 */
@Injectable()
export class WorkerPool implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Worker');
  private workers: BackplaneWorker<QueuedJobData>[] = [];

  constructor(
    private readonly queue: JobQueue,
    private readonly runner: JobRunner,
    private readonly lifecycle: JobLifecycle,
    private readonly gpu: GpuMonitor,
    private readonly config: KilnConfig,
    private readonly outages: DependencyOutages,
    private readonly backplane: Backplane,
    outage: DatabaseOutage,
  ) {
    // Jobs fetched while PostgreSQL is unreachable could not start: take none until it is back.
    outage.onChange((down) => {
      for (const worker of this.workers) void (down ? worker.pause(true) : worker.resume());
    });
  }

  async onApplicationBootstrap(): Promise<void> {
    const { worker } = this.config;
    for (const resources of await this.queues()) {
      const concurrency = await this.concurrency(resources);
      const started = this.queue.work(resources, (job, token) => this.runner.run(job, token), {
        concurrency,
        lockMs: worker.lockMs,
        stalledCheckIntervalMs: worker.stalledCheckIntervalMs,
      });
      started.on('failed', (job) => void this.onFailed(job));
      started.on('error', (error) => {
        // An outage is reported once, however often the worker's connection retries.
        if (isUnavailable(error)) this.outages.failed(this.backplane.dependency, error);
        else this.logger.warn(`Worker error: ${error.message}`);
      });
      this.workers.push(started);
      this.logger.log(`Processing ${started.name} with concurrency ${concurrency}`);
    }
  }

  /** The configured queues; by default the GPU queue only on a host where nvidia-smi finds GPUs. */
  private async queues(): Promise<Resources[]> {
    if (this.config.worker.queues) return this.config.worker.queues;
    const gpu = await this.gpu.poll();
    if (gpu.state === 'ok') return ['cpu', 'gpu'];
    this.logger.log(
      `Not serving the GPU queue (${gpu.message}); KILN_WORKER_QUEUES=cpu,gpu serves it anyway`,
    );
    return ['cpu'];
  }

  /** GPU work defaults to one job per GPU, so that two models never share one GPU's memory. */
  private async concurrency(resources: Resources): Promise<number> {
    if (resources === 'cpu') return this.config.worker.cpuConcurrency;
    if (this.config.worker.gpuConcurrency) return this.config.worker.gpuConcurrency;
    const gpu = await this.gpu.poll();
    return 'gpus' in gpu ? Math.max(1, gpu.gpus.length) : 1;
  }

  /**
   * Stop taking work and let running jobs finish within the grace period; then abort the rest,
   * which hand their jobs back to the queue for another worker.
   */
  async beforeApplicationShutdown(): Promise<void> {
    const closed = Promise.all(this.workers.map((worker) => worker.close()));
    if (await settlesWithin(closed, this.config.worker.shutdownGraceMs)) return;
    this.logger.warn(`Grace period over: handing ${this.runner.runningCount} job(s) back`);
    this.runner.shutDown();
    if (await settlesWithin(closed, this.config.worker.abortSettleMs + HANDBACK_MS)) return;
    const forced = Promise.all(this.workers.map((worker) => worker.close(true)));
    // A worker whose Redis came back empty can wait for ever on its blocking connection.
    if (await settlesWithin(forced, HANDBACK_MS)) return;
    this.logger.warn('Workers did not close; their connections will be dropped');
  }

  /** A job BullMQ gave up on outside the runner (a claim that kept failing) still ends failed. */
  private async onFailed(job: QueuedJob | undefined): Promise<void> {
    if (!job?.id || !(await job.isFailed().catch(() => false))) return;
    await this.lifecycle
      .fail(job.id, job.failedReason || 'The queue gave up on this job.')
      .catch((error: Error) =>
        this.logger.warn(`Could not mark ${job.id} failed: ${error.message}`),
      );
  }
}
