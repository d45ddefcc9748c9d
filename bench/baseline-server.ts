import Fastify from 'fastify';
import pg from 'pg';
import { baselineQueue } from './baseline-queue.js';
import { BENCH_DATABASE_URL } from './bench-env.js';

/** The least a submit endpoint can do: Fastify, one pg INSERT, one BullMQ add. No Nest. */
const pool = new pg.Pool({ connectionString: BENCH_DATABASE_URL, max: 10 });
const queue = baselineQueue();
const app = Fastify();

app.post<{ Body: { kind: string; input: object } }>('/jobs', async (request, reply) => {
  const { kind, input } = request.body;
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO jobs (kind, input, input_hash, generator_version, max_attempts, owner_id)
     VALUES ($1, $2, '', '1', 4, 'bench') RETURNING id`,
    [kind, input],
  );
  const id = rows[0]!.id;
  await queue.add(kind, { kind }, { jobId: id, attempts: 4, removeOnComplete: true });
  return reply.status(202).send({ id, status: 'pending' });
});

await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) });
process.send?.('ready');
