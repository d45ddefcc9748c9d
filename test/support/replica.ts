import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { DependencyOutagesModule } from '../../src/common/dependency-outages.service.js';
import { ConfigModule } from '../../src/config/config.module.js';
import { loadConfig } from '../../src/config/config.js';
import { DatabaseModule } from '../../src/database/database.module.js';
import { MetricsModule } from '../../src/metrics/metrics.module.js';
import { RateLimitModule } from '../../src/rate-limit/rate-limit.module.js';
import { RedisModule } from '../../src/redis/redis.module.js';
import { REDIS_URL, TEST_PREFIX } from './env.js';
import { TEST_ENV } from './kiln.js';

/** Where a replica keeps its shared state: Kiln's two backends. */
export type Backend = 'redis' | 'postgres';

/**
 * The stores of one Kiln process, wired as the app wires them, with neither routes nor workers:
 * Redis where RedisModule is imported, PostgreSQL where it is not. Each replica has a pg pool and
 * Redis connections of its own, as two processes would. Initialized (Fastify for the HTTP metrics'
 * hook), never listening.
 */
export async function startReplica(backend: Backend): Promise<INestApplication> {
  class Replica {}
  const app = await NestFactory.create(
    {
      module: Replica,
      imports: [
        ConfigModule.forRoot(
          loadConfig({
            ...TEST_ENV,
            ...(backend === 'redis'
              ? { QUEUE_BACKEND: 'redis', REDIS_URL, REDIS_PREFIX: TEST_PREFIX }
              : { QUEUE_BACKEND: 'postgres' }),
          }),
        ),
        DependencyOutagesModule,
        DatabaseModule,
        ...(backend === 'redis' ? [RedisModule] : []),
        MetricsModule,
        RateLimitModule,
      ],
    },
    new FastifyAdapter(),
    { logger: false, abortOnError: false },
  );
  return app.init();
}
