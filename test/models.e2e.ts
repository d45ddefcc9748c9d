import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobView } from '../src/jobs/job.dto.js';
import { fakeNvidiaSmi } from './support/builders.js';
import { CogServer } from './support/cog-server.js';
import { TestKiln, resetState, sql, startForTest, useKiln } from './support/kiln.js';
import { freePort } from './support/ports.js';
import { fileWritten, gone, waitUntilGone } from './support/processes.js';

const MODEL_SCRIPT = join(import.meta.dirname, 'fixtures/commands/model.mjs');
const scratch = mkdtempSync(join(tmpdir(), 'kiln-models-'));

/** A command generator running the test model script with node, as a team would wrap its own. */
const command = (extra: Record<string, unknown> = {}) => ({
  path: process.execPath,
  args: [MODEL_SCRIPT, '{output}'],
  contentType: 'text/plain',
  extension: 'txt',
  input: {
    type: 'object',
    properties: {
      prompt: { type: 'string', maxLength: 200 },
      steps: { type: 'integer', minimum: 1, maximum: 100 },
      stepMs: { type: 'integer', minimum: 0 },
      fail: { type: 'boolean' },
      pidFile: { type: 'string' },
      onTerm: { enum: ['linger', 'ignore'] },
      lingerMs: { type: 'integer', minimum: 0 },
      termFile: { type: 'string' },
      env: { type: 'boolean' },
    },
    required: ['prompt'],
    additionalProperties: false,
  },
  example: { prompt: 'a lighthouse at dusk' },
  ...extra,
});

/** The pid a test model script wrote to a file. */
const childPid = async (pidFile: string) => Number(await fileWritten(pidFile));

