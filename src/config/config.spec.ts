import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

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
