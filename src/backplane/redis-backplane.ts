import { Injectable } from '@nestjs/common';
import { type Processor, Worker } from 'bullmq';
import { RedisService } from '../redis/redis.service.js';
import {
  Backplane,
  type BackplaneWorker,
  type MessageListener,
  type WorkerSettings,
} from './backplane.js';

/** Queues, workers and pub/sub on Redis, under the configured key prefix. */
@Injectable()
export class RedisBackplane extends Backplane {
  readonly dependency = 'redis';

  constructor(private readonly redis: RedisService) {
    super();
  }

  get available(): boolean {
    return this.redis.available;
  }

  worker<Data>(
    queue: string,
    processor: Processor<Data, void>,
    settings: WorkerSettings,
  ): BackplaneWorker<Data> {
    return new Worker<Data, void>(queue, processor, {
      ...settings,
      connection: this.redis.dedicated(`worker-${queue}`),
      prefix: this.redis.prefix,
    });
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.redis.client.publish(this.redis.key(channel), message);
  }

  async subscribe(channels: readonly string[], listener: MessageListener): Promise<void> {
    const subscriber = this.redis.dedicated('messages');
    const prefix = this.redis.key('');
    subscriber.on('message', (channel: string, message: string) =>
      listener(channel.slice(prefix.length), message),
    );
    await subscriber.subscribe(...channels.map((channel) => this.redis.key(channel)));
  }
}
