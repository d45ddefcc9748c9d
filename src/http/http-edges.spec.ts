import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { REQUEST_ID_MAX_LENGTH, isSafeRequestId, requestId } from './http-edges.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const withHeaders = (headers: IncomingMessage['headers']) => ({ headers }) as IncomingMessage;

describe('isSafeRequestId', () => {
  it('takes letters, digits and . _ : - up to the length bound', () => {
    expect(isSafeRequestId('6f0c2a1e-9b7d-4c3e-8a5f-0d1e2f3a4b5c')).toBe(true);
    expect(isSafeRequestId('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).toBe(true);
    expect(isSafeRequestId('Root.1:abc_DEF')).toBe(true);
    expect(isSafeRequestId('a'.repeat(REQUEST_ID_MAX_LENGTH))).toBe(true);
  });

  it('refuses an empty, over-long or unsafe one', () => {
    expect(isSafeRequestId('')).toBe(false);
    expect(isSafeRequestId('a'.repeat(REQUEST_ID_MAX_LENGTH + 1))).toBe(false);
    for (const unsafe of ['a b', 'a,b', 'a\nb', 'a"b', 'a<b', 'a/b', 'a=b', 'é', '\u0000', '💥']) {
      expect(isSafeRequestId(unsafe), JSON.stringify(unsafe)).toBe(false);
    }
  });
});

describe('requestId', () => {
  it("is the caller's safe X-Request-Id", () => {
    expect(requestId(withHeaders({ 'x-request-id': 'trace-1' }))).toBe('trace-1');
  });

  it('is a fresh UUID without one', () => {
    const request = withHeaders({});
    expect(requestId(request)).toMatch(UUID);
    expect(request.headers).toEqual({});
  });

  it('replaces an unsafe one, in the headers too', () => {
    const request = withHeaders({ 'x-request-id': 'x'.repeat(200) });
    const id = requestId(request);
    expect(id).toMatch(UUID);
    expect(request.headers['x-request-id']).toBe(id);
  });
});
