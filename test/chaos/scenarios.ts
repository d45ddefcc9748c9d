import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { PRIORITY } from '../../src/jobs/job.entity.js';
import type { OwnPostgres } from '../support/postgres-server.js';
import type { OwnRedis } from '../support/redis-server.js';
import { KilnClient, type LedgerInput, Submitter, isFinal } from './client.js';
import { type ScenarioResult, check, drain } from './invariants.js';
import { isLedgerCommand, killLeftovers, readAttempts } from './ledger.js';
import { Fleet, type KilnProcess } from './processes.js';
import {
  type ChaosSettings,
  ORPHAN_GRACE_MS,
  SHUTDOWN_GRACE_MS,
  SHUTDOWN_MARGIN_MS,
  kilnEnv,
} from './settings.js';

/** How long after a fault a job submitted then may take to complete before recovery is "none". */
const RECOVERY_TIMEOUT_MS = 60_000;

/** What a scenario's fault works with, while the steady submitter runs beside it. */
export interface ScenarioContext {
  settings: ChaosSettings;
  fleet: Fleet;
  postgres: OwnPostgres;
  /** Absent where PostgreSQL alone carries the queues. */
  redis?: OwnRedis;
  submitter: Submitter;
  /** How long the steady load lasts (ms): faults are placed within it. */
  loadMs: number;
  /** Marks the end of the fault: recovery is timed from here. */
  cleared: () => void;
  /** Sends a worker a signal and waits (bounded) for it to end; its commands are watched. */
  stopWorker(worker: KilnProcess, signal: NodeJS.Signals, withinMs: number): Promise<void>;
  /** Waits (bounded) until a worker runs at least `count` commands, and returns the worker. */
  busyWorker(count: number): Promise<KilnProcess>;
  /** An input for a job of this scenario's own (a unique tag). */
  input(kind: string, index: number, durationMs?: number): LedgerInput;
  violations: string[];
  log: (message: string) => void;
}

export interface Scenario {
  name: string;
  fault: string;
  /** The steady jobs' run time, when not the settings' `jobMs`. */
  jobMs?: (settings: ChaosSettings) => { min: number; max: number };
  /** A fault of Redis itself, which a Kiln on PostgreSQL alone does not have. */
  needsRedis?: true;
  inject(context: ScenarioContext): Promise<void>;
}

export const SCENARIOS: Scenario[] = [
  {
    name: 'worker-kill',
    fault: 'a worker killed with SIGKILL mid-job, again and again, and started again',
    async inject(context) {
      const { kills, everyMs, downMs } = context.settings.workerKill;
      for (let kill = 1; kill <= kills; kill++) {
        await sleep(everyMs);
        const worker = await context.busyWorker(1);
        await context.stopWorker(worker, 'SIGKILL', 5_000);
        await sleep(downMs);
        await worker.start();
      }
      context.cleared();
    },
  },
  {
    name: 'redis-restart',
    fault: 'Redis killed while jobs run, and started again empty',
    needsRedis: true,
    inject: (context) =>
      outage(context, 'Redis down', context.settings.redisDownMs, {
        begin: () => context.redis!.stop(),
        end: () => context.redis!.restart(),
      }),
  },
  {
    name: 'postgres-stop',
    fault: 'PostgreSQL stopped under load, then restarted',
    inject: (context) =>
      outage(context, 'PostgreSQL down', context.settings.postgresDownMs, {
        begin: () => context.postgres.stop(),
        end: () => context.postgres.restart(),
      }),
  },
  {
    name: 'postgres-freeze',
    fault: 'PostgreSQL frozen (SIGSTOP) under load, then thawed',
    inject: (context) =>
      outage(context, 'PostgreSQL frozen', context.settings.postgresFrozenMs, {
        begin: () => context.postgres.freeze(),
        end: () => context.postgres.thaw(),
      }),
  },
  {
    name: 'api-kill',
    fault: 'the API killed with SIGKILL under a submit storm, and started again',
    async inject(context) {
      // Half the storm meets the API killed in its middle, the other half the API started again.
      const { perSecond, jobs, jobMs } = context.settings.storm;
      const first = Math.ceil(jobs / 2);
      const storm = (count: number, from: number) =>
        context.submitter.paced(count, perSecond, (index) =>
          context.input('storm', from + index, jobMs),
        );
      await sleep(2_000);
      const before = storm(first, 0);
      await sleep((first / perSecond / 2) * 1000);
      const { api } = context.fleet;
      api.signal('SIGKILL');
      await api.exited(5_000);
      context.log('API killed mid-storm');
      await before;
      await api.start();
      context.cleared();
      await storm(jobs - first, first);
    },
  },
  {
    name: 'worker-sigterm',
    fault: 'a worker stopped with SIGTERM while it runs jobs (graceful shutdown), started again',
    jobMs: (settings) => settings.sigterm.jobMs,
    async inject(context) {
      const gap = context.loadMs / (context.settings.sigterm.times + 1);
      for (let time = 1; time <= context.settings.sigterm.times; time++) {
        await sleep(gap / 2);
        const worker = await context.busyWorker(2);
        await context.stopWorker(worker, 'SIGTERM', SHUTDOWN_GRACE_MS + SHUTDOWN_MARGIN_MS);
        await worker.start();
        await sleep(gap / 2);
      }
      context.cleared();
    },
  },
];

