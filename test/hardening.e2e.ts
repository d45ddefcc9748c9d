import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { testJob } from './support/builders.js';
import { ADMIN_KEY, TEST_ENV, TestKiln, useKiln } from './support/kiln.js';
import { freePort } from './support/ports.js';

const ORIGIN = 'https://app.example';
const header = (response: globalThis.Response, name: string) => response.headers.get(name) ?? '';
const list = (value: string) => value.split(',').map((item) => item.trim().toLowerCase());

const preflight = (kiln: TestKiln, origin: string) =>
  kiln.fetch('/api/v1/jobs', {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization, content-type, idempotency-key',
    },
  });

describe('with CORS_ORIGINS set', () => {
  const kiln = useKiln({
    KILN_ROLE: 'api',
    CORS_ORIGINS: `${ORIGIN}, https://other.example`,
    BODY_LIMIT_BYTES: '4096',
  });

  it('sends security headers on API responses and problem documents', async () => {
    for (const path of ['/api/v1/generators', '/api/v1/nothing-here', '/health/live']) {
      const response = await kiln.fetch(path);
      expect(header(response, 'x-content-type-options'), path).toBe('nosniff');
      expect(header(response, 'x-frame-options'), path).toBe('SAMEORIGIN');
      expect(header(response, 'strict-transport-security'), path).toMatch(/max-age=\d+/);
      expect(header(response, 'referrer-policy'), path).toBe('no-referrer');
      const csp = header(response, 'content-security-policy');
      expect(csp, path).toContain("default-src 'self'");
      expect(csp, path).toContain("object-src 'none'");
      expect(csp, path).not.toContain('upgrade-insecure-requests');
      expect(header(response, 'x-request-id'), path).toBeTruthy();
    }
  });

  it('sends them on event streams too, which write past Fastify', async () => {
    const { body: job } = await kiln.submit('test', {});
    await kiln.request('DELETE', `/jobs/${job.id}`);
    const stream = await kiln.fetch(`/api/v1/jobs/${job.id}/events`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}`, origin: ORIGIN },
    });
    expect(header(stream, 'content-type')).toBe('text/event-stream');
    expect(header(stream, 'x-content-type-options')).toBe('nosniff');
    expect(header(stream, 'content-security-policy')).toContain("default-src 'self'");
    expect(header(stream, 'x-request-id')).toBeTruthy();
    expect(header(stream, 'access-control-allow-origin')).toBe(ORIGIN);
    await stream.text();
  });

  it('still serves the API documentation, under a policy that Swagger UI works with', async () => {
    const page = await kiln.fetch('/docs');
    expect(page.status).toBe(200);
    expect(header(page, 'content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    expect(html).toContain('swagger-ui');
    // Its scripts are files under /docs, it has inline styles and its stylesheet has data: images.
    expect(html).not.toMatch(/<script>[^<]*\S/);
    const csp = header(page, 'content-security-policy');
    expect(csp).toMatch(/script-src 'self'(;|$)/);
    expect(csp).toMatch(/style-src 'self' 'unsafe-inline'/);
    expect(csp).toMatch(/img-src 'self' data:/);
    const script = await kiln.fetch('/docs/swagger-ui-init.js');
    expect(script.status).toBe(200);

    const json = await kiln.fetch('/docs-json');
    expect(json.status).toBe(200);
    expect(((await json.json()) as { openapi: string }).openapi).toMatch(/^3\./);
  });

  it('answers a preflight from a listed origin', async () => {
    const response = await preflight(kiln, ORIGIN);
    expect(response.status).toBe(204);
    expect(header(response, 'access-control-allow-origin')).toBe(ORIGIN);
    expect(list(header(response, 'vary'))).toContain('origin');
    expect(list(header(response, 'access-control-allow-methods'))).toEqual(
      expect.arrayContaining(['get', 'post', 'delete']),
    );
    expect(list(header(response, 'access-control-allow-headers'))).toEqual(
      expect.arrayContaining(['authorization', 'content-type', 'idempotency-key', 'x-request-id']),
    );
    expect(list(header(response, 'access-control-expose-headers'))).toEqual(
      expect.arrayContaining([
        'location',
        'x-request-id',
        'retry-after',
        'ratelimit',
        'ratelimit-policy',
      ]),
    );
    expect(header(response, 'access-control-allow-credentials')).toBe('');
  });

  it('lets a listed origin read the exposed headers of an actual response', async () => {
    const response = await kiln.fetch('/api/v1/generators', { headers: { origin: ORIGIN } });
    expect(response.status).toBe(200);
    expect(header(response, 'access-control-allow-origin')).toBe(ORIGIN);
    expect(list(header(response, 'access-control-expose-headers'))).toEqual(
      expect.arrayContaining(['location', 'ratelimit', 'x-request-id']),
    );
  });

  it('gives an unlisted origin no CORS grant', async () => {
    const options = await preflight(kiln, 'https://evil.example');
    expect(options.headers.has('access-control-allow-origin')).toBe(false);
    const get = await kiln.fetch('/api/v1/generators', {
      headers: { origin: 'https://evil.example' },
    });
    expect(get.headers.has('access-control-allow-origin')).toBe(false);
  });

  it('still refuses an oversized body with 413', async () => {
    const response = await kiln.fetch('/api/v1/jobs', {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: ORIGIN },
      body: JSON.stringify(testJob({ padding: 'x'.repeat(10_000) })),
    });
    expect(response.status).toBe(413);
    expect(header(response, 'content-type')).toMatch(/^application\/problem\+json/);
    expect(header(response, 'access-control-allow-origin')).toBe(ORIGIN);
    expect(header(response, 'x-content-type-options')).toBe('nosniff');
  });
});

describe('CORS_ORIGINS', () => {
  it('empty: no CORS at all', async () => {
    await TestKiln.using({ KILN_ROLE: 'api' }, async (kiln) => {
      const response = await preflight(kiln, ORIGIN);
      expect(
        [...response.headers.keys()].filter((name) => name.startsWith('access-control-')),
      ).toEqual([]);
      const get = await kiln.fetch('/api/v1/generators', { headers: { origin: ORIGIN } });
      expect(get.headers.has('access-control-allow-origin')).toBe(false);
      // Without CORS, responses stay same-origin resources.
      expect(header(get, 'cross-origin-resource-policy')).toBe('same-origin');
    });
  });

  it("'*': any origin", async () => {
    await TestKiln.using({ KILN_ROLE: 'api', CORS_ORIGINS: '*' }, async (kiln) => {
      const response = await preflight(kiln, 'https://anywhere.example');
      expect(header(response, 'access-control-allow-origin')).toBe('*');
      expect(list(header(response, 'access-control-expose-headers'))).toContain('ratelimit');
    });
  });
});

describe('logs', () => {
  const SECRET = 'kiln_secretsecretsecretsecret1234';
  let child: ChildProcess | undefined;
  let stdout = '';
  let stderr = '';
  afterAll(() => child?.kill('SIGKILL'));

  interface LogLine {
    level: string;
    msg: string;
    context?: string;
    requestId?: string;
    req?: { method: string; url: string; headers: Record<string, string>; remoteAddress: string };
    res?: { statusCode: number };
  }

  /** Starts `node dist/src/main.js` and returns its URL once it answers. */
  async function start(env: Record<string, string>): Promise<string> {
    const main = 'dist/src/main.js';
    if (!existsSync(main))
      throw new Error(`${main} is missing: run \`npm run build\` first (npm test does)`);
    const port = await freePort();
    stdout = '';
    stderr = '';
    child = spawn(process.execPath, [main], {
      env: { ...process.env, ...TEST_ENV, HOST: '127.0.0.1', PORT: String(port), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 20_000;
    for (;;) {
      // The port answers liveness from the start; readiness once the application serves.
      const ready = await fetch(`${url}/health/ready`).catch(() => undefined);
      await ready?.arrayBuffer();
      if (ready?.ok) return url;
      if (Date.now() > deadline || child.exitCode !== null)
        throw new Error(`Kiln did not start:\n${stdout}\n${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async function stop(): Promise<void> {
    child!.kill('SIGTERM');
    if (child!.exitCode === null) await once(child!, 'exit');
  }

  it('are JSON lines with the request id, and never carry an API key', async () => {
    const url = await start({ KILN_ROLE: 'api', LOG_LEVEL: 'log', TRUST_PROXY: 'true' });
    const headers = {
      authorization: `Bearer ${SECRET}`,
      'x-request-id': 'my-trace-1',
      'x-api-key': SECRET,
      cookie: `session=${SECRET}`,
      'x-forwarded-for': '203.0.113.7',
    };
    // Statuses depend on authentication: the logs are what is checked here.
    const first = await fetch(`${url}/api/v1/jobs?api_key=${SECRET}&limit=5`, { headers });
    expect(first.headers.get('x-request-id')).toBe('my-trace-1');
    await first.arrayBuffer();
    await fetch(`${url}/api/v1/jobs/${SECRET}?token=${SECRET.replace('_', '%5F')}`, {
      headers: { ...headers, 'x-request-id': 'my-trace-2' },
    }).then((response) => response.arrayBuffer());
    await fetch(`${url}/api/v1/generators`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'x-request-id': 'my-trace-3' },
    }).then((response) => response.arrayBuffer());
    // Whatever carries a key into a line, here the request id, the line is masked.
    await fetch(`${url}/api/v1/generators`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'x-request-id': `trace-${SECRET}` },
    }).then((response) => response.arrayBuffer());
    // An over-long id is replaced before anything logs it.
    const LONG_ID = 'x'.repeat(16_000);
    const replaced = await fetch(`${url}/api/v1/generators`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'x-request-id': LONG_ID },
    });
    await replaced.arrayBuffer();
    const freshId = replaced.headers.get('x-request-id') ?? '';
    expect(freshId).not.toBe(LONG_ID);
    await fetch(`${url}/health/live`, { headers: { 'x-request-id': 'probe-1' } }).then((response) =>
      response.arrayBuffer(),
    );

    await stop();

    const raw = stdout.split('\n').filter((line) => line.trim() !== '');
    const lines = raw.map((line) => {
      try {
        return JSON.parse(line) as LogLine;
      } catch {
        throw new Error(`Not a JSON log line: ${line}`);
      }
    });
    // Nest's own logs go through pino too.
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 'info',
        context: 'Kiln',
        msg: expect.stringMatching(/^Role api/),
      }),
    );

    const request = lines.find((line) => line.requestId === 'my-trace-1' && line.req);
    expect(request, stdout).toBeDefined();
    expect(request!.req).toMatchObject({
      method: 'GET',
      url: expect.stringMatching(/^\/api\/v1\/jobs\?api_key=kiln_\[Redacted\]&limit=5$/),
      // TRUST_PROXY=true: the client is the one X-Forwarded-For names.
      remoteAddress: '203.0.113.7',
    });
    expect(request!.req!.headers).toMatchObject({
      authorization: '[Redacted]',
      'x-api-key': '[Redacted]',
      cookie: '[Redacted]',
      'x-request-id': 'my-trace-1',
    });
    expect(request!.res?.statusCode).toEqual(expect.any(Number));
    const second = lines.find((line) => line.requestId === 'my-trace-2' && line.req);
    expect(second?.req?.url).toBe('/api/v1/jobs/kiln_[Redacted]?token=kiln_[Redacted]');
    expect(lines.find((line) => line.requestId === 'my-trace-3' && line.req)).toBeDefined();
    expect(lines.filter((line) => line.requestId === 'trace-kiln_[Redacted]')).not.toEqual([]);
    const replacedLine = lines.find((line) => line.requestId === freshId && line.req);
    expect(replacedLine?.req?.headers['x-request-id']).toBe(freshId);
    expect(stdout).not.toContain('x'.repeat(129));
    // Probes are logged at debug, below LOG_LEVEL=log.
    expect(lines.find((line) => line.requestId === 'probe-1')).toBeUndefined();

    for (const line of raw) {
      expect(line).not.toContain(SECRET);
      expect(line).not.toContain(ADMIN_KEY);
      expect(line).not.toMatch(/bearer/i);
      expect(line).not.toContain('secretsecret');
    }
    expect(stderr).not.toContain(SECRET);
  });

  it('stay quiet at LOG_LEVEL=error', async () => {
    const url = await start({ KILN_ROLE: 'api', LOG_LEVEL: 'error' });
    await fetch(`${url}/api/v1/jobs`, { headers: { authorization: `Bearer ${SECRET}` } });
    await stop();
    expect(stdout).toBe('');
    expect(stderr).toBe('');
  });
});
