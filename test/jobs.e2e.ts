import { describe, expect, it } from 'vitest';
import { parseWavHeader } from '../src/generation/generators/music/wav.js';
import type { JobEvent } from '../src/jobs/job-events.service.js';
import type { JobView } from '../src/jobs/job.dto.js';
import { testJob } from './support/builders.js';
import { TestKiln, parseEvents, resetState, sql, subscribe, useKiln } from './support/kiln.js';

const kiln = useKiln();

describe('submit, run and download', () => {
  it('turns a music request into a WAV of the requested length', async () => {
    const submitted = await kiln.submit('music', { prompt: 'happy piano and bells', duration: 3 });
    expect(submitted.status).toBe(202);
    expect(submitted.headers.get('location')).toBe(`/api/v1/jobs/${submitted.body.id}`);
    expect(submitted.body).toMatchObject({ status: 'pending', step: 'queued', progress: 0 });

    const done = await kiln.waitForStatus(submitted.body.id, 'completed');
    expect(done).toMatchObject({ step: 'completed', progress: 1, attempts: 1, error: null });
    expect(done.links.result).toBe(`/api/v1/jobs/${done.id}/result`);

    const download = await kiln.fetch(done.links.result!);
    expect(download.status).toBe(200);
    expect(download.headers.get('content-type')).toBe('audio/wav');
    expect(download.headers.get('content-disposition')).toContain(`music-${done.id}.wav`);
    const wav = Buffer.from(await download.arrayBuffer());
    expect(Number(download.headers.get('content-length'))).toBe(wav.length);
    const header = parseWavHeader(wav);
    expect(header).toMatchObject({ sampleRate: 44_100, channels: 2, bitsPerSample: 16 });
    expect(header.durationSeconds).toBeCloseTo(3, 3);

    const etag = download.headers.get('etag')!;
    const again = await kiln.fetch(done.links.result!, { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
  });

  it('serves one byte range of a result, as seeking and resuming ask', async () => {
    const { body } = await kiln.submit('music', { prompt: 'soft bells', duration: 1 });
    const done = await kiln.waitForStatus(body.id, 'completed');
    const whole = await kiln.fetch(done.links.result!);
    expect(whole.headers.get('accept-ranges')).toBe('bytes');
    const etag = whole.headers.get('etag')!;
    const file = Buffer.from(await whole.arrayBuffer());
    const get = (headers: Record<string, string>) => kiln.fetch(done.links.result!, { headers });

    const part = await get({ range: 'bytes=100-199' });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 100-199/${file.length}`);
    expect(part.headers.get('content-length')).toBe('100');
    expect(Buffer.from(await part.arrayBuffer())).toEqual(file.subarray(100, 200));

    // The last 50 bytes, and a resumed download from an offset to the end.
    const tail = await get({ range: 'bytes=-50', 'if-range': etag });
    expect(tail.status).toBe(206);
    expect(Buffer.from(await tail.arrayBuffer())).toEqual(file.subarray(file.length - 50));
    const rest = await get({ range: `bytes=${file.length - 10}-` });
    expect(Buffer.from(await rest.arrayBuffer())).toEqual(file.subarray(file.length - 10));

    // A range of another version, or several at once: the whole file.
    const wholeFile: Record<string, string>[] = [
      { range: 'bytes=0-9', 'if-range': '"another-version"' },
      { range: 'bytes=0-9,20-29' },
    ];
    for (const headers of wholeFile) {
      const full = await get(headers);
      expect(full.status).toBe(200);
      expect(Buffer.from(await full.arrayBuffer())).toEqual(file);
    }

    const past = await get({ range: `bytes=${file.length}-` });
    expect(past.status).toBe(416);
    expect(past.headers.get('content-range')).toBe(`bytes */${file.length}`);
    expect(past.headers.get('content-type')).toContain('application/problem+json');
    expect(await past.json()).toMatchObject({ type: 'urn:kiln:problem:range-not-satisfiable' });
  });

  it('answers a poll that names the current view with 304, and one after a change in full', async () => {
    const { body } = await kiln.submit('test', { holdMs: 1_000 });
    const first = await kiln.fetch(`/api/v1/jobs/${body.id}`);
    const etag = first.headers.get('etag')!;
    expect(etag).toMatch(/^W\/"[0-9a-f]{32}"$/);
    expect(first.headers.get('cache-control')).toBe('private, no-cache');
    const poll = (tag: string) =>
      kiln.fetch(`/api/v1/jobs/${body.id}`, { headers: { 'if-none-match': tag } });

    const finished = await kiln.waitForStatus(body.id, 'completed');
    const changed = await poll(etag);
    expect(changed.status).toBe(200);
    expect(await changed.json()).toEqual(finished);
    const current = changed.headers.get('etag')!;
    expect(current).not.toBe(etag);
    const unchanged = await poll(current);
    expect(unchanged.status).toBe(304);
    expect(await unchanged.text()).toBe('');
  });

  it('stores identical outputs once, by content', async () => {
    const input = { prompt: 'slow dark strings', duration: 1, seed: 7 };
    const [a, b] = await Promise.all([kiln.submit('music', input), kiln.submit('music', input)]);
    await kiln.waitForStatus(a.body.id, 'completed');
    await kiln.waitForStatus(b.body.id, 'completed');
    const rows = await sql<{ artifact_sha256: string }>(
      'SELECT DISTINCT artifact_sha256 FROM jobs WHERE id = ANY($1)',
      [[a.body.id, b.body.id]],
    );
    expect(rows).toHaveLength(1);
  });

  it('refuses to download a job that has not completed', async () => {
    const { body } = await kiln.submit('test', { holdMs: 2_000 });
    const result = await kiln.request('GET', `/jobs/${body.id}/result`);
    expect(result.status).toBe(409);
    expect(result.headers.get('content-type')).toContain('application/problem+json');
    await kiln.request('DELETE', `/jobs/${body.id}`);
  });

  it('streams step and progress events until the job ends', async () => {
    const { body } = await kiln.submit('test', { holdMs: 400 });
    const response = await kiln.fetch(`/api/v1/jobs/${body.id}/events`);
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    const events = parseEvents(await response.text());
    expect(events.at(-1)).toMatchObject({ status: 'completed', progress: 1 });
    expect(
      events.some(
        (event) => event.status === 'processing' && event.progress > 0 && event.progress < 1,
      ),
    ).toBe(true);
  });

  it('publishes live updates only for jobs someone streams', async () => {
    const published: string[] = [];
    const unsubscribe = await subscribe('job-updates', (message) =>
      published.push((JSON.parse(message) as JobEvent).id),
    );
    try {
      const unwatched = await kiln.submit('test', { holdMs: 400 });
      await kiln.waitForStatus(unwatched.body.id, 'completed');
      const watched = await kiln.submit('test', { holdMs: 400 });
      await (await kiln.fetch(`/api/v1/jobs/${watched.body.id}/events`)).text();
      expect(published).toContain(watched.body.id);
      expect(published).not.toContain(unwatched.body.id);
    } finally {
      await unsubscribe();
    }
  });

  it('catches up from the row on an update pub/sub never delivered', async () => {
    // The file's app runs the job; this one only streams it, re-reading often.
    await TestKiln.using({ KILN_ROLE: 'api', EVENTS_RESYNC_MS: '200' }, async (api) => {
      const { body } = await api.submit('test', { holdMs: 2_000 });
      const response = await api.fetch(`/api/v1/jobs/${body.id}/events`);
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      const first = parseEvents(new TextDecoder().decode((await reader.read()).value));
      expect(first).toMatchObject([{ id: body.id, error: null }]);
      // Changed behind Kiln's back: no process publishes this, and the worker's next updates
      // no longer match the row.
      await sql(
        `UPDATE jobs SET status = 'cancelled', current_step = 'cancelled', finished_at = now(),
           updated_at = now() WHERE id = $1`,
        [body.id],
      );
      let rest = '';
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read())
        rest += new TextDecoder().decode(chunk.value);
      expect(parseEvents(rest).at(-1)).toMatchObject({ status: 'cancelled', step: 'cancelled' });
    });
  });
});

describe('listing', () => {
  it('filters by status and kind and pages with a cursor', async () => {
    await resetState();
    const ids: string[] = [];
    for (let index = 0; index < 5; index++) {
      const { body } = await kiln.submit('test', { tag: `list-${index}` });
      ids.push(body.id);
    }
    await Promise.all(ids.map((id) => kiln.waitForStatus(id, 'completed')));
    const music = await kiln.submit('music', { prompt: 'bass', duration: 1 });
    await kiln.waitForStatus(music.body.id, 'completed');

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: { items: JobView[]; nextCursor: string | null } } = await kiln.request(
        'GET',
        `/jobs?kind=test&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.items.map((job) => job.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());

    const completed = await kiln.request<{ items: JobView[] }>(
      'GET',
      '/jobs?status=completed&limit=100',
    );
    expect(completed.body.items).toHaveLength(6);
    const failed = await kiln.request<{ items: JobView[] }>('GET', '/jobs?status=failed');
    expect(failed.body.items).toHaveLength(0);
  });

  it('reports queue statistics', async () => {
    const stats = await kiln.request<Record<string, unknown>>('GET', '/queue/stats');
    expect(stats.status).toBe(200);
    expect(stats.body).toMatchObject({ pending: 0, processing: 0, completed: 6, failed: 0 });
    expect(stats.body.meanProcessingSeconds).toBeGreaterThan(0);
    expect(stats.body.queues).toHaveProperty('generation-cpu');
  });
});

describe('batches', () => {
  it('accepts all jobs of a valid batch', async () => {
    const batch = await kiln.request<{ batchId: string; jobs: JobView[] }>('POST', '/jobs/batch', {
      jobs: [testJob({ tag: 'b1' }), { kind: 'music', input: { prompt: 'flute', duration: 1 } }],
    });
    expect(batch.status).toBe(202);
    expect(batch.body.jobs.map((job) => job.kind)).toEqual(['test', 'music']);
    for (const job of batch.body.jobs) {
      expect(job.batchId).toBe(batch.body.batchId);
      await kiln.waitForStatus(job.id, 'completed');
    }
  });

  it('inserts nothing when one item is invalid, and names each bad item', async () => {
    const before = await sql<{ count: number }>('SELECT count(*)::int AS count FROM jobs');
    const batch = await kiln.request<{ errors: { pointer: string }[] }>('POST', '/jobs/batch', {
      jobs: [
        testJob(),
        { kind: 'music', input: { prompt: 'x', duration: 9999 } },
        { kind: 'nope', input: {} },
      ],
    });
    expect(batch.status).toBe(422);
    expect(batch.body.errors.map((error) => error.pointer)).toEqual([
      '#/jobs/1/input/duration',
      '#/jobs/2/kind',
    ]);
    const after = await sql<{ count: number }>('SELECT count(*)::int AS count FROM jobs');
    expect(after[0]!.count).toBe(before[0]!.count);
  });

  it('refuses more than BATCH_MAX jobs', async () => {
    const jobs = Array.from({ length: 11 }, () => testJob());
    const batch = await kiln.request<{ errors: { pointer: string }[] }>('POST', '/jobs/batch', {
      jobs,
    });
    expect(batch.status).toBe(422);
    expect(batch.body.errors[0]!.pointer).toBe('#/jobs');
  });
});

describe('idempotency', () => {
  it('returns the original job for a repeated key and body, and 422 for another body', async () => {
    const headers = { 'idempotency-key': 'order-42' };
    const body = testJob({ tag: 'idem' });
    const first = await kiln.request('POST', '/jobs', body, headers);
    const second = await kiln.request('POST', '/jobs', body, headers);
    expect(first.status).toBe(202);
    expect(second.status).toBe(200);
    expect(second.body.id).toBe(first.body.id);

    const other = await kiln.request('POST', '/jobs', testJob({ tag: 'other' }), headers);
    expect(other.status).toBe(422);
    expect(other.body).toMatchObject({ type: 'urn:kiln:problem:idempotency-key-reused' });
    const rows = await sql('SELECT id FROM jobs WHERE idempotency_key = $1', ['order-42']);
    expect(rows).toHaveLength(1);
  });
});

describe('catalog and documentation', () => {
  it('lists the generators with their input schemas', async () => {
    const catalog = await kiln.request<{ kind: string; inputSchema: { properties: object } }[]>(
      'GET',
      '/generators',
    );
    const music = catalog.body.find((entry) => entry.kind === 'music');
    expect(music?.inputSchema.properties).toHaveProperty('prompt');
    expect(music).toMatchObject({ resources: 'cpu', version: '1' });
  });

  it('serves the OpenAPI document with every route and the generator inputs', async () => {
    const response = await kiln.fetch('/docs-json');
    const document = (await response.json()) as { paths: object; components: { schemas: object } };
    expect(Object.keys(document.paths)).toEqual(
      expect.arrayContaining([
        '/api/v1/jobs',
        '/api/v1/jobs/batch',
        '/api/v1/jobs/{id}',
        '/api/v1/jobs/{id}/result',
        '/api/v1/jobs/{id}/events',
        '/api/v1/queue/stats',
        '/api/v1/generators',
      ]),
    );
    expect(document.components.schemas).toHaveProperty('MusicInput');
    expect(document.components.schemas).toHaveProperty('Problem');
    expect((await kiln.fetch('/docs')).status).toBe(200);
  });
});

describe('wiring mistakes', () => {
  it('refuse to start: a per-kind setting for a kind nobody registered', async () => {
    await expect(TestKiln.start({ MAX_RETRIES_BY_KIND: 'musik=1' })).rejects.toThrow(
      /MAX_RETRIES_BY_KIND names unknown kind\(s\) musik; known: .*music/,
    );
  });
});
