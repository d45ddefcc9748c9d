import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobView } from '../src/jobs/job.dto.js';
import { bearer, createClientKey } from './support/builders.js';
import { TestKiln, parseEvents, resetState } from './support/kiln.js';
import { KilnProcess } from './support/kiln-process.js';

/** PostgreSQL alone, whatever backplane the rest of the suite runs on. */
const POSTGRES_ONLY = {
  QUEUE_BACKEND: 'postgres',
  REDIS_URL: '',
  LOG_LEVEL: 'log',
  RATE_LIMIT_WHITELIST: 'none',
  RATE_LIMIT_SUBMIT_PER_MINUTE: '4',
};
/** Minutes of audio: a job long enough to be watched and cancelled while it renders. */
const LONG = { kind: 'music', input: { prompt: 'ambient drone', duration: 300 } };

describe('two API and two worker processes on PostgreSQL alone', () => {
  let apis: KilnProcess[] = [];
  let workers: KilnProcess[] = [];
  let key = '';

  beforeAll(async () => {
    await resetState();
    // A client key, made in the test database the processes share.
    key = await TestKiln.using({ KILN_ROLE: 'api' }, (kiln) => createClientKey(kiln, 'client'));
    const start = async (role: string) => {
      const kiln = await KilnProcess.start({ ...POSTGRES_ONLY, KILN_ROLE: role });
      await kiln.until('/health/ready', 200, 60_000);
      return kiln;
    };
    [apis, workers] = await Promise.all([
      Promise.all([start('api'), start('api')]),
      Promise.all([start('worker'), start('worker')]),
    ]);
  }, 120_000);
  afterAll(async () => {
    await Promise.all([...apis, ...workers].map((kiln) => kiln.stop()));
  });

  const submit = (api: KilnProcess, job: object) => api.request('POST', '/jobs', job, bearer(key));

  it('runs jobs, streams a worker’s progress to the other API, and cancels across processes', async () => {
    const [first, second] = apis as [KilnProcess, KilnProcess];
    const submitted = await submit(first, LONG);
    expect(submitted.status).toBe(202);
    const id = String(submitted.body.id);

    // The stream is served by the API that did not take the submission.
    const stream = await fetch(`${second.url}/api/v1/jobs/${id}/events`, {
      headers: bearer(key),
    });
    const reader = (stream.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    while (!parseEvents(text).some((event) => event.progress > 0)) {
      const chunk = await reader.read();
      if (chunk.done) throw new Error(`The stream ended early:\n${text}`);
      text += new TextDecoder().decode(chunk.value);
    }
    expect(parseEvents(text).at(-1)).toMatchObject({ id, status: 'processing' });

    // A cancel through the first API reaches the worker running the job.
    const cancelled = await first.request('DELETE', `/jobs/${id}`, undefined, bearer(key));
    expect(cancelled.status).toBe(202);
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read())
      text += new TextDecoder().decode(chunk.value);
    expect(parseEvents(text).at(-1)).toMatchObject({ id, status: 'cancelled' });
    const view = (await second.request('GET', `/jobs/${id}`, undefined, bearer(key)))
      .body as unknown as JobView;
    expect(view).toMatchObject({ status: 'cancelled', attempts: 1 });
  }, 60_000);

  it('holds one submit limit across both API processes', async () => {
    // Four a minute, one of which the first test spent; both APIs count in one place.
    const quick = { kind: 'music', input: { prompt: 'bell', duration: 1 } };
    const statuses = [];
    for (const api of [...apis, ...apis]) statuses.push((await submit(api, quick)).status);
    expect(statuses).toEqual([202, 202, 202, 429]);
  });

  it('logs no error and no Redis in any process', () => {
    for (const kiln of [...apis, ...workers]) {
      const lines = kiln.lines();
      expect(lines.filter((line) => line.level === 'error')).toEqual([]);
      expect(kiln.stdout).not.toMatch(/redis/i);
      expect(kiln.stderr).toBe('');
    }
  });
});
