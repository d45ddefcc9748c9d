import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { testJob } from './support/builders.js';
import { type TestKiln, parseEvents, useKiln } from './support/kiln.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const TIMEOUT_MS = 1_000;

interface Problem {
  requestId?: string;
  errors?: { parameter?: string; pointer?: string }[];
}

/** Writes `bytes` on a connection of its own and reads until the server closes it. */
function exchange(
  kiln: TestKiln,
  bytes: string,
): Promise<{ answer: string; closedAfterMs: number }> {
  const { hostname, port } = new URL(kiln.url);
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let answer = '';
    const socket = connect(Number(port), hostname, () => socket.write(bytes));
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve({ answer, closedAfterMs: Date.now() - started }));
    // A server that never closes fails the test rather than hanging it.
    socket.setTimeout(10_000, () => socket.destroy(new Error(`still open; read: ${answer}`)));
  });
}

describe('HTTP edges', () => {
  const kiln = useKiln({ HTTP_REQUEST_TIMEOUT: `${TIMEOUT_MS}ms` });

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

  describe('HTTP_REQUEST_TIMEOUT', () => {
    it('answers a body shorter than its Content-Length with 408 and closes the connection', async () => {
      const body = '{"kind":"test","input":{}}';
      const { answer, closedAfterMs } = await exchange(
        kiln,
        'POST /api/v1/jobs HTTP/1.1\r\nHost: kiln\r\nContent-Type: application/json\r\n' +
          `Content-Length: ${body.length + 10}\r\n\r\n${body}`,
      );
      const [head = '', json = ''] = answer.split('\r\n\r\n');
      expect(head).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
      expect(head).toMatch(/\r\ncontent-type: application\/problem\+json\r\n/i);
      expect(head).toMatch(/\r\nconnection: close(\r\n|$)/i);
      expect(JSON.parse(json)).toMatchObject({
        type: 'urn:kiln:problem:request-timeout',
        status: 408,
      });
      // The check runs every tenth of the timeout.
      expect(closedAfterMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
      expect(closedAfterMs).toBeLessThan(TIMEOUT_MS * 2);
    });

    it('answers headers that never end with 408 too', async () => {
      const { answer } = await exchange(kiln, 'GET /health/live HTTP/1.1\r\nHost: kiln\r\n');
      expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    });

    it('answers headers over the size limit with 431, in problem+json too', async () => {
      const { answer } = await exchange(
        kiln,
        `GET /health/live HTTP/1.1\r\nHost: kiln\r\nX-Padding: ${'x'.repeat(20_000)}\r\n\r\n`,
      );
      expect(answer).toMatch(/^HTTP\/1\.1 431 /);
      expect(answer).toMatch(/\r\ncontent-type: application\/problem\+json\r\n/i);
    });

    it('does not cut an event stream that lasts longer', async () => {
      const { body: job } = await kiln.submit('test', { holdMs: TIMEOUT_MS * 3 });
      const started = Date.now();
      const stream = await kiln.fetch(`/api/v1/jobs/${job.id}/events`);
      expect(stream.status).toBe(200);
      const events = parseEvents(await stream.text());
      expect(Date.now() - started).toBeGreaterThan(TIMEOUT_MS * 2);
      expect(events.at(-1)).toMatchObject({ status: 'completed' });
    });
  });

  describe('JSON bodies', () => {
    const job = JSON.stringify(testJob());

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
      const response = await submit(JSON.stringify(testJob({ tag })));
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
