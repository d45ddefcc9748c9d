import { join } from 'node:path';
import { ApiKeys, type NewApiKey } from '../../src/auth/api-keys.service.js';
import type { JobStatus } from '../../src/jobs/job.entity.js';
import { type TestKiln, sql } from './kiln.js';

/** A submission of the test generator's kind, `POST /api/v1/jobs`'s body. */
export const testJob = (input: Record<string, unknown> = {}) => ({ kind: 'test', input });

/** A client key made as `kiln keys create` makes one, for the tests to call with. */
export async function createClientKey(
  kiln: TestKiln,
  name: string,
  limits: Omit<NewApiKey, 'name' | 'role'> = {},
): Promise<string> {
  return (await kiln.app.get(ApiKeys).create({ name, role: 'client', ...limits })).key;
}

export const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

/** The columns of a job row that tests set; `insertJob` fills in the rest. */
interface JobRow {
  kind?: string;
  status?: JobStatus;
  artifact_sha256?: string | null;
  created_at?: Date;
  started_at?: Date | null;
  finished_at?: Date | null;
}

/** Writes a job row straight to the database: a pending job of kind `test` but for `row`. */
export async function insertJob(row: JobRow = {}): Promise<string> {
  const columns = {
    kind: 'test',
    input: {},
    input_hash: 'h',
    generator_version: '1',
    max_attempts: 1,
    owner_id: 'seed',
    ...row,
  };
  const names = Object.keys(columns);
  const [inserted] = await sql<{ id: string }>(
    `INSERT INTO jobs (${names.join(', ')})
     VALUES (${names.map((_, index) => `$${index + 1}`).join(', ')}) RETURNING id`,
    Object.values(columns),
  );
  return inserted!.id;
}

/** A stand-in for nvidia-smi from test/fixtures/nvidia-smi: `ok`, `ecc`, `hang`… */
export const fakeNvidiaSmi = (name: string) =>
  join(import.meta.dirname, '../fixtures/nvidia-smi', name, 'nvidia-smi');
