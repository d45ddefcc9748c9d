import { DataSource } from 'typeorm';
import { ConfigError, type KilnConfig, loadConfig, processEnv } from '../src/config/config.js';
import { dataSourceOptions } from '../src/database/data-source-options.js';
import { EmbeddedPostgresError, connectToRunning } from '../src/database/embedded-folder.js';

/** The configuration; bad settings, or no embedded server running, in the one line Kiln prints. */
async function cliConfig(): Promise<KilnConfig> {
  try {
    return await connectToRunning(loadConfig(processEnv()));
  } catch (error) {
    // The TypeORM CLI would print it inside an error of its own, with both stacks.
    if (!(error instanceof ConfigError || error instanceof EmbeddedPostgresError)) throw error;
    console.error(error.message);
    process.exit(1);
  }
}

/**
 * The DataSource the TypeORM CLI uses (`npm run migration:run`): migrations run unbounded.
 * Without DATABASE_URL, on the embedded server of the Kiln running in EMBEDDED_POSTGRES_DIR.
 */
export default new DataSource(dataSourceOptions(await cliConfig(), { bounded: false }));
