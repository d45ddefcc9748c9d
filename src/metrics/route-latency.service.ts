import {
  type BeforeApplicationShutdown,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { LatencySketch } from './latency-sketch.js';
import { HOUR_MS, type LatencyEntry, LatencyStore, type RouteKey } from './latency-store.js';

const FLUSH_INTERVAL_MS = 10_000;

const hourOf = (at: number) => Math.floor(at / HOUR_MS);

/**
 * Request latencies per route, kept as sketches by the hour in a store every replica shares (Redis,
 * else PostgreSQL), so a summary covers them all. Each process buffers its counts and adds them in
 * one round trip every few seconds.
 */
@Injectable()
export class RouteLatency implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('RouteLatency');
  private buffer = new Map<RouteKey, LatencySketch>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly store: LatencyStore) {}

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

  /** Adds this process's counts to the current hour in the store. */
  async flush(): Promise<void> {
    if (this.buffer.size === 0) return;
    const pending = this.buffer;
    this.buffer = new Map();
    const entries: LatencyEntry[] = [];
    for (const [route, sketch] of pending) {
      for (const [bucket, count] of sketch.entries()) entries.push({ route, bucket, count });
    }
    await this.store.add(hourOf(Date.now()), entries);
  }

  /** Every replica's latencies over the last `hours` whole hours, the current one included. */
  async read(hours: number): Promise<Map<RouteKey, LatencySketch>> {
    await this.flush();
    const now = hourOf(Date.now());
    const entries = await this.store.read(Array.from({ length: hours }, (_, back) => now - back));
    const sketches = new Map<RouteKey, LatencySketch>();
    for (const { route, bucket, count } of entries) {
      let sketch = sketches.get(route);
      if (!sketch) sketches.set(route, (sketch = new LatencySketch()));
      sketch.addToBucket(bucket, count);
    }
    return sketches;
  }

  private async flushQuietly(): Promise<void> {
    try {
      await this.flush();
    } catch (error) {
      this.logger.warn(`Could not store route latencies: ${(error as Error).message}`);
    }
  }
}
