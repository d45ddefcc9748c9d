import type { KilnConfig } from '../src/config/config.js';

/** The benchmark's own database and Redis prefix, so it never touches development or test data. */
export const BENCH_DATABASE = 'kiln_bench';
export const BENCH_DATABASE_URL = `postgres://postgres@127.0.0.1:5432/${BENCH_DATABASE}`;
export const BENCH_REDIS_URL = 'redis://127.0.0.1:6379';
export const BENCH_REDIS = { host: '127.0.0.1', port: 6379 };
export const BENCH_PREFIX = 'kiln-bench';
export const BENCH_QUEUE = 'generation-cpu';
/** Both workers run this many jobs at once: no-op jobs wait on I/O, not on the CPU. */
export const WORKER_CONCURRENCY = 8;

/** What carries the queues of a measured side: Kiln's two backends. */
export type QueueBackend = KilnConfig['queueBackend'];
export const QUEUE_BACKENDS: readonly QueueBackend[] = ['redis', 'postgres'];
