import { BullModule, getQueueToken } from '@nestjs/bullmq';
import { type DynamicModule, Global, Module } from '@nestjs/common';
import type { KilnConfig } from '../config/config.js';
import { RedisModule } from '../redis/redis.module.js';
import { RedisService } from '../redis/redis.service.js';
import { Backplane, QUEUE_NAMES } from './backplane.js';
import { PostgresBackplane } from './postgres-backplane.js';
import { RedisBackplane } from './redis-backplane.js';

const NAMES = Object.values(QUEUE_NAMES);

/**
 * The backplane of this configuration: Redis where `REDIS_URL` is set (queues through
 * `@nestjs/bullmq`), PostgreSQL otherwise. Either way the queues are injected by
 * `@InjectQueue(name)` and the rest through `Backplane`.
 */
@Global()
@Module({})
export class BackplaneModule {
  static forRoot(config: KilnConfig): DynamicModule {
    return config.redis ? onRedis() : onPostgres();
  }
}

function onRedis(): DynamicModule {
  const queues = BullModule.registerQueue(...NAMES.map((name) => ({ name })));
  return {
    module: BackplaneModule,
    imports: [
      RedisModule,
      BullModule.forRootAsync({
        inject: [RedisService],
        useFactory: (redis: RedisService) => ({ connection: redis.client, prefix: redis.prefix }),
      }),
      queues,
    ],
    providers: [{ provide: Backplane, useClass: RedisBackplane }],
    exports: [Backplane, queues],
  };
}

function onPostgres(): DynamicModule {
  const queues = NAMES.map((name) => ({
    provide: getQueueToken(name),
    inject: [PostgresBackplane],
    useFactory: (backplane: PostgresBackplane) => backplane.queue(name),
  }));
  return {
    module: BackplaneModule,
    providers: [
      PostgresBackplane,
      { provide: Backplane, useExisting: PostgresBackplane },
      ...queues,
    ],
    exports: [Backplane, ...queues.map((queue) => queue.provide)],
  };
}
