import { once } from 'node:events';
import { beforeEach, describe, expect, it } from 'vitest';
import { JobLifecycle } from '../src/jobs/job-lifecycle.service.js';
import { JobQueue } from '../src/jobs/job-queue.service.js';
import type { Job } from '../src/jobs/job.entity.js';
import { TestKiln, parseEvents, resetState, sql, startForTest, useKiln } from './support/kiln.js';
import { TestGenerator } from './support/test.generator.js';

describe('a pending job (no worker runs)', () => {
  const api = useKiln({ KILN_ROLE: 'api' });

  it('is answered on submission exactly as stored', async () => {
    const submitted = await api.submit('music', { prompt: 'bells', duration: 1 }, { priority: 9 });
    const stored = await api.request('GET', `/jobs/${submitted.body.id}`);
    expect(submitted.body).toEqual(stored.body);
    expect(submitted.body).toMatchObject({ priority: 9, input: { seed: 0 }, status: 'pending' });
  });

  it('cancels it at once and takes it off the queue', async () => {
    const { body } = await api.submit('test', {});
    const queue = api.app.get(JobQueue);
    expect((await queue.states([body])).get(body.id)).not.toBe('unknown');

    const cancel = await api.request('DELETE', `/jobs/${body.id}`);
    expect(cancel.status).toBe(200);
    expect(cancel.body).toMatchObject({ status: 'cancelled', step: 'cancelled' });
    expect((await queue.states([body])).get(body.id)).toBe('unknown');
  });
});

describe('cancel', () => {
  const api = useKiln({ KILN_ROLE: 'api' });
  useKiln({ KILN_ROLE: 'worker' }, { reset: false });

  it('aborts a running job in another process through its signal', async () => {
    const { body } = await api.submit('test', { holdMs: 10_000 });
    await api.waitForProgress(body.id);

    const cancel = await api.request('DELETE', `/jobs/${body.id}`);
    expect(cancel.status).toBe(202);
    expect(cancel.body.cancelRequested).toBe(true);

    const done = await api.waitForStatus(body.id, 'cancelled', 5_000);
    expect(done.step).toBe('cancelled');
    expect(TestGenerator.calls.get(body.id)?.sawAbort).toBe('Cancelled.');
  });

  it('streams live the progress of a job another process runs', async () => {
    const { body } = await api.submit('test', { holdMs: 600 });
    const events = parseEvents(await (await api.fetch(`/api/v1/jobs/${body.id}/events`)).text());
    expect(events.at(-1)).toMatchObject({ status: 'completed' });
    // Far more than re-reads every EVENTS_RESYNC_MS (5 s) could show of a 600 ms job.
    const progress = new Set(
      events.filter((event) => event.step === 'generating').map((event) => event.progress),
    );
    expect(progress.size).toBeGreaterThanOrEqual(3);
  });

  it('answers 409 for a finished job', async () => {
    const { body } = await api.submit('test', { tag: 'finished' });
    await api.waitForStatus(body.id, 'completed');
    const cancel = await api.request('DELETE', `/jobs/${body.id}`);
    expect(cancel.status).toBe(409);
    expect(cancel.body).toMatchObject({
      type: 'urn:kiln:problem:job-finished',
      jobStatus: 'completed',
    });
  });

  it('answers 404 for an unknown job', async () => {
    const cancel = await api.request('DELETE', '/jobs/00000000-0000-4000-8000-000000000000');
    expect(cancel.status).toBe(404);
  });
});

