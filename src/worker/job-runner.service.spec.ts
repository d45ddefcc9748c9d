import { randomUUID } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiscoveryModule } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { FakeArtifactRepository } from '../../test/support/fake-artifact-repository.js';
import { FakeJobRepository } from '../../test/support/fake-job-repository.js';
import { ArtifactStore } from '../artifacts/artifact-store.service.js';
import { ArtifactRepository } from '../artifacts/artifact.repository.js';
import { sha256Hex } from '../common/canonical-json.js';
import { DependencyOutages } from '../common/dependency-outages.service.js';
import { NonRetryableError } from '../common/non-retryable-error.js';
import { KilnConfig, loadConfig } from '../config/config.js';
import { Sql } from '../database/sql.service.js';
import {
  type GeneratedOutput,
  type GenerationContext,
  type Generator,
  KilnGenerator,
} from '../generation/generator.js';
import { GeneratorRegistry } from '../generation/generator.registry.js';
import { GpuMonitor } from '../gpu/gpu-monitor.service.js';
import { JobEvents } from '../jobs/job-events.service.js';
import { JobLifecycle } from '../jobs/job-lifecycle.service.js';
import type { QueuedJob } from '../jobs/job-queue.service.js';
import { INITIAL_JOB_STATE, Job, PRIORITY } from '../jobs/job.entity.js';
import { JobRepository } from '../jobs/job.repository.js';
import { KilnMetrics, METRIC_PROVIDERS } from '../metrics/kiln-metrics.js';
import { DatabaseOutage } from './database-outage.js';
import { GpuSlots } from './gpu-slots.js';
import { JobRunner } from './job-runner.service.js';

/** The shortest lease JOB_LOCK_MS allows; an attempt renews it every third of that. */
const LOCK_MS = 1_000;
const TIMEOUT_MS = 20;
const SETTLE_MS = 60;
const TIMED_OUT = `Timed out after ${TIMEOUT_MS} ms.`;
const ANY_OWNER = { ownerId: 'tester', all: true };
const OUTPUT = { data: Buffer.from('RIFF'), contentType: 'audio/wav', extension: 'wav' };

/** JobEvents within one process: a cancel broadcast reaches the runner; nothing streams updates. */
class LocalJobEvents implements Pick<
  JobEvents,
  'publishUpdate' | 'requestCancel' | 'onCancelRequest'
> {
  private readonly cancels = new EventEmitter();

  publishUpdate(): void {}

  requestCancel(id: string): void {
    this.cancels.emit('cancel', id);
  }

  onCancelRequest(listener: (id: string) => void): void {
    this.cancels.on('cancel', listener);
  }
}

interface Fakes {
  jobs: FakeJobRepository;
  events: LocalJobEvents;
}

/** What a case's generator does with its attempt. */
type Script = (context: GenerationContext, fakes: Fakes) => Promise<GeneratedOutput>;

/** The one kind these cases run; each scripts what it does. */
@KilnGenerator()
class ScriptedGenerator implements Generator {
  readonly kind = 'scripted';
  readonly version = '1';
  readonly description = 'Does what its case scripts.';
  readonly resources = 'cpu';
  readonly input = z.strictObject({});
  readonly example = {};

  constructor(private readonly script: (context: GenerationContext) => Promise<GeneratedOutput>) {}

  generate(_input: unknown, context: GenerationContext): Promise<GeneratedOutput> {
    return this.script(context);
  }
}

const succeeds: Script = () => Promise.resolve(OUTPUT);
const crashes: Script = () => Promise.reject(new Error('Model crashed'));
const refuses: Script = () => Promise.reject(new NonRetryableError('No such voice'));
/** Stops with its signal's reason once it fires, as a generator should. */
async function worksUntilAborted({ signal }: GenerationContext): Promise<never> {
  if (!signal.aborted) await once(signal, 'abort');
  throw signal.reason as Error;
}
const ignoresAbort: Script = () => new Promise(() => undefined);

let storage: string;
beforeAll(async () => {
  storage = await mkdtemp(join(tmpdir(), 'kiln-runner-'));
});
afterAll(() => rm(storage, { recursive: true, force: true }));

/**
 * A worker's JobRunner over the fakes, wired as the worker module wires it, with a directory of
 * its own for artifacts and temp files.
 */
