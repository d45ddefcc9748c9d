import pg from 'pg';
import { ConfigError, loadConfig, processEnv } from '../config/config.js';

/**
 * `npm run db:create`: creates the database DATABASE_URL names if it does not exist yet,
 * through the server's `postgres` maintenance database. Tables come from the migrations.
 */
async function createDatabase(): Promise<void> {
  const target = new URL(loadConfig(processEnv()).database.url);
  const name = decodeURIComponent(target.pathname.slice(1));
  const maintenance = new URL(target);
  maintenance.pathname = '/postgres';
  const client = new pg.Client({ connectionString: maintenance.toString() });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (rowCount) {
      console.log(`Database ${name} exists`);
      return;
    }
    await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
    console.log(`Created database ${name}`);
  } finally {
    await client.end();
  }
}

createDatabase().catch((error: unknown) => {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(1);
});
