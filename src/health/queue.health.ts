import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { KilnConfig } from '../config/config.js';
import { JobRepository } from '../jobs/job.repository.js';

/** The backlog from PostgreSQL, the source of truth. */
@Injectable()
export class QueueHealth {
  constructor(
    private readonly indicators: HealthIndicatorService,
    private readonly jobs: JobRepository,
    private readonly config: KilnConfig,
  ) {}

  async check() {
    const indicator = this.indicators.check('queue');
    const threshold = this.config.health.queueBacklogThreshold;
    try {
      const details = await this.jobs.backlog();
      const data = {
        message: `${details.pending} pending, ${details.processing} processing`,
        details: { ...details, backlogThreshold: threshold, backend: this.config.queueBackend },
      };
      return details.pending > threshold
        ? indicator.degraded({
            ...data,
            message: `Backlog of ${details.pending} pending jobs is over ${threshold}`,
          })
        : indicator.up(data);
    } catch (error) {
      return indicator.down({ message: `Backlog unknown: ${(error as Error).message}` });
    }
  }
}