async function startKiln(script: Script, env: Record<string, string> = {}) {
  const fakes: Fakes = { jobs: new FakeJobRepository(), events: new LocalJobEvents() };
  const dir = await mkdtemp(join(storage, 'kiln-'));
  const config = loadConfig({
    ARTIFACT_DIR: join(dir, 'artifacts'),
    TEMP_DIR: join(dir, 'tmp'),
    JOB_LOCK_MS: String(LOCK_MS),
    JOB_ABORT_SETTLE_MS: String(SETTLE_MS),
    PROGRESS_INTERVAL_MS: '0',
    ...env,
  });
  const generator = new ScriptedGenerator((context) => script(context, fakes));
  const app = await Test.createTestingModule({
    imports: [DiscoveryModule],
    providers: [
      JobRunner,
      JobLifecycle,
      GeneratorRegistry,
      ArtifactStore,
      GpuSlots,
      GpuMonitor,
      DatabaseOutage,
      DependencyOutages,
      Sql,
      KilnMetrics,
      ...METRIC_PROVIDERS,
      { provide: KilnConfig, useValue: config },
      { provide: ScriptedGenerator, useValue: generator },
      { provide: JobRepository, useValue: fakes.jobs },
      { provide: JobEvents, useValue: fakes.events },
      { provide: ArtifactRepository, useValue: new FakeArtifactRepository() },
      // Never connected: DatabaseOutage probes PostgreSQL only after an outage, which no case meets.
      { provide: DataSource, useValue: new DataSource({ type: 'postgres' }) },
    ],
  }).compile();
  // Of the app's start, only the registry's discovery of the generators is needed.
  app.get(GeneratorRegistry).onModuleInit();
  const runner = app.get(JobRunner);
  return {
    ...fakes,
    store: app.get(ArtifactStore),
    /** Stores a job of the scripted kind with three attempts: pending, or in the state given. */
    async submit(state: Partial<Job> = {}): Promise<string> {
      const job = Object.assign(new Job(), {
        ...INITIAL_JOB_STATE,
        id: randomUUID(),
        kind: 'scripted',
        input: {},
        inputHash: 'test',
        generatorVersion: '1',
        priority: PRIORITY.default,
        maxAttempts: 3,
        ownerId: ANY_OWNER.ownerId,
        idempotencyKey: null,
        batchId: null,
        ...state,
      });
      await fakes.jobs.insert([job]);
      return job.id;
    },
    /** As a worker runs the job's BullMQ job; paths that do not postpone read only its id. */
    run: (id: string) => runner.run({ id } as QueuedJob, undefined),
    row: (id: string) => fakes.jobs.findOne(id, ANY_OWNER),
  };
}

