import { describe, expect, it } from 'vitest';
import type { MetricsSummary } from '../src/admin/metrics-summary.dto.js';
import type { JobStatus } from '../src/jobs/job.entity.js';
import { TEST_QUEUE_BACKEND } from './support/env.js';
import { bearer, insertJob } from './support/builders.js';
import { type TestKiln, useKiln } from './support/kiln.js';

const scrape = async (kiln: TestKiln, headers: Record<string, string> = {}) => {
  const response = await kiln.fetch('/metrics', { headers });
  return { status: response.status, text: await response.text() };
};

describe('GET /metrics', () => {
  const kiln = useKiln();

  it('exposes the process defaults and Kiln metrics after a job runs, labelled by route template', async () => {
    const { body } = await kiln.submit('test', { holdMs: 20 });
    await kiln.waitForStatus(body.id, 'completed');
    await kiln.fetch('/api/v1/no-such-route');

    const { status, text } = await scrape(kiln);
    expect(status).toBe(200);
    for (const name of [
      'process_cpu_user_seconds_total',
      'nodejs_eventloop_lag_p99_seconds',
      'kiln_job_duration_seconds_bucket{le="0.1",kind="test"}',
      'kiln_job_wait_seconds_count{kind="test"} 1',
      'kiln_jobs_submitted_total{kind="test"} 1',
      'kiln_jobs_finished_total{kind="test",status="completed"} 1',
      // Every kind's counters exist from boot, so the first jobs count in rate() and increase().
      'kiln_jobs_finished_total{kind="test",status="failed"} 0',
      'kiln_jobs_submitted_total{kind="music"} 0',
      `kiln_queue_jobs{queue="generation-cpu",state="waiting",backend="${TEST_QUEUE_BACKEND}"} 0`,
      `kiln_queue_jobs{queue="generation-gpu",state="active",backend="${TEST_QUEUE_BACKEND}"} 0`,
      'http_request_duration_seconds_bucket{le="0.005",method="POST",route="/api/v1/jobs",status_code="202"}',
      'http_request_duration_seconds_count{method="GET",route="/api/v1/jobs/:id",status_code="200"}',
      'http_request_duration_seconds_count{method="GET",route="unmatched",status_code="404"} 1',
    ]) {
      expect(text).toContain(name);
    }
    // Ids and raw URLs never become labels.
    expect(text).not.toContain(body.id);
    expect(text).not.toContain('no-such-route');
  });
});

describe('GET /metrics with METRICS_TOKEN', () => {
  const token = 'scrape-token-0123456789';
  const kiln = useKiln({ KILN_ROLE: 'api', METRICS_TOKEN: token });

  it('answers only the bearer of the token', async () => {
    const anonymous = await kiln.fetch('/metrics');
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('content-type')).toContain('application/problem+json');
    expect(anonymous.headers.get('www-authenticate')).toContain('Bearer');
    expect((await scrape(kiln, bearer('wrong-token-0123456789'))).status).toBe(401);
    const scraped = await scrape(kiln, bearer(token));
    expect(scraped.status).toBe(200);
    expect(scraped.text).toContain('kiln_queue_jobs');
  });
});

const HOUR_MS = 3_600_000;

/** One job of kind `seeded`, created two hours ago, that waited `wait` and ran `run` seconds. */
function seedJob(status: JobStatus, wait: number, run: number): Promise<string> {
  const created = Date.now() - 2 * HOUR_MS;
  return insertJob({
    kind: 'seeded',
    status,
    created_at: new Date(created),
    started_at: new Date(created + wait * 1_000),
    finished_at: new Date(created + (wait + run) * 1_000),
  });
}

describe('GET /api/v1/admin/metrics/summary', () => {
  const kiln = useKiln({ KILN_ROLE: 'api' });

  it('computes exact percentiles per kind and request percentiles per route', async () => {
    const completed = [
      await seedJob('completed', 1, 10),
      await seedJob('completed', 2, 20),
      await seedJob('completed', 3, 30),
      await seedJob('completed', 4, 40),
    ];
    await seedJob('failed', 5, 1);
    await insertJob({
      kind: 'seeded',
      status: 'cancelled',
      created_at: new Date(Date.now() - HOUR_MS),
      finished_at: new Date(),
    });
    for (const id of completed) {
      expect((await kiln.request('GET', `/jobs/${id}`)).status).toBe(200);
    }

    const { status, body } = await kiln.request<MetricsSummary>(
      'GET',
      '/admin/metrics/summary?hours=24',
    );

    expect(status).toBe(200);
    expect(body.hours).toBe(24);
    const seeded = body.jobs.find((row) => row.kind === 'seeded');
    expect(seeded).toMatchObject({
      submitted: 6,
      completed: 4,
      failed: 1,
      cancelled: 1,
      successRate: 0.8,
    });
    // percentile_cont over waits 1..5 s (started jobs) and runs 10..40 s (completed jobs).
    expect(seeded?.waitSeconds?.p50).toBeCloseTo(3, 6);
    expect(seeded?.waitSeconds?.p95).toBeCloseTo(4.8, 6);
    expect(seeded?.waitSeconds?.p99).toBeCloseTo(4.96, 6);
    expect(seeded?.runSeconds?.p50).toBeCloseTo(25, 6);
    expect(seeded?.runSeconds?.p95).toBeCloseTo(38.5, 6);
    expect(seeded?.runSeconds?.p99).toBeCloseTo(39.7, 6);

    const jobRoute = body.routes.find(
      (row) => row.method === 'GET' && row.route === '/api/v1/jobs/:id',
    );
    expect(jobRoute?.requests).toBe(4);
    expect(jobRoute?.latencyMs?.p50).toBeGreaterThan(0);
    expect(jobRoute?.latencyMs?.p99).toBeGreaterThanOrEqual(jobRoute?.latencyMs?.p50 ?? Infinity);
    expect(body.queue).toMatchObject({ pending: 0, processing: 0, completed: 4, failed: 1 });
  });

  it('names a bad window', async () => {
    const { status, body } = await kiln.request<{ errors: unknown[] }>(
      'GET',
      '/admin/metrics/summary?hours=0',
    );
    expect(status).toBe(400);
    expect(body.errors).toEqual([{ parameter: 'hours', detail: expect.any(String) as string }]);
  });
});
