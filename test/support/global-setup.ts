import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger } from '@nestjs/common';
import { EmbeddedPostgres } from '../../src/database/embedded-postgres.js';
import { TEST_DATABASE_URL_VARIABLE } from './env.js';

/**
 * The run's own PostgreSQL: Kiln's embedded server in a temp folder, on a free port, removed at
 * the end. Its URL reaches the test files and the processes they spawn through the environment.
 */
export default async function setup(): Promise<() => Promise<void>> {
  // Its start line and PostgreSQL's own lines would only crowd the test output.
  Logger.overrideLogger(['error', 'warn']);
  const root = mkdtempSync(join(tmpdir(), 'kiln-test-postgres-'));
  const remove = () => rmSync(root, { recursive: true, force: true });
  // As root, PostgreSQL runs as the postgres user, which must be able to reach its folder.
  chmodSync(root, 0o755);
  const server = await EmbeddedPostgres.start(join(root, 'postgres')).catch((error: unknown) => {
    remove();
    throw error;
  });
  process.env[TEST_DATABASE_URL_VARIABLE] = server.url;
  return async () => {
    await server.stop();
    remove();
  };
}