// A case that hangs fails fast; each takes well under half a second.
describe('JobRunner', { timeout: 2_000 }, () => {
  it('completes the job with the artifact it stored', async () => {
    const kiln = await startKiln(succeeds);
    const id = await kiln.submit();
    await kiln.run(id);

    const sha256 = sha256Hex(OUTPUT.data);
    expect(await kiln.row(id)).toMatchObject({
      status: 'completed',
      currentStep: 'completed',
      progress: 1,
      attempts: 1,
      artifactSha256: sha256,
      error: null,
      leaseExpiresAt: null,
    });
    expect(await kiln.store.find(sha256)).toMatchObject({ contentType: 'audio/wav', sizeBytes: 4 });
    expect(await readFile(kiln.store.pathOf(sha256))).toEqual(OUTPUT.data);
  });

  describe('settles a failed attempt', () => {
    /** The row, and the error BullMQ acts on: run the job again, or give up on it. */
    const SETTLED = {
      retried: {
        row: { status: 'pending', currentStep: 'queued', finishedAt: null },
        thrown: 'AttemptFailed',
      },
      failed: {
        row: { status: 'failed', currentStep: 'failed', finishedAt: expect.any(Date) },
        thrown: 'UnrecoverableError',
      },
    };

    const FAILURES: [
      cause: string,
      script: Script,
      error: string,
      attempt: number,
      outcome: keyof typeof SETTLED,
    ][] = [
      ['an error', crashes, 'Model crashed', 1, 'retried'],
      ['an error', crashes, 'Model crashed', 3, 'failed'],
      ['a NonRetryableError', refuses, 'No such voice', 1, 'failed'],
      ['a timeout', worksUntilAborted, TIMED_OUT, 1, 'retried'],
      ['a timeout', worksUntilAborted, TIMED_OUT, 3, 'failed'],
    ];
    for (const [cause, script, error, attempt, outcome] of FAILURES) {
      it(`${cause} in attempt ${attempt} of 3: ${outcome}`, async () => {
        const kiln = await startKiln(script, { JOB_TIMEOUT_MS: String(TIMEOUT_MS) });
        const id = await kiln.submit({ attempts: attempt - 1 });
        const { row, thrown } = SETTLED[outcome];
        await expect(kiln.run(id)).rejects.toMatchObject({ name: thrown, message: error });
        // The claim counted the attempt, and settling it keeps that count.
        expect(await kiln.row(id)).toMatchObject({
          ...row,
          error,
          attempts: attempt,
          leaseExpiresAt: null,
        });
      });
    }

    it('waits abortSettleMs for a generator that ignores its signal, then settles', async () => {
      const kiln = await startKiln(ignoresAbort, { JOB_TIMEOUT_MS: String(TIMEOUT_MS) });
      const id = await kiln.submit();
      const startedAt = performance.now();
      await expect(kiln.run(id)).rejects.toMatchObject({
        name: 'AttemptFailed',
        message: TIMED_OUT,
      });
      // Had it not waited, it would have settled at the timeout, a third of SETTLE_MS.
      expect(performance.now() - startedAt).toBeGreaterThanOrEqual(SETTLE_MS);
      expect(await kiln.row(id)).toMatchObject({ status: 'pending', error: TIMED_OUT });
    });
  });

  const CANCELS: Record<string, Script> = {
    'broadcast to the workers': (context, { events }) => {
      events.requestCancel(context.jobId);
      return worksUntilAborted(context);
    },
    'stored, then seen by a progress write': async (context, { jobs }) => {
      await jobs.requestCancel(context.jobId, ANY_OWNER);
      context.progress('generating', 0.5);
      return worksUntilAborted(context);
    },
  };
  for (const [route, script] of Object.entries(CANCELS)) {
    it(`stops the attempt at a cancel ${route}, and cancels the job`, async () => {
      const kiln = await startKiln(script);
      const id = await kiln.submit();
      const startedAt = performance.now();
      await kiln.run(id);

      expect(await kiln.row(id)).toMatchObject({
        status: 'cancelled',
        currentStep: 'cancelled',
        leaseExpiresAt: null,
        finishedAt: expect.any(Date),
      });
      // Before the lease's first renewal, which would see a stored cancel too.
      expect(performance.now() - startedAt).toBeLessThan(LOCK_MS / 3);
    });
  }

  it('stops an attempt whose job was taken over, which then writes and stores nothing', async () => {
    let takenOver: Job | null = null;
    const kiln = await startKiln(async ({ jobId, signal }, { jobs }) => {
      // The attempt's lease lapses (its worker stalled, say), and another worker claims the job.
      jobs.elapse(2 * LOCK_MS);
      takenOver = await jobs.claim(jobId, LOCK_MS);
      // Its output, handed in once the next renewal has found the lease lost, is dropped.
      await once(signal, 'abort');
      return OUTPUT;
    });
    const id = await kiln.submit();
    await kiln.run(id);

    expect(takenOver).toMatchObject({ status: 'processing', attempts: 2 });
    expect(await kiln.row(id)).toEqual(takenOver);
    const sha256 = sha256Hex(OUTPUT.data);
    expect(await kiln.store.find(sha256)).toBeNull();
    expect(existsSync(kiln.store.pathOf(sha256))).toBe(false);
  });

  // A claim of a job whose lease another attempt holds postpones its BullMQ job, as an outage and
  // a shutdown do: test/lifecycle.e2e.ts and test/reliability.e2e.ts cover those on a real queue.
  describe('runs nothing when the claim finds', () => {
    it('a job cancelled before it started', async () => {
      const generate = vi.fn(succeeds);
      const kiln = await startKiln(generate);
      const id = await kiln.submit();
      const cancelled = await kiln.jobs.cancelIfPending(id, ANY_OWNER);
      await kiln.run(id);

      expect(generate).not.toHaveBeenCalled();
      expect(await kiln.row(id)).toEqual(cancelled);
    });

    it('a job whose last attempt was lost with its worker, which fails it', async () => {
      const generate = vi.fn(succeeds);
      const kiln = await startKiln(generate);
      const lapsed = new Date(Date.now() - 1);
      const id = await kiln.submit({ status: 'processing', attempts: 3, leaseExpiresAt: lapsed });
      await kiln.run(id);

      expect(generate).not.toHaveBeenCalled();
      expect(await kiln.row(id)).toMatchObject({
        status: 'failed',
        attempts: 3,
        error: 'The worker running its last attempt (3 of 3) stopped.',
      });
    });
  });
});
