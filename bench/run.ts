import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import pg from 'pg';
import {
  BENCH_DATABASE,
  BENCH_DATABASE_URL,
  BENCH_PREFIX,
  BENCH_REDIS_URL,
  QUEUE_BACKENDS,
  type QueueBackend,
  WORKER_CONCURRENCY,
} from './bench-env.js';
import { cpuMicros } from './cpu.js';
import { pacedLoad } from './paced-load.js';

/**
 * Kiln against a bare Fastify + pg + BullMQ baseline, with the queues on Redis and on PostgreSQL
 * alone, measured in the same run on the same machine and reported as ratios, so the figures mean
 * something on a noisy machine.
 *   npm run bench      (BENCH_SECONDS=6, BENCH_ROUNDS=3, BENCH_JOBS=3000, BENCH_ONLY=submit|jobs,
 *                       BENCH_BACKEND=redis|postgres|both)
 */
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
/** Each half alternates the sides this many rounds, and reports medians and each round's ratio. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const JOBS = Number(process.env.BENCH_JOBS ?? 3000);
/** `submit` or `jobs` runs one half only. */
const ONLY = process.env.BENCH_ONLY;
/** `redis` or `postgres` measures one queue backend only; `both` (the default) compares them. */
const BACKEND = process.env.BENCH_BACKEND ?? 'both';
const BACKENDS = QUEUE_BACKENDS.filter((backend) => BACKEND === 'both' || BACKEND === backend);
if (BACKENDS.length === 0) throw new Error(`BENCH_BACKEND=${BACKEND}: redis, postgres or both`);
/** The submit half's fixed offered rate, and the jobs half's steady rate for end-to-end latency. */
const FIXED_RATE = 1000;
const LATENCY_RATE = 100;
const PORT = 3900;
const storage = join(tmpdir(), 'kiln-bench');
const DEADLOCK_DETECTED = '40P01';

/**
 * Kiln is measured as clients meet it: a key on every request, every limit counted (in Redis, or
 * in PostgreSQL where it is alone).
 */
const BENCH_API_KEY = 'kiln_bench-key-0123456789abcdef';
const NEVER_REACHED = '100000000';

const kilnEnv = (role: string, backend: QueueBackend) => ({
  KILN_ROLE: role,
  PORT: String(PORT),
  LOG_LEVEL: 'warn',
  DATABASE_URL: BENCH_DATABASE_URL,
  QUEUE_BACKEND: backend,
  ...(backend === 'redis' && { REDIS_URL: BENCH_REDIS_URL, REDIS_PREFIX: BENCH_PREFIX }),
  ARTIFACT_DIR: join(storage, 'artifacts'),
  TEMP_DIR: join(storage, 'tmp'),
  CPU_CONCURRENCY: String(WORKER_CONCURRENCY),
  BATCH_MAX: '100',
  KILN_ADMIN_API_KEY: BENCH_API_KEY,
  RATE_LIMIT_WHITELIST: 'none',
  RATE_LIMIT_PER_MINUTE: NEVER_REACHED,
  RATE_LIMIT_BURST_PER_SECOND: NEVER_REACHED,
  RATE_LIMIT_SUBMIT_PER_MINUTE: NEVER_REACHED,
});

interface Side {
  name: 'baseline' | 'kiln';
  backend: QueueBackend;
  submitUrl: string;
  startServer(): Promise<ChildProcess>;
  startWorker(): Promise<ChildProcess>;
}

/** The baseline and Kiln with their queues on `backend`. */
const sidesOn = (backend: QueueBackend): Record<Side['name'], Side> => ({
  baseline: {
    name: 'baseline',
    backend,
    submitUrl: `http://127.0.0.1:${PORT}/jobs`,
    startServer: () =>
      start('baseline-server.js', { PORT: String(PORT), BENCH_QUEUE_BACKEND: backend }),
    startWorker: () => start('baseline-worker.js', { BENCH_QUEUE_BACKEND: backend }),
  },
  kiln: {
    name: 'kiln',
    backend,
    submitUrl: `http://127.0.0.1:${PORT}/api/v1/jobs`,
    startServer: () => start('kiln-server.js', kilnEnv('api', backend)),
    startWorker: () =>
      start('kiln-server.js', { ...kilnEnv('worker', backend), PORT: String(PORT + 1) }),
  },
});

