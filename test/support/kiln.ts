import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, onTestFinished } from 'vitest';
import { createKilnApp } from '../../src/http/app.factory.js';
import { type KilnConfig, loadConfig } from '../../src/config/config.js';
import type { JobEvent } from '../../src/jobs/job-events.service.js';
import type { JobView } from '../../src/jobs/job.dto.js';
import { ON_REDIS, REDIS_URL, TEST_PREFIX, testDatabaseUrl } from './env.js';
import { TestGenerator } from './test.generator.js';

const storage = mkdtempSync(join(tmpdir(), 'kiln-test-'));

/** The bootstrap admin key every test app accepts; requests carry it unless a test says otherwise. */
export const ADMIN_KEY = 'kiln_test-admin-key-0123456789';

/** The environment every test app starts from: test database, test prefix, short timings. */
export const TEST_ENV: Record<string, string> = {
  KILN_ADMIN_API_KEY: ADMIN_KEY,
  DATABASE_URL: testDatabaseUrl(),
  ...(ON_REDIS ? { REDIS_URL, REDIS_PREFIX: TEST_PREFIX } : { QUEUE_BACKEND: 'postgres' }),
  ARTIFACT_DIR: join(storage, 'artifacts'),
  TEMP_DIR: join(storage, 'tmp'),
  LOG_LEVEL: 'error',
  RETRY_DELAY_MS: '100',
  PROGRESS_INTERVAL_MS: '50',
  // Tests run the reconciler themselves.
  RECONCILE_INTERVAL_MS: '3600000',
  JOB_LOCK_MS: '2000',
  STALLED_CHECK_INTERVAL_MS: '500',
  SHUTDOWN_GRACE_MS: '2000',
  SHUTDOWN_READINESS_DELAY_MS: '0',
  // No GPU in CI, and no test should wait on a real nvidia-smi.
  NVIDIA_SMI_PATH: join(storage, 'no-nvidia-smi'),
  // Tests run cleanup themselves.
  CLEANUP_ENABLED: 'false',
};

export interface Response<T> {
  status: number;
  headers: Headers;
  body: T;
}

interface Running {
  app: NestFastifyApplication;
  config: KilnConfig;
  url: string;
}

export class TestKiln {
  private started?: Running;
  private closing?: Promise<void>;

  static async start(env: Record<string, string> = {}): Promise<TestKiln> {
    const kiln = new TestKiln();
    await kiln.listen(env);
    return kiln;
  }

  /** Runs `test` against an app of its own, closed however the test ends. */
  static async using<T>(
    env: Record<string, string>,
    test: (kiln: TestKiln) => Promise<T>,
  ): Promise<T> {
    const kiln = await TestKiln.start(env);
    try {
      return await test(kiln);
    } finally {
      await kiln.close();
    }
  }

  /** Starts the app on a free port: `start` does at once, `useKiln` in `beforeAll`. */
  async listen(env: Record<string, string>): Promise<void> {
    const config = loadConfig({ ...TEST_ENV, ...env });
    const app = await createKilnApp(config, { generators: [TestGenerator] });
    await app.listen({ host: '127.0.0.1', port: 0 });
    this.started = { app, config, url: await app.getUrl() };
  }

  get app(): NestFastifyApplication {
    return this.running.app;
  }

  get config(): KilnConfig {
    return this.running.config;
  }

  get url(): string {
    return this.running.url;
  }

  private get running(): Running {
    if (!this.started) throw new Error('This app has not started: useKiln starts it in beforeAll.');
    return this.started;
  }

  /** Sends the admin key unless `init.headers` has an `authorization` of its own. */
  fetch(path: string, init: RequestInit = {}): Promise<globalThis.Response> {
    const headers = new Headers(init.headers);
    if (!headers.has('authorization')) headers.set('authorization', `Bearer ${ADMIN_KEY}`);
    return fetch(`${this.url}${path}`, { ...init, headers });
  }