/** A dependency down for `ms` a third of the way into the load, then back; the end always runs. */
async function outage(
  context: ScenarioContext,
  what: string,
  ms: number,
  fault: { begin: () => Promise<void> | void; end: () => Promise<void> | void },
): Promise<void> {
  await sleep(context.loadMs / 3);
  await fault.begin();
  context.log(`${what} for ${ms} ms`);
  try {
    await sleep(ms);
  } finally {
    await fault.end();
  }
  context.cleared();
}

/** The same draws on every run, so two runs of a scenario offer the same work. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

async function createDatabase(postgres: OwnPostgres, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: postgres.url.replace(/\/kiln$/, '/postgres') });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  return postgres.url.replace(/\/kiln$/, `/${name}`);
}

export interface ScenarioRun {
  number: number;
  settings: ChaosSettings;
  postgres: OwnPostgres;
  redis?: OwnRedis;
  runDir: string;
}

/**
 * Runs one scenario on a database of its own and a fresh fleet: the steady load and the fault side
 * by side, a probe job after the fault, the drain, then every invariant.
 */
export async function runScenario(scenario: Scenario, run: ScenarioRun): Promise<ScenarioResult> {
  const startedAt = Date.now();
  const { settings, postgres, redis } = run;
  const name = `${String(run.number).padStart(2, '0')}-${scenario.name}`;
  const dir = join(run.runDir, name);
  mkdirSync(dir, { recursive: true });
  const ledger = join(dir, 'ledger.jsonl');
  const log = (message: string) =>
    console.log(`[${new Date().toISOString().slice(11, 19)}] ${scenario.name}: ${message}`);
  const violations: string[] = [];
  const aliveAfterWorker = new Set<number>();
  const watches: Promise<void>[] = [];

  const databaseUrl = await createDatabase(postgres, `chaos_${run.number}`);
  const env = {
    ...kilnEnv({ databaseUrl, redisUrl: redis?.url, dir, ledger }),
    ...(redis ? { REDIS_PREFIX: `kiln-chaos-${run.number}` } : {}),
  };
  log(`starting the API and two workers (logs in ${dir})`);
  const fleet = await Fleet.start(env, dir);
  const client = new KilnClient(fleet.api.url);
  const submitter = new Submitter(client);
  const draw = random(run.number);
  const jobMs = scenario.jobMs?.(settings) ?? settings.jobMs;
  const input = (kind: string, index: number, durationMs?: number): LedgerInput => ({
    tag: `${scenario.name}-${kind}-${index}`,
    durationMs: durationMs ?? Math.round(jobMs.min + draw() * (jobMs.max - jobMs.min)),
    repeat: 20 + Math.floor(draw() * 200),
  });
  const running = (worker: KilnProcess) =>
    readAttempts(ledger).filter(
      (attempt) => attempt.worker === worker.pid && !attempt.ended && isLedgerCommand(attempt.pid),
    );

  let recovery: Promise<number | null> = Promise.resolve(null);
  const context: ScenarioContext = {
    settings,
    fleet,
    postgres,
    redis,
    submitter,
    loadMs: (settings.steady.jobs / settings.steady.perSecond) * 1000,
    cleared: () => {
      log('fault cleared');
      recovery = probe(scenario.name, Date.now(), submitter, client);
    },
    async stopWorker(worker, signal, withinMs) {
      const held = running(worker).length;
      worker.signal(signal);
      const exit = await worker.exited(withinMs);
      log(`${worker.name} sent ${signal} while running ${held} command(s)`);
      if (!exit) {
        violations.push(`${worker.name} had not ended ${withinMs} ms after ${signal}`);
        worker.signal('SIGKILL');
        await worker.exited(5_000);
      }
      const pid = worker.exits.at(-1)?.pid;
      watches.push(
        sleep(ORPHAN_GRACE_MS + 1_000).then(() => {
          for (const attempt of readAttempts(ledger))
            if (attempt.worker === pid && isLedgerCommand(attempt.pid))
              aliveAfterWorker.add(attempt.pid);
        }),
      );
    },
    async busyWorker(count) {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const [busiest] = [...fleet.workers]
          .filter((worker) => worker.alive)
          .map((worker) => ({ worker, running: running(worker).length }))
          .sort((a, b) => b.running - a.running);
        if (busiest && (busiest.running >= count || Date.now() > deadline)) return busiest.worker;
        await sleep(100);
      }
    },
    input,
    violations,
    log,
  };

  try {
    log(`${scenario.fault}; ${settings.steady.jobs} jobs at ${settings.steady.perSecond}/s`);
    await Promise.all([
      submitter.paced(settings.steady.jobs, settings.steady.perSecond, (index) =>
        input('steady', index),
      ),
      scenario.inject(context),
    ]);
    const recoveryMs = await recovery;
    if (recoveryMs === null)
      violations.push(
        `no job submitted after the fault completed within ${RECOVERY_TIMEOUT_MS} ms`,
      );
    log(`load done, ${submitter.accepted.length} accepted; draining`);
    const jobs = await drain(client, submitter.accepted, settings.drainMs);
    await Promise.all(watches);
    return await check({
      name: scenario.name,
      fault: scenario.fault,
      client,
      submitter,
      jobs,
      ledger,
      workerExits: fleet.workerExits(),
      aliveAfterWorker,
      crashes: fleet.crashes,
      recoveryMs,
      startedAt,
      violations,
    });
  } finally {
    await fleet.stop();
    const killed = killLeftovers(readAttempts(ledger));
    if (killed > 0) log(`killed ${killed} command(s) still running`);
  }
}

/**
 * Times the recovery: submits a short job as soon as the API accepts one, and waits for it to
 * complete. The probe is an accepted job like any other, so every invariant holds for it too.
 */
async function probe(
  name: string,
  clearedAt: number,
  submitter: Submitter,
  client: KilnClient,
): Promise<number | null> {
  const deadline = clearedAt + RECOVERY_TIMEOUT_MS;
  for (let index = 0; Date.now() < deadline; index++) {
    // The highest priority: it times the recovery, not the backlog the fault left.
    const accepted = await submitter.submit(
      { tag: `${name}-probe-${index}`, durationMs: 200, repeat: 10 },
      PRIORITY.max,
    );
    if (!accepted) {
      await sleep(250);
      continue;
    }
    while (Date.now() < deadline) {
      const job = await client.job(accepted.id);
      if (job && isFinal(job)) return job.status === 'completed' ? Date.now() - clearedAt : null;
      await sleep(100);
    }
  }
  return null;
}
