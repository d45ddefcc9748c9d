import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger } from '@nestjs/common';
import { Redis } from 'ioredis';
import { EmbeddedPostgres } from '../../src/database/embedded-postgres.js';
import { REDIS_URL, TEST_DATABASE_URL_VARIABLE } from './env.js';

/**
 * The run's own PostgreSQL: Kiln's embedded server in a temp folder, on a free port, removed at
 * the end. Its URL reaches the test files and the processes they spawn through the environment,
 * as does the queue backend: without KILN_TEST_QUEUE_BACKEND, Redis where one answers, and
 * PostgreSQL alone otherwise.
 */
export default async function setup(): Promise<() => Promise<void>> {
  // Its start line and PostgreSQL's own lines would only crowd the test output.
  Logger.overrideLogger(['error', 'warn']);
  const root = mkdtempSync(join(tmpdir(), 'kiln-test-postgres-'));
  const remove = () => rmSync(root, { recursive: true, force: true });
  // As root, PostgreSQL runs as the postgres user, which must be able to reach its folder.
  chmodSync(root, 0o755);
  const [server] = await Promise.all([
    EmbeddedPostgres.start(join(root, 'postgres')).catch((error: unknown) => {
      remove();
      throw error;
    }),
    chooseQueueBackend(),
  ]);
  process.env[TEST_DATABASE_URL_VARIABLE] = server.url;
  return async () => {
    await server.stop();
    remove();
  };
}

async function chooseQueueBackend(): Promise<void> {
  if (process.env.KILN_TEST_QUEUE_BACKEND) return;
  const onRedis = await answers(REDIS_URL);
  process.env.KILN_TEST_QUEUE_BACKEND = onRedis ? 'redis' : 'postgres';
  if (!onRedis) {
    console.log(
      `No Redis answers at ${REDIS_URL}: the suite runs with the queues on PostgreSQL alone, ` +
        'and the tests about Redis itself are skipped.',
    );
  }
}

async function answers(url: string): Promise<boolean> {
  const redis = new Redis(url, {
    lazyConnect: true,
    retryStrategy: () => null,
    connectTimeout: 1_000,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}
