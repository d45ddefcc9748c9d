import { RedisService } from '../redis/redis.service.js';
import { type Batch, RateLimitStorage } from './rate-limit.storage.js';

/**
 * A batch in one script run (see RateLimitStorage for the rules).
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

type HitCommand = (...keysThenArgs: (string | number)[]) => Promise<number[]>;

/**
 * Rate-limit counters in Redis, one script run per batch. Each counter is a single key with a TTL:
 * an idle bucket expires by itself and no cleanup has to sweep it.
 */
export class RedisThrottlerStorage extends RateLimitStorage {
  private readonly command: HitCommand;

  constructor(private readonly redis: RedisService) {
    super();
    redis.client.defineCommand(RATE_LIMIT_COMMAND, { lua: HIT });
    const command = (redis.client as unknown as Record<typeof RATE_LIMIT_COMMAND, HitCommand>)[
      RATE_LIMIT_COMMAND
    ];
    this.command = command.bind(redis.client);
  }

  get available(): boolean {
    return this.redis.available;
  }

  /** A caller's counters share a hash tag, so a Redis Cluster keeps them on one node. */
  key(tracker: string, limit: string): string {
    return this.redis.key(`rate-limit:{${tracker}}:${limit}`);
  }

  sweep(): Promise<number> {
    return Promise.resolve(0);
  }

  protected hit({ counts, weights, waiting }: Batch): Promise<number[]> {
    const args: (string | number)[] = [counts.length];
    for (const count of counts) args.push(count.key);
    args.push(waiting.length);
    for (const count of counts) args.push(count.ttlMs, count.limit);
    return this.command(...args, ...weights);
  }
}
