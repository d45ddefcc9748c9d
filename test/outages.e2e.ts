import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ON_REDIS, testDatabaseUrl } from './support/env.js';
import { KilnProcess, type LogLine } from './support/kiln-process.js';
import { freePort } from './support/ports.js';
import { OwnPostgres } from './support/postgres-server.js';
import { OwnRedis } from './support/redis-server.js';

const run = promisify(execFile);
const PASSWORD = 'pw-never-logged';
/** A spawned Kiln has the built-in generators only. */
const JOB = { kind: 'music', input: { prompt: 'drums', duration: 1 } };
/** Trust auth takes any password: it is there to be looked for in the logs. */
const withPassword = (url: string) => url.replace('postgres@', `postgres:${PASSWORD}@`);

/** The routes that need PostgreSQL, for a job that exists. */
const databaseRoutes = (id: string): [string, string, unknown?][] => [
  ['POST', '/jobs', JOB],
  ['GET', `/jobs/${id}`],
  ['GET', '/jobs'],
  ['GET', '/queue/stats'],
  ['DELETE', `/jobs/${id}`],
];

type Answer = Awaited<ReturnType<KilnProcess['request']>>;

function expectUnavailable(answer: Answer, dependency: string, within: number) {
  expect(answer.status, JSON.stringify(answer.body)).toBe(503);
  expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(0);
  expect(answer.body).toMatchObject({
    type: 'urn:kiln:problem:dependency-unavailable',
    dependency,
  });
  expect(String(answer.body.detail)).not.toMatch(/127\.0\.0\.1|pw-/);
  expect(answer.ms).toBeLessThan(within);
}

const outageLines = (lines: LogLine[], dependency: string, outage: string) =>
  lines.filter((line) => line.dependency === dependency && line.outage === outage);

/** What every test checks of the logs: JSON only, no stacks, no password, nothing on stderr. */
function expectCleanLogs(kiln: KilnProcess) {
  const lines = kiln.lines();
  expect(kiln.stdout).not.toContain(PASSWORD);
  expect(lines.filter((line) => /\n\s+at /.test(JSON.stringify(line)))).toEqual([]);
  expect(kiln.stderr).toBe('');
  return lines;
}

describe('PostgreSQL down while serving', () => {
  let postgres: OwnPostgres;
  let kiln: KilnProcess;
  let jobId: string;

  beforeAll(async () => {
    postgres = await OwnPostgres.start();
    kiln = await KilnProcess.start({
      KILN_ROLE: 'api',
      LOG_LEVEL: 'log',
      DATABASE_URL: withPassword(postgres.url),
      DB_STATEMENT_TIMEOUT: '1s',
      DB_CONNECT_TIMEOUT: '1s',
    });
    await kiln.until('/health/ready', 200);
    const submitted = await kiln.request('POST', '/jobs', JOB);
    expect(submitted.status).toBe(202);
    jobId = String(submitted.body.id);
  }, 90_000);
  afterAll(async () => {
    await kiln?.stop();
    await postgres?.destroy();
  });

  /** Until the job reads again: PostgreSQL is back for Kiln. */
  async function recovered() {
    const deadline = Date.now() + 15_000;
    while ((await kiln.request('GET', `/jobs/${jobId}`)).status !== 200) {
      if (Date.now() > deadline) throw new Error(`No recovery:\n${kiln.stdout}`);
      await sleep(100);
    }
  }

  it('stopped: 503 with Retry-After at once on every route that needs it, then recovers', async () => {
    await postgres.stop();
    for (const [method, path, body] of databaseRoutes(jobId)) {
      expectUnavailable(await kiln.request(method, path, body), 'database', 2_500);
    }
    // A key that is not in the cache needs PostgreSQL too.
    const unknownKey = await kiln.request('GET', '/jobs', undefined, {
      authorization: 'Bearer kiln_not-a-key-but-shaped-like-one',
    });
    expectUnavailable(unknownKey, 'database', 2_500);
    await kiln.until('/health/ready', 503);

    await postgres.restart();
    await recovered();
    expect((await kiln.request('POST', '/jobs', JOB)).status).toBe(202);

    const lines = expectCleanLogs(kiln);
    expect(outageLines(lines, 'database', 'started')).toHaveLength(1);
    expect(outageLines(lines, 'database', 'ended')).toHaveLength(1);
    expect(lines.filter((line) => line.level === 'error' && line.context === 'Http')).toEqual([]);
  }, 60_000);

  it('frozen: 503 within the statement timeout and its margin, then recovers', async () => {
    postgres.freeze();
    try {
      // DB_STATEMENT_TIMEOUT 1 s, pg's own 1 s later, DB_CONNECT_TIMEOUT 1 s: bounded by 2 s.
      for (const [method, path, body] of databaseRoutes(jobId)) {
        expectUnavailable(await kiln.request(method, path, body), 'database', 3_500);
      }
    } finally {
      postgres.thaw();
    }
    await recovered();
    const lines = expectCleanLogs(kiln);
    // A second outage, after the first ended: one line again.
    expect(outageLines(lines, 'database', 'started')).toHaveLength(2);
  }, 60_000);
});

