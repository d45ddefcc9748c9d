import 'reflect-metadata';
import { performance } from 'node:perf_hooks';
import { Logger } from '@nestjs/common';
import { unavailableDependency } from './common/unavailable.js';
import { ConfigError, type KilnConfig, loadConfig, processEnv } from './config/config.js';
import { createLogger } from './logging/logger.options.js';
import { BootGate } from './startup/boot-gate.js';
import {
  DependencyWaitError,
  dependenciesOf,
  describeFailure,
  waitFor,
} from './startup/dependencies.js';

const logger = new Logger('Kiln');
let config: KilnConfig | undefined;

/**
 * The port opens at once, whatever the dependencies: a gate answers the probes while the process
 * waits for PostgreSQL and Redis and builds the application, then hands the port over.
 */
async function main(): Promise<void> {
  config = loadConfig(processEnv());
  // JSON lines from the first one, the gate's and the wait's included.
  Logger.overrideLogger(createLogger(config));
  const dependencies = dependenciesOf(config);
  const gate = await BootGate.open(config.http.host, config.http.port, dependencies);
  const settings = config;
  await Promise.all(
    dependencies.map(async (dependency) => {
      await waitFor(dependency, settings);
      gate.answered(dependency);
    }),
  );
  // Loaded only now: importing the application takes seconds on a busy machine, the gate none.
  const { createKilnApp } = await import('./http/app.factory.js');
  const app = await createKilnApp(config);
  const { port } = gate;
  const handover = performance.now();
  await gate.close();
  await app.listen({ host: config.http.host, port });
  const handoverMs = (performance.now() - handover).toFixed(1);
  logger.log(
    `Role ${config.role}, listening on ${await app.getUrl()} (port handed over in ${handoverMs} ms)`,
  );
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    console.error(error.message);
  } else if (error instanceof DependencyWaitError) {
    logger.error(error.message);
  } else {
    // A dependency lost while the application was being built is one line too, not a stack.
    const dependency = unavailableDependency(error);
    if (dependency && config) logger.error(describeFailure(dependency, config, error));
    else logger.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  }
  process.exit(1);
});
