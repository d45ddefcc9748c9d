import type { ThrottlerStorage } from '@nestjs/throttler';
import type { Redis } from 'ioredis';

/**
 * One fixed window per key, for a batch of requests in arrival order: a request is admitted if
 * every one of its weights fits under its key's limit, and then counted in all of them; a refused
 * request counts nothing, so a client that backs off gets its whole budget next window.
 *   KEYS: the k keys. ARGV: n, then ttl and limit per key, then each request's k weights.
 *   Returns, per request, the k counts after it and the 1-based index of its refusal (0: none),
 *   then the milliseconds left in each key's window.
 */
const HIT = `
local k, n = #KEYS, tonumber(ARGV[1])
local used, before, limit = {}, {}, {}
for i = 1, k do
  used[i] = tonumber(redis.call('GET', KEYS[i]) or '0')
  before[i], limit[i] = used[i], tonumber(ARGV[2 * i + 1])
end
local result, weights = {}, 2 * k + 1
for r = 0, n - 1 do
  local refused = 0
  for i = 1, k do
    if used[i] + tonumber(ARGV[weights + r * k + i]) > limit[i] then
      refused = i
      break
    end
  end
  for i = 1, k do
    if refused == 0 then used[i] = used[i] + tonumber(ARGV[weights + r * k + i]) end
    result[#result + 1] = used[i]
  end
  result[#result + 1] = refused
end
for i = 1, k do
  local ttl = tonumber(ARGV[2 * i])
  if used[i] > before[i] then redis.call('INCRBY', KEYS[i], used[i] - before[i]) end
  local left = redis.call('PTTL', KEYS[i])
  if left == -1 then redis.call('PEXPIRE', KEYS[i], ttl) end
  result[#result + 1] = left >= 0 and left or ttl
end
return result`;

const RATE_LIMIT_COMMAND = 'kilnRateLimitHit';

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

/** Requests against the same keys and limits that arrived in one turn of the event loop. */
interface Batch {
  counts: readonly Count[];
  weights: number[];
  waiting: { resolve: (counted: Counted) => void; reject: (error: unknown) => void }[];
}

type HitCommand = (...keysThenArgs: (string | number)[]) => Promise<number[]>;

/**
 * Rate-limit counters in Redis, so every replica enforces one limit together. Every limit of a
 * request is counted in one round trip, and a caller's requests that arrive in the same turn of
 * the event loop share one: under load, a busy client's requests cost one script run per turn
 * instead of one each, with the same answers as one by one. Each counter is a single key with a
 * TTL: an idle bucket expires by itself and no cleanup has to sweep it.
 */
export class RedisThrottlerStorage implements ThrottlerStorage {
  private readonly command: HitCommand;
  private batches = new Map<string, Batch>();

  constructor(redis: Redis) {
    redis.defineCommand(RATE_LIMIT_COMMAND, { lua: HIT });
    const command = (redis as unknown as Record<typeof RATE_LIMIT_COMMAND, HitCommand>)[
      RATE_LIMIT_COMMAND
    ];
    this.command = command.bind(redis);
  }

  count(counts: readonly Count[]): Promise<Counted> {
    let group = '';
    for (const count of counts) group += `${count.key} ${count.limit} ${count.ttlMs}\n`;
    let batch = this.batches.get(group);
    if (!batch) {
      if (this.batches.size === 0) setImmediate(() => this.flush());
      batch = { counts, weights: [], waiting: [] };
      this.batches.set(group, batch);
    }
    for (const count of counts) batch.weights.push(count.weight);
    const { waiting } = batch;
    return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
  }

  /**
   * `ThrottlerStorage`'s one method, which makes this the module's `storage`: one request of weight
   * 1 against one limit. Kiln's guard counts through `count`.
   */
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

  private flush(): void {
    const batches = this.batches;
    this.batches = new Map();
    for (const batch of batches.values()) void this.send(batch);
  }

  private async send({ counts, weights, waiting }: Batch): Promise<void> {
    const args: (string | number)[] = [counts.length];
    for (const count of counts) args.push(count.key);
    args.push(waiting.length);
    for (const count of counts) args.push(count.ttlMs, count.limit);
    let reply: number[];
    try {
      reply = await this.command(...args, ...weights);
    } catch (error) {
      for (const { reject } of waiting) reject(error);
      return;
    }
    const k = counts.length;
    const resetMs = reply.slice(waiting.length * (k + 1));
    waiting.forEach(({ resolve }, r) => {
      const offset = r * (k + 1);
      const refused = reply[offset + k] ?? 0;
      resolve({
        used: reply.slice(offset, offset + k),
        resetMs,
        refused: refused > 0 ? refused - 1 : null,
      });
    });
  }
}
