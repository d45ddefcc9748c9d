import { Worker } from 'bullmq';
import pg from 'pg';
import {
  BENCH_DATABASE_URL,
  BENCH_PREFIX,
  BENCH_QUEUE,
  BENCH_REDIS,
  WORKER_CONCURRENCY,
} from './bench-env.js';

/** The least a worker can do per job: a raw BullMQ worker with two pg updates (start, finish). */
const pool = new pg.Pool({ connectionString: BENCH_DATABASE_URL, max: 10 });
const worker = new Worker(
  BENCH_QUEUE,
  async (job) => {
    await pool.query(
      `UPDATE jobs SET status = 'processing', started_at = now(), attempts = attempts + 1 WHERE id = $1`,
      [job.id],
    );
    await pool.query(
      `UPDATE jobs SET status = 'completed', progress = 1, finished_at = now() WHERE id = $1`,
      [job.id],
    );
  },
  {
    connection: { ...BENCH_REDIS, maxRetriesPerRequest: null },
    prefix: BENCH_PREFIX,
    concurrency: WORKER_CONCURRENCY,
  },
);
await worker.waitUntilReady();
process.send?.('ready');
