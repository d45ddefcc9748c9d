import {
  type BeforeApplicationShutdown,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { CronJob } from 'cron';
import { KilnConfig } from '../config/config.js';
import { JobReconciler } from '../jobs/job-reconciler.service.js';
import { CLEANUP_TASKS, CleanupService, type CleanupTask } from './cleanup.service.js';

/**
 * Schedules cleanup from configuration (a `@Cron` decorator could not read it) and the
 * reconciler, which runs whether or not cleanup is enabled: it keeps accepted jobs alive.
 */
@Injectable()
export class CleanupScheduler implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Cleanup');
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly registry: SchedulerRegistry,
    private readonly cleanup: CleanupService,
    private readonly reconciler: JobReconciler,
    private readonly config: KilnConfig,
  ) {}

  onApplicationBootstrap(): void {
    const reconcile = () => this.track('reconcile', () => this.reconciler.reconcile());
    reconcile();
    this.registry.addInterval(
      'reconcile',
      setInterval(reconcile, this.config.jobs.reconcileIntervalMs).unref(),
    );
    if (!this.config.cleanup.enabled) return;
    for (const task of CLEANUP_TASKS) {
      const job = CronJob.from({
        cronTime: this.config.cleanup.schedules[task],
        onTick: () => this.track(task, () => this.cleanup.run(task)),
        start: true,
      });
      this.registry.addCronJob(`cleanup-${task}`, job);
    }
  }

  /** Stops the schedules and lets runs in flight end before the database closes. */
  async beforeApplicationShutdown(): Promise<void> {
    for (const name of this.registry.getIntervals()) this.registry.deleteInterval(name);
    for (const name of this.registry.getCronJobs().keys()) this.registry.deleteCronJob(name);
    await Promise.allSettled(this.inFlight);
  }

  private track(task: CleanupTask | 'reconcile', run: () => Promise<unknown>): void {
    const running = run()
      .catch((error: Error) =>
        this.logger.warn(`${task} failed; next run retries: ${error.message}`),
      )
      .finally(() => this.inFlight.delete(running));
    this.inFlight.add(running);
  }
}
