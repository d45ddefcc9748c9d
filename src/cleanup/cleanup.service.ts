import { lstat, readdir, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { ArtifactStore } from '../artifacts/artifact-store.service.js';
import { isMissingFile } from '../common/fs-errors.js';
import { KilnConfig } from '../config/config.js';
import { withAdvisoryLock } from '../database/advisory-lock.js';
import { JobQueue } from '../jobs/job-queue.service.js';
import { JobReconciler, type ReconcileReport } from '../jobs/job-reconciler.service.js';
import { JobRepository } from '../jobs/job.repository.js';
import { PROCESS_GROUPS_DIR } from '../process/process-groups.js';
import { KilnMetrics } from '../metrics/kiln-metrics.js';
import { RateLimitStorage } from '../rate-limit/rate-limit.storage.js';

export const CLEANUP_TARGETS = [
  'jobs',
  'artifacts',
  'temp_files',
  'queue_entries',
  'rate_limit_counters',
] as const;
export type CleanupTarget = (typeof CLEANUP_TARGETS)[number];

/** The removal tasks; `jobs` removes expired jobs and then the artifacts they leave unused. */
export const CLEANUP_TASKS = ['jobs', 'temp', 'queue', 'rate-limits'] as const;
export type CleanupTask = (typeof CLEANUP_TASKS)[number];

export interface CleanupReport {
  /** Where the queue entries and rate-limit counters it removed were kept. */
  queueBackend: 'redis' | 'postgres';
  removed: Record<CleanupTarget, number>;
  reconciled: ReconcileReport | null;
  /** Tasks another replica was running: it does the work, this one skips. */
  skipped: (CleanupTask | 'reconcile')[];
}

/** Rows one statement deletes, so no cleanup holds long locks on a busy table. */
const BATCH = 1_000;
/** A job's scratch directory: `<job id>-<attempt>`. */
const JOB_TEMP_DIR = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})-\d+$/;

/** Removes a batch at a time until one comes back short; how many in all. */
async function inBatches(remove: (limit: number) => Promise<number>): Promise<number> {
  let total = 0;
  for (let removed = BATCH; removed === BATCH; total += removed) removed = await remove(BATCH);
  return total;
}

/**
 * Removes what Kiln no longer needs. Every task runs under a PostgreSQL advisory lock: crons fire
 * in every replica, and only the one that takes the lock works. Nothing pending or processing,
 * and no artifact a job refers to, is ever touched.
 */
@Injectable()
export class CleanupService {
  private readonly logger = new Logger('Cleanup');

  constructor(
    private readonly dataSource: DataSource,
    private readonly jobs: JobRepository,
    private readonly artifacts: ArtifactStore,
    private readonly queue: JobQueue,
    private readonly reconciler: JobReconciler,
    private readonly rateLimits: RateLimitStorage,
    private readonly metrics: KilnMetrics,
    private readonly config: KilnConfig,
  ) {}

  /** Every task and a reconcile pass now, one after the other (`POST /api/v1/admin/cleanup`). */
  async runAll(): Promise<CleanupReport> {
    const report: CleanupReport = {
      queueBackend: this.config.queueBackend,
      removed: { jobs: 0, artifacts: 0, temp_files: 0, queue_entries: 0, rate_limit_counters: 0 },
      reconciled: null,
      skipped: [],
    };
    for (const task of CLEANUP_TASKS) {
      const removed = await this.run(task);
      if (removed) Object.assign(report.removed, removed);
      else report.skipped.push(task);
    }
    report.reconciled = (await this.reconciler.reconcile()) ?? null;
    if (!report.reconciled) report.skipped.push('reconcile');
    return report;
  }

  /** One task under its lock; undefined when another replica holds it. */
  async run(task: CleanupTask): Promise<Partial<Record<CleanupTarget, number>> | undefined> {
    const removed = await withAdvisoryLock(
      this.dataSource,
      this.lockName(task),
      () => this.work(task),
      { wait: false },
    );
    if (!removed) return undefined;
    for (const [target, count] of Object.entries(removed)) {
      this.metrics.cleanupRemoved.inc({ target }, count);
    }
    this.logger.log({ message: `Cleanup ${task} done`, task, removed });
    return removed;
  }

  private work(task: CleanupTask): Promise<Partial<Record<CleanupTarget, number>>> {
    switch (task) {
      case 'jobs':
        return this.removeExpiredJobs();
      case 'temp':
        return this.removeStaleTempFiles();
      case 'queue':
        return this.removeOldQueueEntries();
      case 'rate-limits':
        return this.removeLapsedCounters();
    }
  }

  /** Each pod has a temp dir of its own: its lock is per host and directory, not cluster-wide. */
  private lockName(task: CleanupTask): string {
    return task === 'temp'
      ? `cleanup:temp:${hostname()}:${this.config.storage.tempDir}`
      : `cleanup:${task}`;
  }

  private async removeExpiredJobs(): Promise<{ jobs: number; artifacts: number }> {
    const { jobRetentionMs } = this.config.cleanup;
    const jobs = await inBatches((limit) => this.jobs.deleteFinished(jobRetentionMs, limit));
    const artifacts = await inBatches((limit) => this.artifacts.removeUnused(limit));
    return { jobs, artifacts };
  }

  private async removeStaleTempFiles(): Promise<{ temp_files: number }> {
    const { tempDir } = this.config.storage;
    const cutoff = Date.now() - this.config.cleanup.tempMaxAgeMs;
    const names = await readdir(tempDir).catch((error: unknown) => {
      if (isMissingFile(error)) return [];
      throw error;
    });
    const stale: string[] = [];
    for (const name of names) {
      const stats = await lstat(join(tempDir, name)).catch(() => undefined);
      if (stats && stats.mtimeMs < cutoff) stale.push(name);
    }
    const jobIds = stale.flatMap((name) => JOB_TEMP_DIR.exec(name)?.[1] ?? []);
    const running = await this.jobs.processingAmong(jobIds);
    // The records of running commands' groups stay however old (see process-groups.ts).
    const removable = stale.filter(
      (name) => name !== PROCESS_GROUPS_DIR && !running.has(JOB_TEMP_DIR.exec(name)?.[1] ?? ''),
    );
    await Promise.all(
      removable.map((name) => rm(join(tempDir, name), { recursive: true, force: true })),
    );
    return { temp_files: removable.length };
  }

  private async removeOldQueueEntries(): Promise<{ queue_entries: number }> {
    return { queue_entries: await this.queue.clean(this.config.cleanup.queueRetentionMs) };
  }

  /** PostgreSQL's counters whose window lapsed; Redis expires its own, and answers 0. */
  private async removeLapsedCounters(): Promise<{ rate_limit_counters: number }> {
    return { rate_limit_counters: await inBatches((limit) => this.rateLimits.sweep(limit)) };
  }
}