describe('command generators', () => {
  const kiln = useKiln({
    COMMAND_GENERATORS: JSON.stringify({
      'echo-model': command(),
      'slow-model': command(),
      'gone-model': command({ path: '/nonexistent/model.py' }),
      // Relative to Kiln's working directory, not to the job's temp dir the command runs in.
      'relative-model': command({ path: relative(process.cwd(), process.execPath) }),
    }),
    JOB_TIMEOUT_MS_BY_KIND: 'slow-model=1500',
    MAX_RETRIES_BY_KIND: 'echo-model=0,slow-model=0,relative-model=0',
    COMMAND_KILL_GRACE_MS: '3000',
    // Kiln's environment: what a command may see, and secrets it must not.
    LANG: 'C.UTF-8',
    CUDA_VISIBLE_DEVICES: '',
    AWS_SECRET_ACCESS_KEY: 'aws-secret',
    PGPASSWORD: 'pg-secret',
  });

  it('runs the script with the input on stdin, its progress reaching the job, its file the result', async () => {
    const { body } = await kiln.submit('echo-model', {
      prompt: 'a lighthouse',
      steps: 8,
      stepMs: 150,
    });
    expect(body.maxAttempts).toBe(1);
    const midway = await kiln.waitForJob(
      body.id,
      (job) => job.step === 'generating' && job.progress > 0 && job.progress < 1,
    );
    expect(midway.status).toBe('processing');
    const done = await kiln.waitForStatus(body.id, 'completed');
    const result = await kiln.fetch(done.links.result!);
    expect(result.headers.get('content-type')).toBe('text/plain');
    expect(await result.text()).toBe(`a lighthouse (${body.id})`);
  });

  it("passes the script only the allowed part of Kiln's environment, empty values kept", async () => {
    const { body } = await kiln.submit('echo-model', { prompt: 'x', steps: 1, env: true });
    const done = await kiln.waitForStatus(body.id, 'completed');
    const env = (await (await kiln.fetch(done.links.result!)).json()) as Record<string, string>;
    expect(env).toMatchObject({ LANG: 'C.UTF-8', CUDA_VISIBLE_DEVICES: '', KILN_JOB_ID: body.id });
    expect(Object.keys(env)).not.toContain('AWS_SECRET_ACCESS_KEY');
    expect(Object.keys(env)).not.toContain('PGPASSWORD');
    expect(Object.keys(env)).not.toContain('DATABASE_URL');
  });

  it('fails a job whose script exits non-zero, with the end of its stderr', async () => {
    const { body } = await kiln.submit('echo-model', { prompt: 'x', steps: 1, fail: true });
    const failed = await kiln.waitForStatus(body.id, 'failed');
    expect(failed.error).toContain('exited with code 3');
    expect(failed.error).toContain('RuntimeError: CUDA out of memory');
  });

  it('validates the input against the configured schema, and shows it in the catalog', async () => {
    const refused = await kiln.request<{ errors: { pointer: string }[] }>('POST', '/jobs', {
      kind: 'echo-model',
      input: { prompt: 'x', path: '/bin/sh' },
    });
    expect(refused.status).toBe(422);
    expect(refused.body.errors[0]?.pointer).toBe('#/input/path');
    const { body: catalog } = await kiln.request<{ kind: string; inputSchema: object }[]>(
      'GET',
      '/generators',
    );
    expect(catalog.find((entry) => entry.kind === 'echo-model')).toMatchObject({
      resources: 'cpu',
      inputSchema: { required: ['prompt'] },
      availability: { available: true },
    });
  });

  it('shows a command whose executable is missing unavailable, and refuses its jobs', async () => {
    const { body } = await kiln.request<
      { kind: string; availability: { available: boolean; reason?: string } }[]
    >('GET', '/generators');
    expect(body.find((entry) => entry.kind === 'gone-model')?.availability).toEqual({
      available: false,
      reason: "'/nonexistent/model.py' is not an executable file here",
      checkedAt: expect.any(String),
    });
    expect((await kiln.submit('gone-model', { prompt: 'x' })).status).toBe(503);
  });

  it("runs a command configured by a path relative to Kiln's working directory", async () => {
    expect(relative(process.cwd(), process.execPath)).toContain('/');
    const { body } = await kiln.submit('relative-model', { prompt: 'here', steps: 1 });
    await kiln.waitForStatus(body.id, 'completed');
  });

  /** Starts a job whose script hangs with a child of its own; returns the job and that child. */
  async function hangingJob(kind: string): Promise<{ id: string; pid: number }> {
    const pidFile = join(scratch, `${kind}.pid`);
    const { body } = await kiln.submit(kind, { prompt: 'x', steps: 1, stepMs: 60_000, pidFile });
    return { id: body.id, pid: await childPid(pidFile) };
  }

  it('kills the whole process group on cancel: no child is left behind', async () => {
    const { id, pid } = await hangingJob('echo-model');
    await kiln.waitForProgress(id);
    expect((await kiln.request('DELETE', `/jobs/${id}`)).status).toBe(202);
    await kiln.waitForStatus(id, 'cancelled');
    await waitUntilGone(pid);
  });

  /**
   * Cancels a hanging job whose script handles SIGTERM as `onTerm` says (`linger` exits a second
   * later), and checks the job is not settled once the script has it; returns the job and its pid.
   */
  async function cancelOnTerm(onTerm: 'linger' | 'ignore'): Promise<{ id: string; pid: number }> {
    const termFile = join(scratch, `${onTerm}.pid`);
    const { body } = await kiln.submit('echo-model', {
      prompt: 'x',
      steps: 1,
      stepMs: 60_000,
      onTerm,
      lingerMs: 1_000,
      termFile,
    });
    await kiln.waitForProgress(body.id);
    expect((await kiln.request('DELETE', `/jobs/${body.id}`)).status).toBe(202);
    const pid = await childPid(termFile);
    // The slot is not free while the script runs: the job is unsettled, its temp dir in place.
    expect((await kiln.request('GET', `/jobs/${body.id}`)).body.status).toBe('processing');
    expect(existsSync(join(kiln.config.storage.tempDir, `${body.id}-1`))).toBe(true);
    return { id: body.id, pid };
  }

  it('settles a cancelled job only once its script has finished exiting', async () => {
    const { id, pid } = await cancelOnTerm('linger');
    await kiln.waitForStatus(id, 'cancelled');
    expect(gone(pid)).toBe(true);
  });

  it('kills a script that ignores SIGTERM after COMMAND_KILL_GRACE_MS, then settles its job', async () => {
    const { id, pid } = await cancelOnTerm('ignore');
    const termAt = Date.now();
    await kiln.waitForStatus(id, 'cancelled');
    expect(gone(pid)).toBe(true);
    expect(Date.now() - termAt).toBeGreaterThan(1_500);
  });

  it('kills the whole process group on timeout', async () => {
    const { id, pid } = await hangingJob('slow-model');
    const failed = await kiln.waitForStatus(id, 'failed');
    expect(failed.error).toBe('Timed out after 1500 ms.');
    await waitUntilGone(pid);
  });
});