async function start(file: string, env: Record<string, string>): Promise<ChildProcess> {
  const child = fork(new URL(file, import.meta.url), { env: { ...process.env, ...env } });
  const [message] = (await Promise.race([
    once(child, 'message'),
    once(child, 'exit'),
  ])) as unknown[];
  if (message !== 'ready') throw new Error(`${file} did not start`);
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  child.kill('SIGTERM');
  if (child.exitCode === null) await once(child, 'exit');
}

async function sql<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

/**
 * Waits until no statement of the servers has run for two looks in a row, so that the requests a
 * load left in flight are done before a reset: none lands in the next measurement, and on
 * PostgreSQL none waits behind the TRUNCATE of BullMQ's tables (an enqueue deadlocks with it, or
 * waits past Kiln's enqueue timeout and Kiln answers 503 until PostgreSQL looks up again).
 */
async function settle(): Promise<void> {
  for (let quiet = 0; quiet < 2;) {
    await sleep(100);
    const [row] = await sql<{ busy: number }>(
      BENCH_DATABASE_URL,
      `SELECT count(*)::int AS busy FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'`,
    );
    quiet = row?.busy === 0 ? quiet + 1 : 0;
  }
}

/**
 * Everything of BullMQ's on PostgreSQL but its schema version, as Kiln's tests empty it. Should a
 * task of Kiln's own (the reconciler) hold one table while it waits for another that the loop has
 * locked, PostgreSQL ends one of the two, and this tries again.
 */
async function emptyBullmq(): Promise<void> {
  for (;;) {
    try {
      await sql(
        BENCH_DATABASE_URL,
        `DO $$ DECLARE t text; BEGIN
           FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'bullmq' AND tablename <> 'migration'
           LOOP EXECUTE format('TRUNCATE bullmq.%I CASCADE', t); END LOOP; END $$`,
      );
      return;
    } catch (error) {
      if ((error as { code?: string }).code !== DEADLOCK_DETECTED) throw error;
    }
  }
}

/** Empties the jobs, and what the backend keeps: queues, and Kiln's counters and latencies. */
async function reset(backend: QueueBackend): Promise<void> {
  await settle();
  if (backend === 'postgres') {
    await emptyBullmq();
    await sql(BENCH_DATABASE_URL, 'TRUNCATE jobs, artifacts, rate_limit_counters, route_latency');
    return;
  }
  await sql(BENCH_DATABASE_URL, 'TRUNCATE jobs, artifacts');
  const redis = new Redis(BENCH_REDIS_URL);
  const keys = await redis.keys(`${BENCH_PREFIX}:*`);
  for (let start = 0; start < keys.length; start += 1000)
    await redis.unlink(...keys.slice(start, start + 1000));
  redis.disconnect();
}

/** Every benchmark request: one no-op job, submitted with the key. */
const SUBMISSION = {
  headers: { 'content-type': 'application/json', authorization: `Bearer ${BENCH_API_KEY}` },
  body: JSON.stringify({ kind: 'noop', input: { tag: 'bench' } }),
};

/** As many submissions as the server answers, on 50 connections unless told otherwise. */
function load(url: string, options: Partial<autocannon.Options>): Promise<autocannon.Result> {
  return autocannon({ url, method: 'POST', ...SUBMISSION, connections: 50, ...options });
}

/** Submissions at a fixed offered rate, evenly spaced. */
const paced = (url: string, rate: number, seconds: number, connections: number) =>
  pacedLoad({ url, ...SUBMISSION, rate, seconds, warmupSeconds: 2, connections });

