import type { Abstract, FactoryProvider } from '@nestjs/common';
import { Sql } from '../database/sql.service.js';
import { RedisService } from './redis.service.js';

/**
 * A provider of `token` built on Redis where the process has one (RedisModule imported), else on
 * PostgreSQL: how a store that has both picks its backend.
 */
export function redisOrPostgres<T>(
  token: Abstract<T>,
  build: { redis: (redis: RedisService) => T; postgres: (sql: Sql) => T },
): FactoryProvider<T> {
  return {
    provide: token,
    inject: [Sql, { token: RedisService, optional: true }],
    useFactory: (sql: Sql, redis?: RedisService) =>
      redis ? build.redis(redis) : build.postgres(sql),
  };
}
