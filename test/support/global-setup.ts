import { Redis } from 'ioredis';
import pg from 'pg';
import { ADMIN_DATABASE_URL, REDIS_URL, TEST_DATABASE } from './env.js';

/**
 * A fresh test database per run; the apps under test apply the migrations themselves. Without
 * KILN_TEST_QUEUE_BACKEND the suite runs on Redis where one answers, and on PostgreSQL alone
 * otherwise (the test workers and the processes they start inherit the choice).
 */
export default async function setup(): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${TEST_DATABASE} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${TEST_DATABASE}`);
  } finally {
    await client.end();
  }
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
