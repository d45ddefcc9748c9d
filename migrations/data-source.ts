import { DataSource } from 'typeorm';
import { loadConfig, processEnv } from '../src/config/config.js';
import { dataSourceOptions } from '../src/database/data-source-options.js';

/** The DataSource the TypeORM CLI uses (`npm run migration:run`): migrations run unbounded. */
export default new DataSource(dataSourceOptions(loadConfig(processEnv()), { bounded: false }));
