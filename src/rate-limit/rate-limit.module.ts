import { type ExecutionContext, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ThrottlerModule } from '@nestjs/throttler';
import type { FastifyRequest } from 'fastify';
import { KilnConfig } from '../config/config.js';
import { RedisService } from '../redis/redis.service.js';
import { RateLimitGuard } from './rate-limit.guard.js';
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
  // After the API key guard (AuthModule comes first), so limits follow the key, not the IP.
  providers: [{ provide: APP_GUARD, useClass: RateLimitGuard }],
})
export class RateLimitModule {}
