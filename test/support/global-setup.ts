import pg from 'pg';
import { ADMIN_DATABASE_URL, TEST_DATABASE } from './env.js';

/** A fresh test database per run; the apps under test apply the migrations themselves. */
export default async function setup(): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${TEST_DATABASE} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${TEST_DATABASE}`);
  } finally {
    await client.end();
  }
}