describe('retries and timeouts', () => {
  const kiln = useKiln({
    MAX_RETRIES: '2',
    RETRY_DELAY_MS: '200',
    JOB_TIMEOUT_MS_BY_KIND: 'test=300',
    JOB_ABORT_SETTLE_MS: '200',
  });

  it('retries with exponential backoff, then fails with the last error', async () => {
    const { body } = await kiln.submit('test', { failTimes: 99 });
    const failed = await kiln.waitForStatus(body.id, 'failed');
    expect(failed).toMatchObject({ step: 'failed', attempts: 3, maxAttempts: 3 });
    expect(failed.error).toBe('Scripted failure 3 of 99');

    const [first, second, third] = TestGenerator.calls.get(body.id)!.attempts;
    expect(second! - first!).toBeGreaterThanOrEqual(200);
    expect(third! - second!).toBeGreaterThanOrEqual(400);
  });

  it('completes when a retry succeeds', async () => {
    const { body } = await kiln.submit('test', { failTimes: 1 });
    const done = await kiln.waitForStatus(body.id, 'completed');
    expect(done).toMatchObject({ attempts: 2, error: null });
  });

  it('aborts an attempt that runs past its kind timeout, even if the generator ignores the signal', async () => {
    const { body } = await kiln.submit('test', { holdMs: 60_000, ignoreAbort: true });
    const failed = await kiln.waitForStatus(body.id, 'failed');
    expect(failed.error).toBe('Timed out after 300 ms.');
    expect(failed.attempts).toBe(3);
  });
});

describe('status only moves forward', () => {
  const kiln = useKiln({ KILN_ROLE: 'api' });

  /** The claimed job, failing the test on any other outcome. */
  async function claimed(lifecycle: JobLifecycle, id: string): Promise<Job> {
    const claim = await lifecycle.claim(id);
    if (claim.outcome !== 'claimed') throw new Error(`Expected a claim, got ${claim.outcome}`);
    return claim.job;
  }
  const lapseLease = (id: string) =>
    sql(`UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = $1`, [id]);

  it('starts no second attempt while the first holds its lease', async () => {
    const lifecycle = kiln.app.get(JobLifecycle);
    const { body } = await kiln.submit('test', {});
    const first = await claimed(lifecycle, body.id);

    const second = await lifecycle.claim(body.id);
    expect(second.outcome).toBe('leased');
    // JOB_LOCK_MS is 2 s in tests: the wait is what is left of the lease.
    expect(second.outcome === 'leased' && second.retryInMs).toBeGreaterThan(1_000);
    expect(second.outcome === 'leased' && second.retryInMs).toBeLessThanOrEqual(2_000);
    expect((await lifecycle.renewLease(first)).held).toBe(true);
    const [row] = await sql<{ attempts: number }>('SELECT attempts FROM jobs WHERE id = $1', [
      body.id,
    ]);
    expect(row!.attempts).toBe(1);
  });

  it('lets neither a stale attempt nor a finished job be overwritten', async () => {
    const lifecycle = kiln.app.get(JobLifecycle);
    const { body } = await kiln.submit('test', {});
    const first = await claimed(lifecycle, body.id);
    // The first attempt's worker died: once its lease lapsed, a new attempt takes the job over.
    await lapseLease(body.id);
    const second = await claimed(lifecycle, body.id);
    expect(second.attempts).toBe(first.attempts + 1);

    // The first attempt's late writes change nothing, and it learns that it lost the job.
    const artifact = {
      sha256: 'a'.repeat(64),
      contentType: 'text/plain',
      extension: 'txt',
      sizeBytes: 1,
    };
    expect(await lifecycle.renewLease(first)).toEqual({ held: false, cancelRequested: false });
    await lifecycle.progress(first, 'generating', 0.9);
    expect(await lifecycle.complete(first, artifact)).toBeNull();
    expect(await lifecycle.retryLater(first, 'late')).toBeNull();
    const [running] = await sql<{ progress: number }>('SELECT progress FROM jobs WHERE id = $1', [
      body.id,
    ]);
    expect(running!.progress).toBe(0);

    expect(await lifecycle.fail(body.id, 'boom', second.attempts)).not.toBeNull();
    expect(await lifecycle.claim(body.id)).toEqual({ outcome: 'finished' });
    expect(await lifecycle.cancelled(body.id)).toBeNull();
    const [row] = await sql<{ status: string; error: string }>(
      'SELECT status, error FROM jobs WHERE id = $1',
      [body.id],
    );
    expect(row).toEqual({ status: 'failed', error: 'boom' });
  });

  it('fails a job whose worker died during its last attempt, counting that attempt', async () => {
    const lifecycle = kiln.app.get(JobLifecycle);
    const { body } = await kiln.submit('test', {});
    for (let attempt = 1; attempt <= body.maxAttempts; attempt++) {
      expect((await claimed(lifecycle, body.id)).attempts).toBe(attempt);
      await lapseLease(body.id);
    }
    const claim = await lifecycle.claim(body.id);
    expect(claim.outcome).toBe('exhausted');
    const [row] = await sql<{ status: string; error: string; attempts: number }>(
      'SELECT status, error, attempts FROM jobs WHERE id = $1',
      [body.id],
    );
    expect(row).toEqual({
      status: 'failed',
      attempts: body.maxAttempts,
      error: `The worker running its last attempt (${body.maxAttempts} of ${body.maxAttempts}) stopped.`,
    });
  });

  it('never starts a cancelled job', async () => {
    const lifecycle = kiln.app.get(JobLifecycle);
    const { body } = await kiln.submit('test', {});
    await kiln.request('DELETE', `/jobs/${body.id}`);
    expect(await lifecycle.claim(body.id)).toEqual({ outcome: 'finished' });
  });
});

