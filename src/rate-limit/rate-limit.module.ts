import { type ExecutionContext, Module } from '@nestjs/common';
import { ThrottlerModule } from '@nestjs/throttler';
import type { FastifyRequest } from 'fastify';
import { KilnConfig } from '../config/config.js';
import { redisOrPostgres } from '../redis/redis-or-postgres.js';
import { PostgresThrottlerStorage } from './postgres-throttler.storage.js';
import { RateLimitStorage } from './rate-limit.storage.js';
import { RedisThrottlerStorage } from './redis-throttler.storage.js';
import { SUBMIT_LIMIT } from './submit-cost.decorator.js';

const callerLimits = (context: ExecutionContext) =>
  context.switchToHttp().getRequest<FastifyRequest>().principal?.limits;

/** The counters (Redis, else PostgreSQL), for the throttler's options, the guard and cleanup. */
@Module({
  providers: [
    redisOrPostgres(RateLimitStorage, {
      redis: (redis) => new RedisThrottlerStorage(redis),
      postgres: (sql) => new PostgresThrottlerStorage(sql),
    }),
  ],
  exports: [RateLimitStorage],
})
class RateLimitStorageModule {}

/**
 * Three named limits, from configuration: `burst` per second and `general` per minute on every
 * request, `submit` per minute on submissions. A key's own per-minute limits override the
 * defaults, and its burst grows in proportion.
 */
@Module({
  imports: [
    RateLimitStorageModule,
    ThrottlerModule.forRootAsync({
      imports: [RateLimitStorageModule],
      inject: [KilnConfig, RateLimitStorage],
      useFactory: (config: KilnConfig, storage: RateLimitStorage) => {
        const { perMinute, burstPerSecond, submitPerMinute } = config.rateLimit;
        return {
          storage,
          throttlers: [
            {
              name: 'burst',
              ttl: 1_000,
              limit: (context) => {
                const own = callerLimits(context)?.perMinute;
                return own
                  ? Math.max(1, Math.ceil((burstPerSecond * own) / perMinute))
                  : burstPerSecond;
              },
            },
            {
              name: 'general',
              ttl: 60_000,
              limit: (context) => callerLimits(context)?.perMinute ?? perMinute,
            },
            {
              name: SUBMIT_LIMIT,
              ttl: 60_000,
              limit: (context) => callerLimits(context)?.submitPerMinute ?? submitPerMinute,
            },
          ],
        };
      },
    }),
  ],
  exports: [RateLimitStorageModule],
})
export class RateLimitModule {}