describe.skipIf(!ON_REDIS)('Redis down while serving', () => {
  let redis: OwnRedis;
  let kiln: KilnProcess;

  beforeAll(async () => {
    redis = await OwnRedis.start();
    kiln = await KilnProcess.start({
      KILN_ROLE: 'api',
      LOG_LEVEL: 'log',
      REDIS_URL: redis.url,
      RATE_LIMIT_WHITELIST: 'none',
    });
    await kiln.until('/health/ready', 200);
  }, 90_000);
  afterAll(async () => {
    await kiln?.stop();
    await redis?.stop();
  });

  it('submissions are still accepted (rate limits fail open), queue stats answer 503', async () => {
    await redis.stop();
    const submitted = await kiln.request('POST', '/jobs', JOB);
    expect(submitted.status).toBe(202);
    expect(submitted.ms).toBeLessThan(2_500);
    expect(submitted.headers.get('ratelimit')).toBeNull();
    expect((await kiln.request('GET', `/jobs/${String(submitted.body.id)}`)).status).toBe(200);
    expectUnavailable(await kiln.request('GET', '/queue/stats'), 'redis', 6_000);
    await kiln.until('/health/ready', 503);

    await redis.restart();
    await kiln.until('/health/ready', 200);
    const limited = await kiln.request('POST', '/jobs', JOB);
    expect(limited.headers.get('ratelimit')).toMatch(/"submit";r=\d+/);
    expect((await kiln.request('GET', '/queue/stats')).status).toBe(200);

    const lines = expectCleanLogs(kiln);
    expect(outageLines(lines, 'redis', 'started')).toHaveLength(1);
    expect(outageLines(lines, 'redis', 'ended')).toHaveLength(1);
  }, 60_000);
});

describe('boot', () => {
  const running: KilnProcess[] = [];
  afterAll(() => Promise.all(running.map((kiln) => kiln.stop())));

  const start = async (env: Record<string, string>) => {
    const kiln = await KilnProcess.start({ LOG_LEVEL: 'log', DEPENDENCY_WAIT: '3s', ...env });
    running.push(kiln);
    return kiln;
  };

  async function expectStarting(kiln: KilnProcess, waitingFor: string[]) {
    // The other dependency answers within its first probe.
    await expect
      .poll(async () => {
        const ready = await fetch(`${kiln.url}/health/ready`);
        return { status: ready.status, body: await ready.json() };
      })
      .toEqual({ status: 503, body: { status: 'starting', waitingFor } });
    const submit = await kiln.request('POST', '/jobs', JOB);
    expectUnavailable(submit, waitingFor[0]!, 1_000);
  }

  it.each([
    ['database', 'DATABASE_URL'],
    ['redis', 'REDIS_URL'],
  ])(
    'with %s unreachable: probes answer, then it exits naming %s after DEPENDENCY_WAIT',
    async (dependency, variable) => {
      const port = await freePort();
      const kiln = await start(
        dependency === 'database'
          ? { DATABASE_URL: `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/kiln` }
          : { QUEUE_BACKEND: 'redis', REDIS_URL: `redis://:${PASSWORD}@127.0.0.1:${port}` },
      );
      await expectStarting(kiln, [dependency]);
      expect(await kiln.exited).not.toBe(0);
      const lines = expectCleanLogs(kiln);
      const waiting = lines.filter((line) => line.level === 'warn' && line.context === 'Startup');
      // Once when it began waiting, and at most every 5 s after.
      expect(waiting.length).toBeGreaterThanOrEqual(1);
      expect(waiting.length).toBeLessThanOrEqual(2);
      const last = lines.at(-1)!;
      expect(last.level).toBe('error');
      expect(last.msg).toContain(`127.0.0.1:${port} (${variable})`);
      expect(last.msg).toContain('DEPENDENCY_WAIT');
    },
    60_000,
  );

  it('waits for a PostgreSQL that starts late, then serves', async () => {
    const postgres = await OwnPostgres.start();
    try {
      await postgres.stop();
      const kiln = await start({ DATABASE_URL: postgres.url, DEPENDENCY_WAIT: '60s' });
      await expectStarting(kiln, ['database']);
      await postgres.restart();
      await kiln.until('/health/ready', 200);
      expect((await kiln.request('POST', '/jobs', JOB)).status).toBe(202);
      // The port changed hands from the gate to the application in a moment.
      const listening = () => expectCleanLogs(kiln).find((line) => /^Role all/.test(line.msg));
      await expect.poll(listening).toBeDefined();
      const handoverMs = /handed over in ([\d.]+) ms/.exec(listening()!.msg)?.[1];
      expect(Number(handoverMs)).toBeLessThan(1_000);
    } finally {
      await postgres.destroy();
    }
  }, 90_000);

  it.skipIf(!ON_REDIS)(
    'waits for a Redis that starts late, then serves',
    async () => {
      const redis = await OwnRedis.start();
      try {
        await redis.stop();
        const kiln = await start({
          REDIS_URL: redis.url,
          DATABASE_URL: testDatabaseUrl(),
          DEPENDENCY_WAIT: '60s',
        });
        await expectStarting(kiln, ['redis']);
        await redis.restart();
        await kiln.until('/health/ready', 200);
        expect((await kiln.request('POST', '/jobs', JOB)).status).toBe(202);
        expectCleanLogs(kiln);
      } finally {
        await redis.stop();
      }
    },
    90_000,
  );
});

describe('the command line with PostgreSQL unreachable', () => {
  it.each([['dist/src/cli.js', 'keys', 'list'], ['dist/src/startup/create-database.js']])(
    '%s says where it could not connect, in one line',
    async (...command) => {
      const port = await freePort();
      const failed = await run(process.execPath, command, {
        env: {
          ...process.env,
          DATABASE_URL: `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/kiln`,
        },
      }).catch((error: unknown) => error as { code: number; stdout: string; stderr: string });
      expect(failed).toMatchObject({ code: 1, stdout: '' });
      const { stderr } = failed as { stderr: string };
      expect(stderr.trim().split('\n')).toEqual([
        `PostgreSQL at 127.0.0.1:${port} (DATABASE_URL) is unreachable: connect ECONNREFUSED 127.0.0.1:${port}`,
      ]);
    },
  );
});
