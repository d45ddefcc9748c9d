import type { Logger } from '@nestjs/common';
import type { JobLifecycle } from '../jobs/job-lifecycle.service.js';
import type { Job } from '../jobs/job.entity.js';

/**
 * Keeps a running attempt's lease in PostgreSQL, renewing it three times per lease: while it
 * holds, no other worker starts the job. When the job has moved on without it (taken over after
 * the lease lapsed), `onLost` stops the attempt; a cancel stored meanwhile is noticed here too.
 */
export class LeaseRenewal {
  private readonly timer: NodeJS.Timeout;
  /** Until when the lease surely holds: the last renewal that got through, from when it was sent. */
  private heldUntil: number;

  constructor(
    private readonly job: Job,
    /** When the claim that took the lease was sent. */
    claimedAt: number,
    private readonly lifecycle: JobLifecycle,
    private readonly leaseMs: number,
    private readonly handlers: { onLost: () => void; onCancelRequested: () => void },
    private readonly logger: Logger,
  ) {
    this.heldUntil = claimedAt + leaseMs;
    this.timer = setInterval(() => void this.renew(), Math.max(1, Math.floor(leaseMs / 3)));
  }

  /**
   * Whether the attempt still holds the job. Most attempts end well within a lease, and then it
   * costs no statement.
   */
  async held(): Promise<boolean> {
    return Date.now() < this.heldUntil || this.renew();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /**
   * Renews now; false when the lease is lost. A renewal that does not get through (PostgreSQL
   * down) is not a loss: the attempt goes on, and its final write is fenced by attempt anyway.
   */
  private async renew(): Promise<boolean> {
    const sentAt = Date.now();
    try {
      const { held, cancelRequested } = await this.lifecycle.renewLease(this.job);
      if (!held) this.handlers.onLost();
      else if (cancelRequested) this.handlers.onCancelRequested();
      if (held) this.heldUntil = sentAt + this.leaseMs;
      return held;
    } catch (error) {
      this.logger.debug?.(`Lease not renewed: ${(error as Error).message}`);
      return true;
    }
  }
}
