import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { JobQueue } from '../src/jobs/job-queue.service.js';
import { JobReconciler } from '../src/jobs/job-reconciler.service.js';
import { ON_REDIS, TEST_PREFIX } from './support/env.js';
import {
  TestKiln,
  deleteRedisKeys,
  emptyQueues,
  resetState,
  sql,
  useKiln,
} from './support/kiln.js';
import { OwnPostgres } from './support/postgres-server.js';
import { TestGenerator } from './support/test.generator.js';

// With PostgreSQL as the backplane, no job can be claimed while it is down.
describe.skipIf(!ON_REDIS)('a claim while PostgreSQL is down', () => {
  let postgres: OwnPostgres;
  let api: TestKiln;
  let worker: TestKiln;

  beforeAll(async () => {
    postgres = await OwnPostgres.start();
    // The API's queue is one no worker reads, so the test decides when the worker sees the job.
    api = await TestKiln.start({
      KILN_ROLE: 'api',
      DATABASE_URL: postgres.url,
      REDIS_PREFIX: `${TEST_PREFIX}-outage-api`,
    });
    worker = await TestKiln.start({
      KILN_ROLE: 'worker',
      DATABASE_URL: postgres.url,
      REDIS_PREFIX: `${TEST_PREFIX}-outage-worker`,
    });
  });
  afterAll(async () => {
    await postgres.restart().catch(() => undefined);
    await worker?.close();
    await api?.close();
    await postgres?.destroy();
    await deleteRedisKeys(`${TEST_PREFIX}-outage-*`);
  });

  it('waits for it to come back, and costs the job no attempt', async () => {
    const { body } = await api.submit('test', { tag: 'outage' });
    await postgres.stop();
    const queue = worker.app.get(JobQueue);
    await queue.enqueue([body]);

    // Long enough for the old behaviour to spend all four attempts (backoff 100, 200, 400 ms).
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect((await queue.states([body])).get(body.id)).toMatch(/^(delayed|waiting|prioritized)$/);
    expect(TestGenerator.calls.get(body.id)).toBeUndefined();

    await postgres.restart();
    const done = await api.waitForStatus(body.id, 'completed', 20_000);
    expect(done.attempts).toBe(1);
    expect(TestGenerator.calls.get(body.id)?.attempts).toHaveLength(1);
  });
});

describe('the reconciler and a running attempt', () => {
  const api = useKiln({ KILN_ROLE: 'api' });
  useKiln({ KILN_ROLE: 'worker' }, { reset: false });
  beforeEach(resetState);

  it('does not start a second attempt of a job whose lease is live after its queue lost it', async () => {
    // Longer than the lease (JOB_LOCK_MS, 2 s in tests): the worker must keep renewing it.
    const { body } = await api.submit('test', { holdMs: 5_000, tag: 'live-lease' });
    await api.waitForProgress(body.id);
    expect(await emptyQueues()).toBeGreaterThan(0);

    const reconciler = api.app.get(JobReconciler);
    expect(await reconciler.reconcile()).toEqual({ enqueued: 0, failed: 0 });
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(await reconciler.reconcile()).toEqual({ enqueued: 0, failed: 0 });

    const done = await api.waitForStatus(body.id, 'completed', 10_000);
    expect(done.attempts).toBe(1);
    expect(TestGenerator.calls.get(body.id)?.attempts).toHaveLength(1);
  });

  it('enqueues again a processing job whose lease lapsed, as a new attempt', async () => {
    // A worker that died while Redis was emptied: its row says processing, its lease lapsed.
    const { body } = await api.submit('test', { tag: 'lapsed-lease' });
    await api.waitForStatus(body.id, 'completed');
    await sql(
      `UPDATE jobs SET status = 'processing', current_step = 'generating', finished_at = NULL,
         lease_expires_at = now() - interval '1 second' WHERE id = $1`,
      [body.id],
    );
    expect(await api.app.get(JobReconciler).reconcile()).toEqual({ enqueued: 1, failed: 0 });
    const done = await api.waitForStatus(body.id, 'completed');
    expect(done.attempts).toBe(2);
  });

  it('stops an attempt that lost its lease, which then writes nothing', async () => {
    const { body } = await api.submit('test', { holdMs: 4_000, tag: 'superseded' });
    await api.waitForProgress(body.id);
    // Another worker took the job over, as after a lease that lapsed while this one was stuck.
    await sql(`UPDATE jobs SET attempts = attempts + 1 WHERE id = $1`, [body.id]);

    const deadline = Date.now() + 5_000;
    while (!TestGenerator.calls.get(body.id)?.sawAbort && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50));
    expect(TestGenerator.calls.get(body.id)?.sawAbort).toBe('The job moved on.');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const [row] = await sql<{ status: string; attempts: number; artifact_sha256: null }>(
      'SELECT status, attempts, artifact_sha256 FROM jobs WHERE id = $1',
      [body.id],
    );
    expect(row).toEqual({ status: 'processing', attempts: 2, artifact_sha256: null });
  });
});
