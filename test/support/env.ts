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

export const REDIS_URL = 'redis://127.0.0.1:6379';
/** Redis keys of the tests' own; KILN_TEST_PREFIX lets two checkouts share one Redis. */
export const TEST_PREFIX = process.env.KILN_TEST_PREFIX ?? 'kiln-test';
