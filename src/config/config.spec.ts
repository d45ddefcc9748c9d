import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { ConfigError, ENV_KEYS, loadConfig } from './config.js';

describe('loadConfig', () => {
  it('needs no environment at all on a machine with local PostgreSQL and Redis', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      role: 'all',
      runsApi: true,
      runsWorker: true,
      http: { port: 3000 },
      database: { url: 'postgres://postgres@127.0.0.1:5432/kiln', migrateOnStart: true },
      redis: { url: 'redis://127.0.0.1:6379', prefix: 'kiln' },
      jobs: { maxAttempts: 4, retryDelayMs: 1000, batchMax: 10 },
    });
  });

  it('derives what each role runs', () => {
    expect(loadConfig({ KILN_ROLE: 'api' })).toMatchObject({ runsApi: true, runsWorker: false });
    expect(loadConfig({ KILN_ROLE: 'worker' })).toMatchObject({ runsApi: false, runsWorker: true });
  });

  it('reads per-kind timeouts', () => {
    const config = loadConfig({ JOB_TIMEOUT_MS_BY_KIND: 'music=60000,pdf-report=5000' });
    expect(config.worker.timeoutMsByKind).toEqual({ music: 60000, 'pdf-report': 5000 });
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