async function eventually(check: () => boolean, what: string): Promise<void> {
  for (let tries = 0; !check(); tries++) {
    if (tries > 250) throw new Error(`never happened: ${what}`);
    await sleep(20);
  }
}

describe('a command running at shutdown', () => {
  beforeAll(resetState);

  it('is killed, past its SIGTERM grace, before the worker hands its job back and stops', async () => {
    const kiln = await startForTest({
      COMMAND_GENERATORS: JSON.stringify({ 'echo-model': command() }),
      SHUTDOWN_GRACE_MS: '200',
      COMMAND_KILL_GRACE_MS: '1000',
    });
    const termFile = join(scratch, 'shutdown.pid');
    const { body } = await kiln.submit('echo-model', {
      prompt: 'x',
      steps: 1,
      stepMs: 60_000,
      onTerm: 'ignore',
      termFile,
    });
    await kiln.waitForProgress(body.id);
    await kiln.close();
    expect(gone(await childPid(termFile))).toBe(true);
    const [row] = await sql<{ status: string }>('SELECT status FROM jobs WHERE id = $1', [body.id]);
    expect(row?.status).toBe('pending');
  });
});

describe('model servers', () => {
  let cog: CogServer;
  /** Another host: a bucket outputs may come from, and a server that failed its setup. */
  let other: CogServer;
  let missingUrl: string;
  let kiln: TestKiln;

  beforeAll(async () => {
    await resetState();
    cog = await CogServer.start();
    other = await CogServer.start();
    other.health = 'SETUP_FAILED';
    missingUrl = `http://127.0.0.1:${await freePort()}`;
    kiln = await TestKiln.start({
      MODEL_SERVERS: JSON.stringify({
        'cog-model': { url: cog.url, pollIntervalMs: 50, requestTimeoutMs: 2_000 },
        'missing-model': { url: missingUrl, requestTimeoutMs: 500 },
        'broken-model': { url: other.url },
        'impatient-model': { url: cog.url, pollIntervalMs: 50, requestTimeoutMs: 200 },
        'small-model': { url: cog.url, pollIntervalMs: 50, maxOutputBytes: 20 },
        'bucket-model': { url: cog.url, pollIntervalMs: 50, outputOrigins: [other.url] },
        // Reading its 65 MB answer must end at the size bound, not at a timeout on a busy machine.
        'chatty-model': { url: cog.url, pollIntervalMs: 50, requestTimeoutMs: 30_000 },
      }),
      MAX_RETRIES_BY_KIND:
        'cog-model=1,impatient-model=0,small-model=1,bucket-model=1,chatty-model=1',
    });
  });
  afterAll(async () => {
    await kiln.close();
    await cog.close();
    await other.close();
  });

  const predictionsOf = (text: string) =>
    [...cog.predictions.values()].filter((prediction) => prediction.input.text === text);
  const cancelled = (id: string) => cog.requests.includes(`POST /predictions/${id}/cancel`);

  it('runs a prediction to the end and stores its output file', async () => {
    const { body } = await kiln.submit('cog-model', { text: 'hello' });
    const done = await kiln.waitForStatus(body.id, 'completed');
    const result = await kiln.fetch(done.links.result!);
    expect(result.headers.get('content-type')).toBe('text/plain');
    expect(await result.text()).toBe('spoken: hello.txt');
    const [prediction] = predictionsOf('hello');
    // Named by job and attempt, so a later attempt can cancel it.
    expect(prediction?.id).toBe(`${body.id}-1`);
    expect(cog.requests).toContain(`PUT /predictions/${prediction?.id}`);
  });

  it('decodes a data URI output, and stores any other output as JSON', async () => {
    const wav = await kiln.submit('cog-model', { text: 'RIFF', mode: 'data-uri' });
    const json = await kiln.submit('cog-model', { text: 'a cat', mode: 'json' });
    for (const [job, contentType, body] of [
      [wav, 'audio/wav', 'RIFF'],
      [json, 'application/json', '{"caption":"a cat","score":0.9}'],
    ] as const) {
      const done = await kiln.waitForStatus(job.body.id, 'completed');
      const result = await kiln.fetch(done.links.result!);
      expect(result.headers.get('content-type')).toBe(contentType);
      expect(await result.text()).toBe(body);
    }
  });

  it('fetches output files from the server and its outputOrigins only, redirects included', async () => {
    const refusedFrom = (origin: string) =>
      `The output is on ${origin}, which is not among the model server's outputOrigins`;
    const otherHost = other.url.replace('http:', '');
    for (const [output, origin] of [
      ['http://169.254.169.254/latest/meta-data/', 'http://169.254.169.254'],
      [`${other.url}/files/a.txt?signature=secret`, other.url],
      [`${otherHost}/files/b.txt`, other.url],
      [`/files/redirect?to=${encodeURIComponent(`${other.url}/files/c.txt`)}`, other.url],
    ]) {
      const { body } = await kiln.submit('cog-model', { text: output, mode: 'echo' });
      const failed = await kiln.waitForStatus(body.id, 'failed');
      expect(failed.attempts).toBe(1);
      expect(failed.error).toBe(refusedFrom(origin!));
    }
    expect(other.requests.filter((request) => request.startsWith('GET /files/'))).toEqual([]);

    for (const [output, text] of [
      [`${other.url}/files/d.txt`, 'spoken: d.txt'],
      [`/files/redirect?to=${encodeURIComponent(`${other.url}/files/e.txt`)}`, 'spoken: e.txt'],
    ]) {
      const { body } = await kiln.submit('bucket-model', { text: output, mode: 'echo' });
      const done = await kiln.waitForStatus(body.id, 'completed');
      expect(await (await kiln.fetch(done.links.result!)).text()).toBe(text);
    }
  });

  it('refuses an output over maxOutputBytes, as a file or a data URI, and an oversized answer', async () => {
    const small = await kiln.submit('small-model', { text: 'hi' });
    await kiln.waitForStatus(small.body.id, 'completed');
    for (const input of [
      { text: 'a longer sentence' },
      { text: 'x'.repeat(21), mode: 'data-uri' },
    ]) {
      const { body } = await kiln.submit('small-model', input);
      const failed = await kiln.waitForStatus(body.id, 'failed');
      expect(failed.attempts).toBe(1);
      expect(failed.error).toBe("The output is over the model server's maxOutputBytes (20)");
    }

    const chatty = await kiln.submit('chatty-model', { text: 'chatty', mode: 'chatty' });
    const failed = await kiln.waitForStatus(chatty.body.id, 'failed');
    expect(failed.attempts).toBe(1);
    expect(failed.error).toMatch(
      /^The answer to GET \/predictions\/[\w-]+ is over 67108864 bytes$/,
    );
  });

  it('fails a job whose prediction fails, with the model error', async () => {
    const { body } = await kiln.submit('cog-model', { text: 'x', mode: 'fail' });
    const failed = await kiln.waitForStatus(body.id, 'failed');
    expect(failed.attempts).toBe(2);
    expect(failed.error).toBe('The prediction failed: RuntimeError: weights not found');
  });

  it('fails for good on an input the server refuses, and retries a server error or a busy server', async () => {
    const refused = await kiln.submit('cog-model', { mode: 'ok' });
    const failed = await kiln.waitForStatus(refused.body.id, 'failed');
    expect(failed.attempts).toBe(1);
    expect(failed.error).toContain('answered 422: {"detail":"input.text: field required"}');

    try {
      // A server error, and a server busy with another prediction: both are tried again.
      for (const status of [500, 409]) {
        cog.failWith = status;
        const { body } = await kiln.submit('cog-model', { text: `y${status}` });
        const broken = await kiln.waitForStatus(body.id, 'failed');
        expect(broken.attempts).toBe(2);
        expect(broken.error).toMatch(new RegExp(`^PUT /predictions/[\\w-]+ answered ${status}`));
      }
    } finally {
      cog.failWith = undefined;
    }
  });

  it('fails an attempt when the server stops answering within its request timeout', async () => {
    const { body } = await kiln.submit('impatient-model', { text: 'x', mode: 'stall' });
    const failed = await kiln.waitForStatus(body.id, 'failed');
    expect(failed.error).toMatch(/^GET \/predictions\/[\w-]+ did not finish within 200 ms$/);
  });

  it('keeps the request timeout running while a body is read', async () => {
    const { body } = await kiln.submit('impatient-model', { text: 'x', mode: 'stall-output' });
    const failed = await kiln.waitForStatus(body.id, 'failed');
    expect(failed.error).toBe(`GET of the output on ${cog.url} did not finish within 200 ms`);
  });

  it('cancels the prediction on the server when the job is cancelled', async () => {
    const { body } = await kiln.submit('cog-model', { text: 'z', mode: 'hang' });
    await kiln.waitForProgress(body.id);
    await kiln.request('DELETE', `/jobs/${body.id}`);
    await kiln.waitForStatus(body.id, 'cancelled');
    await eventually(() => predictionsOf('z')[0]?.status === 'canceled', 'prediction cancelled');
  });

  it('cancels a prediction whose creation had not answered when the job was cancelled', async () => {
    const { body } = await kiln.submit('cog-model', { text: 'slow', mode: 'slow-create' });
    await eventually(() => predictionsOf('slow').length > 0, 'prediction created');
    await kiln.request('DELETE', `/jobs/${body.id}`);
    await kiln.waitForStatus(body.id, 'cancelled');
    const [prediction] = predictionsOf('slow');
    await eventually(() => cancelled(prediction!.id), 'cancel sent');
    expect(prediction?.status).toBe('canceled');
  });

  it('cancels the prediction of an attempt that fails while polling, before the retry', async () => {
    const { body } = await kiln.submit('cog-model', { text: 'poll', mode: 'poll-error' });
    const failed = await kiln.waitForStatus(body.id, 'failed');
    expect(failed.attempts).toBe(2);
    expect(failed.error).toMatch(/^GET \/predictions\/[\w-]+ answered 500/);
    const predictions = predictionsOf('poll');
    expect(predictions).toHaveLength(2);
    for (const prediction of predictions) {
      expect(cancelled(prediction.id)).toBe(true);
      expect(prediction.status).toBe('canceled');
    }
  });

  it('shows an unreachable or broken server unavailable, without its address, and refuses its jobs', async () => {
    const { body } = await kiln.request<
      { kind: string; availability: { available: boolean; reason?: string } }[]
    >('GET', '/generators');
    const availability = (kind: string) => body.find((entry) => entry.kind === kind)?.availability;
    expect(availability('missing-model')).toMatchObject({
      available: false,
      reason: 'model server unreachable: connection refused',
    });
    expect(availability('broken-model')).toMatchObject({
      available: false,
      reason: 'model server reports SETUP_FAILED',
    });
    expect(availability('cog-model')?.available).toBe(true);
    const refused = await kiln.submit('missing-model', { text: 'x' });
    expect(refused.status).toBe(503);
    const health = await (await kiln.fetch('/health')).text();
    for (const url of [cog.url, other.url, missingUrl]) {
      expect(JSON.stringify(body)).not.toContain(url);
      expect(JSON.stringify(refused.body)).not.toContain(url);
      expect(health).not.toContain(url);
    }
    expect(health).toContain('model server reports SETUP_FAILED');
  });
});

