/** Where the global setup names the run's PostgreSQL, for the test files and what they spawn. */
export const TEST_DATABASE_URL_VARIABLE = 'KILN_TEST_DATABASE_URL';

/** The tests' database, on the PostgreSQL of their own that the global setup starts per run. */
export function testDatabaseUrl(): string {
  const url = process.env[TEST_DATABASE_URL_VARIABLE];
  if (!url) {
    throw new Error(
      `${TEST_DATABASE_URL_VARIABLE} is unset: run the tests with vitest, whose global setup starts their PostgreSQL`,
    );
  }
  return url;
}

/** KILN_TEST_REDIS_URL points elsewhere, or at nothing to try the suite as on a machine without Redis. */
export const REDIS_URL = process.env.KILN_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Redis keys of the tests' own; KILN_TEST_PREFIX lets two checkouts share one Redis. */
export const TEST_PREFIX = process.env.KILN_TEST_PREFIX ?? 'kiln-test';

/**
 * The backplane the suite runs on: KILN_TEST_QUEUE_BACKEND, which the global setup sets to Redis
 * where one answers and to PostgreSQL alone otherwise.
 */
export const TEST_QUEUE_BACKEND: 'redis' | 'postgres' =
  process.env.KILN_TEST_QUEUE_BACKEND === 'postgres' ? 'postgres' : 'redis';
/** For the tests about Redis itself, skipped without it. */
export const ON_REDIS = TEST_QUEUE_BACKEND === 'redis';
