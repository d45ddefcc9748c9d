import { EventEmitter } from 'node:events';
import { Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { KilnConfig } from '../config/config.js';
import { RedisService } from '../redis/redis.service.js';
import type { Job, JobStatus, JobStep } from './job.entity.js';

export interface JobEvent {
  id: string;
  status: JobStatus;
  step: JobStep;
  progress: number;
  error: string | null;
}

export const jobEvent = (job: Job): JobEvent => ({
  id: job.id,
  status: job.status,
  step: job.currentStep,
  progress: job.progress,
  error: job.error,
});

/**
 * Job updates and cancel requests cross processes over Redis pub/sub: a worker's progress
 * reaches whichever API replica streams it, and a cancel reaches whichever worker runs the job.
 */
@Injectable()
export class JobEvents implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('JobEvents');
  private readonly local = new EventEmitter().setMaxListeners(0);
  private readonly updatesChannel: string;
  private readonly cancelChannel: string;
  private subscriber?: Redis;

  constructor(
    private readonly redis: RedisService,
    private readonly config: KilnConfig,
  ) {
    this.updatesChannel = redis.key('job-updates');
    this.cancelChannel = redis.key('job-cancel');
  }

  async onModuleInit(): Promise<void> {
    this.subscriber = this.redis.dedicated('events');
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.updatesChannel) {
        const event = JSON.parse(message) as JobEvent;
        this.local.emit(`update:${event.id}`, event);
      } else if (channel === this.cancelChannel) {
        this.local.emit('cancel', message);
      }
    });
    // Only the API streams updates: a worker-only process would just receive (and parse) its own.
    const channels = this.config.runsApi
      ? [this.updatesChannel, this.cancelChannel]
      : [this.cancelChannel];
    await this.subscriber.subscribe(...channels);
  }

  /** Live streams end first at shutdown (their clients reconnect elsewhere), so HTTP can drain. */
  onModuleDestroy(): void {
    this.local.emit('closing');
  }

  publishUpdate(event: JobEvent): void {
    this.publish(this.updatesChannel, JSON.stringify(event));
  }

  requestCancel(id: string): void {
    this.publish(this.cancelChannel, id);
  }

  /** Calls `listener` with every update of one job until the returned function is called. */
  watch(id: string, listener: (event: JobEvent) => void): () => void {
    this.local.on(`update:${id}`, listener);
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

  private publish(channel: string, message: string): void {
    // Live updates are best effort: the row stays the truth, and a cancel is also stored there.
    this.redis.client.publish(channel, message).catch((error: Error) => {
      this.logger.warn(`Could not publish on ${channel}: ${error.message}`);
    });
  }
}