describe('graceful shutdown', () => {
  beforeEach(resetState);

  it('lets a running job finish within the grace period', async () => {
    const api = await startForTest({ KILN_ROLE: 'api' });
    const worker = await startForTest({ KILN_ROLE: 'worker', SHUTDOWN_GRACE_MS: '5000' });
    const { body } = await api.submit('test', { holdMs: 500 });
    await api.waitForStatus(body.id, 'processing');
    await worker.close();
    const [row] = await sql<{ status: string }>('SELECT status FROM jobs WHERE id = $1', [body.id]);
    expect(row?.status).toBe('completed');
  });

  it('hands a job that outlasts the grace period back to the queue for another worker', async () => {
    const api = await startForTest({ KILN_ROLE: 'api' });
    const worker = await startForTest({ KILN_ROLE: 'worker', SHUTDOWN_GRACE_MS: '200' });
    const { body } = await api.submit('test', { holdMs: 1_500 });
    await api.waitForProgress(body.id);
    await worker.close();
    const handedBack = await api.request('GET', `/jobs/${body.id}`);
    expect(handedBack.body).toMatchObject({ status: 'pending', step: 'queued', attempts: 0 });
    expect(TestGenerator.calls.get(body.id)?.sawAbort).toBe('Worker shutting down.');

    await startForTest({ KILN_ROLE: 'worker' });
    const done = await api.waitForStatus(body.id, 'completed');
    expect(done.attempts).toBe(1);
  });

  it('ends live streams and lets requests in flight finish', async () => {
    const kiln = await startForTest({ SHUTDOWN_GRACE_MS: '200' });
    const { body } = await kiln.submit('test', { holdMs: 60_000 });
    const stream = await kiln.fetch(`/api/v1/jobs/${body.id}/events`);
    const reader = stream.body!.getReader();
    await reader.read();
    // In flight: the server has the request when shutdown begins.
    const arrived = once(kiln.app.getHttpServer(), 'request');
    const inFlight = kiln.submit('test', { tag: 'late' });
    await arrived;
    await kiln.close();
    for (;;) if ((await reader.read()).done) break;
    expect([202, 503]).toContain((await inFlight).status);
  });
});

describe('prepared statements', () => {
  it('keep working in a running process after a migration adds a column', async () => {
    await resetState();
    // Two connections, each preparing the statements before the migration; no retry to hide
    // a statement that fails after it.
    await TestKiln.using({ DB_POOL_SIZE: '2', MAX_RETRIES: '0' }, async (kiln) => {
      const runJobs = async () => {
        const submitted = await Promise.all([1, 2, 3, 4].map(() => kiln.submit('test', {})));
        expect(submitted.map((response) => response.status)).toEqual([202, 202, 202, 202]);
        return Promise.all(submitted.map(({ body }) => kiln.waitForStatus(body.id, 'completed')));
      };
      await runJobs();
      await sql('ALTER TABLE jobs ADD COLUMN added_by_a_later_release text');
      try {
        expect(await runJobs()).toHaveLength(4);
      } finally {
        await sql('ALTER TABLE jobs DROP COLUMN added_by_a_later_release');
      }
    });
  });
});
