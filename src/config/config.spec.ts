import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError, ENV_KEYS, loadConfig } from './config.js';

describe('loadConfig', () => {
  it('needs no environment at all: an embedded PostgreSQL, which carries the queues too', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      role: 'all',
      runsApi: true,
      runsWorker: true,
      http: { port: 3000 },
      database: { url: undefined, embeddedDir: resolve('var/postgres'), migrateOnStart: true },
      queueBackend: 'postgres',
      jobs: { maxAttempts: 4, retryDelayMs: 1000, batchMax: 10 },
    });
    expect(config.redis).toBeUndefined();
  });

  it('puts the queues on Redis where REDIS_URL is set, unless QUEUE_BACKEND says postgres', () => {
    const redis = { REDIS_URL: 'redis://cache.internal:6380' };
    expect(loadConfig(redis)).toMatchObject({
      queueBackend: 'redis',
      redis: { url: 'redis://cache.internal:6380', prefix: 'kiln' },
    });
    const postgres = loadConfig({ ...redis, QUEUE_BACKEND: 'postgres' });
    expect(postgres.queueBackend).toBe('postgres');
    expect(postgres.redis).toBeUndefined();
    expect(() => loadConfig({ QUEUE_BACKEND: 'redis' })).toThrow(
      /REDIS_URL: required with QUEUE_BACKEND=redis/,
    );
  });

  it('takes DATABASE_URL over the embedded PostgreSQL, and requires it in production', () => {
    const url = 'postgres://kiln@db:5432/kiln';
    expect(loadConfig({ DATABASE_URL: url }).database).toMatchObject({
      url,
      embeddedDir: undefined,
    });
    expect(loadConfig({ EMBEDDED_POSTGRES_DIR: 'data/pg' }).database.embeddedDir).toBe(
      resolve('data/pg'),
    );
    expect(loadConfig({ NODE_ENV: 'production', DATABASE_URL: url }).database.url).toBe(url);
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(
      /DATABASE_URL: required with NODE_ENV=production/,
    );
    // An empty value is no value.
    expect(() => loadConfig({ NODE_ENV: 'production', DATABASE_URL: '' })).toThrow(ConfigError);
    expect(loadConfig({ NODE_ENV: 'development' }).database.embeddedDir).toBeDefined();
  });

  it('derives what each role runs', () => {
    expect(loadConfig({ KILN_ROLE: 'api' })).toMatchObject({ runsApi: true, runsWorker: false });
    expect(loadConfig({ KILN_ROLE: 'worker' })).toMatchObject({ runsApi: false, runsWorker: true });
  });

  it('reads per-kind timeouts', () => {
    const config = loadConfig({ JOB_TIMEOUT_MS_BY_KIND: 'music=60000,pdf-report=5000' });
    expect(config.worker.timeoutMsByKind).toEqual({ music: 60000, 'pdf-report': 5000 });
  });

  it('reads per-kind retries as attempts, and the queues a worker serves', () => {
    const config = loadConfig({ MAX_RETRIES_BY_KIND: 'speech=0,upscale=2' });
    expect(config.jobs.maxAttemptsByKind).toEqual({ speech: 1, upscale: 3 });
    // Unset, the worker decides at start from what nvidia-smi finds.
    expect(config.worker.queues).toBeUndefined();
    expect(loadConfig({ KILN_WORKER_QUEUES: 'gpu' }).worker.queues).toEqual(['gpu']);
    expect(() => loadConfig({ KILN_WORKER_QUEUES: 'tpu' })).toThrow(/KILN_WORKER_QUEUES/);
    // Bounded like MAX_RETRIES, and a timeout of 0 would abort every attempt at once.
    expect(() => loadConfig({ MAX_RETRIES_BY_KIND: 'speech=101' })).toThrow(/MAX_RETRIES_BY_KIND/);
    expect(() => loadConfig({ JOB_TIMEOUT_MS_BY_KIND: 'speech=0' })).toThrow(
      /JOB_TIMEOUT_MS_BY_KIND/,
    );
  });

  it('reads configured commands and model servers, naming what is wrong', () => {
    const config = loadConfig({
      COMMAND_GENERATORS: JSON.stringify({
        upscale: { path: '/opt/upscale.py', resources: 'gpu', input: { type: 'object' } },
      }),
      MODEL_SERVERS: '{"caption": {"url": "http://models:5000/"}}',
    });
    expect(config.generators.commands.upscale).toMatchObject({
      path: '/opt/upscale.py',
      resources: 'gpu',
      args: [],
      extension: 'bin',
    });
    expect(config.generators.commands.upscale?.input?.safeParse({ any: 1 }).success).toBe(true);
    const paths = loadConfig({
      COMMAND_GENERATORS: JSON.stringify({
        relative: { path: 'models/upscale.py' },
        dotted: { path: './upscale.py' },
        bare: { path: 'python3' },
      }),
    }).generators.commands;
    expect(paths.relative?.path).toBe(join(process.cwd(), 'models/upscale.py'));
    expect(paths.dotted?.path).toBe(join(process.cwd(), 'upscale.py'));
    expect(paths.bare?.path).toBe('python3');
    expect(config.generators.modelServers.caption).toMatchObject({
      url: 'http://models:5000',
      resources: 'cpu',
      pollIntervalMs: 500,
      outputOrigins: [],
      maxOutputBytes: 2 ** 30,
    });
    const withBucket = loadConfig({
      MODEL_SERVERS: JSON.stringify({
        caption: { url: 'http://models:5000', outputOrigins: ['https://out.s3.amazonaws.com/'] },
      }),
    });
    expect(withBucket.generators.modelServers.caption?.outputOrigins).toEqual([
      'https://out.s3.amazonaws.com',
    ]);
    expect(() =>
      loadConfig({
        MODEL_SERVERS: JSON.stringify({
          caption: { url: 'http://models:5000', outputOrigins: ['https://out.example/bucket'] },
        }),
      }),
    ).toThrow(/MODEL_SERVERS\.caption\.outputOrigins\.0: expected an origin only/);
    expect(() => loadConfig({ COMMAND_GENERATORS: '{upscale' })).toThrow(
      /COMMAND_GENERATORS: not JSON/,
    );
    expect(() => loadConfig({ COMMAND_GENERATORS: '{"Bad Kind": {"path": "x"}}' })).toThrow(
      /COMMAND_GENERATORS/,
    );
    expect(() => loadConfig({ MODEL_SERVERS: '{"caption": {"url": "file:///etc"}}' })).toThrow(
      /MODEL_SERVERS\.caption\.url/,
    );
  });

  it('passes commands only the allowed part of the environment, empty values included', () => {
    const config = loadConfig({
      PATH: '/usr/bin',
      LC_ALL: 'C.UTF-8',
      CUDA_VISIBLE_DEVICES: '',
      NVIDIA_DRIVER_CAPABILITIES: 'compute',
      NVIDIA_SMI_PATH: '/usr/bin/nvidia-smi',
      DATABASE_URL: 'postgres://kiln:secret@db/kiln',
      KILN_ADMIN_API_KEY: 'kiln_0123456789abcdefghijklmn',
      AWS_SECRET_ACCESS_KEY: 'secret',
      PGPASSWORD: 'secret',
    });
    expect(config.generators.commandEnv).toEqual({
      PATH: '/usr/bin',
      LC_ALL: 'C.UTF-8',
      CUDA_VISIBLE_DEVICES: '',
      NVIDIA_DRIVER_CAPABILITIES: 'compute',
    });
  });

  it('reads durations with or without a unit, and cleanup defaults', () => {
    expect(loadConfig({}).cleanup).toMatchObject({
      jobRetentionMs: 7 * 86_400_000,
      tempMaxAgeMs: 3_600_000,
      queueRetentionMs: 86_400_000,
    });
    const durations = ['0', '250', '500ms', '30s', '15m', '2h', '7d'].map(
      (TEMP_MAX_AGE) => loadConfig({ TEMP_MAX_AGE }).cleanup.tempMaxAgeMs,
    );
    expect(durations).toEqual([0, 250, 500, 30_000, 900_000, 7_200_000, 604_800_000]);
    expect(() => loadConfig({ TEMP_MAX_AGE: '1 hour' })).toThrow(
      /TEMP_MAX_AGE: expected a duration/,
    );
    expect(() => loadConfig({ CLEANUP_JOBS_CRON: 'hourly' })).toThrow(/CLEANUP_JOBS_CRON/);
  });

  it('reads HTTP_REQUEST_TIMEOUT as a duration of at least 100 ms, 30 s by default', () => {
    expect(loadConfig({}).http.requestTimeoutMs).toBe(30_000);
    expect(loadConfig({ HTTP_REQUEST_TIMEOUT: '2m' }).http.requestTimeoutMs).toBe(120_000);
    expect(loadConfig({ HTTP_REQUEST_TIMEOUT: '100ms' }).http.requestTimeoutMs).toBe(100);
    expect(() => loadConfig({ HTTP_REQUEST_TIMEOUT: '0' })).toThrow(
      /HTTP_REQUEST_TIMEOUT: expected at least 100ms/,
    );
    expect(() => loadConfig({ HTTP_REQUEST_TIMEOUT: 'soon' })).toThrow(
      /HTTP_REQUEST_TIMEOUT: expected a duration/,
    );
  });

  it('documents every key in .env.example, and its values load', () => {
    const lines = readFileSync('.env.example', 'utf8').split('\n');
    const entries = lines.filter((line) => /^[A-Z_]+=/.test(line)).map((line) => line.split('='));
    expect(entries.map(([key]) => key).sort()).toEqual([...ENV_KEYS].sort());
    const example = Object.fromEntries(
      entries.map(([key = '', ...value]) => [key, value.join('=')]),
    );
    expect(() => loadConfig(example)).not.toThrow();
  });

  it('names every bad key at once', () => {
    const bad = () =>
      loadConfig({
        PORT: 'eighty',
        KILN_ROLE: 'both',
        DATABASE_URL: 'mysql://x',
        JOB_TIMEOUT_MS_BY_KIND: 'music',
      });
    expect(bad).toThrow(ConfigError);
    try {
      bad();
    } catch (error) {
      const { problems } = error as ConfigError;
      expect(problems.map((problem) => problem.split(':')[0])).toEqual([
        'KILN_ROLE',
        'PORT',
        'DATABASE_URL',
        'JOB_TIMEOUT_MS_BY_KIND',
      ]);
    }
  });
});
