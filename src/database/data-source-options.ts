import type { DataSourceOptions } from 'typeorm';
import { migrations } from '../../migrations/index.js';
import { ApiKey } from '../auth/api-key.entity.js';
import { Artifact } from '../cache/artifact.entity.js';
import type { KilnConfig } from '../config/config.js';
import { Job } from '../jobs/job.entity.js';

export function dataSourceOptions(config: KilnConfig): DataSourceOptions {
  return {
    type: 'postgres',
    url: config.database.url,
    entities: [Job, Artifact, ApiKey],
    migrations,
    migrationsTableName: 'migrations',
    synchronize: false,
    extra: { max: config.database.poolSize, application_name: `kiln-${config.role}` },
  };
}
