import { describe, expect, it } from 'vitest';
import { testJob } from './support/builders.js';
import { sql, useKiln } from './support/kiln.js';

interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  requestId: string;
  errors?: ({ pointer: string } | { parameter: string })[] & { detail: string }[];
}

const kiln = useKiln({ KILN_ROLE: 'api', BODY_LIMIT_BYTES: '4096' });

async function expectProblem(response: globalThis.Response, status: number): Promise<Problem> {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toBe('application/problem+json; charset=utf-8');
  const problem = (await response.json()) as Problem;
  expect(problem).toMatchObject({ status, type: expect.stringMatching(/^urn:kiln:problem:/) });
  expect(problem.requestId).toBeTruthy();
  return problem;
}

const post = (body: string, contentType = 'application/json') =>
  kiln.fetch('/api/v1/jobs', { method: 'POST', headers: { 'content-type': contentType }, body });

describe('bad input is a clear 4xx problem document, never a 500', () => {
  it('malformed JSON', async () => {
    const problem = await expectProblem(await post('{"kind": "music",'), 400);
    expect(problem.detail).toMatch(/JSON/);
  });

  it('wrong types, naming each field', async () => {
    const problem = await expectProblem(
      await post(
        JSON.stringify({
          kind: 'music',
          input: { prompt: 42, duration: 'long', volume: 11 },
          priority: 99,
        }),
      ),
      422,
    );
    expect(problem.errors?.map((error) => ('pointer' in error ? error.pointer : ''))).toEqual([
      '#/priority',
      '#/input/prompt',
      '#/input/duration',
      '#/input/volume',
    ]);
  });

  it('an unknown kind, listing the known ones', async () => {
    const problem = await expectProblem(
      await post(JSON.stringify({ kind: 'video', input: {} })),
      422,
    );
    expect(problem.errors).toEqual([
      {
        pointer: '#/kind',
        detail: "Unknown kind 'video'. Known kinds: music, pdf-report, speech, test.",
      },
    ]);
  });

  it('a body that is not an object, or misses its fields', async () => {
    await expectProblem(await post('[1, 2]'), 422);
    await expectProblem(await post('null'), 422);
    const problem = await expectProblem(await post('{}'), 422);
    expect(problem.errors?.map((error) => ('pointer' in error ? error.pointer : ''))).toEqual([
      '#/kind',
      '#/input',
    ]);
    const noInput = await expectProblem(await post('{"kind": "music"}'), 422);
    expect(noInput.errors).toEqual([
      { pointer: '#/input', detail: expect.stringMatching(/received undefined/) },
    ]);
  });

  it('a body that is not JSON, naming the header', async () => {
    const problem = await expectProblem(
      await post('kind=music', 'application/x-www-form-urlencoded'),
      415,
    );
    expect(problem.errors).toEqual([
      { parameter: 'Content-Type', detail: 'Must be application/json.' },
    ]);
  });

  it('an oversized body', async () => {
    const problem = await expectProblem(
      await post(JSON.stringify({ kind: 'music', input: { prompt: 'x'.repeat(10_000) } })),
      413,
    );
    expect(problem.type).toBe('urn:kiln:problem:payload-too-large');
  });

  it('a non-uuid id', async () => {
    const problem = await expectProblem(await kiln.fetch('/api/v1/jobs/42'), 400);
    expect(problem.errors).toEqual([{ parameter: 'id', detail: 'Must be a UUID.' }]);
    await expectProblem(await kiln.fetch('/api/v1/jobs/42/result'), 400);
    await expectProblem(await kiln.fetch('/api/v1/jobs/42', { method: 'DELETE' }), 400);
  });

  it('an unknown job and an unknown route', async () => {
    await expectProblem(await kiln.fetch('/api/v1/jobs/00000000-0000-4000-8000-000000000000'), 404);
    await expectProblem(await kiln.fetch('/api/v1/nothing-here'), 404);
  });

  it('bad list parameters', async () => {
    const problem = await expectProblem(
      await kiln.fetch('/api/v1/jobs?limit=1000&status=lost'),
      400,
    );
    expect(problem.errors?.map((error) => ('parameter' in error ? error.parameter : ''))).toEqual([
      'status',
      'limit',
    ]);
    await expectProblem(await kiln.fetch('/api/v1/jobs?cursor=garbage'), 400);
  });

  it('an over-long Idempotency-Key', async () => {
    const response = await kiln.fetch('/api/v1/jobs', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'k'.repeat(300) },
      body: JSON.stringify(testJob()),
    });
    await expectProblem(response, 400);
  });

  it("carries the caller's X-Request-Id into the problem and back", async () => {
    const response = await kiln.fetch('/api/v1/jobs/42', {
      headers: { 'x-request-id': 'trace-42' },
    });
    expect(response.headers.get('x-request-id')).toBe('trace-42');
    expect((await expectProblem(response, 400)).requestId).toBe('trace-42');
  });

  it('stores nothing for any of them', async () => {
    const [row] = await sql<{ count: number }>('SELECT count(*)::int AS count FROM jobs');
    expect(row?.count).toBe(0);
  });
});
