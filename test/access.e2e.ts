import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import type { JobView } from '../src/jobs/job.dto.js';
import { bearer, createClientKey, testJob } from './support/builders.js';
import { TEST_ENV, TestKiln, sql, useKiln } from './support/kiln.js';

const run = promisify(execFile);

/** `npm run kiln -- …` as an operator runs it, against the test database. */
async function cli(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, ['dist/src/cli.js', ...args], {
    env: { ...process.env, ...TEST_ENV },
  });
  return stdout;
}

describe('API keys', () => {
  const kiln = useKiln({ AUTH_CACHE_MS: '0' });
  let alice: string;
  let bob: string;

  beforeAll(async () => {
    alice = await createClientKey(kiln, 'alice');
    bob = await createClientKey(kiln, 'bob');
  });

  it('answers 401 without a key, or with an unknown one, as problem+json', async () => {
    for (const headers of [
      {},
      { authorization: 'Basic abc' },
      bearer('kiln_not-a-real-key-at-all-000'),
    ]) {
      const response = await fetch(`${kiln.url}/api/v1/jobs`, { headers });
      expect(response.status).toBe(401);
      expect(response.headers.get('content-type')).toContain('application/problem+json');
      expect(response.headers.get('www-authenticate')).toContain('Bearer');
      expect(await response.json()).toMatchObject({ type: 'urn:kiln:problem:unauthorized' });
    }
  });

  it('keeps probes and metrics open without a key', async () => {
    for (const path of ['/health/live', '/health/ready', '/health', '/metrics']) {
      const response = await fetch(`${kiln.url}${path}`);
      expect(response.status, path).not.toBe(401);
    }
  });

  it('keeps clients off the admin routes with a 403', async () => {
    for (const [method, path] of [
      ['GET', '/admin/metrics/summary'],
      ['POST', '/admin/cleanup'],
    ] as const) {
      const response = await kiln.request(method, path, undefined, bearer(alice));
      expect(response.status).toBe(403);
      expect(response.body).toMatchObject({ type: 'urn:kiln:problem:forbidden' });
      expect((await kiln.request(method, path)).status).toBe(200);
    }
  });

  it("keeps each client's jobs to itself and shows an admin every job", async () => {
    const { body: job } = await kiln.request('POST', '/jobs', testJob(), bearer(alice));
    await kiln.waitForStatus(job.id, 'completed');

    const own = await kiln.request('GET', `/jobs/${job.id}`, undefined, bearer(alice));
    expect(own.status).toBe(200);
    for (const [method, path] of [
      ['GET', `/jobs/${job.id}`],
      ['GET', `/jobs/${job.id}/result`],
      ['GET', `/jobs/${job.id}/events`],
      ['DELETE', `/jobs/${job.id}`],
    ] as const) {
      const response = await kiln.fetch(`/api/v1${path}`, { method, headers: bearer(bob) });
      expect(response.status, `${method} ${path}`).toBe(404);
    }
    const bobsList = await kiln.request<{ items: JobView[] }>(
      'GET',
      '/jobs',
      undefined,
      bearer(bob),
    );
    expect(bobsList.body.items).toEqual([]);
    const alicesList = await kiln.request<{ items: JobView[] }>(
      'GET',
      '/jobs',
      undefined,
      bearer(alice),
    );
    expect(alicesList.body.items.map((item) => item.id)).toEqual([job.id]);

    // The bootstrap admin key sees and downloads every job.
    expect((await kiln.request('GET', `/jobs/${job.id}`)).status).toBe(200);
    expect((await kiln.fetch(`/api/v1/jobs/${job.id}/result`)).status).toBe(200);
    const all = await kiln.request<{ items: JobView[] }>('GET', '/jobs');
    expect(all.body.items.map((item) => item.id)).toContain(job.id);
  });

  it('lets a client cancel only its own jobs, and an admin any', async () => {
    const { body: job } = await kiln.request(
      'POST',
      '/jobs',
      testJob({ holdMs: 5000 }),
      bearer(alice),
    );
    expect((await kiln.request('DELETE', `/jobs/${job.id}`, undefined, bearer(bob))).status).toBe(
      404,
    );
    expect(['pending', 'processing']).toContain(
      (await kiln.request('GET', `/jobs/${job.id}`)).body.status,
    );
    expect([200, 202]).toContain((await kiln.request('DELETE', `/jobs/${job.id}`)).status);
    await kiln.waitForStatus(job.id, 'cancelled');
  });

  it('stores only a hash of each key', async () => {
    const rows = await sql<Record<string, unknown>>(`SELECT * FROM api_keys WHERE name = 'alice'`);
    expect(rows).toHaveLength(1);
    expect(Object.values(rows[0]!).map(String)).not.toContain(alice);
    expect(JSON.stringify(rows)).not.toContain(alice.slice(12));
    expect(rows[0]?.key_hash).toBe(createHash('sha256').update(alice).digest('hex'));
  });

  it('creates a working key from the CLI, and revokes it for good', async () => {
    const created = await cli('keys', 'create', '--name', 'cli-made', '--role', 'client');
    const key = /kiln_[\w-]+/.exec(created)?.[0];
    expect(key).toBeDefined();
    expect((await kiln.request('GET', '/jobs', undefined, bearer(key!))).status).toBe(200);
    expect(await cli('keys', 'list')).toMatch(/cli-made\s+client/);

    expect(await cli('keys', 'revoke', 'cli-made')).toContain('REVOKED');
    const revoked = await kiln.request('GET', '/jobs', undefined, bearer(key!));
    expect(revoked.status).toBe(401);
    expect(await cli('keys', 'list')).not.toContain(key!);
  });

  it('refuses a CLI call that is missing what it needs, or names a key badly', async () => {
    for (const [args, message] of [
      [['--name', 'x', '--role', 'owner'], '--role must be client or admin'],
      [['--name', 'two words', '--role', 'client'], 'A key name is 1 to 64 letters'],
      [['--name', 'alice', '--role', 'client'], 'A key named alice exists already.'],
    ] as const) {
      await expect(cli('keys', 'create', ...args)).rejects.toMatchObject({
        code: 2,
        stderr: expect.stringContaining(message) as string,
      });
    }
    expect(await sql(`SELECT 1 FROM api_keys WHERE name = 'two words'`)).toEqual([]);
  });
});

describe('with auth switched off', () => {
  it('serves requests without a key', async () => {
    await TestKiln.using({ KILN_ROLE: 'api', AUTH_DISABLED: 'true' }, async (kiln) => {
      expect((await fetch(`${kiln.url}/api/v1/jobs`)).status).toBe(200);
    });
  });
});
