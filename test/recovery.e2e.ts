import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { parseWavHeader } from '../src/generation/generators/music/wav.js';
import { JobQueue } from '../src/jobs/job-queue.service.js';
import { JobReconciler } from '../src/jobs/job-reconciler.service.js';
import { ON_REDIS, REDIS_URL } from './support/env.js';
import { TestKiln, emptyQueues, resetState, useKiln } from './support/kiln.js';
import { killHard, startWorkerProcess } from './support/processes.js';

const api = useKiln({ KILN_ROLE: 'api' });
beforeEach(resetState);

describe('the reconciler', () => {
  it('enqueues again every pending job that the queue lost', async () => {
    const submitted = await Promise.all(
      [1, 2, 3].map((tag) => api.submit('test', { tag: String(tag) })),
    );
    const jobs = submitted.map((response) => response.body);

    // Redis restarting empty, or an enqueue that failed after the row was written.
    expect(await emptyQueues()).toBeGreaterThan(0);
    const queue = api.app.get(JobQueue);
    expect([...(await queue.states(jobs)).values()]).toEqual(['unknown', 'unknown', 'unknown']);

    expect(await api.app.get(JobReconciler).reconcile()).toEqual({ enqueued: 3, failed: 0 });
    expect([...(await queue.states(jobs)).values()]).not.toContain('unknown');
    expect(await api.app.get(JobReconciler).reconcile()).toEqual({ enqueued: 0, failed: 0 });

    // A worker of its own drains them.
    await TestKiln.using({ KILN_ROLE: 'worker' }, async () => {
      for (const job of jobs) await api.waitForStatus(job.id, 'completed');
    });
  });
});

describe.skipIf(!ON_REDIS)('a Redis that lost its scripts', () => {
  it('still limits and enqueues: each script is loaded again', async () => {
    await TestKiln.using({ RATE_LIMIT_WHITELIST: 'none' }, async (kiln) => {
      await kiln.submit('test', {});
      const redis = new Redis(REDIS_URL);
      await redis.script('FLUSH');
      redis.disconnect();
      const submitted = await Promise.all([1, 2, 3].map(() => kiln.submit('test', {})));
      expect(submitted.map((response) => response.status)).toEqual([202, 202, 202]);
      expect(submitted[0]!.headers.get('ratelimit')).toMatch(/"submit";r=\d+/);
      for (const { body } of submitted) await kiln.waitForStatus(body.id, 'completed');
    });
  });
});

describe('a worker killed mid-job', () => {
  let child: ChildProcess | undefined;
  afterAll(() => child && killHard(child));

  it('is detected as stalled, and another worker completes the job', async () => {
    child = await startWorkerProcess();

    // Five minutes of audio: long enough to be caught mid-render.
    const { body } = await api.submit('music', {
      prompt: 'long fast drums and bass',
      duration: 300,
    });
    await api.waitForJob(body.id, (job) => job.status === 'processing');
    await killHard(child);

    // Another worker picks the stalled job up.
    await TestKiln.using({ KILN_ROLE: 'worker' }, async () => {
      const done = await api.waitForStatus(body.id, 'completed', 30_000);
      expect(done.attempts).toBe(2);
      const wav = Buffer.from(await (await api.fetch(done.links.result!)).arrayBuffer());
      expect(parseWavHeader(wav).durationSeconds).toBeCloseTo(300, 3);
    });
  });
});
