import { join, resolve } from 'node:path';

/**
 * Every count, rate and duration of the chaos suite, in its two forms: `full` (`npm run chaos`)
 * and `short` (`npm run chaos -- --short` or `CHAOS=short`, what CI runs).
 */
export interface ChaosSettings {
  form: 'full' | 'short';
  /** The steady submitter: this many jobs a second, up to `jobs` per scenario. */
  steady: { perSecond: number; jobs: number };
  /**
   * A job's run time, drawn between these (ms): long enough to be caught mid-run, and to outlive
   * ORPHAN_GRACE_MS after a kill, so a command its dead worker left running is seen.
   */
  jobMs: { min: number; max: number };
  /**
   * Scenario 1: the busiest worker killed with SIGKILL `kills` times, each `everyMs` after the last
   * one is back, and started again after `downMs`.
   */
  workerKill: { kills: number; everyMs: number; downMs: number };
  /** Scenario 2: Redis down this long (ms), then back empty. */
  redisDownMs: number;
  /** Scenario 3: PostgreSQL stopped this long (ms), then restarted. */
  postgresDownMs: number;
  /** Scenario 4: PostgreSQL frozen (SIGSTOP) this long (ms), then thawed. */
  postgresFrozenMs: number;
  /** Scenario 5: a storm of submissions; the API is killed in its first half, back for the second. */
  storm: { perSecond: number; jobs: number; jobMs: number };
  /** Scenario 6: a worker stopped with SIGTERM this many times while it runs these long jobs. */
  sigterm: { times: number; jobMs: { min: number; max: number } };
  /** How long the system may take to finish every accepted job after the load (ms). */
  drainMs: number;
}

const FORMS: Record<ChaosSettings['form'], ChaosSettings> = {
  full: {
    form: 'full',
    steady: { perSecond: 3, jobs: 90 },
    jobMs: { min: 2_000, max: 6_000 },
    workerKill: { kills: 5, everyMs: 5_000, downMs: 1_000 },
    redisDownMs: 3_000,
    postgresDownMs: 15_000,
    postgresFrozenMs: 8_000,
    storm: { perSecond: 200, jobs: 1_000, jobMs: 100 },
    sigterm: { times: 2, jobMs: { min: 3_000, max: 8_000 } },
    drainMs: 120_000,
  },
  short: {
    form: 'short',
    steady: { perSecond: 2, jobs: 24 },
    jobMs: { min: 2_000, max: 5_000 },
    workerKill: { kills: 2, everyMs: 4_000, downMs: 1_000 },
    redisDownMs: 1_000,
    postgresDownMs: 5_000,
    postgresFrozenMs: 4_000,
    storm: { perSecond: 100, jobs: 200, jobMs: 50 },
    sigterm: { times: 1, jobMs: { min: 3_000, max: 6_000 } },
    drainMs: 60_000,
  },
};

/** Where the queues of a run live: `--backend=postgres` (or CHAOS_BACKEND) for PostgreSQL alone. */
export function chaosBackend(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): 'redis' | 'postgres' {
  return args.includes('--backend=postgres') || env.CHAOS_BACKEND === 'postgres'
    ? 'postgres'
    : 'redis';
}

export function chaosSettings(args: readonly string[], env: NodeJS.ProcessEnv): ChaosSettings {
  return FORMS[args.includes('--short') || env.CHAOS === 'short' ? 'short' : 'full'];
}

/** The bootstrap admin key every request of the suite carries. */
export const CHAOS_ADMIN_KEY = 'kiln_chaos-admin-key-0123456789';
/** The kind the ledger script serves. */
export const CHAOS_KIND = 'ledger';
/** A request that has no answer after this long is a hang. */
export const CLIENT_TIMEOUT_MS = 10_000;
/** A command still heartbeating this long after its worker died is an orphan. */
export const ORPHAN_GRACE_MS = 1_500;
/** Each worker runs this many jobs at once (two workers). */
export const WORKER_CONCURRENCY = 5;
/** Graceful shutdown: the grace Kiln is given, and the margin after it before it counts as hung. */
export const SHUTDOWN_GRACE_MS = 3_000;
export const SHUTDOWN_MARGIN_MS = 12_000;

const LEDGER_SCRIPT = resolve('test/fixtures/commands/ledger.mjs');

/**
 * The environment of every Kiln process of a scenario: its own database and Redis prefix, no rate
 * limits (the storm), and retries, locks and stall checks as shipped, so that the time a dead
 * worker's jobs take to run again is measured as users get it.
 */
export function kilnEnv(scenario: {
  databaseUrl: string;
  /** Unset: the queues on PostgreSQL alone. */
  redisUrl?: string;
  dir: string;
  ledger: string;
}): Record<string, string> {
  return {
    DATABASE_URL: scenario.databaseUrl,
    ...(scenario.redisUrl
      ? { REDIS_URL: scenario.redisUrl, REDIS_PREFIX: 'kiln-chaos' }
      : { QUEUE_BACKEND: 'postgres' }),
    ARTIFACT_DIR: join(scenario.dir, 'artifacts'),
    TEMP_DIR: join(scenario.dir, 'tmp'),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'log',
    NO_COLOR: '1',
    KILN_ADMIN_API_KEY: CHAOS_ADMIN_KEY,
    RATE_LIMIT_ENABLED: 'false',
    COMMAND_GENERATORS: JSON.stringify({
      [CHAOS_KIND]: {
        path: process.execPath,
        args: [LEDGER_SCRIPT],
        env: { CHAOS_LEDGER: scenario.ledger },
        contentType: 'text/plain',
        extension: 'txt',
        input: {
          type: 'object',
          properties: {
            tag: { type: 'string' },
            durationMs: { type: 'integer', minimum: 0 },
            repeat: { type: 'integer', minimum: 1 },
          },
          required: ['tag', 'durationMs', 'repeat'],
          additionalProperties: false,
        },
      },
    }),
    KILN_WORKER_QUEUES: 'cpu',
    CPU_CONCURRENCY: String(WORKER_CONCURRENCY),
    MAX_RETRIES: '3',
    RETRY_DELAY_MS: '200',
    RECONCILE_INTERVAL_MS: '2000',
    SHUTDOWN_GRACE_MS: String(SHUTDOWN_GRACE_MS),
    SHUTDOWN_READINESS_DELAY_MS: '0',
    COMMAND_KILL_GRACE_MS: '1000',
    CLEANUP_ENABLED: 'false',
    // No GPU here, and no process should wait on a real nvidia-smi.
    NVIDIA_SMI_PATH: join(scenario.dir, 'no-nvidia-smi'),
  };
}
