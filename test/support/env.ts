/**
 * Tests use a database and a Redis key prefix of their own, never the development ones.
 * KILN_TEST_DATABASE and KILN_TEST_PREFIX let two checkouts run their suites side by side.
 */
export const TEST_DATABASE = process.env.KILN_TEST_DATABASE ?? 'kiln_test';
export const TEST_DATABASE_URL = `postgres://postgres@127.0.0.1:5432/${TEST_DATABASE}`;
export const ADMIN_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = 'redis://127.0.0.1:6379';
export const TEST_PREFIX = process.env.KILN_TEST_PREFIX ?? 'kiln-test';

/** The backplane the suite runs on: Redis, or with KILN_TEST_QUEUE_BACKEND=postgres PostgreSQL alone. */
export const TEST_QUEUE_BACKEND: 'redis' | 'postgres' =
  process.env.KILN_TEST_QUEUE_BACKEND === 'postgres' ? 'postgres' : 'redis';
/** For the tests about Redis itself, skipped without it. */
export const ON_REDIS = TEST_QUEUE_BACKEND === 'redis';
