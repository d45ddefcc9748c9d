export const HOUR_MS = 3_600_000;
/** The longest window a summary can ask for, and so how long a store keeps an hour's counts. */
export const MAX_SUMMARY_HOURS = 168;

/** `GET /api/v1/jobs/:id` */
export type RouteKey = string;

/** A route's count in one bucket of its LatencySketch. */
export interface LatencyEntry {
  route: RouteKey;
  bucket: number;
  count: number;
}

/** Route latencies by the hour (hours since the epoch), shared by every replica. */
export abstract class LatencyStore {
  /** Adds the counts to those the hour has. */
  abstract add(hour: number, entries: readonly LatencyEntry[]): Promise<void>;

  /** The counts of these hours; a route's bucket may come once per hour. */
  abstract read(hours: readonly number[]): Promise<LatencyEntry[]>;
}
