import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { INestApplicationContext } from '@nestjs/common';
import { getStorageToken } from '@nestjs/throttler';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Sql } from '../src/database/sql.service.js';
import { PostgresThrottlerStorage } from '../src/rate-limit/postgres-throttler.storage.js';
import { type Count, RateLimitStorage } from '../src/rate-limit/rate-limit.storage.js';
import { RedisThrottlerStorage } from '../src/rate-limit/redis-throttler.storage.js';
import { RedisService } from '../src/redis/redis.service.js';
import { sql } from './support/kiln.js';
import { ON_REDIS } from './support/env.js';
import { type Backend, startReplica } from './support/replica.js';

interface Case {
  backend: Backend;
  storage: typeof RedisThrottlerStorage | typeof PostgresThrottlerStorage;
  /** Counts the round trips a replica's storage makes from now on. */
  roundTrips: (replica: INestApplicationContext) => () => number;
  /** Whether the store still holds a counter. */
  holds: (replica: INestApplicationContext, key: string) => Promise<boolean>;
}

const spyCalls = (spy: { mock: { calls: unknown[] } }) => () => spy.mock.calls.length;

const CASES: Case[] = [
  {
    backend: 'redis',
    storage: RedisThrottlerStorage,
    roundTrips: (replica) => spyCalls(vi.spyOn(replica.get(RedisService).client, 'sendCommand')),
    holds: async (replica, key) => (await replica.get(RedisService).client.exists(key)) === 1,
  },
  {
    backend: 'postgres',
    storage: PostgresThrottlerStorage,
    roundTrips: (replica) => spyCalls(vi.spyOn(replica.get(Sql), 'query')),
    holds: async (_, key) =>
      (await sql(`SELECT 1 FROM rate_limit_counters WHERE key = $1`, [key])).length === 1,
  },
];

/** `used` and `refused` of each answer, the way the tests compare them. */
const outcomes = (counted: { used: number[]; refused: number | null }[]) =>
  counted.map(({ used, refused }) => [used, refused]);

