import 'reflect-metadata';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { DependencyOutages } from '../src/common/dependency-outages.service.js';
import { loadConfig } from '../src/config/config.js';
import { dataSourceOptions, poolOptions } from '../src/database/data-source-options.js';
import { Sql } from '../src/database/sql.service.js';
import { PostgresThrottlerStorage } from '../src/rate-limit/postgres-throttler.storage.js';
import type { Count, RateLimitStorage } from '../src/rate-limit/rate-limit.storage.js';
import { RedisThrottlerStorage } from '../src/rate-limit/redis-throttler.storage.js';
import { RedisService } from '../src/redis/redis.service.js';
import { OwnRedis } from '../test/support/redis-server.js';
import { cpuMicros } from './cpu.js';

/**
 * What one rate-limit batch costs in Redis and in PostgreSQL, measured in the same run:
 *   npm run bench:rate-limit      (BENCH_BATCHES=3000 per figure, BENCH_ROUNDS=3)
 * A batch is a caller's requests of one event-loop turn against Kiln's three limits (burst,
 * general, submit), never refused: 1 request, then 16. Each is timed one batch after the other
 * (latency), then with 8 callers at once (throughput). CPU per batch is read from /proc for the
 * server (a Redis of the benchmark's own; the PostgreSQL backends of its pool) and for this
 * process (the client side: encoding, the driver, the batching). Rounds alternate the stores.
 */
const BATCHES = Number(process.env.BENCH_BATCHES ?? 3000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const DATABASE = 'kiln_bench_rate_limit';
const ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const CALLERS = 8;
const NEVER_REACHED = 1_000_000_000;

interface Store {
  name: 'redis' | 'postgres';
  storage: RateLimitStorage;
  /** The server processes that do this store's work. */
  serverPids: () => Promise<number[]>;
}

const limitsOf = (storage: RateLimitStorage, caller: number): Count[] =>
  ['burst', 'general', 'submit'].map((limit) => ({
    key: storage.key(`bench:${caller}`, limit),
    ttlMs: 60_000,
    limit: NEVER_REACHED,
    weight: 1,
  }));

/** One caller's batches of `size` requests, one after the other. */
async function batches(storage: RateLimitStorage, caller: number, size: number, count: number) {
  const counts = limitsOf(storage, caller);
  for (let i = 0; i < count; i++) {
    await Promise.all(Array.from({ length: size }, () => storage.count(counts)));
  }
}

/** `callers` callers at once, each with its batches one after the other. */
const together = (store: Store, size: number, callers: number, count: number) =>
  Promise.all(
    Array.from({ length: callers }, (_, caller) => batches(store.storage, caller, size, count)),
  );

async function measure(store: Store, size: number, callers: number) {
  // Warm-up: scripts loaded, statements prepared on every connection the callers use.
  await together(store, size, callers, 50);
  const pids = await store.serverPids();
  const serverCpu = () => pids.reduce((sum, pid) => sum + cpuMicros(pid), 0);
  const perCaller = Math.ceil(BATCHES / callers);
  const total = perCaller * callers;
  const [serverBefore, clientBefore, started] = [serverCpu(), process.cpuUsage(), Date.now()];
  await together(store, size, callers, perCaller);
  const wallMs = Date.now() - started;
  const client = process.cpuUsage(clientBefore);
  return {
    microsPerBatch: Math.round((wallMs * 1000) / total),
    batchesPerSecond: Math.round((total * 1000) / wallMs),
    serverCpuMicrosPerBatch: Math.round((serverCpu() - serverBefore) / total),
    clientCpuMicrosPerBatch: Math.round((client.user + client.system) / total),
  };
}

const SCENARIOS = [
  { name: 'oneRequest', size: 1, callers: 1 },
  { name: 'sixteenRequests', size: 16, callers: 1 },
  { name: 'oneRequestEightCallers', size: 1, callers: CALLERS },
] as const;

async function round(store: Store) {
  const figures: Record<string, Awaited<ReturnType<typeof measure>>> = {};
  for (const { name, size, callers } of SCENARIOS)
    figures[name] = await measure(store, size, callers);
  return figures;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;

async function admin(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

async function main(): Promise<void> {
  await admin(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
  await admin(`CREATE DATABASE ${DATABASE}`);
  const redisServer = await OwnRedis.start();
  const config = loadConfig({
    DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${DATABASE}`,
    REDIS_URL: redisServer.url,
    REDIS_PREFIX: 'kiln-bench',
  });
  // The backends measured must outlive a measurement: pg closes a connection idle for 10 s.
  const dataSource = await new DataSource({
    ...dataSourceOptions(config),
    extra: { max: CALLERS, ...poolOptions(config), idleTimeoutMillis: 0 },
  }).initialize();
  await dataSource.runMigrations();
  const redis = new RedisService(config, new DependencyOutages());
  const sql = new Sql(dataSource);
  const stores: Store[] = [
    {
      name: 'redis',
      storage: new RedisThrottlerStorage(redis),
      serverPids: async () => {
        const info = await redis.client.info('server');
        return [Number(/process_id:(\d+)/.exec(info)?.[1])];
      },
    },
    {
      name: 'postgres',
      storage: new PostgresThrottlerStorage(sql),
      serverPids: async () =>
        (
          await sql.query<{ pid: number }>(
            `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`,
          )
        ).map((row) => row.pid),
    },
  ];
  try {
    const rounds: Record<string, Record<string, Record<string, number>>[]> = {};
    for (let r = 0; r < ROUNDS; r++) {
      for (const store of r % 2 ? [...stores].reverse() : stores) {
        (rounds[store.name] ??= []).push(await round(store));
      }
    }
    const report: Record<string, unknown> = {
      machine: `${process.platform} ${process.arch}, node ${process.version}`,
      settings: { batches: BATCHES, rounds: ROUNDS },
    };
    for (const [name, results] of Object.entries(rounds)) {
      report[name] = Object.fromEntries(
        SCENARIOS.map(({ name: scenario }) => [
          scenario,
          Object.fromEntries(
            Object.keys(results[0]![scenario]!).map((figure) => [
              figure,
              median(results.map((result) => result[scenario]![figure]!)),
            ]),
          ),
        ]),
      );
    }
    console.log(JSON.stringify(report, null, 2));
  } finally {
    await redis.onApplicationShutdown();
    await dataSource.destroy();
    await redisServer.stop();
    await admin(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
  }
}

await main();
