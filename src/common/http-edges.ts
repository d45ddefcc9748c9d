import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

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
