import { hostname } from 'node:os';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Logger, PinoLogger } from 'nestjs-pino';
import {
  type DestinationStream,
  type Level,
  type Logger as Pino,
  destination,
  pino,
  stdTimeFunctions,
} from 'pino';
import type { KilnConfig } from '../config/config.js';

type NestLevel = KilnConfig['http']['logLevel'];

/** Nest's level names, as pino calls them. */
export const PINO_LEVELS = {
  error: 'error',
  warn: 'warn',
  log: 'info',
  debug: 'debug',
  verbose: 'trace',
} as const satisfies Record<NestLevel, Level>;

export const REDACTED = '[Redacted]';

/** An API key (`kiln_` and at least 20 more characters) anywhere in a finished log line. */
const KEY_IN_LINE = /kiln_[\w-]{20,}/g;
/** Anything key-like in a URL, including a percent-encoded underscore. */
const KEY_IN_URL = /kiln(?:_|%5f)[\w%-]*/gi;

/** Masks what looks like an API key in a request URL (a query parameter, a path segment). */
export function redactUrl(url: string): string {
  return url.replace(KEY_IN_URL, `kiln_${REDACTED}`);
}

/** Masks API keys in a whole log line, whatever logged them: messages, errors, stacks. */
export function redactLine(line: string): string {
  return line.includes('kiln_') ? line.replace(KEY_IN_LINE, `kiln_${REDACTED}`) : line;
}

/**
 * Where log lines go: standard output, through {@link redactLine}, each written before the call
 * returns. pino's default destination writes from libuv's thread pool, and a line still on its
 * way there is lost when the process ends: by the signal Kiln raises again once its graceful
 * shutdown is done (the embedded PostgreSQL's `stopped` line was its last), or by `process.exit`.
 */
function redactingStream(): DestinationStream {
  const out = destination({ dest: 1, sync: true });
  return { write: (line: string) => out.write(redactLine(line)) };
}

/** Headers that carry credentials: logged as {@link REDACTED}. */
const SECRET_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'x-api-key'];

/** Health probes and Prometheus scrapes come every few seconds. */
const isProbe = (url: string) => /^\/(health|metrics)(?:[/?]|$)/.test(url);

/**
 * The request line's level: 5xx errors (a failing probe only warns), 4xx warnings, the rest info,
 * but debug for probes so that they do not flood the logs.
 */
export function requestLogLevel(url: string, statusCode: number): Level {
  if (statusCode >= 500) return isProbe(url) ? 'warn' : 'error';
  if (isProbe(url)) return 'debug';
  return statusCode >= 400 ? 'warn' : 'info';
}

let processLogger: Pino | undefined;

/**
 * Pino for the whole process: JSON lines on standard output, for Nest's `Logger` and one line
 * per request. One per process, so the first application's configuration wins.
 */
function processPino(config: KilnConfig): Pino {
  processLogger ??= pino(
    {
      level: PINO_LEVELS[config.http.logLevel],
      base: { pid: process.pid, hostname: hostname(), role: config.role },
      timestamp: stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: {
        paths: SECRET_HEADERS.map((name) => `req.headers["${name}"]`),
        censor: REDACTED,
      },
    },
    redactingStream(),
  );
  return processLogger;
}

/**
 * The application's logger, made before Nest's container so that every line is JSON from the
 * first one, a startup that fails (say, PostgreSQL unreachable) included, and none waits in a
 * buffer.
 */
export function createLogger(config: KilnConfig): Logger {
  const params = { pinoHttp: { logger: processPino(config) } };
  return new Logger(new PinoLogger(params), params);
}

/** Method, URL without keys, headers and client address; never the body. */
function requestFields(request: FastifyRequest) {
  return {
    method: request.method,
    url: redactUrl(request.url),
    headers: request.headers,
    // Honours TRUST_PROXY.
    remoteAddress: request.ip,
  };
}

/**
 * One line per request once its response is sent, carrying `requestId`: the id Fastify assigned
 * (taken from `X-Request-Id` when the caller sent one) and echoes in the response and in problem
 * documents. A line below LOG_LEVEL costs nothing: no per-request logger, no request context.
 */
export function logRequests(fastify: FastifyInstance, config: KilnConfig): void {
  const logger = processPino(config);
  fastify.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, done) => {
    const level = requestLogLevel(request.url, reply.statusCode);
    if (logger.isLevelEnabled(level)) {
      logger[level](
        {
          requestId: request.id,
          req: requestFields(request),
          res: { statusCode: reply.statusCode },
          responseTime: Math.round(reply.elapsedTime),
        },
        'request completed',
      );
    }
    done();
  });
}
