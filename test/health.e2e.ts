import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeNvidiaSmi, insertJob } from './support/builders.js';
import { ON_REDIS, TEST_QUEUE_BACKEND } from './support/env.js';
import { TestKiln, startForTest, useKiln } from './support/kiln.js';
import { OwnRedis } from './support/redis-server.js';

interface Probe {
  status: string;
  details: Record<string, { status: string; message?: string }>;
}

interface Report {
  status: string;
  version: string;
  uptime_seconds: number;
  timestamp: string;
  checks: Record<string, { status: string; message: string; details?: Record<string, unknown> }>;
}

async function get<T>(kiln: TestKiln, path: string): Promise<{ status: number; body: T }> {
  const response = await kiln.fetch(path);
  return { status: response.status, body: (await response.json()) as T };
}

/** The poller runs at boot without holding it up: wait for its first reading. */
async function untilGpuPolled(kiln: TestKiln): Promise<Report> {
  for (;;) {
    const { body } = await get<Report>(kiln, '/health');
    if (body.checks.gpu?.details?.state !== 'pending') return body;
    await sleep(20);
  }
}

describe('health on a machine without a GPU', () => {
  const kiln = useKiln();

  it('is live and ready, outside the API prefix and without caching', async () => {
    const live = await kiln.fetch('/health/live');
    expect(live.status).toBe(200);
    expect(live.headers.get('cache-control')).toContain('no-cache');
    expect(await live.json()).toMatchObject({
      status: 'ok',
      details: { event_loop: { status: 'up' }, heap: { status: 'up' } },
    });
    const ready = await get<Probe>(kiln, '/health/ready');
    expect(ready.status).toBe(200);
    expect(Object.keys(ready.body.details).sort()).toEqual(
      ON_REDIS ? ['database', 'disk_space', 'redis'] : ['database', 'disk_space'],
    );
  });

  it('reports every check, and a missing GPU that is not required only degrades', async () => {
    const report = await untilGpuPolled(kiln);
    expect(report).toMatchObject({
      status: 'degraded',
      version: expect.stringMatching(/^\d+\.\d+\.\d+/) as string,
      checks: {
        database: { status: 'healthy' },
        queue: {
          status: 'healthy',
          details: { pending: 0, processing: 0, backend: TEST_QUEUE_BACKEND },
        },
        disk_space: { status: 'healthy' },
        gpu: { status: 'degraded', details: { state: 'missing', required: false } },
      },
    });
    // Without Redis there is no Redis to fail.
    expect(report.checks.redis?.status).toBe(ON_REDIS ? 'healthy' : undefined);
    expect(report.checks.gpu?.message).toContain('NVIDIA_SMI_PATH');
    expect(report.uptime_seconds).toBeGreaterThanOrEqual(0);
    expect(Date.parse(report.timestamp)).not.toBeNaN();
    const disk = report.checks.disk_space?.details as Record<
      string,
      { freeGb: number; freePercent: number }
    >;
    expect(disk.artifacts?.freePercent).toBeGreaterThan(0);
    expect(disk.temp?.freeGb).toBeGreaterThan(0);
  });
});

describe('health with a backlog', () => {
  // No worker runs anywhere: the seeded jobs stay pending even if the reconciler, which runs once
  // as the app boots, finds and enqueues them.
  const busy = useKiln({ KILN_ROLE: 'api', QUEUE_BACKLOG_THRESHOLD: '1' });

  it('degrades when the backlog passes its threshold', async () => {
    await Promise.all([insertJob(), insertJob()]);
    const { body } = await get<Report>(busy, '/health');
    expect(body.checks.queue).toMatchObject({
      status: 'degraded',
      details: { pending: 2, backlogThreshold: 1 },
    });
    expect(body.checks.queue?.message).toContain('over 1');
  });
});

describe.skipIf(!ON_REDIS)('health when Redis goes away', () => {
  let redis: OwnRedis;
  let kiln: TestKiln;

  beforeAll(async () => {
    redis = await OwnRedis.start();
    kiln = await TestKiln.start({
      KILN_ROLE: 'api',
      REDIS_URL: redis.url,
      HEALTH_CHECK_TIMEOUT_MS: '300',
    });
  });
  afterAll(async () => {
    await redis.restart();
    await kiln.close();
    await redis.stop();
  });

  it('stays live while readiness and the report turn it away', async () => {
    expect((await kiln.fetch('/health/ready')).status).toBe(200);
    await redis.stop();

    expect((await kiln.fetch('/health/live')).status).toBe(200);
    const ready = await get<Probe>(kiln, '/health/ready');
    expect(ready.status).toBe(503);
    expect(ready.body.status).toBe('error');
    expect(ready.body.details.redis?.status).toBe('down');
    expect(ready.body.details.database?.status).toBe('up');
    const report = await get<Report>(kiln, '/health');
    expect(report.status).toBe(503);
    expect(report.body.checks.redis?.status).toBe('unhealthy');
  });
});

