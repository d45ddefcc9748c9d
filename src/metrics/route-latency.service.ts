import {
  type BeforeApplicationShutdown,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { RedisService } from '../redis/redis.service.js';
import { LatencySketch } from './latency-sketch.js';

const HOUR_MS = 3_600_000;
const FLUSH_INTERVAL_MS = 10_000;
/** The longest window a summary can ask for, and how long Redis keeps an hour's sketches. */
export const MAX_SUMMARY_HOURS = 168;

/** `GET /api/v1/jobs/:id` */
export type RouteKey = string;

/**
 * Request latencies per route, kept as sketches in Redis by the hour so a summary covers every
 * replica. Each process buffers its counts and adds them with one pipeline every few seconds.
 */
@Injectable()
export class RouteLatency implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('RouteLatency');
  private buffer = new Map<RouteKey, LatencySketch>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly redis: RedisService) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.flushQuietly(), FLUSH_INTERVAL_MS).unref();
  }

  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.flushQuietly();
  }

  record(method: string, route: string, ms: number): void {
    const key = `${method} ${route}`;
    let sketch = this.buffer.get(key);
    if (!sketch) this.buffer.set(key, (sketch = new LatencySketch()));
    sketch.add(ms);
  }

  /** Adds this process's counts to the current hour in Redis. */
  async flush(): Promise<void> {
    if (this.buffer.size === 0) return;
    const pending = this.buffer;
    this.buffer = new Map();
    const key = this.hourKey(Date.now());
    const pipeline = this.redis.client.pipeline();
    for (const [route, sketch] of pending) {
      for (const [bucket, count] of sketch.entries())
        pipeline.hincrby(key, `${route}\t${bucket}`, count);
    }
    pipeline.expire(key, (MAX_SUMMARY_HOURS + 1) * 3600);
    await pipeline.exec();
  }

  /** Every replica's latencies over the last `hours` whole hours, the current one included. */
  async read(hours: number): Promise<Map<RouteKey, LatencySketch>> {
    await this.flush();
    const now = Date.now();
    const hashes = await Promise.all(
      Array.from({ length: hours }, (_, back) =>
        this.redis.client.hgetall(this.hourKey(now - back * HOUR_MS)),
      ),
    );
    const sketches = new Map<RouteKey, LatencySketch>();
    for (const hash of hashes) {
      for (const [field, count] of Object.entries(hash)) {
        const [route = '', bucket] = field.split('\t');
        let sketch = sketches.get(route);
        if (!sketch) sketches.set(route, (sketch = new LatencySketch()));
        sketch.addToBucket(Number(bucket), Number(count));
      }
    }
    return sketches;
  }

  private hourKey(at: number): string {
    return this.redis.key(`route-latency:${Math.floor(at / HOUR_MS)}`);
  }

  private async flushQuietly(): Promise<void> {
    try {
      await this.flush();
    } catch (error) {
      this.logger.warn(`Could not store route latencies: ${(error as Error).message}`);
    }
  }
}