function checked<T extends { non2xx: number; errors: number }>(result: T): T {
  if (result.non2xx > 0 || result.errors > 0) {
    throw new Error(`${result.non2xx} non-2xx answers and ${result.errors} errors`);
  }
  return result;
}

async function submitBench(side: Side) {
  await reset(side.backend);
  const server = await side.startServer();
  try {
    await load(side.submitUrl, { duration: 2 }); // warm-up
    // Each measurement starts from empty tables, not from the rows (and vacuum) the last one left.
    await reset(side.backend);
    const cpuBefore = cpuMicros(server.pid!);
    const saturated = checked(await load(side.submitUrl, { duration: SECONDS }));
    const serverCpuMicrosPerRequest = Math.round(
      (cpuMicros(server.pid!) - cpuBefore) / saturated.requests.total,
    );
    await reset(side.backend);
    const fixed = checked(await paced(side.submitUrl, FIXED_RATE, SECONDS, 50));
    return {
      requestsPerSecond: saturated.requests.average,
      p50Ms: saturated.latency.p50,
      p99Ms: saturated.latency.p99,
      serverCpuMicrosPerRequest,
      at1000: {
        requestsPerSecond: fixed.requestsPerSecond,
        p50Ms: fixed.p50Ms,
        p99Ms: fixed.p99Ms,
      },
    };
  } finally {
    await stop(server);
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;

/** The median of each figure across rounds; objects of figures nest. */
function medians<T>(rounds: T[]): T {
  const [first] = rounds;
  if (typeof first === 'number') return median(rounds as number[]) as T;
  return Object.fromEntries(
    Object.keys(first as object).map((key) => [
      key,
      medians(rounds.map((round) => (round as Record<string, unknown>)[key])),
    ]),
  ) as T;
}

async function waitForCompleted(count: number): Promise<void> {
  for (;;) {
    const [row] = await sql<{ done: number }>(
      BENCH_DATABASE_URL,
      `SELECT count(*)::int AS done FROM jobs WHERE status = 'completed'`,
    );
    if ((row?.done ?? 0) >= count) return;
    await sleep(100);
  }
}

async function jobsBench(side: Side) {
  // Throughput: queue JOBS jobs with no worker running, then time how fast a worker drains them.
  await reset(side.backend);
  const server = await side.startServer();
  try {
    checked(await load(side.submitUrl, { amount: JOBS, connections: 20 }));
    const worker = await side.startWorker();
    await waitForCompleted(JOBS);
    await stop(worker);
    const [drain] = await sql<{ seconds: number }>(
      BENCH_DATABASE_URL,
      `SELECT extract(epoch FROM max(finished_at) - min(started_at))::float8 AS seconds FROM jobs`,
    );

    // Latency: a steady LATENCY_RATE jobs/s while the worker runs; submit → completed per job.
    await reset(side.backend);
    const running = await side.startWorker();
    checked(await paced(side.submitUrl, LATENCY_RATE, 5, 10));
    const [{ count } = { count: 0 }] = await sql<{ count: number }>(
      BENCH_DATABASE_URL,
      'SELECT count(*)::int AS count FROM jobs',
    );
    await waitForCompleted(count);
    await stop(running);
    const [latency] = await sql<{ p50: number; p99: number }>(
      BENCH_DATABASE_URL,
      `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at)) * 1000 AS p50,
              percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at)) * 1000 AS p99
       FROM jobs`,
    );
    return {
      jobsPerSecond: JOBS / (drain?.seconds ?? Number.NaN),
      endToEndP50Ms: latency?.p50 ?? Number.NaN,
      endToEndP99Ms: latency?.p99 ?? Number.NaN,
    };
  } finally {
    await stop(server);
  }
}

/** Each side's figures, round by round. */
type Rounds<T> = Record<Side['name'], T[]>;

/**
 * Runs `bench` BENCH_ROUNDS times on each side of each backend, alternating, so a machine's drift
 * hits them all.
 */
async function alternate<T>(bench: (side: Side) => Promise<T>) {
  const rounds = new Map<QueueBackend, Rounds<T>>(
    BACKENDS.map((backend) => [backend, { baseline: [], kiln: [] }]),
  );
  for (let round = 0; round < ROUNDS; round++) {
    for (const backend of BACKENDS) {
      const sides = sidesOn(backend);
      for (const side of [sides.baseline, sides.kiln]) {
        rounds.get(backend)![side.name].push(await bench(side));
      }
    }
  }
  return rounds;
}

const ratio = (a: number, b: number) => Math.round((a / b) * 1000) / 1000;

/** One side's throughputs against another's: the ratio of the medians, and each round's. */
function versus(of: number[], to: number[]) {
  return {
    throughputRatio: ratio(median(of), median(to)),
    throughputRatioPerRound: of.map((value, round) => ratio(value, to[round]!)),
  };
}

/**
 * A half's report: per backend, each side's medians and Kiln's throughput against the baseline's,
 * with its targets; with both backends, each side's throughput on PostgreSQL against Redis.
 */
function compare<T>(
  rounds: Map<QueueBackend, Rounds<T>>,
  throughput: (figures: T) => number,
  kilnTargets: (kiln: T) => Record<string, boolean> = () => ({}),
) {
  const report: Record<string, unknown> = {};
  for (const [backend, { baseline, kiln }] of rounds) {
    const figures = { baseline: medians(baseline), kiln: medians(kiln) };
    const kilnAgainstBaseline = versus(kiln.map(throughput), baseline.map(throughput));
    report[backend] = {
      ...figures,
      ...kilnAgainstBaseline,
      targets: {
        throughputAtLeast70Percent: kilnAgainstBaseline.throughputRatio >= 0.7,
        ...kilnTargets(figures.kiln),
      },
    };
  }
  const redis = rounds.get('redis');
  const postgres = rounds.get('postgres');
  if (redis && postgres) {
    const onBoth = (side: Side['name']) =>
      versus(postgres[side].map(throughput), redis[side].map(throughput));
    const kiln = onBoth('kiln');
    report.postgresAgainstRedis = {
      kiln,
      baseline: onBoth('baseline'),
      targets: { kilnAtLeast60Percent: kiln.throughputRatio >= 0.6 },
    };
  }
  return report;
}

async function main(): Promise<void> {
  await sql(
    'postgres://postgres@127.0.0.1:5432/postgres',
    `DROP DATABASE IF EXISTS ${BENCH_DATABASE} WITH (FORCE)`,
  );
  await sql('postgres://postgres@127.0.0.1:5432/postgres', `CREATE DATABASE ${BENCH_DATABASE}`);
  // Kiln applies the migrations the baseline also uses, and on PostgreSQL BullMQ's schema.
  for (const backend of BACKENDS) await stop(await sidesOn(backend).kiln.startServer());

  const report: Record<string, unknown> = {
    machine: `${process.platform} ${process.arch}, node ${process.version}`,
    settings: {
      seconds: SECONDS,
      rounds: ROUNDS,
      jobs: JOBS,
      workerConcurrency: WORKER_CONCURRENCY,
      backends: BACKENDS,
    },
  };
  if (ONLY !== 'jobs') {
    report.submit = compare(
      await alternate(submitBench),
      (figures) => figures.requestsPerSecond,
      (kiln) => ({ p99AtMost10MsAt1000PerSecond: kiln.at1000.p99Ms <= 10 }),
    );
  }
  if (ONLY !== 'submit') {
    report.jobs = compare(await alternate(jobsBench), (figures) => figures.jobsPerSecond);
  }
  mkdirSync(new URL('../../bench/results/', import.meta.url), { recursive: true });
  writeFileSync(
    new URL('../../bench/results/latest.json', import.meta.url),
    JSON.stringify(report, null, 2),
  );
  console.log(JSON.stringify(report, null, 2));
}

await main();