describe('GPU and CPU pools', () => {
  const GPU_COMMANDS = JSON.stringify({ 'gpu-model': command({ resources: 'gpu' }) });
  // By default a worker that finds no GPU serves the CPU queue only: GPU work waits for a GPU
  // worker.
  const api = useKiln({ COMMAND_GENERATORS: GPU_COMMANDS });
  let gpuWorker: TestKiln | undefined;
  afterAll(() => gpuWorker?.close());

  /** A worker as on a GPU node, with two GPUs the fake nvidia-smi reports. */
  const startGpuWorker = (env: Record<string, string> = {}) =>
    TestKiln.start({
      KILN_ROLE: 'worker',
      NVIDIA_SMI_PATH: fakeNvidiaSmi('ok'),
      COMMAND_GENERATORS: GPU_COMMANDS,
      ...env,
    });

  it('leaves a GPU job to a GPU worker, and CPU-only workers never run it', async () => {
    const gpuJob = await api.submit('gpu-model', { prompt: 'on the gpu', steps: 1 });
    expect(gpuJob.status).toBe(202);
    const cpuJob = await api.submit('test', { tag: 'cpu' });
    await api.waitForStatus(cpuJob.body.id, 'completed');
    await sleep(500);
    const waiting = await api.request('GET', `/jobs/${gpuJob.body.id}`);
    expect(waiting.body).toMatchObject({ status: 'pending', attempts: 0 });

    gpuWorker = await startGpuWorker({ KILN_WORKER_QUEUES: 'gpu' });
    const done = await api.waitForStatus(gpuJob.body.id, 'completed');
    expect(done.attempts).toBe(1);
  });

  it('runs higher priorities first within a queue', async () => {
    await gpuWorker?.close();
    gpuWorker = undefined;
    const ids: { id: string; priority: number }[] = [];
    for (const priority of [2, 9, 5]) {
      const { body } = await api.submit(
        'gpu-model',
        { prompt: `p${priority}`, steps: 1, stepMs: 0 },
        { priority },
      );
      ids.push({ id: body.id, priority });
    }
    gpuWorker = await startGpuWorker({ KILN_WORKER_QUEUES: 'gpu', GPU_CONCURRENCY: '1' });
    const done: JobView[] = [];
    for (const { id } of ids) done.push(await api.waitForStatus(id, 'completed'));
    const order = done
      .sort((a, b) => Date.parse(a.startedAt!) - Date.parse(b.startedAt!))
      .map((job) => job.priority);
    expect(order).toEqual([9, 5, 2]);
  });

  it('gives each running GPU job a GPU of its own', async () => {
    await gpuWorker?.close();
    // Two GPUs, so one job per GPU by default.
    gpuWorker = await startGpuWorker();
    const submitted = await Promise.all(
      ['a', 'b'].map((prompt) => api.submit('gpu-model', { prompt, steps: 4, stepMs: 150 })),
    );
    const outputs = [];
    for (const { body } of submitted) {
      const job = await api.waitForStatus(body.id, 'completed');
      outputs.push(await (await api.fetch(job.links.result!)).text());
    }
    const gpus = outputs.map((output) => / on (GPU-[\w-]+)$/.exec(output)?.[1]);
    expect(new Set(gpus)).toEqual(
      new Set([
        'GPU-8f1c2a9e-4b7d-4c1e-9a3f-2d5e6b7c8d90',
        'GPU-3b9e7d21-0c4a-4f5e-8d6b-a1c2e3f4a5b6',
      ]),
    );
  });

  it('refuses GPU work where this process must serve the GPU queue without a GPU', async () => {
    await TestKiln.using(
      { KILN_WORKER_QUEUES: 'cpu,gpu', COMMAND_GENERATORS: GPU_COMMANDS },
      async (alone) => {
        const refused = await alone.submit('gpu-model', { prompt: 'x' });
        expect(refused.status).toBe(503);
        expect(refused.body).toMatchObject({ kind: 'gpu-model' });
      },
    );
  });
});
