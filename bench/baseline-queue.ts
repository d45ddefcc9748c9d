import { Queue, Worker, type Processor, createPostgresBackend, withBackend } from 'bullmq';
import {
  BENCH_DATABASE_URL,
  BENCH_PREFIX,
  BENCH_QUEUE,
  BENCH_REDIS,
  QUEUE_BACKENDS,
  type QueueBackend,
} from './bench-env.js';

/** The baseline's queue backend, named by the runner that started the process. */
const backend = process.env.BENCH_QUEUE_BACKEND as QueueBackend;
if (!QUEUE_BACKENDS.includes(backend)) throw new Error(`BENCH_QUEUE_BACKEND: ${backend}?`);

const onPostgres = withBackend(createPostgresBackend);
/** A pool BullMQ builds itself, on its `bullmq` schema, of as many connections as Kiln's. */
const postgres = { connectionString: BENCH_DATABASE_URL, max: 10 };

/** The baseline's queue and worker, opened as BullMQ's own examples do on each backend. */
export function baselineQueue() {
  return backend === 'postgres'
    ? new onPostgres.Queue(BENCH_QUEUE, { connection: postgres })
    : new Queue(BENCH_QUEUE, { connection: BENCH_REDIS, prefix: BENCH_PREFIX });
}

export function baselineWorker(processor: Processor, concurrency: number) {
  return backend === 'postgres'
    ? new onPostgres.Worker(BENCH_QUEUE, processor, { connection: postgres, concurrency })
    : new Worker(BENCH_QUEUE, processor, {
        connection: { ...BENCH_REDIS, maxRetriesPerRequest: null },
        prefix: BENCH_PREFIX,
        concurrency,
      });
}
