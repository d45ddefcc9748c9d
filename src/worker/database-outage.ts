import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { backoffDelays } from '../common/backoff.js';
import { DependencyOutages } from '../common/dependency-outages.service.js';
import { isUnavailable } from '../common/unavailable.js';
import { Sql } from '../database/sql.service.js';

/**
 * What a worker does while PostgreSQL is unreachable: it takes no new jobs (the pool pauses its
 * workers) and retries the writes of the jobs it runs, until PostgreSQL answers again.
 */
@Injectable()
export class DatabaseOutage implements OnApplicationShutdown {
  private readonly logger = new Logger('Worker');
  private recovery?: Promise<void>;
  private listener: (down: boolean) => void = () => undefined;
  private readonly stopping = new AbortController();

  constructor(
    private readonly sql: Sql,
    private readonly outages: DependencyOutages,
  ) {}

  get down(): boolean {
    return this.recovery !== undefined;
  }

  /** Called with true when an outage starts and with false when it ends. */
  onChange(listener: (down: boolean) => void): void {
    this.listener = listener;
  }

  /** A statement found PostgreSQL unreachable: wait for it to answer, from one probe loop. */
  report(error: Error): void {
    if (this.recovery || this.stopping.signal.aborted) return;
    this.logger.warn(
      `PostgreSQL unreachable (${error.message}): taking no new jobs until it answers`,
    );
    this.listener(true);
    this.recovery = this.untilAnswering().then(() => {
      this.recovery = undefined;
      if (this.stopping.signal.aborted) return;
      this.logger.log('PostgreSQL answers again: taking jobs');
      this.listener(false);
    });
  }

  /**
   * Runs `write` until it gets through: an outage only delays a job's progress through its life.
   * Gives up (rethrowing the outage) once `signal` fires, as it does when the worker shuts down.
   */
  async retry<T>(write: () => Promise<T>, signal: AbortSignal): Promise<T> {
    const delays = backoffDelays();
    for (;;) {
      try {
        return await write();
      } catch (error) {
        if (!isUnavailable(error) || signal.aborted) throw error;
        this.report(error as Error);
        await sleep(delays.next().value, undefined, { signal }).catch(() => undefined);
      }
    }
  }

  onApplicationShutdown(): void {
    this.stopping.abort();
  }

  private async untilAnswering(): Promise<void> {
    const { signal } = this.stopping;
    for (const waitMs of backoffDelays()) {
      if (signal.aborted) return;
      await sleep(waitMs, undefined, { signal }).catch(() => undefined);
      try {
        await this.sql.query('SELECT 1');
        return;
      } catch (error) {
        if (!isUnavailable(error)) return;
      }
    }
  }
}
