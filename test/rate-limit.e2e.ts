import { beforeEach, describe, expect, it } from 'vitest';
import { bearer, createClientKey, testJob } from './support/builders.js';
import { TestKiln, resetState, startForTest, useKiln } from './support/kiln.js';

/** Limits under test, nothing whitelisted, and the other limits out of the way. */
const LIMITED = {
  KILN_ROLE: 'api',
  RATE_LIMIT_WHITELIST: 'none',
  RATE_LIMIT_PER_MINUTE: '1000',
  RATE_LIMIT_BURST_PER_SECOND: '1000',
  RATE_LIMIT_SUBMIT_PER_MINUTE: '3',
};

async function submitAs(kiln: TestKiln, key: string) {
  return kiln.request('POST', '/jobs', testJob(), bearer(key));
}

describe('rate limits', () => {
  const kiln = useKiln(LIMITED);
  let alice: string;
  let bob: string;

  beforeEach(async () => {
    await resetState();
    alice = await createClientKey(kiln, 'alice');
    bob = await createClientKey(kiln, 'bob');
  });

  it('lets exactly N submissions through in a window, then answers 429 with the headers', async () => {
    const statuses = [];
    for (let i = 0; i < 3; i++) {
      const response = await submitAs(kiln, alice);
      statuses.push(response.status);
      expect(response.headers.get('ratelimit-policy')).toContain('"submit";q=3;w=60');
      expect(response.headers.get('ratelimit')).toContain(`"submit";r=${2 - i};t=`);
    }
    expect(statuses).toEqual([202, 202, 202]);

    const refused = await submitAs(kiln, alice);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    expect(refused.headers.get('ratelimit')).toMatch(/"submit";r=0;t=\d+/);
    expect(refused.body).toMatchObject({ type: 'urn:kiln:problem:rate-limited', status: 429 });

    // The budget is per key: another client still has all of its own.
    expect((await submitAs(kiln, bob)).status).toBe(202);
    // Reading is not submitting.
    const read = await kiln.request('GET', '/jobs', undefined, bearer(alice));
    expect(read.status).toBe(200);
    expect(read.headers.get('ratelimit-policy')).not.toContain('submit');
    const metrics = await (await kiln.fetch('/metrics')).text();
    expect(metrics).toMatch(/^kiln_rate_limited_total\{throttler="submit"\} [1-9]/m);
  });

  it('counts a batch as its number of jobs', async () => {
    const batch = (size: number) =>
      kiln.request(
        'POST',
        '/jobs/batch',
        { jobs: Array.from({ length: size }, () => testJob()) },
        bearer(alice),
      );
    expect((await batch(4)).status).toBe(429);
    expect((await batch(2)).status).toBe(202);
    expect((await submitAs(kiln, alice)).status).toBe(202);
    expect((await submitAs(kiln, alice)).status).toBe(429);
  });

  it('honours a key of its own limits', async () => {
    const key = await createClientKey(kiln, 'tight', { submitLimitPerMinute: 1 });
    expect((await submitAs(kiln, key)).status).toBe(202);
    expect((await submitAs(kiln, key)).status).toBe(429);
  });

  it('holds one limit across two API instances on one Redis', async () => {
    await TestKiln.using(LIMITED, async (other) => {
      const statuses = [];
      for (let i = 0; i < 6; i++)
        statuses.push((await submitAs(i % 2 ? other : kiln, alice)).status);
      expect(statuses.filter((status) => status === 202)).toHaveLength(3);
      expect(statuses.filter((status) => status === 429)).toHaveLength(3);
    });
  });
});

describe('the general limit', () => {
  it('limits every API route per minute but never the probes', async () => {
    await resetState();
    await TestKiln.using({ ...LIMITED, RATE_LIMIT_PER_MINUTE: '5' }, async (kiln) => {
      const statuses = [];
      for (let i = 0; i < 6; i++) statuses.push((await kiln.request('GET', '/queue/stats')).status);
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
      for (let i = 0; i < 10; i++) expect((await kiln.fetch('/health/live')).status).toBe(200);
    });
  });
});

describe('the burst limit', () => {
  it('refuses a quick run of requests past the per-second limit', async () => {
    await resetState();
    await TestKiln.using({ ...LIMITED, RATE_LIMIT_BURST_PER_SECOND: '2' }, async (kiln) => {
      // The window opens with the first request: three local requests fit well inside it.
      const responses = await Promise.all(
        Array.from({ length: 3 }, () => kiln.request('GET', '/queue/stats')),
      );
      expect(responses.map((response) => response.status).sort()).toEqual([200, 200, 429]);
      const refused = responses.find((response) => response.status === 429);
      expect(refused?.headers.get('ratelimit-policy')).toContain('"burst";q=2;w=1');
    });
  });
});

describe('the whitelist', () => {
  it('lets whitelisted addresses and keys through without limit', async () => {
    await resetState();
    const byIp = await startForTest({
      ...LIMITED,
      RATE_LIMIT_WHITELIST: '127.0.0.1,::1,::ffff:127.0.0.1',
    });
    const byKey = await startForTest({ ...LIMITED, RATE_LIMIT_WHITELIST: 'vip' });
    const client = await createClientKey(byIp, 'someone');
    const vip = await createClientKey(byIp, 'vip');
    for (let i = 0; i < 5; i++) {
      expect((await submitAs(byIp, client)).status).toBe(202);
      expect((await submitAs(byKey, vip)).status).toBe(202);
    }
    expect((await submitAs(byKey, client)).status).toBe(202);
    for (let i = 0; i < 3; i++) await submitAs(byKey, client);
    expect((await submitAs(byKey, client)).status).toBe(429);
  });
});

describe('callers without a key', () => {
  it('are told apart by IP, taken from X-Forwarded-For only behind a trusted proxy', async () => {
    await resetState();
    await TestKiln.using(
      { ...LIMITED, AUTH_DISABLED: 'true', TRUST_PROXY: 'true' },
      async (kiln) => {
        const submitFrom = async (ip: string) =>
          (await kiln.request('POST', '/jobs', testJob(), { 'x-forwarded-for': ip })).status;
        const first = [];
        for (let i = 0; i < 4; i++) first.push(await submitFrom('203.0.113.7'));
        expect(first).toEqual([202, 202, 202, 429]);
        expect(await submitFrom('203.0.113.8')).toBe(202);
      },
    );
  });
});
