/**
 * Whether an error means a dependency (PostgreSQL, Redis) could not be reached or stopped
 * answering, as opposed to a fault of the request or of Kiln. Such an error is an outage: the
 * API answers 503 with Retry-After, and a worker puts its job back without counting an attempt.
 */
export function isUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error instanceof AggregateError) return error.errors.some(isUnavailable);
  const { code } = error as { code?: unknown };
  if (typeof code === 'string') {
    if (NETWORK_CODES.has(code)) return true;
    // SQLSTATE class 08 is "connection exception"; the others are a server going away or busy.
    if (code.startsWith('08') || SERVER_GONE_CODES.has(code)) return true;
  }
  if (error.name === 'MaxRetriesPerRequestError') return true;
  if (UNAVAILABLE_MESSAGES.some((pattern) => pattern.test(error.message))) return true;
  return error.cause !== undefined && error.cause !== error && isUnavailable(error.cause);
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
 * by `statement_timeout` (a frozen or overloaded server).
 */
const SERVER_GONE_CODES = new Set(['57P01', '57P02', '57P03', '53300', '57014']);

/** What pg and ioredis say when a connection is lost or never made; they set no code for these. */
const UNAVAILABLE_MESSAGES = [
  /^Connection terminated/,
  /timeout exceeded when trying to connect/,
  /Client has encountered a connection error/,
  /^Connection is closed/,
  /enableOfflineQueue options is false/,
  /^Command timed out/,
];
