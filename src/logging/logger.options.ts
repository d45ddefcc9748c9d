import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hostname } from 'node:os';
import { Logger, type Params, PinoLogger } from 'nestjs-pino';
import { type DestinationStream, type Level, destination, stdTimeFunctions } from 'pino';
import type { Options } from 'pino-http';
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
 * Where log lines go: standard output, through {@link redactLine}, by pino's default destination
 * (which flushes what is pending when the process exits).
 */
export function redactingStream(target?: DestinationStream): DestinationStream {
  // Opened on first use: only the first application of a process logs (see LoggingModule).
  let out = target;
  return { write: (line: string) => (out ??= destination(1)).write(redactLine(line)) };
}

/** Headers that carry credentials: logged as {@link REDACTED}. */
const SECRET_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'x-api-key'];

/** What pino-std-serializers makes of a request; `raw` is the request itself. */
interface SerializedRequest {
  method: string;
  url: string;
  headers: Record<string, unknown>;
  remoteAddress?: string;
  raw: IncomingMessage & { ip?: string };
}

/** Method, URL without keys, headers and client address; never the body nor the parsed query. */
function serializeRequest(request: SerializedRequest) {
  return {
    method: request.method,
    url: redactUrl(request.url),
    headers: request.headers,
    // Fastify's `request.ip` (given to Nest middleware as `raw.ip`) honours TRUST_PROXY.
    remoteAddress: request.raw.ip ?? request.remoteAddress,
  };
}

/** Only the status: the response headers are the same on every line. */
const serializeResponse = (response: { statusCode: number }) => ({
  statusCode: response.statusCode,
});

type Request = IncomingMessage & { originalUrl?: string };

/** Health probes and Prometheus scrapes come every few seconds. */
const isProbe = (request: Request) =>
  /^\/(health|metrics)(?:[/?]|$)/.test(request.originalUrl ?? request.url ?? '');

/**
 * The request line's level: 5xx errors (a failing probe only warns), 4xx warnings, the rest info,
 * but debug for probes so that they do not flood the logs.
 */
export function requestLogLevel(
  request: Request,
  response: ServerResponse,
  error?: Error,
): 'error' | 'warn' | 'info' | 'debug' {
  if (error || response.statusCode >= 500) return isProbe(request) ? 'warn' : 'error';
  if (isProbe(request)) return 'debug';
  return response.statusCode >= 400 ? 'warn' : 'info';
}

/**
 * Pino for the whole process: JSON lines on standard output, one per request and one per Nest
 * `Logger` call. Every line of a request carries `requestId`, the id Fastify assigned (taken from
 * `X-Request-Id` when the caller sent one) and echoes in the response and in problem documents.
 */
export function loggerParams(config: KilnConfig): Params<Request, ServerResponse> {
  const options: Options<Request, ServerResponse> = {
    level: PINO_LEVELS[config.http.logLevel],
    base: { pid: process.pid, hostname: hostname(), role: config.role },
    timestamp: stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    // Fastify has already assigned the id (Nest middleware gets it as `raw.id`); this is a fallback.
    genReqId: (request) => request.id ?? randomUUID(),
    customAttributeKeys: { reqId: 'requestId' },
    // Logs made while serving a request carry its id; only the final request line has the rest.
    quietReqLogger: true,
    customLogLevel: requestLogLevel,
    serializers: { req: serializeRequest, res: serializeResponse },
    redact: {
      paths: [
        ...SECRET_HEADERS.map((name) => `req.headers["${name}"]`),
        'res.headers["set-cookie"]',
      ],
      censor: REDACTED,
    },
  };
  return { pinoHttp: [options, redactingStream()] };
}

/**
 * The application's logger, made before Nest's container so that every line is JSON from the
 * first one, a startup that fails (say, PostgreSQL unreachable) included, and none waits in a
 * buffer. It logs through the same pino as `LoggingModule`'s request logging.
 */
export function createLogger(config: KilnConfig): Logger {
  const params = loggerParams(config);
  return new Logger(new PinoLogger(params), params);
}
