import { Sql } from '../database/sql.service.js';
import { type LatencyEntry, LatencyStore, MAX_SUMMARY_HOURS } from './latency-store.js';

/**
 * In key order, so that two replicas adding to the same rows never wait for each other in a
 * cycle.
 */
const ADD = `
  INSERT INTO route_latency AS l (hour, route, bucket, count)
  SELECT $1::integer, route, bucket, count
    FROM unnest($2::text[], $3::integer[], $4::bigint[]) AS e(route, bucket, count)
   ORDER BY route, bucket
  ON CONFLICT (hour, route, bucket) DO UPDATE SET count = l.count + excluded.count`;

const READ = `
  SELECT route, bucket, sum(count)::bigint AS count FROM route_latency
   WHERE hour = ANY($1::integer[])
   GROUP BY route, bucket`;

const PRUNE = `DELETE FROM route_latency WHERE hour < $1`;

/**
 * A row per hour, route and bucket: a flush is one upsert that adds its counts, a read one sum over
 * the hours. The first flush of each hour also deletes the hours no summary can ask for any more.
 */
export class PostgresLatencyStore extends LatencyStore {
  /** The hour this process last deleted the hours before the longest window for. */
  private prunedFor?: number;

  constructor(private readonly sql: Sql) {
    super();
  }

  async add(hour: number, entries: readonly LatencyEntry[]): Promise<void> {
    await this.sql.query(ADD, [
      hour,
      entries.map((entry) => entry.route),
      entries.map((entry) => entry.bucket),
      entries.map((entry) => entry.count),
    ]);
    if (this.prunedFor === hour) return;
    await this.sql.query(PRUNE, [hour - MAX_SUMMARY_HOURS + 1]);
    this.prunedFor = hour;
  }

  async read(hours: readonly number[]): Promise<LatencyEntry[]> {
    const rows = await this.sql.query<{ route: string; bucket: number; count: string }>(READ, [
      hours,
    ]);
    return rows.map(({ route, bucket, count }) => ({ route, bucket, count: Number(count) }));
  }
}
