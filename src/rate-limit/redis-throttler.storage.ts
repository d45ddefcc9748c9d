import type { ThrottlerStorage } from '@nestjs/throttler';
import type { Redis } from 'ioredis';

/**
 * One fixed window per key: add each count's weight; if any goes past its limit, take them all
 * back and name it. A refused request costs nothing, so a client that backs off gets its whole
 * budget next window. Returns `used, resetMs` per key, then the 1-based index of the refusal.
 */
const HIT = `
local refused = 0
local result = {}
for i, key in ipairs(KEYS) do
  local weight, ttl, limit = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i])
  local used = redis.call('INCRBY', key, weight)
  local left = redis.call('PTTL', key)
  if left < 0 then
    redis.call('PEXPIRE', key, ttl)
    left = ttl
  end
  if refused == 0 and used > limit then refused = i end
  result[2 * i - 1], result[2 * i] = used, left
end
if refused > 0 then
  for i, key in ipairs(KEYS) do
    result[2 * i - 1] = redis.call('DECRBY', key, ARGV[3 * i - 2])
  end
end
result[#result + 1] = refused
return result`;

export interface Count {
  key: string;
  ttlMs: number;
  limit: number;
  weight: number;
}

export interface Counted {
  /** Weight counted in each window, this request's included unless it was refused. */
  used: number[];
  resetMs: number[];
  /** Index of the first count past its limit; then nothing was counted. */
  refused: number | null;
}

type HitCommand = (...keysThenArgs: (string | number)[]) => Promise<number[]>;

/**
 * Rate-limit counters in Redis, so every replica enforces one limit together, with every limit
 * of a request counted in one round trip. Each counter is a single key with a TTL: an idle bucket
 * expires by itself and no cleanup has to sweep it.
 */
export class RedisThrottlerStorage implements ThrottlerStorage {
  private readonly command: HitCommand;

  constructor(redis: Redis) {
    redis.defineCommand('kilnRateLimitHit', { lua: HIT });
    const command = (redis as unknown as { kilnRateLimitHit: HitCommand }).kilnRateLimitHit;
    this.command = command.bind(redis);
  }

  async count(counts: readonly Count[]): Promise<Counted> {
    const reply = await this.command(
      counts.length,
      ...counts.map((count) => count.key),
      ...counts.flatMap((count) => [count.weight, count.ttlMs, count.limit]),
    );
    const refused = reply.at(-1) ?? 0;
    return {
      used: counts.map((_, i) => reply[2 * i] ?? 0),
      resetMs: counts.map((count, i) => reply[2 * i + 1] ?? count.ttlMs),
      refused: refused > 0 ? refused - 1 : null,
    };
  }

  /** The throttler's own interface, for one request of weight 1 against one limit. */
  async increment(key: string, ttl: number, limit: number) {
    const { used, resetMs, refused } = await this.count([{ key, ttlMs: ttl, limit, weight: 1 }]);
    const seconds = Math.ceil((resetMs[0] ?? ttl) / 1000);
    const isBlocked = refused !== null;
    return {
      totalHits: (used[0] ?? 0) + (isBlocked ? 1 : 0),
      timeToExpire: seconds,
      isBlocked,
      timeToBlockExpire: isBlocked ? seconds : 0,
    };
  }
}
