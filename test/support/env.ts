/**
 * Tests use a database and a Redis key prefix of their own, never the development ones.
 * KILN_TEST_DATABASE and KILN_TEST_PREFIX let two checkouts run their suites side by side.
 */
export const TEST_DATABASE = process.env.KILN_TEST_DATABASE ?? 'kiln_test';
export const TEST_DATABASE_URL = `postgres://postgres@127.0.0.1:5432/${TEST_DATABASE}`;
export const ADMIN_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
/** KILN_TEST_REDIS_URL points elsewhere, or at nothing to try the suite as on a machine without Redis. */
export const REDIS_URL = process.env.KILN_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const TEST_PREFIX = process.env.KILN_TEST_PREFIX ?? 'kiln-test';

/**
 * The backplane the suite runs on: KILN_TEST_QUEUE_BACKEND, which the global setup sets to Redis
 * where one answers and to PostgreSQL alone otherwise.
 */
export const TEST_QUEUE_BACKEND: 'redis' | 'postgres' =
  process.env.KILN_TEST_QUEUE_BACKEND === 'postgres' ? 'postgres' : 'redis';
/** For the tests about Redis itself, skipped without it. */
export const ON_REDIS = TEST_QUEUE_BACKEND === 'redis';
