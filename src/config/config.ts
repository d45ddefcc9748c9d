import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { commandGenerators, modelServers } from './generator-config.js';

const bool = z
  .enum(['true', 'false', '1', '0'])
  .transform((value) => value === 'true' || value === '1');
const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().min(min).max(max);

/** `music=60000,speech=5000` → `{ music: 60000, speech: 5000 }` */
const perKind = (what: string, min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .regex(
      /^([a-z0-9-]+=\d+)?(,[a-z0-9-]+=\d+)*$/,
      `expected kind=${what} pairs separated by commas`,
    )
    .transform((text): Record<string, number> =>
      Object.fromEntries(
        text
          .split(',')
          .filter(Boolean)
          .map((pair) => {
            const [kind = '', value] = pair.split('=');
            return [kind, Number(value)];
          }),
      ),
    )
    .pipe(z.record(z.string(), z.number().int().min(min).max(max)));

const DURATION_UNITS_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `90s`, `15m`, `1h`, `7d` or plain milliseconds → milliseconds. */
const duration = z
  .string()
  .regex(/^\d+(ms|s|m|h|d)?$/, 'expected a duration such as 500ms, 30s, 15m, 1h or 7d')
  .transform((text) => {
    const [, amount = '0', unit] = /^(\d+)(\D*)$/.exec(text) ?? [];
    return Number(amount) * DURATION_UNITS_MS[(unit || 'ms') as keyof typeof DURATION_UNITS_MS];
  });

/** `a, b,c` → `['a', 'b', 'c']`; `none` → `[]` (an empty value means the default). */
const list = z.string().transform((text) =>
  text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item && item !== 'none'),
);

/** A five- or six-field cron expression; the scheduler rejects a bad one at boot. */
const cron = z.string().regex(/^(\S+\s+){4,5}\S+$/, 'expected a cron expression such as 0 * * * *');

