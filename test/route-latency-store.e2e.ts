import type { INestApplicationContext } from '@nestjs/common';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LatencySketch } from '../src/metrics/latency-sketch.js';
import { HOUR_MS, LatencyStore, MAX_SUMMARY_HOURS } from '../src/metrics/latency-store.js';
import { PostgresLatencyStore } from '../src/metrics/postgres-latency.store.js';
import { RedisLatencyStore } from '../src/metrics/redis-latency.store.js';
import { RouteLatency } from '../src/metrics/route-latency.service.js';
import { RedisService } from '../src/redis/redis.service.js';
import { resetState, sql } from './support/kiln.js';
import { ON_REDIS } from './support/env.js';
import { type Backend, startReplica } from './support/replica.js';

const currentHour = () => Math.floor(Date.now() / HOUR_MS);

/** A route's count in each of `ms`'s buckets, as a flush writes them. */
const entriesOf = (route: string, ...ms: number[]) => {
  const sketch = new LatencySketch();
  for (const value of ms) sketch.add(value);
  return [...sketch.entries()].map(([bucket, count]) => ({ route, bucket, count }));
};

interface Case {
  backend: Backend;
  store: typeof RedisLatencyStore | typeof PostgresLatencyStore;
  /** Each store's own retention, checked on the block's first replica. */
  keepsNoLonger: (replicas: INestApplicationContext[]) => Promise<void>;
}

const CASES: Case[] = [
  {
    backend: 'redis',
    store: RedisLatencyStore,
    // An hour's hash expires once the longest window has passed.
    keepsNoLonger: async ([replica]) => {
      const now = currentHour();
      await replica!.get(LatencyStore).add(now, entriesOf('GET /a', 5));
      const redis = replica!.get(RedisService);
      const ttl = await redis.client.ttl(redis.key(`route-latency:${now}`));
      expect(ttl).toBeGreaterThan(MAX_SUMMARY_HOURS * 3600);
      expect(ttl).toBeLessThanOrEqual((MAX_SUMMARY_HOURS + 1) * 3600);
    },
  },
  {
    backend: 'postgres',
    store: PostgresLatencyStore,
    // A process's first flush of an hour deletes the hours before the longest window.
    keepsNoLonger: async ([replica]) => {
      const store = replica!.get(LatencyStore);
      const now = currentHour();
      const oldest = now - MAX_SUMMARY_HOURS + 1;
      const hours = async () =>
        (await sql<{ hour: number }>(`SELECT DISTINCT hour FROM route_latency ORDER BY 1`)).map(
          (row) => row.hour,
        );
      // Flushes of earlier hours delete nothing of these.
      for (const hour of [oldest - 2, oldest - 1, oldest])
        await store.add(hour, entriesOf('GET /a', 5));
      expect(await hours()).toEqual([oldest - 2, oldest - 1, oldest]);

      await store.add(now, entriesOf('GET /a', 5));
      expect(await hours()).toEqual([oldest, now]);
      const read = await replica!.get(RouteLatency).read(MAX_SUMMARY_HOURS);
      expect(read.get('GET /a')?.count).toBe(2);
    },
  },
];

describe.each(CASES.filter(({ backend }) => backend === 'postgres' || ON_REDIS))(
  'route latencies in $backend',
  ({ backend, store, keepsNoLonger }) => {
    const replicas: INestApplicationContext[] = [];
    const latency = (replica = 0) => replicas[replica]!.get(RouteLatency);
    const storeOf = (replica = 0) => replicas[replica]!.get(LatencyStore);

    beforeAll(async () => {
      // One after the other: the first applies the migrations.
      for (let i = 0; i < 2; i++) replicas.push(await startReplica(backend));
    });
    afterAll(() => Promise.all(replicas.map((replica) => replica.close())));
    beforeEach(() => resetState());

    it('is the store the module picks', () => {
      expect(storeOf()).toBeInstanceOf(store);
    });

    it("sums two replicas' flushes of one hour, bucket by bucket", async () => {
      for (const ms of [10, 10, 10]) latency(0).record('GET', '/api/v1/jobs/:id', ms);
      for (const ms of [10, 100]) latency(1).record('GET', '/api/v1/jobs/:id', ms);
      latency(1).record('POST', '/api/v1/jobs', 30);
      // Both add to the same rows at once.
      await Promise.all([latency(0).flush(), latency(1).flush()]);
      latency(0).record('GET', '/api/v1/jobs/:id', 100);

      const sketches = await latency(0).read(1);
      expect([...sketches.keys()].sort()).toEqual(['GET /api/v1/jobs/:id', 'POST /api/v1/jobs']);
      const job = sketches.get('GET /api/v1/jobs/:id')!;
      expect(job.count).toBe(6);
      expect(job.quantile(0.5)).toBeCloseTo(10, 0);
      expect(job.quantile(0.99)).toBeCloseTo(100, -1);
      expect(sketches.get('POST /api/v1/jobs')?.count).toBe(1);
      // The other replica reads the same.
      expect((await latency(1).read(1)).get('GET /api/v1/jobs/:id')?.count).toBe(6);
    });

    it('reads the hours asked for, the current one included', async () => {
      const now = currentHour();
      await storeOf().add(now - 2, entriesOf('GET /a', 5, 5));
      await storeOf().add(now - 1, entriesOf('GET /a', 5));
      await storeOf(1).add(now, entriesOf('GET /a', 50));
      const count = async (hours: number) => (await latency().read(hours)).get('GET /a')?.count;
      expect([await count(1), await count(2), await count(3)]).toEqual([1, 2, 4]);
    });

    it('keeps an hour no longer than the longest window a summary reads', () =>
      keepsNoLonger(replicas));
  },
);
