import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestKiln, resetState } from './support/kiln.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

interface Problem {
  requestId?: string;
  errors?: { parameter?: string; pointer?: string }[];
}

describe('HTTP edges', () => {
  let kiln: TestKiln;

  beforeAll(async () => {
    await resetState();
    kiln = await TestKiln.start();
  });
  afterAll(() => kiln.close());

  const submit = (body: string | Buffer, headers: Record<string, string> = {}) =>
    kiln.fetch('/api/v1/jobs', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
    });

  describe('X-Request-Id', () => {
    it('echoes a safe one, up to 128 characters', async () => {
      for (const sent of ['trace-1.2:abc_X', 'a'.repeat(128)]) {
        const response = await kiln.fetch('/api/v1/nothing-here', {
          headers: { 'x-request-id': sent },
        });
        expect(response.headers.get('x-request-id')).toBe(sent);
        expect(((await response.json()) as Problem).requestId).toBe(sent);
      }
    });

    it('replaces a long or unsafe one with a fresh UUID', async () => {
      for (const sent of ['a'.repeat(129), 'x'.repeat(200), 'id with spaces', 'a<b>', 'é']) {
        const response = await kiln.fetch('/api/v1/nothing-here', {
          headers: { 'x-request-id': sent },
        });
        const id = response.headers.get('x-request-id') ?? '';
        expect(id, sent).toMatch(UUID);
        expect(((await response.json()) as Problem).requestId).toBe(id);
      }
    });

    it('is a fresh UUID when none is sent', async () => {
      const response = await kiln.fetch('/health/live');
      expect(response.headers.get('x-request-id')).toMatch(UUID);
      await response.arrayBuffer();
    });
  });

  describe('JSON bodies', () => {
    const job = JSON.stringify({ kind: 'test', input: {} });

    it('refuses a Content-Encoding with 415 naming it', async () => {
      for (const encoding of ['gzip', 'br', 'deflate']) {
        const response = await submit(gzipSync(job), { 'content-encoding': encoding });
        expect(response.status, encoding).toBe(415);
        expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        expect(((await response.json()) as Problem).errors).toEqual([
          expect.objectContaining({ parameter: 'Content-Encoding' }),
        ]);
      }
    });

    it('takes identity as no encoding', async () => {
      const response = await submit(job, { 'content-encoding': 'identity' });
      expect(response.status).toBe(202);
      await response.arrayBuffer();
    });

    it('refuses invalid UTF-8 with 400 naming the body', async () => {
      const bytes = Buffer.concat([
        Buffer.from('{"kind":"test","input":{"tag":"'),
        Buffer.from([0xc3, 0x28]),
        Buffer.from('"}}'),
      ]);
      const response = await submit(bytes);
      expect(response.status).toBe(400);
      expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(((await response.json()) as Problem).errors).toEqual([
        expect.objectContaining({ pointer: '#' }),
      ]);
    });

    it('reads valid UTF-8 as it is', async () => {
      const tag = 'café ✓ 音';
      const response = await submit(JSON.stringify({ kind: 'test', input: { tag } }));
      expect(response.status).toBe(202);
      const { id } = (await response.json()) as { id: string };
      const { body } = await kiln.request<{ input: { tag: string } }>('GET', `/jobs/${id}`);
      expect(body.input.tag).toBe(tag);
    });

    it('still refuses prototype poisoning and malformed JSON', async () => {
      for (const body of ['{"kind":"test","input":{"__proto__":{"x":1}}}', '{"kind":', '']) {
        const response = await submit(body);
        expect(response.status, body).toBe(400);
        expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        await response.arrayBuffer();
      }
    });
  });
});
