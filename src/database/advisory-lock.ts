import type { DataSource } from 'typeorm';
import { sha256Hex } from '../common/canonical-json.js';

/** A stable 64-bit lock id for a name, so every replica asks for the same lock. */
function lockId(name: string): string {
  return BigInt.asIntN(64, BigInt(`0x${sha256Hex(`kiln:${name}`).slice(0, 16)}`)).toString();
}

/**
 * Runs `task` while holding a session-level PostgreSQL advisory lock on one connection.
 * With `wait: false` it returns `undefined` at once when another replica holds the lock.
 */
export async function withAdvisoryLock<T>(
  dataSource: DataSource,
  name: string,
  task: () => Promise<T>,
  { wait }: { wait: boolean },
): Promise<T | undefined> {
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  const id = lockId(name);
  try {
    if (wait) {
      await runner.query('SELECT pg_advisory_lock($1)', [id]);
    } else {
      const [row] = (await runner.query('SELECT pg_try_advisory_lock($1) AS locked', [id])) as [
        { locked: boolean },
      ];
      if (!row.locked) return undefined;
    }
    try {
      return await task();
    } finally {
      await runner.query('SELECT pg_advisory_unlock($1)', [id]);
    }
  } finally {
    await runner.release();
  }
}
