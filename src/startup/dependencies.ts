import { setTimeout as sleep } from 'node:timers/promises';
import { Logger } from '@nestjs/common';
import { Redis } from 'ioredis';
import pg from 'pg';
import { backoffDelays } from '../common/backoff.js';
import { reasonOf } from '../common/dependency-outages.service.js';
import { DEPENDENCY_NAMES, type Dependency, isUnavailable } from '../common/unavailable.js';
import type { KilnConfig } from '../config/config.js';
import { databaseUrl, poolOptions } from '../database/data-source-options.js';
import { shownPath } from '../database/embedded-folder.js';

const VARIABLES: Record<Dependency, string> = { database: 'DATABASE_URL', redis: 'REDIS_URL' };
const DEFAULT_PORTS: Record<Dependency, number> = { database: 5432, redis: 6379 };
/** A dependency still missing is logged at most this often. */
const LOG_EVERY_MS = 5_000;
const REDIS_PROBE_MS = 2_000;

/** What this configuration needs before it can start: PostgreSQL, and Redis where it is the queue. */
export function dependenciesOf(config: KilnConfig): Dependency[] {
  return config.redis ? ['database', 'redis'] : ['database'];
}

/** The URL Kiln reaches a dependency at; asked only of the dependencies it has. */
function urlOf(dependency: Dependency, config: KilnConfig): string {
  if (dependency === 'database') return databaseUrl(config);
  if (!config.redis) throw new Error(`${VARIABLES[dependency]} is not set`);
  return config.redis.url;
}

/**
 * `PostgreSQL at db.internal:5432 (DATABASE_URL)`, or `(embedded, var/postgres)`: where, without
 * credentials or database.
 */
export function describeTarget(dependency: Dependency, config: KilnConfig): string {
  const url = new URL(urlOf(dependency, config));
  const port = url.port || String(DEFAULT_PORTS[dependency]);
  const { embeddedDir } = config.database;
  const source =
    dependency === 'database' && embeddedDir !== undefined
      ? `embedded, ${shownPath(embeddedDir)}`
      : VARIABLES[dependency];
  return `${DEPENDENCY_NAMES[dependency]} at ${url.hostname}:${port} (${source})`;
}

/** One line for an error that reaching a dependency ran into: where, and what went wrong. */
export function describeFailure(dependency: Dependency, config: KilnConfig, error: unknown) {
  return `${describeTarget(dependency, config)} is unreachable: ${reasonOf(error)}`;
}

/** A dependency that did not answer within DEPENDENCY_WAIT, or refused Kiln for good. */
export class DependencyWaitError extends Error {
  override name = 'DependencyWaitError';
}

/** One question each, on a connection of its own, bounded like the application's. */
const PROBES: Record<Dependency, (config: KilnConfig) => Promise<void>> = {
  async database(config) {
    const client = new pg.Client({
      connectionString: databaseUrl(config),
      ...poolOptions(config),
    });
    // A connection that breaks after connect() reports through query(), not as an event.
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
    } finally {
      await client.end().catch(() => undefined);
    }
  },
  async redis(config) {
    const client = new Redis(urlOf('redis', config), {
      lazyConnect: true,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
      connectTimeout: REDIS_PROBE_MS,
      commandTimeout: REDIS_PROBE_MS,
    });
    // connect() rejects with the same error.
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.ping();
    } finally {
      client.disconnect();
    }
  },
};

/** Asks the dependency one question; rejects with what reaching it ran into. */
export function probe(dependency: Dependency, config: KilnConfig): Promise<void> {
  return PROBES[dependency](config);
}

/**
 * Waits, with backoff, until the dependency answers; throws a DependencyWaitError after
 * DEPENDENCY_WAIT, or at once for an error that waiting will not cure (a wrong password, a
 * database that does not exist).
 */
export async function waitFor(dependency: Dependency, config: KilnConfig): Promise<void> {
  const logger = new Logger('Startup');
  const deadline = Date.now() + config.dependencyWaitMs;
  let loggedAt = 0;
  for (const delay of backoffDelays()) {
    try {
      await probe(dependency, config);
      if (loggedAt > 0) logger.log(`${describeTarget(dependency, config)} answers`);
      return;
    } catch (error) {
      if (!isUnavailable(error)) {
        throw new DependencyWaitError(
          `${describeTarget(dependency, config)} refused Kiln: ${reasonOf(error)}`,
        );
      }
      if (Date.now() >= deadline) {
        throw new DependencyWaitError(
          `${describeFailure(dependency, config, error)}; gave up after ${config.dependencyWaitMs / 1000} s (DEPENDENCY_WAIT)`,
        );
      }
      if (Date.now() - loggedAt >= LOG_EVERY_MS) {
        loggedAt = Date.now();
        logger.warn(`${describeFailure(dependency, config, error)}; waiting for it`);
      }
    }
    await sleep(Math.max(0, Math.min(delay, deadline - Date.now())));
  }
}
