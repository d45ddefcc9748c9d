import { EventEmitter } from 'node:events';
import { Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { Backplane } from '../backplane/backplane.js';
import { KilnConfig } from '../config/config.js';
import type { JobStep } from '../generation/job-steps.js';
import type { Job, JobStatus } from './job.entity.js';

export interface JobEvent {
  id: string;
  status: JobStatus;
  step: JobStep;
  progress: number;
  error: string | null;
  updatedAt: string;
}

export const jobEvent = (job: Job): JobEvent => ({
  id: job.id,
  status: job.status,
  step: job.currentStep,
  progress: job.progress,
  error: job.error,
  updatedAt: job.updatedAt.toISOString(),
});

/** The backplane's channels: updates for API processes, cancels for workers, streams for all. */
const CHANNELS = { updates: 'job-updates', cancel: 'job-cancel', watch: 'job-watch' } as const;

/** How often a process repeats which jobs it streams; the others forget after three silences. */
const WATCH_RENEW_MS = 10_000;
const WATCH_LAPSE_MS = 3 * WATCH_RENEW_MS;

/**
 * Job updates and cancel requests cross processes over the backplane: a worker's progress
 * reaches whichever API replica streams it, and a cancel reaches whichever worker runs the job.
 *
 * Most jobs are never streamed, so updates are published only for jobs some process announces
 * it streams: a message per step would cost every job round trips and every API process
 * a parse. An update that crosses an announcement in flight is caught by the stream's re-reads.
 */
@Injectable()
export class JobEvents implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('JobEvents');
  private readonly local = new EventEmitter().setMaxListeners(0);
  /** Jobs streamed anywhere, with when their last announcement lapses. */
  private readonly watched = new Map<string, number>();
  private renewal?: NodeJS.Timeout;

  constructor(
    private readonly backplane: Backplane,
    private readonly config: KilnConfig,
  ) {}

  async onModuleInit(): Promise<void> {
    // Every role changes jobs (the API cancels), so every process hears which are streamed.
    const channels: string[] = [CHANNELS.watch];
    if (this.config.runsApi) channels.push(CHANNELS.updates);
    if (this.config.runsWorker) channels.push(CHANNELS.cancel);
    await this.backplane.subscribe(channels, (channel, message) => this.receive(channel, message));
    this.renewal = setInterval(() => this.renew(), WATCH_RENEW_MS).unref();
  }

  /** Live streams end first at shutdown (their clients reconnect elsewhere), so HTTP can drain. */
  onModuleDestroy(): void {
    clearInterval(this.renewal);
    this.local.emit('closing');
  }

  publishUpdate(event: JobEvent): void {
    if (this.isWatched(event.id)) void this.publish(CHANNELS.updates, JSON.stringify(event));
  }

  requestCancel(id: string): void {
    void this.publish(CHANNELS.cancel, id);
  }

  /**
   * Calls `listener` with every update of one job until the returned function is called. Resolves
   * once the other processes have been told, so that a read of the job after it misses nothing
   * but an update already in flight.
   */
  async watch(id: string, listener: (event: JobEvent) => void): Promise<() => void> {
    const first = this.local.listenerCount(`update:${id}`) === 0;
    this.local.on(`update:${id}`, listener);
    if (first) await this.publish(CHANNELS.watch, id);
    return () => this.local.off(`update:${id}`, listener);
  }

  /** Calls `listener` once when this process starts shutting down, until unsubscribed. */
  onClosing(listener: () => void): () => void {
    this.local.once('closing', listener);
    return () => this.local.off('closing', listener);
  }

  onCancelRequest(listener: (id: string) => void): void {
    this.local.on('cancel', listener);
  }

  private receive(channel: string, message: string): void {
    if (channel === CHANNELS.updates) {
      const event = JSON.parse(message) as JobEvent;
      this.local.emit(`update:${event.id}`, event);
    } else if (channel === CHANNELS.cancel) {
      this.local.emit('cancel', message);
    } else if (channel === CHANNELS.watch) {
      const lapsesAt = Date.now() + WATCH_LAPSE_MS;
      for (const id of message.split(',')) this.watched.set(id, lapsesAt);
    }
  }

  private isWatched(id: string): boolean {
    return (this.watched.get(id) ?? 0) > Date.now() || this.local.listenerCount(`update:${id}`) > 0;
  }

  /** Repeats this process's streams, for workers started since, and forgets lapsed ones. */
  private renew(): void {
    const now = Date.now();
    for (const [id, lapsesAt] of this.watched) if (lapsesAt <= now) this.watched.delete(id);
    const streamed = this.local
      .eventNames()
      .flatMap((name) =>
        typeof name === 'string' && name.startsWith('update:')
          ? [name.slice('update:'.length)]
          : [],
      );
    if (streamed.length > 0) void this.publish(CHANNELS.watch, streamed.join(','));
  }

  /** Best effort: the row stays the truth, a cancel is also stored there, and streams re-read. */
  private async publish(channel: string, message: string): Promise<void> {
    await this.backplane.publish(channel, message).catch((error: Error) => {
      this.logger.warn(`Could not publish on ${channel}: ${error.message}`);
    });
  }
}