describe('health with too little free disk', () => {
  const kiln = useKiln({ KILN_ROLE: 'api', DISK_MIN_FREE_PERCENT: '100' });

  it('is not ready, and says which directory is short', async () => {
    const ready = await get<Probe>(kiln, '/health/ready');
    expect(ready.status).toBe(503);
    expect(ready.body.details.disk_space?.status).toBe('down');
    expect(ready.body.details.disk_space?.message).toMatch(/^Low disk: .+ GB \(.+ %\) free/);
    expect((await kiln.fetch('/health/live')).status).toBe(200);
  });

  it('trips on the absolute floor alone', async () => {
    await TestKiln.using({ KILN_ROLE: 'api', DISK_MIN_FREE_MB: '1000000000' }, async (floor) => {
      expect((await floor.fetch('/health/ready')).status).toBe(503);
    });
  });
});

describe('GPU health from nvidia-smi', () => {
  it('is healthy with working GPUs and exports their memory and utilisation', async () => {
    await TestKiln.using(
      { KILN_ROLE: 'api', NVIDIA_SMI_PATH: fakeNvidiaSmi('ok') },
      async (kiln) => {
        const report = await untilGpuPolled(kiln);
        expect(report.checks.gpu).toMatchObject({ status: 'healthy', details: { state: 'ok' } });
        expect(report.checks.gpu?.details?.gpus).toHaveLength(2);
        const metrics = await (await kiln.fetch('/metrics')).text();
        expect(metrics).toMatch(/^kiln_gpu_memory_used_bytes\{gpu="0"\} 1293942784$/m);
        expect(metrics).toMatch(/^kiln_gpu_utilization_ratio\{gpu="0"\} 0\.17$/m);
      },
    );
  });

  it.each([
    ['ecc', 'ecc_errors'],
    ['failing', 'failed'],
    ['garbage', 'unparseable'],
  ])('is unhealthy when nvidia-smi reports %s', async (fixture, state) => {
    await TestKiln.using(
      {
        KILN_ROLE: 'api',
        NVIDIA_SMI_PATH: fakeNvidiaSmi(fixture),
      },
      async (kiln) => {
        const report = await untilGpuPolled(kiln);
        expect(report.status).toBe('unhealthy');
        expect(report.checks.gpu).toMatchObject({ status: 'unhealthy', details: { state } });
      },
    );
  });

  it('is unhealthy when nvidia-smi hangs past its timeout', async () => {
    await TestKiln.using(
      {
        KILN_ROLE: 'api',
        NVIDIA_SMI_PATH: fakeNvidiaSmi('hang'),
        GPU_POLL_TIMEOUT_MS: '300',
      },
      async (kiln) => {
        const report = await untilGpuPolled(kiln);
        expect(report.checks.gpu).toMatchObject({
          status: 'unhealthy',
          details: { state: 'timeout' },
        });
      },
    );
  });

  it('keeps a process that requires a GPU out of service when there is none', async () => {
    await TestKiln.using({ KILN_ROLE: 'api', GPU_REQUIRED: 'true' }, async (kiln) => {
      await untilGpuPolled(kiln);
      const ready = await get<Probe>(kiln, '/health/ready');
      expect(ready.status).toBe(503);
      expect(ready.body.details.gpu?.status).toBe('down');
    });
  });
});

describe('readiness during shutdown', () => {
  it('turns readiness off first while the API still serves', async () => {
    const kiln = await startForTest({ KILN_ROLE: 'api', SHUTDOWN_READINESS_DELAY_MS: '1000' });
    const closing = kiln.close();
    await sleep(100);
    const ready = await get<Probe>(kiln, '/health/ready');
    expect(ready.status).toBe(503);
    expect(ready.body.status).toBe('shutting_down');
    expect((await kiln.request('GET', '/queue/stats')).status).toBe(200);
    await closing;
  });
});
