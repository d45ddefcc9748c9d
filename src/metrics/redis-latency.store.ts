import { RedisService } from '../redis/redis.service.js';
import { type LatencyEntry, LatencyStore, MAX_SUMMARY_HOURS } from './latency-store.js';

/** A hash per hour, a field per route and bucket, expiring once no summary can ask for it. */
export class RedisLatencyStore extends LatencyStore {
  constructor(private readonly redis: RedisService) {
    super();
  }

  async add(hour: number, entries: readonly LatencyEntry[]): Promise<void> {
    const key = this.hourKey(hour);
    const pipeline = this.redis.client.pipeline();
    for (const { route, bucket, count } of entries) {
      pipeline.hincrby(key, `${route}\t${bucket}`, count);
    }
    pipeline.expire(key, (MAX_SUMMARY_HOURS + 1) * 3600);
    await pipeline.exec();
  }

  async read(hours: readonly number[]): Promise<LatencyEntry[]> {
    const hashes = await Promise.all(
      hours.map((hour) => this.redis.client.hgetall(this.hourKey(hour))),
    );
    return hashes.flatMap((hash) =>
      Object.entries(hash).map(([field, count]) => {
        const [route = '', bucket] = field.split('\t');
        return { route, bucket: Number(bucket), count: Number(count) };
      }),
    );
  }

  private hourKey(hour: number): string {
    return this.redis.key(`route-latency:${hour}`);
  }
}
