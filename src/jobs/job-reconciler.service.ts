import { Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { withAdvisoryLock } from '../database/advisory-lock.js';
import { GeneratorRegistry } from '../generation/generator.registry.js';
import { JobLifecycle } from './job-lifecycle.service.js';
import { JobQueue } from './job-queue.service.js';
import { JobRepository } from './job.repository.js';

const BATCH = 1000;

export interface ReconcileReport {
  enqueued: number;
  failed: number;
}

/**
 * Makes Redis agree with PostgreSQL: every unfinished row whose BullMQ job is missing (an
 * enqueue that failed, a Redis that restarted empty) is enqueued again, so an accepted job is
 * never lost; a row whose BullMQ job has given up is marked failed. A job whose running attempt
 * still holds its lease is left alone: enqueueing it would start a second attempt beside the
 * first. Cleanup schedules it.
 */
@Injectable()
export class JobReconciler {
  private readonly logger = new Logger('Reconciler');

  constructor(
    private readonly dataSource: DataSource,
    private readonly jobs: JobRepository,
    private readonly queue: JobQueue,
    private readonly lifecycle: JobLifecycle,
    private readonly registry: GeneratorRegistry,
  ) {}

  /** One pass; replicas take turns on a lock, and one that finds it taken skips (undefined). */
  reconcile(): Promise<ReconcileReport | undefined> {
    return withAdvisoryLock(this.dataSource, 'reconciler', () => this.pass(), { wait: false });
  }

  private async pass(): Promise<ReconcileReport> {
    const rows = await this.jobs.unheld(BATCH);
    const known = new Set(this.registry.kinds);
    const orphans = rows.filter((row) => !known.has(row.kind));
    const runnable = rows.filter((row) => known.has(row.kind));
    const states = await this.queue.states(runnable);
    const missing = runnable.filter((row) => states.get(row.id) === 'unknown');
    const gaveUp = runnable.filter((row) => states.get(row.id) === 'failed');
    await this.queue.enqueue(missing);
    const failures = await Promise.all([
      ...orphans.map((row) => this.lifecycle.fail(row.id, `No generator for kind '${row.kind}'.`)),
      ...gaveUp.map((row) => this.lifecycle.fail(row.id, 'The queue gave up on this job.')),
    ]);
    const report = { enqueued: missing.length, failed: failures.filter(Boolean).length };
    if (report.enqueued + report.failed > 0) {
      this.logger.log(`Re-enqueued ${report.enqueued} job(s), failed ${report.failed}`);
    }
    return report;
  }
}
