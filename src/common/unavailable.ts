/** The dependencies whose outage Kiln answers with 503 instead of failing. */
export type Dependency = 'database' | 'redis';

export const DEPENDENCY_NAMES: Record<Dependency, string> = {
  database: 'PostgreSQL',
  redis: 'Redis',
};

/**
 * Whether an error means a dependency (PostgreSQL, Redis) could not be reached or stopped
 * answering, as opposed to a fault of the request or of Kiln. Such an error is an outage: the
 * API answers 503 with Retry-After, and a worker puts its job back without counting an attempt.
 */
export function isUnavailable(error: unknown): boolean {
  return unavailableDependency(error) !== undefined;
}

/**
 * Which dependency an outage error comes from, or undefined when it is no outage. ioredis answers
 * a command with errors of its own (below); socket errors and SQLSTATEs reach a request from pg.
 */
export function unavailableDependency(error: unknown): Dependency | undefined {
  if (!(error instanceof Error)) return undefined;
  if (error instanceof AggregateError) {
    return error.errors.map(unavailableDependency).find((found) => found !== undefined);
  }
  if (
    error.name === 'MaxRetriesPerRequestError' ||
    REDIS_MESSAGES.some((pattern) => pattern.test(error.message))
  ) {
    return 'redis';
  }
  const { code } = error as { code?: unknown };
  if (typeof code === 'string') {
    if (NETWORK_CODES.has(code)) return 'database';
    // SQLSTATE class 08 is "connection exception"; the others are a server going away or busy.
    if (code.startsWith('08') || SERVER_GONE_CODES.has(code)) return 'database';
  }
  if (PG_MESSAGES.some((pattern) => pattern.test(error.message))) return 'database';
  return error.cause !== undefined && error.cause !== error
    ? unavailableDependency(error.cause)
    : undefined;
}

/** Socket errors of a peer that is down, unreachable or unknown. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * PostgreSQL: shutting down, crashed, starting up, too many connections, and a statement cancelled
 * by `statement_timeout` (an overloaded server).
 */
const SERVER_GONE_CODES = new Set(['57P01', '57P02', '57P03', '53300', '57014']);

/** What pg says when a connection is lost, never made, or silent past `query_timeout`. */
const PG_MESSAGES = [
  /^Connection terminated/,
  /timeout exceeded when trying to connect/,
  /Client has encountered a connection error/,
  /^Query read timeout/,
];

/** What ioredis says when its connection is down, or a command got no answer in time. */
const REDIS_MESSAGES = [
  /^Connection is closed/,
  /enableOfflineQueue options is false/,
  /^Command timed out/,
];
