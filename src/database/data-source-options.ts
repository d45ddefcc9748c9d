import type { PostgresDataSourceOptions } from 'typeorm/driver/postgres/PostgresDataSourceOptions.js';
import { migrations } from '../../migrations/index.js';
import type { KilnConfig } from '../config/config.js';

/**
 * How much longer than `statement_timeout` pg waits for an answer before it gives up itself: a
 * live server cancels the statement first (and the connection stays usable), a frozen or
 * unreachable one never answers at all.
 */
const CLIENT_TIMEOUT_MARGIN_MS = 1_000;

/** The URL to connect to: DATABASE_URL, or the embedded server's once it runs. */
export function databaseUrl(config: KilnConfig): string {
  const { url, embeddedDir } = config.database;
  if (url === undefined)
    throw new Error(`The embedded PostgreSQL in ${embeddedDir} is not started`);
  return url;
}

/**
 * pg's pool settings. Statements are bounded unless `bounded` is false, which migrations ask for:
 * they wait on an advisory lock while another replica migrates, and may rewrite big tables.
 */
export function poolOptions(config: KilnConfig, { bounded = true } = {}) {
  const { statementTimeoutMs, connectTimeoutMs } = config.database;
  return {
    application_name: `kiln-${config.role}`,
    connectionTimeoutMillis: connectTimeoutMs,
    // A peer that vanished (a host down, a dropped route) is noticed on an idle connection too.
    keepAlive: true,
    ...(bounded && statementTimeoutMs > 0
      ? {
          statement_timeout: statementTimeoutMs,
          query_timeout: statementTimeoutMs + CLIENT_TIMEOUT_MARGIN_MS,
        }
      : {}),
  };
}

export function dataSourceOptions(
  config: KilnConfig,
  { bounded = true } = {},
): PostgresDataSourceOptions {
  return {
    type: 'postgres',
    url: databaseUrl(config),
    migrations,
    migrationsTableName: 'migrations',
    synchronize: false,
    extra: { max: config.database.poolSize, ...poolOptions(config, { bounded }) },
  };
}
