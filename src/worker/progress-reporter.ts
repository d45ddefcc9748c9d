import type { Logger } from '@nestjs/common';
import { isUnavailable } from '../common/unavailable.js';
import type { JobLifecycle } from '../jobs/job-lifecycle.service.js';
import type { JobStep } from '../generation/job-steps.js';
import type { Job } from '../jobs/job.entity.js';

/**
 * Generators may report progress as often as they like; the row (and the live stream) get at
 * most one write per interval, the latest state trailing. A job that ends within its first
 * interval costs no progress write at all: the claim and the final update say it all.
 */
export class ProgressReporter {
  private step: JobStep;
  private fraction = 0;
  /** The claim has just written the row. */
  private lastWrite = Date.now();
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
    this.step = step;
    this.fraction = Math.min(1, Math.max(0, fraction));
    const wait = this.lastWrite + this.intervalMs - Date.now();
    if (wait <= 0) this.write();
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
      .catch((error: Error) => {
        // An outage is logged once by the worker, not at every progress write.
        if (isUnavailable(error)) this.logger.debug?.(`Progress not saved: ${error.message}`);
        else this.logger.warn(`Progress not saved: ${error.message}`);
      });
  }
}
