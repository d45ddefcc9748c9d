import { Sql } from '../database/sql.service.js';
import { type Batch, RateLimitStorage } from './rate-limit.storage.js';

/** The migration's function: it locks the batch's counters, so replicas count one after another. */
const HIT = `SELECT rate_limit_hit($1, $2, $3, $4) AS reply`;

/** Lapsed counters; one a request is counting in is locked, and left for the next sweep. */
const SWEEP = `
  WITH swept AS (
    DELETE FROM rate_limit_counters WHERE key IN (
      SELECT key FROM rate_limit_counters WHERE expires_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED)
    RETURNING 1)
  SELECT count(*)::int AS count FROM swept`;

/**
 * Rate-limit counters in PostgreSQL, for a Kiln without Redis: one function call per batch, on the
 * database's clock. A counter whose window has lapsed counts as zero; its row stays until cleanup
 * sweeps it, so no request pays for the sweep.
 */
export class PostgresThrottlerStorage extends RateLimitStorage {
  constructor(private readonly sql: Sql) {
    super();
  }

  /** An outage shows as the round trip's error, on which the guard lets the request through. */
  get available(): boolean {
    return true;
  }

  key(tracker: string, limit: string): string {
    return `${tracker}:${limit}`;
  }

  async sweep(limit: number): Promise<number> {
    return (await this.sql.one<{ count: number }>(SWEEP, [limit])).count;
  }

  protected async hit({ counts, weights }: Batch): Promise<number[]> {
    const { reply } = await this.sql.one<{ reply: number[] }>(HIT, [
      counts.map((count) => count.key),
      counts.map((count) => count.ttlMs),
      counts.map((count) => count.limit),
      weights,
    ]);
    return reply;
  }
}
