import { type ExecutionContext, Module } from '@nestjs/common';
import { ThrottlerModule } from '@nestjs/throttler';
import type { FastifyRequest } from 'fastify';
import { KilnConfig } from '../config/config.js';
import { RedisService } from '../redis/redis.service.js';
import { RedisThrottlerStorage } from './redis-throttler.storage.js';
import { SUBMIT_LIMIT } from './submit-cost.decorator.js';

const callerLimits = (context: ExecutionContext) =>
  context.switchToHttp().getRequest<FastifyRequest>().principal?.limits;

/**
 * Three named limits, from configuration: `burst` per second and `general` per minute on every
 * request, `submit` per minute on submissions. A key's own per-minute limits override the
 * defaults, and its burst grows in proportion.
 */
@Module({
  imports: [
    ThrottlerModule.forRootAsync({
      inject: [KilnConfig, RedisService],
      useFactory: (config: KilnConfig, redis: RedisService) => {
        const { perMinute, burstPerSecond, submitPerMinute } = config.rateLimit;
        return {
          storage: new RedisThrottlerStorage(redis.client),
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
})
export class RateLimitModule {}