  async request<T = JobView>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Response<T>> {
    const response = await this.fetch(`/api/v1${path}`, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.text();
    return {
      status: response.status,
      headers: response.headers,
      body: (text ? JSON.parse(text) : undefined) as T,
    };
  }

  submit(kind: string, input: Record<string, unknown>, extra: Record<string, unknown> = {}) {
    return this.request('POST', '/jobs', { kind, input, ...extra });
  }

  /** Polls a job until `until` holds, failing after `timeoutMs`. */
  async waitForJob(
    id: string,
    until: (job: JobView) => boolean,
    timeoutMs = 15_000,
  ): Promise<JobView> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { body } = await this.request('GET', `/jobs/${id}`);
      if (until(body)) return body;
      if (Date.now() > deadline)
        throw new Error(`Job ${id} still ${body.status}/${body.step} after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  waitForStatus(id: string, status: JobView['status'], timeoutMs?: number): Promise<JobView> {
    return this.waitForJob(id, (job) => job.status === status, timeoutMs);
  }

  /** Polls until the job runs and has reported progress: its generator is at work. */
  waitForProgress(id: string): Promise<JobView> {
    return this.waitForJob(id, (job) => job.status === 'processing' && job.progress > 0);
  }

  /** Closes the app, if it started; a second call waits for the same close. */
  close(): Promise<void> {
    this.closing ??= this.started?.app.close() ?? Promise.resolve();
    return this.closing;
  }
}

/**
 * The app a file or a `describe` block shares: the state is reset and the app started before its
 * tests, and closed after them. `reset: false` keeps the state, for a second app beside one that
 * has just reset it.
 */
export function useKiln(env: Record<string, string> = {}, { reset = true } = {}): TestKiln {
  const kiln = new TestKiln();
  beforeAll(async () => {
    if (reset) await resetState();
    await kiln.listen(env);
  });
  afterAll(() => kiln.close());
  return kiln;
}

/** An app for the running test alone, closed when the test finishes, however it ends. */
export async function startForTest(env: Record<string, string> = {}): Promise<TestKiln> {
  const kiln = await TestKiln.start(env);
  onTestFinished(() => kiln.close());
  return kiln;
}

/** Empties the test database tables and the test run's queues. */
export async function resetState(): Promise<void> {
  const client = new pg.Client({ connectionString: testDatabaseUrl() });
  await client.connect();
  try {
    // Before the first app has migrated the test database there is nothing to empty.
    const { rows } = await client.query<{ tables: string[] }>(
      `SELECT array_agg(relname::text) AS tables FROM pg_class
       WHERE relname IN ('jobs', 'artifacts', 'api_keys', 'rate_limit_counters', 'route_latency')
         AND relkind = 'r'`,
    );
    const tables = rows[0]?.tables ?? [];
    if (tables.length > 0) await client.query(`TRUNCATE ${tables.join(', ')}`);
  } finally {
    await client.end();
  }
  await emptyQueues();
}

/**
 * Empties the test run's queues, as a backplane restarted empty would be (Redis without
 * persistence); answers how many keys or queue rows went.
 */
export async function emptyQueues(): Promise<number> {
  if (ON_REDIS) return deleteRedisKeys(`${TEST_PREFIX}:*`);
  // Before the first app has made BullMQ's schema there is nothing to empty.
  const [schema] = await sql<{ present: boolean }>(
    `SELECT to_regclass('bullmq.job') IS NOT NULL AS present`,
  );
  if (!schema?.present) return 0;
  const [jobs] = await sql<{ count: number }>('SELECT count(*)::int AS count FROM bullmq.job');
  // Everything but the schema version: jobs, queue metadata, events, locks, limits.
  await sql(`DO $$ DECLARE t text; BEGIN
    FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'bullmq' AND tablename <> 'migration'
    LOOP EXECUTE format('TRUNCATE bullmq.%I CASCADE', t); END LOOP; END $$`);
  return jobs?.count ?? 0;
}

/** Listens to a channel of the test run's backplane, as another Kiln process would. */
export async function subscribe(
  channel: string,
  listener: (message: string) => void,
): Promise<() => Promise<void>> {
  if (ON_REDIS) {
    const redis = new Redis(REDIS_URL);
    redis.on('message', (_channel: string, message: string) => listener(message));
    await redis.subscribe(`${TEST_PREFIX}:${channel}`);
    return async () => {
      await redis.quit();
    };
  }
  const client = new pg.Client({ connectionString: testDatabaseUrl() });
  await client.connect();
  client.on('notification', ({ payload }) => listener(payload ?? ''));
  await client.query(`LISTEN ${client.escapeIdentifier(channel)}`);
  return () => client.end();
}

export async function deleteRedisKeys(pattern: string): Promise<number> {
  const redis = new Redis(REDIS_URL);
  try {
    const keys = await redis.keys(pattern);
    if (keys.length > 0) await redis.del(...keys);
    return keys.length;
  } finally {
    redis.disconnect();
  }
}

export async function sql<T extends pg.QueryResultRow>(
  text: string,
  values: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client({ connectionString: testDatabaseUrl() });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** The `update` events in a piece of a server-sent event stream. */
export function parseEvents(text: string): JobEvent[] {
  return text
    .split('\n\n')
    .filter((chunk) => chunk.startsWith('event: update'))
    .map((chunk) => JSON.parse(chunk.split('data: ')[1]!) as JobEvent);
}
