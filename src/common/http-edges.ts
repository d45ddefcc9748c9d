import { isUtf8 } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { ProblemError, badRequest } from './problem.js';

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
  415,
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
