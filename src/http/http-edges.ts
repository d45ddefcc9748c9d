import { isUtf8 } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ConnectionError, FastifyInstance } from 'fastify';
import { PROBLEM_CONTENT_TYPE } from '../common/problem-details.filter.js';
import { ProblemError, badRequest } from '../common/problem.js';

export const REQUEST_ID_MAX_LENGTH = 128;

/**
 * Letters, digits and `.`, `_`, `:`, `-`: enough for UUIDs, trace ids and the like, and safe in
 * a header or a log line.
 */
const REQUEST_ID_CHARS = new Uint8Array(128);
for (const char of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-') {
  REQUEST_ID_CHARS[char.charCodeAt(0)] = 1;
}

/** Whether a caller's `X-Request-Id` may become the request's id (a loop: cheaper than a regex). */
export function isSafeRequestId(value: string): boolean {
  if (value.length === 0 || value.length > REQUEST_ID_MAX_LENGTH) return false;
  for (let i = 0; i < value.length; i++) {
    if (REQUEST_ID_CHARS[value.charCodeAt(i)] !== 1) return false;
  }
  return true;
}

/**
 * The request's id: the caller's `X-Request-Id` when it is safe, else a fresh UUID, which then
 * also replaces the header so that the logged headers never carry the caller's value either.
 */
export function requestId(request: IncomingMessage): string {
  const sent = request.headers['x-request-id'];
  if (typeof sent === 'string' && isSafeRequestId(sent)) return sent;
  const id = randomUUID();
  if (sent !== undefined) request.headers['x-request-id'] = id;
  return id;
}

const UNSUPPORTED_ENCODING = new ProblemError(
  'unsupported-media-type',
  'Kiln does not decode request bodies.',
  { errors: [{ parameter: 'Content-Encoding', detail: 'Must be absent or identity.' }] },
);
const NOT_UTF8 = badRequest('The body is not valid UTF-8.', [
  { pointer: '#', detail: 'Must be JSON encoded in UTF-8.' },
]);

/**
 * Fastify's JSON parser (prototype-poisoning checks included) behind two checks of its own: a body
 * Kiln would have to decode (gzip, say) is refused rather than parsed as it is, and invalid UTF-8
 * is refused rather than read as replacement characters.
 */
export function useStrictJsonParser(fastify: FastifyInstance): void {
  const { onProtoPoisoning = 'error', onConstructorPoisoning = 'error' } = fastify.initialConfig;
  const parseJson = fastify.getDefaultJsonParser(onProtoPoisoning, onConstructorPoisoning);
  fastify.removeContentTypeParser('application/json');
  fastify.addContentTypeParser(
    'application/json',
    { parseAs: 'buffer' },
    (request, body: Buffer, done) => {
      const encoding = request.headers['content-encoding'];
      if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
        done(UNSUPPORTED_ENCODING, undefined);
      } else if (!isUtf8(body)) {
        done(NOT_UTF8, undefined);
      } else {
        void parseJson(request, body.toString('utf8'), done);
      }
    },
  );
}

/** Written to the socket as it is: there is no request for Fastify to answer. */
function rawResponse(problem: ProblemError): string {
  const { type, title, status, detail } = problem;
  const body = JSON.stringify({ type, title, status, detail });
  return (
    `HTTP/1.1 ${status} ${title}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  );
}

/** Node's errors on a connection, raised before a request reached Fastify or while one arrives. */
const CONNECTION_ERRORS: Record<string, string> = {
  ERR_HTTP_REQUEST_TIMEOUT: rawResponse(
    new ProblemError('request-timeout', 'The request did not arrive within HTTP_REQUEST_TIMEOUT.'),
  ),
  HPE_HEADER_OVERFLOW: rawResponse(
    new ProblemError('request-header-fields-too-large', 'The request headers are too large.'),
  ),
};
const MALFORMED = rawResponse(badRequest('The request is not valid HTTP.'));

/**
 * Fastify's `clientErrorHandler`, answering in problem+json: a request that does not arrive within
 * HTTP_REQUEST_TIMEOUT (a body shorter than its Content-Length, say) gets a 408, and its
 * connection is closed.
 */
export function answerClientError(error: ConnectionError, socket: Socket): void {
  // A reset connection has no one left to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  // As Node's own handler does: never a second answer after a response has begun.
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
  if (socket.writable && !inFlight?.headersSent) {
    socket.write(CONNECTION_ERRORS[error.code] ?? MALFORMED);
  }
  socket.destroy(error);
}
