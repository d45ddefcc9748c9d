import type { ThrottlerStorage } from '@nestjs/throttler';
import type { Redis } from 'ioredis';

/**
 * One fixed window per key: add the request's weight; past the limit, take it back and refuse.
 * A refused request costs nothing, so a client that backs off gets its whole budget next window.
 */
const HIT = `
local hits = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
if hits > tonumber(ARGV[3]) then
  redis.call('DECRBY', KEYS[1], ARGV[1])
  return {hits - tonumber(ARGV[1]), ttl, 1}
end
return {hits, ttl, 0}`;

export interface Hit {
  /** Weight counted in this window, this request's included when it passed. */
  used: number;
  resetMs: number;
  refused: boolean;
}

type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;
type HitCommand = (key: string, weight: number, ttlMs: number, limit: number) => Promise<number[]>;

/**
 * Rate-limit counters in Redis, so every replica enforces one limit together. Each is a single
 * key with a TTL: an idle bucket expires by itself and no cleanup has to sweep it.
 */
export class RedisThrottlerStorage implements ThrottlerStorage {
  private readonly command: HitCommand;

  constructor(redis: Redis) {
    redis.defineCommand('kilnRateLimitHit', { numberOfKeys: 1, lua: HIT });
    this.command = (redis as unknown as { kilnRateLimitHit: HitCommand }).kilnRateLimitHit.bind(
      redis,
    );
  }

  async hit(key: string, ttlMs: number, limit: number, weight: number): Promise<Hit> {
    const [used = 0, resetMs = ttlMs, refused = 0] = await this.command(key, weight, ttlMs, limit);
    return { used, resetMs, refused: refused === 1 };
  }

  /** The throttler's own interface, for one request of weight 1. */
  async increment(key: string, ttl: number, limit: number): Promise<ThrottlerStorageRecord> {
    const { used, resetMs, refused } = await this.hit(key, ttl, limit, 1);
    const seconds = Math.ceil(resetMs / 1000);
    return {
      totalHits: refused ? used + 1 : used,
      timeToExpire: seconds,
      isBlocked: refused,
      timeToBlockExpire: refused ? seconds : 0,
    };
  }
}
