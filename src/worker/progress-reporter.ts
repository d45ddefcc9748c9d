import type { Logger } from '@nestjs/common';
import type { JobLifecycle } from '../jobs/job-lifecycle.service.js';
import type { Job, JobStep } from '../jobs/job.entity.js';

/**
 * Generators may report progress as often as they like; the row (and the live stream) get a
 * step change at once and fraction updates at most once per interval, the last one included.
 */
export class ProgressReporter {
  private step: JobStep;
  private fraction = 0;
  private lastWrite = 0;
  private trailing?: NodeJS.Timeout;
  private writes: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly job: Job,
    private readonly lifecycle: JobLifecycle,
    private readonly intervalMs: number,
    private readonly onCancelRequested: () => void,
    private readonly logger: Logger,
  ) {
    this.step = job.currentStep;
  }

  report(step: JobStep, fraction = this.fraction): void {
    if (this.closed) return;
    const stepChanged = step !== this.step;
    this.step = step;
    this.fraction = Math.min(1, Math.max(0, fraction));
    const wait = this.lastWrite + this.intervalMs - Date.now();
    if (stepChanged || wait <= 0) this.write();
    else this.trailing ??= setTimeout(() => this.write(), wait);
  }

  /** Waits for writes in flight; nothing is written after. */
  async close(): Promise<void> {
    clearTimeout(this.trailing);
    this.closed = true;
    await this.writes;
  }

  private write(): void {
    clearTimeout(this.trailing);
    this.trailing = undefined;
    this.lastWrite = Date.now();
    const { step, fraction } = this;
    this.writes = this.writes
      .then(() => this.lifecycle.progress(this.job, step, fraction))
      .then(({ cancelRequested }) => {
        if (cancelRequested) this.onCancelRequested();
      })
      .catch((error: Error) => this.logger.warn(`Progress not saved: ${error.message}`));
  }
}
