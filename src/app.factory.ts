import { randomUUID } from 'node:crypto';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { AppModule, type AppOptions } from './app.module.js';
import { ProblemDetailsFilter } from './common/problem-details.filter.js';
import { setupSwagger } from './common/swagger.js';
import type { KilnConfig } from './config/config.js';
import { GeneratorRegistry } from './generation/generator.registry.js';
import packageJson from '../package.json' with { type: 'json' };

const LOG_LEVELS = ['error', 'warn', 'log', 'debug', 'verbose'] as const;

/** Builds the application for the configured role; the caller listens (or not, in tests). */
export async function createKilnApp(
  config: KilnConfig,
  options: AppOptions = {},
): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({
    bodyLimit: config.http.bodyLimitBytes,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
  });
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot(config, options),
    adapter,
    { logger: LOG_LEVELS.slice(0, LOG_LEVELS.indexOf(config.http.logLevel) + 1) },
  );
  // The request id (taken from X-Request-Id when the caller sends one) goes back to the caller.
  adapter.getInstance().addHook('onRequest', (request, reply, done) => {
    void reply.header('x-request-id', request.id);
    done();
  });
  // Probes and Prometheus expect the conventional paths.
  app.setGlobalPrefix('api/v1', { exclude: ['health', 'health/*path', 'metrics'] });
  app.useGlobalFilters(new ProblemDetailsFilter());
  app.enableShutdownHooks();
  // Generators register during init; the API document lists them.
  await app.init();
  if (config.runsApi) setupSwagger(app, app.get(GeneratorRegistry), packageJson.version);
  return app;
}