/** Every environment key Kiln reads, with its default. `.env.example` mirrors this list. */
const envSchema = z.object({
  KILN_ROLE: z.enum(['all', 'api', 'worker']).default('all'),
  HOST: z.string().default('0.0.0.0'),
  TRUST_PROXY: bool.default(false),
  CORS_ORIGINS: list.default([]),
  KILN_ADMIN_API_KEY: z
    .string()
    .regex(/^kiln_[\w-]{20,}$/, 'expected kiln_ followed by at least 20 letters, digits, _ or -')
    .optional(),
  AUTH_DISABLED: bool.default(false),
  AUTH_CACHE_MS: int(0).default(5_000),
  RATE_LIMIT_ENABLED: bool.default(true),
  RATE_LIMIT_PER_MINUTE: int(1).default(60),
  RATE_LIMIT_BURST_PER_SECOND: int(1).default(10),
  RATE_LIMIT_SUBMIT_PER_MINUTE: int(1).default(10),
  RATE_LIMIT_WHITELIST: list.default(['127.0.0.1', '::1', '::ffff:127.0.0.1']),
  PORT: int(0, 65535).default(3000),
  LOG_LEVEL: z.enum(['error', 'warn', 'log', 'debug', 'verbose']).default('log'),
  BODY_LIMIT_BYTES: int(1024).default(1_048_576),
  HTTP_REQUEST_TIMEOUT: duration
    .pipe(z.number().min(100, 'expected at least 100ms'))
    .default(30_000),
  // `production` makes DATABASE_URL required: never an embedded database by accident.
  NODE_ENV: z.string().optional(),
  // Unset: an embedded PostgreSQL of Kiln's own, in EMBEDDED_POSTGRES_DIR.
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).optional(),
  EMBEDDED_POSTGRES_DIR: z.string().default('var/postgres'),
  // A task under an advisory lock holds one connection while it queries on another.
  DB_POOL_SIZE: int(2, 200).default(10),
  DB_MIGRATE_ON_START: bool.default(true),
  DB_STATEMENT_TIMEOUT: duration.default(5_000),
  DB_CONNECT_TIMEOUT: duration.default(3_000),
  DEPENDENCY_WAIT: duration.default(60_000),
  // Unset: queues and messages go through PostgreSQL, and Kiln needs no Redis.
  QUEUE_BACKEND: z.enum(['redis', 'postgres']).optional(),
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).optional(),
  REDIS_PREFIX: z
    .string()
    .regex(/^[\w:{}-]+$/)
    .default('kiln'),
  ARTIFACT_DIR: z.string().default('var/artifacts'),
  TEMP_DIR: z.string().default(join(tmpdir(), 'kiln')),
  BATCH_MAX: int(1, 1000).default(10),
  MAX_RETRIES: int(0, 100).default(3),
  RETRY_DELAY_MS: int(0).default(1000),
  JOB_TIMEOUT_MS: int(1).default(600_000),
  JOB_TIMEOUT_MS_BY_KIND: perKind('milliseconds', 1).default({}),
  MAX_RETRIES_BY_KIND: perKind('retries', 0, 100).default({}),
  PROGRESS_INTERVAL_MS: int(0).default(250),
  EVENTS_RESYNC_MS: int(100).default(5_000),
  CPU_CONCURRENCY: int(1, 1024).default(availableParallelism()),
  GPU_CONCURRENCY: int(1, 1024).optional(),
  // Unset: the CPU queue, and the GPU queue too where nvidia-smi finds a GPU at start.
  KILN_WORKER_QUEUES: list
    .pipe(z.array(z.enum(['cpu', 'gpu'])).min(1, 'expected cpu, gpu or both'))
    .optional(),
  GENERATOR_CHECK_INTERVAL_MS: int(1000).default(60_000),
  ESPEAK_NG_PATH: z.string().min(1).default('espeak-ng'),
  COMMAND_GENERATORS: commandGenerators.default({}),
  COMMAND_KILL_GRACE_MS: int(0).default(5_000),
  JOB_ABORT_SETTLE_MS: int(0).optional(),
  MODEL_SERVERS: modelServers.default({}),
  // A dead worker's job starts again within JOB_LOCK_MS + STALLED_CHECK_INTERVAL_MS.
  JOB_LOCK_MS: int(1000).default(8_000),
  STALLED_CHECK_INTERVAL_MS: int(100).default(4_000),
  RECONCILE_INTERVAL_MS: int(100).default(30_000),
  SHUTDOWN_GRACE_MS: int(0).default(30_000),
  SHUTDOWN_READINESS_DELAY_MS: int(0).default(5_000),
  HEALTH_CHECK_TIMEOUT_MS: int(1).default(1_000),
  LIVENESS_EVENT_LOOP_DELAY_MS: int(1).default(2_000),
  LIVENESS_HEAP_MAX_RATIO: z.coerce.number().gt(0).max(1).default(0.95),
  DISK_MIN_FREE_PERCENT: z.coerce.number().min(0).max(100).default(5),
  DISK_MIN_FREE_MB: int(0).default(1_024),
  QUEUE_BACKLOG_THRESHOLD: int(1).default(1_000),
  NVIDIA_SMI_PATH: z.string().min(1).default('nvidia-smi'),
  GPU_REQUIRED: bool.default(false),
  GPU_POLL_INTERVAL_MS: int(100).default(5_000),
  GPU_POLL_TIMEOUT_MS: int(100).default(3_000),
  METRICS_TOKEN: z.string().min(16, 'use at least 16 characters').optional(),
  CLEANUP_ENABLED: bool.default(true),
  JOB_RETENTION_DAYS: int(1).default(7),
  TEMP_MAX_AGE: duration.default(3_600_000),
  QUEUE_RETENTION: duration.default(86_400_000),
  CLEANUP_JOBS_CRON: cron.default('0 * * * *'),
  CLEANUP_TEMP_CRON: cron.default('*/10 * * * *'),
  CLEANUP_QUEUE_CRON: cron.default('*/15 * * * *'),
  CLEANUP_RATE_LIMITS_CRON: cron.default('*/10 * * * *'),
});

export type Env = z.input<typeof envSchema>;
export const ENV_KEYS = Object.keys(envSchema.shape);

