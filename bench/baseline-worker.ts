import pg from 'pg';
import { baselineWorker } from './baseline-queue.js';
import { BENCH_DATABASE_URL, WORKER_CONCURRENCY } from './bench-env.js';

/** The least a worker can do per job: a raw BullMQ worker with two pg updates (start, finish). */
const pool = new pg.Pool({ connectionString: BENCH_DATABASE_URL, max: 10 });
const worker = baselineWorker(async (job) => {
  await pool.query(
    `UPDATE jobs SET status = 'processing', started_at = now(), attempts = attempts + 1 WHERE id = $1`,
    [job.id],
  );
  await pool.query(
    `UPDATE jobs SET status = 'completed', progress = 1, finished_at = now() WHERE id = $1`,
    [job.id],
  );
}, WORKER_CONCURRENCY);
await worker.waitUntilReady();
process.send?.('ready');
