import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { KilnConfig } from '../config/config.js';
import { Sql } from '../database/sql.service.js';

interface Backlog {
  pending: number;
  processing: number;
  oldestPendingAgeSeconds: number | null;
}

/** The backlog from PostgreSQL (the source of truth), read on the unfinished-jobs index only. */
@Injectable()
export class QueueHealth {
  constructor(
    private readonly indicators: HealthIndicatorService,
    private readonly sql: Sql,
    private readonly config: KilnConfig,
  ) {}

  async check() {
    const indicator = this.indicators.check('queue');
    const threshold = this.config.health.queueBacklogThreshold;
    try {
      const details = await this.sql.one<Backlog>(
        `SELECT count(*) FILTER (WHERE status = 'pending')::int AS pending,
           count(*) FILTER (WHERE status = 'processing')::int AS processing,
           extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'pending'))::float8
             AS "oldestPendingAgeSeconds"
         FROM jobs WHERE status IN ('pending', 'processing')`,
      );
      const data = {
        message: `${details.pending} pending, ${details.processing} processing`,
        details: { ...details, backlogThreshold: threshold },
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
