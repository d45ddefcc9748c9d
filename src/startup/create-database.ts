import { isUnavailable } from '../common/unavailable.js';
import { ConfigError, type KilnConfig, loadConfig, processEnv } from '../config/config.js';
import { describeFailure } from './dependencies.js';
import { databaseUrl, poolOptions } from '../database/data-source-options.js';
import { shownPath } from '../database/embedded-folder.js';
import { createDatabaseIfMissing, maintenanceClient } from '../database/maintenance.js';

/**
 * `npm run db:create`: creates the database DATABASE_URL names if it does not exist yet,
 * through the server's `postgres` maintenance database. Tables come from the migrations.
 */
async function createDatabase(config: KilnConfig): Promise<void> {
  const { embeddedDir } = config.database;
  if (embeddedDir !== undefined) {
    console.log(
      `DATABASE_URL is unset: Kiln creates its database on its embedded PostgreSQL in ${shownPath(embeddedDir)} at start; nothing to do`,
    );
    return;
  }
  const { name, client } = maintenanceClient(
    databaseUrl(config),
    poolOptions(config, { bounded: false }),
  );
  await client.connect();
  try {
    const created = await createDatabaseIfMissing(client, name);
    console.log(created ? `Created database ${name}` : `Database ${name} exists`);
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