function toConfig(env: z.output<typeof envSchema>, inherited: Record<string, string>) {
  const queueBackend = env.QUEUE_BACKEND ?? (env.REDIS_URL ? 'redis' : 'postgres');
  return {
    role: env.KILN_ROLE,
    runsApi: env.KILN_ROLE !== 'worker',
    runsWorker: env.KILN_ROLE !== 'api',
    http: {
      trustProxy: env.TRUST_PROXY,
      corsOrigins: env.CORS_ORIGINS,
      host: env.HOST,
      port: env.PORT,
      bodyLimitBytes: env.BODY_LIMIT_BYTES,
      /** How long a request's headers and body may take to arrive; the response is not bounded. */
      requestTimeoutMs: env.HTTP_REQUEST_TIMEOUT,
      logLevel: env.LOG_LEVEL,
    },
    database: {
      /** DATABASE_URL; in embedded mode the embedded server's, once it runs (see `databaseUrl`). */
      url: env.DATABASE_URL,
      /** Without DATABASE_URL: the folder of the embedded PostgreSQL Kiln runs itself. */
      embeddedDir: env.DATABASE_URL === undefined ? resolve(env.EMBEDDED_POSTGRES_DIR) : undefined,
      poolSize: env.DB_POOL_SIZE,
      migrateOnStart: env.DB_MIGRATE_ON_START,
      statementTimeoutMs: env.DB_STATEMENT_TIMEOUT,
      /** Bounds connecting, and waiting for a free connection of the pool. */
      connectTimeoutMs: env.DB_CONNECT_TIMEOUT,
    },
    /** How long a starting process waits for PostgreSQL and Redis before it gives up. */
    dependencyWaitMs: env.DEPENDENCY_WAIT,
    /** What carries the queues and the messages between processes. */
    queueBackend,
    /** Set only where Redis carries them: with PostgreSQL alone, Kiln needs no Redis. */
    redis:
      queueBackend === 'redis' && env.REDIS_URL
        ? { url: env.REDIS_URL, prefix: env.REDIS_PREFIX }
        : undefined,
    storage: { artifactDir: resolve(env.ARTIFACT_DIR), tempDir: resolve(env.TEMP_DIR) },
    jobs: {
      batchMax: env.BATCH_MAX,
      maxAttempts: env.MAX_RETRIES + 1,
      maxAttemptsByKind: Object.fromEntries(
        Object.entries(env.MAX_RETRIES_BY_KIND).map(([kind, retries]) => [kind, retries + 1]),
      ),
      retryDelayMs: env.RETRY_DELAY_MS,
      reconcileIntervalMs: env.RECONCILE_INTERVAL_MS,
      /** How often a live event stream re-reads its job, for an update pub/sub did not deliver. */
      eventsResyncMs: env.EVENTS_RESYNC_MS,
    },
    worker: {
      queues: env.KILN_WORKER_QUEUES,
      cpuConcurrency: env.CPU_CONCURRENCY,
      /** Unset: one job per GPU nvidia-smi lists (one when it lists none). */
      gpuConcurrency: env.GPU_CONCURRENCY,
      timeoutMs: env.JOB_TIMEOUT_MS,
      timeoutMsByKind: env.JOB_TIMEOUT_MS_BY_KIND,
      progressIntervalMs: env.PROGRESS_INTERVAL_MS,
      /** The BullMQ lock on a running job, and its attempt's lease in PostgreSQL. */
      lockMs: env.JOB_LOCK_MS,
      stalledCheckIntervalMs: env.STALLED_CHECK_INTERVAL_MS,
      shutdownGraceMs: env.SHUTDOWN_GRACE_MS,
      /** How long an aborted attempt may take to end (a command its SIGTERM grace) before it is settled. */
      abortSettleMs: env.JOB_ABORT_SETTLE_MS ?? env.COMMAND_KILL_GRACE_MS + 5_000,
    },
    generators: {
      checkIntervalMs: env.GENERATOR_CHECK_INTERVAL_MS,
      espeakNgPath: env.ESPEAK_NG_PATH,
      commands: env.COMMAND_GENERATORS,
      commandKillGraceMs: env.COMMAND_KILL_GRACE_MS,
      /** What commands inherit from this process's environment: the allowed keys only. */
      commandEnv: inherited,
      modelServers: env.MODEL_SERVERS,
    },
    auth: {
      disabled: env.AUTH_DISABLED,
      adminApiKey: env.KILN_ADMIN_API_KEY,
      cacheMs: env.AUTH_CACHE_MS,
    },
    rateLimit: {
      enabled: env.RATE_LIMIT_ENABLED,
      perMinute: env.RATE_LIMIT_PER_MINUTE,
      burstPerSecond: env.RATE_LIMIT_BURST_PER_SECOND,
      submitPerMinute: env.RATE_LIMIT_SUBMIT_PER_MINUTE,
      // An entry is an IP address or else an API key's name.
      whitelist: {
        ips: env.RATE_LIMIT_WHITELIST.filter((entry) => isIP(entry) !== 0),
        keyNames: env.RATE_LIMIT_WHITELIST.filter((entry) => isIP(entry) === 0),
      },
    },
    health: {
      checkTimeoutMs: env.HEALTH_CHECK_TIMEOUT_MS,
      readinessDelayMs: env.SHUTDOWN_READINESS_DELAY_MS,
      maxEventLoopDelayMs: env.LIVENESS_EVENT_LOOP_DELAY_MS,
      maxHeapRatio: env.LIVENESS_HEAP_MAX_RATIO,
      minFreeDiskPercent: env.DISK_MIN_FREE_PERCENT,
      minFreeDiskBytes: env.DISK_MIN_FREE_MB * 1_048_576,
      queueBacklogThreshold: env.QUEUE_BACKLOG_THRESHOLD,
    },
    gpu: {
      nvidiaSmiPath: env.NVIDIA_SMI_PATH,
      required: env.GPU_REQUIRED,
      pollIntervalMs: env.GPU_POLL_INTERVAL_MS,
      pollTimeoutMs: env.GPU_POLL_TIMEOUT_MS,
    },
    metrics: { token: env.METRICS_TOKEN },
    cleanup: {
      enabled: env.CLEANUP_ENABLED,
      jobRetentionMs: env.JOB_RETENTION_DAYS * DURATION_UNITS_MS.d,
      tempMaxAgeMs: env.TEMP_MAX_AGE,
      queueRetentionMs: env.QUEUE_RETENTION,
      schedules: {
        jobs: env.CLEANUP_JOBS_CRON,
        temp: env.CLEANUP_TEMP_CRON,
        queue: env.CLEANUP_QUEUE_CRON,
        'rate-limits': env.CLEANUP_RATE_LIMITS_CRON,
      },
    },
  };
}

