import pg from 'pg';
import { isUnavailable } from '../common/unavailable.js';
import { ConfigError, type KilnConfig, loadConfig, processEnv } from '../config/config.js';
import { describeFailure } from './dependencies.js';
import { poolOptions } from '../database/data-source-options.js';

/**
 * `npm run db:create`: creates the database DATABASE_URL names if it does not exist yet,
 * through the server's `postgres` maintenance database. Tables come from the migrations.
 */
async function createDatabase(config: KilnConfig): Promise<void> {
  const target = new URL(config.database.url);
  const name = decodeURIComponent(target.pathname.slice(1));
  const maintenance = new URL(target);
  maintenance.pathname = '/postgres';
  const client = new pg.Client({
    connectionString: maintenance.toString(),
    ...poolOptions(config, { bounded: false }),
  });
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

let config: KilnConfig | undefined;
try {
  config = loadConfig(processEnv());
  await createDatabase(config);
} catch (error) {
  // One line for what the operator can act on: bad settings, a server that is not reachable.
  if (error instanceof ConfigError) console.error(error.message);
  else if (config && isUnavailable(error))
    console.error(describeFailure('database', config, error));
  else console.error(error);
  process.exit(1);
}
