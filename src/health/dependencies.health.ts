import { Injectable, Optional } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { KilnConfig } from '../config/config.js';
import { Sql } from '../database/sql.service.js';
import { RedisService } from '../redis/redis.service.js';

/**
 * PostgreSQL, and Redis where it is the backplane, each asked one cheap question on a connection
 * Kiln already holds.
 */
@Injectable()
export class DependenciesHealth {
  constructor(
    private readonly indicators: HealthIndicatorService,
    private readonly sql: Sql,
    private readonly config: KilnConfig,
    @Optional() private readonly connections?: RedisService,
  ) {}

  database() {
    return this.indicators
      .check('database')
      .attempt(async () => {
        await this.sql.query('SELECT 1');
        return { message: 'PostgreSQL answered' };
      })
      .withTimeout(this.config.health.checkTimeoutMs);
  }

  /** Whether there is a Redis to check: without one, nothing is failing. */
  get hasRedis(): boolean {
    return this.connections !== undefined;
  }

  redis() {
    return this.indicators
      .check('redis')
      .attempt(async () => {
        await this.connections?.client.ping();
        return { message: 'Redis answered' };
      })
      .withTimeout(this.config.health.checkTimeoutMs);
  }
}
