import 'reflect-metadata';
import { performance } from 'node:perf_hooks';
import { Logger } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { unavailableDependency } from './common/unavailable.js';
import { ConfigError, type KilnConfig, loadConfig, processEnv } from './config/config.js';
import { EmbeddedPostgresError, withDatabaseUrl } from './database/embedded-folder.js';
import { EmbeddedPostgres } from './database/embedded-postgres.js';
import { createLogger } from './logging/logger.options.js';
import { BootGate } from './startup/boot-gate.js';
import {
  DependencyWaitError,
  dependenciesOf,
  describeFailure,
  waitFor,
} from './startup/dependencies.js';

const logger = new Logger('Kiln');
/** The signals that stop Kiln gracefully (Nest's shutdown hooks), and so its embedded server. */
const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
let config: KilnConfig | undefined;
let app: NestFastifyApplication | undefined;
let embedded: Promise<EmbeddedPostgres> | undefined;

/**
 * The port opens at once, whatever the dependencies: a gate answers the probes while the process
 * waits for PostgreSQL (starting its embedded server first, without DATABASE_URL) and Redis and
 * builds the application, then hands the port over.
 */
async function main(): Promise<void> {
  config = loadConfig(processEnv());
  // JSON lines from the first one, the gate's and the wait's included.
  Logger.overrideLogger(createLogger(config));
  const dependencies = dependenciesOf(config);
  const gate = await BootGate.open(config.http.host, config.http.port, dependencies);
  const settings = config;
  [config] = await Promise.all([
    startDatabase(settings).then(async (resolved) => {
      await waitFor('database', resolved);
      gate.answered('database');
      return resolved;
    }),
    // Redis only where it carries the queues.
    dependencies.includes('redis') && waitFor('redis', settings).then(() => gate.answered('redis')),
  ]);
  // Loaded only now: importing the application takes seconds on a busy machine, the gate none.
  const { createKilnApp } = await import('./http/app.factory.js');
  app = await createKilnApp(config);
  const { port } = gate;
  const handover = performance.now();
  await gate.close();
  await app.listen({ host: config.http.host, port });
  const handoverMs = (performance.now() - handover).toFixed(1);
  logger.log(
    `Role ${config.role}, listening on ${await app.getUrl()} (port handed over in ${handoverMs} ms)`,
  );
}

/** DATABASE_URL's configuration, or the embedded server's once it runs. */
async function startDatabase(settings: KilnConfig): Promise<KilnConfig> {
  const dir = settings.database.embeddedDir;
  if (dir === undefined) return settings;
  stopDatabaseOnSignals();
  embedded = EmbeddedPostgres.start(dir);
  return withDatabaseUrl(settings, (await embedded).url);
}

async function stopDatabase(): Promise<void> {
  await (await embedded?.catch(() => undefined))?.stop();
}

/**
 * On a stop signal, Nest closes the app; the embedded server stops after it, then the process
 * ends by the signal as it would without one. Nest raises the signal again once the app has
 * closed: this listener, still there, keeps the process alive until the server has stopped.
 */
function stopDatabaseOnSignals(): void {
  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    try {
      // Joins the shutdown Nest's own listener starts on this signal.
      await app?.close();
      await stopDatabase();
    } finally {
      for (const name of STOP_SIGNALS) process.removeListener(name, listener);
      // No log line is lost to it: each is written before its call returns (see logger.options).
      process.kill(process.pid, signal);
    }
  };
  const listener = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    void stop(signal);
  };
  for (const name of STOP_SIGNALS) process.on(name, listener);
}

main().catch(async (error: unknown) => {
  if (error instanceof ConfigError) {
    console.error(error.message);
  } else if (error instanceof DependencyWaitError || error instanceof EmbeddedPostgresError) {
    logger.error(error.message);
  } else {
    // A dependency lost while the application was being built is one line too, not a stack.
    const dependency = unavailableDependency(error);
    if (dependency && config) logger.error(describeFailure(dependency, config, error));
    else logger.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  }
  await stopDatabase();
  process.exit(1);
});