describe.each(CASES.filter(({ backend }) => backend === 'postgres' || ON_REDIS))(
  'rate-limit counters in $backend',
  ({ backend, storage, roundTrips, holds }) => {
    const replicas: INestApplicationContext[] = [];
    let counters: RateLimitStorage;

    beforeAll(async () => {
      // One after the other: the first applies the migrations.
      for (let i = 0; i < 2; i++) replicas.push(await startReplica(backend));
      counters = replicas[0]!.get(RateLimitStorage);
    });
    afterAll(() => Promise.all(replicas.map((replica) => replica.close())));
    afterEach(() => {
      vi.restoreAllMocks();
    });

    /** A counter no other test uses. */
    const fresh = (limit = 'submit') => counters.key(`test:${randomUUID()}`, limit);
    const one = (key: string, limit: number, weight = 1, ttlMs = 60_000): Count => ({
      key,
      ttlMs,
      limit,
      weight,
    });

    it('is the storage the modules pick, and the throttler stores in it', () => {
      expect(counters).toBeInstanceOf(storage);
      expect(replicas[0]!.get(getStorageToken())).toBe(counters);
    });

    it('admits up to the limit, refuses past it, and says when the window resets', async () => {
      const key = fresh();
      const counted = [];
      for (let i = 0; i < 4; i++) counted.push(await counters.count([one(key, 3)]));
      expect(outcomes(counted)).toEqual([
        [[1], null],
        [[2], null],
        [[3], null],
        [[3], 0],
      ]);
      for (const { resetMs } of counted) {
        expect(resetMs[0]).toBeGreaterThan(55_000);
        expect(resetMs[0]).toBeLessThanOrEqual(60_000);
      }
    });

    it('counts nothing for a refused request, so a lighter one still fits', async () => {
      const key = fresh();
      const counted = [];
      for (const weight of [4, 3, 1, 1]) counted.push(await counters.count([one(key, 5, weight)]));
      expect(outcomes(counted)).toEqual([
        [[4], null],
        [[4], 0],
        [[5], null],
        [[5], 0],
      ]);
    });

    it('admits a request only if it fits every limit, and then counts it in all of them', async () => {
      const [burst, general] = [fresh('burst'), fresh('general')];
      const both = () => counters.count([one(burst, 2), one(general, 5, 1, 30_000)]);
      const counted = [await both(), await both(), await both()];
      expect(outcomes(counted)).toEqual([
        [[1, 1], null],
        [[2, 2], null],
        [[2, 2], 0],
      ]);
      expect(counted[2]!.resetMs[1]).toBeLessThanOrEqual(30_000);
      // The general window counted the two admitted requests only: three more fit, not four.
      const alone = [];
      for (let i = 0; i < 4; i++) alone.push(await counters.count([one(general, 5, 1, 30_000)]));
      expect(outcomes(alone).map(([, refused]) => refused)).toEqual([null, null, null, 0]);
      const refusedSecond = await counters.count([one(fresh('burst'), 9), one(general, 5)]);
      expect(refusedSecond).toMatchObject({ used: [0, 5], refused: 1 });
    });

    it('restarts a lapsed window at zero', async () => {
      const key = fresh('burst');
      const counted = [await counters.count([one(key, 1, 1, 300)])];
      counted.push(await counters.count([one(key, 1, 1, 300)]));
      await sleep(400);
      counted.push(await counters.count([one(key, 1, 1, 300)]));
      expect(outcomes(counted)).toEqual([
        [[1], null],
        [[1], 0],
        [[1], null],
      ]);
      expect(counted[2]!.resetMs[0]).toBeGreaterThan(200);
    });

    it("counts one caller's requests of one turn in one round trip, as if one by one", async () => {
      const key = fresh();
      await counters.count([one(fresh(), 1)]);
      const sent = roundTrips(replicas[0]!);
      const counted = await Promise.all(
        Array.from({ length: 5 }, () => counters.count([one(key, 3)])),
      );
      expect(outcomes(counted)).toEqual([
        [[1], null],
        [[2], null],
        [[3], null],
        [[3], 0],
        [[3], 0],
      ]);
      expect(sent()).toBe(1);
    });

    it('never admits more than the limit to two replicas counting one key at once', async () => {
      const key = fresh();
      const limit = 50;
      const answers = [];
      for (let turn = 0; turn < 30; turn++) {
        for (const replica of replicas) {
          const storage = replica.get(RateLimitStorage);
          for (let i = 0; i < 5; i++) answers.push(storage.count([one(key, limit)]));
        }
        // The next turn's batches leave while this turn's are still counting.
        await new Promise(setImmediate);
      }
      const counted = await Promise.all(answers);
      expect(counted.filter(({ refused }) => refused === null)).toHaveLength(limit);
      expect(Math.max(...counted.map(({ used }) => used[0]!))).toBe(limit);
      const last = await replicas[1]!.get(RateLimitStorage).count([one(key, limit, 0)]);
      expect(last.used).toEqual([limit]);
    });

    it('answers ThrottlerStorage.increment from the same counters', async () => {
      const key = fresh();
      expect(await counters.increment(key, 60_000, 1)).toEqual({
        totalHits: 1,
        timeToExpire: 60,
        isBlocked: false,
        timeToBlockExpire: 0,
      });
      expect(await counters.increment(key, 60_000, 1)).toMatchObject({
        totalHits: 2,
        isBlocked: true,
        timeToBlockExpire: 60,
      });
    });

    it('sweeps counters whose window has lapsed, and keeps live ones', async () => {
      const [lapsed, live] = [fresh('burst'), fresh()];
      await counters.count([one(lapsed, 5, 1, 100)]);
      await counters.count([one(live, 5)]);
      await sleep(200);
      const swept = await counters.sweep(1_000);
      // Redis expires its keys by themselves; PostgreSQL also sweeps other tests' lapsed counters.
      if (backend === 'redis') expect(swept).toBe(0);
      else expect(swept).toBeGreaterThanOrEqual(1);
      expect(await holds(replicas[0]!, lapsed)).toBe(false);
      expect(await holds(replicas[0]!, live)).toBe(true);
    });
  },
);
