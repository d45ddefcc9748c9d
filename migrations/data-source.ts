import { DataSource } from 'typeorm';
import { loadConfig, processEnv } from '../src/config/config.js';
import { dataSourceOptions } from '../src/database/data-source-options.js';
import { connectToRunning } from '../src/database/embedded-folder.js';

/**
 * The DataSource the TypeORM CLI uses (`npm run migration:run`): migrations run unbounded.
 * Without DATABASE_URL, on the embedded server of the Kiln running in EMBEDDED_POSTGRES_DIR.
 */
const config = await connectToRunning(loadConfig(processEnv()));
export default new DataSource(dataSourceOptions(config, { bounded: false }));
