import type { IncomingMessage, ServerResponse } from 'node:http';
import cors from '@fastify/cors';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import helmet, { type HelmetOptions } from 'helmet';
import { AppModule, type AppOptions } from '../app.module.js';
import { DependencyOutages } from '../common/dependency-outages.service.js';
import { answerClientError, requestId, useStrictJsonParser } from './http-edges.js';
import { ProblemDetailsFilter } from '../common/problem-details.filter.js';
import { setupSwagger } from './swagger.js';
import type { KilnConfig } from '../config/config.js';
import { GeneratorRegistry } from '../generation/generator.registry.js';
import { createLogger, logRequests } from '../logging/logger.options.js';
import packageJson from '../../package.json' with { type: 'json' };

/** Builds the application for the configured role; the caller listens (or not, in tests). */
export async function createKilnApp(
  config: KilnConfig,
  options: AppOptions = {},
): Promise<NestFastifyApplication> {
  const { requestTimeoutMs: requestTimeout } = config.http;
  const adapter = new FastifyAdapter({
    bodyLimit: config.http.bodyLimitBytes,
    // Only behind a proxy that sets it may X-Forwarded-For decide `request.ip`.
    trustProxy: config.http.trustProxy,
    // The caller's X-Request-Id only when it is short and plain (see requestId).
    genReqId: requestId,
    // A request's headers and body must arrive within the timeout; a response (an event stream,
    // a download) is not bounded. Node looks for late requests every tenth of it, at least every
    // second, rather than every 30 s. Fastify sets requestTimeout only once the server is made,
    // which leaves Node's 60 s headersTimeout, and a headersTimeout above requestTimeout makes
    // Node swap the two: the server gets both at once.
    requestTimeout,
    http: {
      requestTimeout,
      headersTimeout: requestTimeout,
      connectionsCheckingInterval: Math.min(1_000, Math.ceil(requestTimeout / 10)),
    },
    clientErrorHandler: answerClientError,
  });
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot(config, options),
    adapter,
    {
      // JSON lines through pino, at LOG_LEVEL, from the first line on.
      logger: createLogger(config),
      // Fastify's own JSON parser: Nest's wraps the same one (twice the cost per request), and
      // Kiln takes no form bodies.
      bodyParser: false,
    },
  );
  useStrictJsonParser(adapter.getInstance());
  await registerSecurity(app, config);
  // The request id (the caller's X-Request-Id when it is safe) goes back to the caller.
  adapter.getInstance().addHook('onRequest', (request, reply, done) => {
    void reply.header('x-request-id', request.id);
    done();
  });
  logRequests(adapter.getInstance(), config);
  // Probes and Prometheus expect the conventional paths.
  app.setGlobalPrefix('api/v1', { exclude: ['health', 'health/*path', 'metrics'] });
  app.useGlobalFilters(new ProblemDetailsFilter(app.get(DependencyOutages)));
  app.enableShutdownHooks();
  // Generators register during init; the API document lists them.
  await app.init();
  if (config.runsApi) setupSwagger(app, app.get(GeneratorRegistry), packageJson.version);
  return app;
}

/** Request headers a browser client may send, and response headers it may read. */
const CORS_ALLOWED_HEADERS = [
  'Authorization',
  'Content-Type',
  'Idempotency-Key',
  'If-None-Match',
  'X-Request-Id',
];
const CORS_EXPOSED_HEADERS = [
  'Location',
  'X-Request-Id',
  'Retry-After',
  'RateLimit',
  'RateLimit-Policy',
  'ETag',
  'Content-Disposition',
  'WWW-Authenticate',
];

/** Security headers on every response, and CORS for the configured origins only. */
async function registerSecurity(app: NestFastifyApplication, config: KilnConfig): Promise<void> {
  const origins = config.http.corsOrigins;
  const securityHeaders = helmetHeaders({
    contentSecurityPolicy: {
      // Helmet's defaults otherwise. Swagger UI at /docs loads its scripts from /docs itself, and
      // needs inline styles and data: images.
      directives: {
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        // Kiln is often reached over plain HTTP inside a cluster: no rewriting to https.
        upgradeInsecureRequests: null,
      },
    },
    // Results may be fetched from the allowed origins' pages (an <audio src>, say).
    crossOriginResourcePolicy: { policy: origins.length > 0 ? 'cross-origin' : 'same-origin' },
  });
  app
    .getHttpAdapter()
    .getInstance()
    .addHook('onRequest', (_request, reply, done) => {
      void reply.headers(securityHeaders);
      done();
    });
  if (origins.length === 0) return;
  await app.register(cors, {
    // An allowed origin is echoed back (with Vary: Origin); any other gets no CORS headers.
    origin: origins.includes('*') ? '*' : origins,
    methods: ['GET', 'HEAD', 'POST', 'DELETE'],
    allowedHeaders: CORS_ALLOWED_HEADERS,
    exposedHeaders: CORS_EXPOSED_HEADERS,
    // API keys travel in Authorization, never in cookies.
    credentials: false,
    maxAge: 600,
  });
}

/**
 * The headers helmet sets, worked out once: they follow from its options alone, so running its
 * eleven middlewares on every request would only repeat them.
 */
function helmetHeaders(options: HelmetOptions): Record<string, string> {
  const headers: Record<string, string> = {};
  const response = {
    setHeader: (name: string, value: unknown) => (headers[name.toLowerCase()] = String(value)),
    removeHeader: () => undefined,
  };
  helmet(options)({} as IncomingMessage, response as unknown as ServerResponse, () => undefined);
  return headers;
}