export type Config = ReturnType<typeof toConfig>;

/** The validated configuration tree; inject it by this class. */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export abstract class KilnConfig {}
// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface KilnConfig extends Config {}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
  }
}

/**
 * The variables a command inherits: what a program needs to run (search path, user, locale, time
 * zone, temp dir, shared libraries) and the GPU's. Anything else, secrets above all (cloud keys,
 * PGPASSWORD, whatever `.env` holds), reaches it only through its entry's `env`.
 */
const COMMAND_ENV_KEYS = new Set([
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'SHELL',
  'LANG',
  'LANGUAGE',
  'TZ',
  'TMPDIR',
  'LD_LIBRARY_PATH',
]);
const COMMAND_ENV_PREFIXES = ['LC_', 'CUDA_', 'NVIDIA_'];

const passedToCommands = (key: string) =>
  !ENV_KEYS.includes(key) &&
  (COMMAND_ENV_KEYS.has(key) || COMMAND_ENV_PREFIXES.some((prefix) => key.startsWith(prefix)));

/** The process environment, with a `.env` file in the working directory beneath it. */
export function processEnv(): NodeJS.ProcessEnv {
  if (existsSync('.env')) process.loadEnvFile('.env');
  return process.env;
}

/** Validates the environment once; throws a ConfigError naming every bad key. */
export function loadConfig(env: Record<string, string | undefined> = process.env): KilnConfig {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''));
  const parsed = envSchema.safeParse(present);
  const problems = parsed.success
    ? []
    : parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
  if (present.NODE_ENV === 'production' && present.DATABASE_URL === undefined) {
    problems.push(
      'DATABASE_URL: required with NODE_ENV=production (the embedded PostgreSQL is for one machine, outside production)',
    );
  }
  if (present.QUEUE_BACKEND === 'redis' && present.REDIS_URL === undefined) {
    problems.push('REDIS_URL: required with QUEUE_BACKEND=redis');
  }
  if (!parsed.success || problems.length > 0) throw new ConfigError(problems);
  // Empty values are kept: an empty CUDA_VISIBLE_DEVICES hides every GPU.
  const inherited = Object.entries(env).filter(
    (entry): entry is [string, string] => entry[1] !== undefined && passedToCommands(entry[0]),
  );
  return toConfig(parsed.data, Object.fromEntries(inherited));
}
