/** Relative accuracy of every quantile the sketch returns. */
export const LATENCY_RELATIVE_ERROR = 0.01;
const GAMMA = (1 + LATENCY_RELATIVE_ERROR) / (1 - LATENCY_RELATIVE_ERROR);
const LOG_GAMMA = Math.log(GAMMA);
/** Durations below this (ms) share the lowest bucket. */
const FLOOR_MS = 0.001;

/**
 * Latencies in log-spaced buckets (the DDSketch scheme): any quantile comes back within 1 % of
 * the true value, buckets from many processes and hours merge by adding counts, and a route
 * costs a few hundred counters however many requests it serves.
 */
export class LatencySketch {
  private readonly buckets = new Map<number, number>();
  private total = 0;

  static bucketOf(ms: number): number {
    return Math.ceil(Math.log(Math.max(ms, FLOOR_MS)) / LOG_GAMMA);
  }

  get count(): number {
    return this.total;
  }

  add(ms: number): void {
    this.addToBucket(LatencySketch.bucketOf(ms), 1);
  }

  addToBucket(bucket: number, count: number): void {
    this.buckets.set(bucket, (this.buckets.get(bucket) ?? 0) + count);
    this.total += count;
  }

  entries(): IterableIterator<[bucket: number, count: number]> {
    return this.buckets.entries();
  }

  /** The q-quantile (0..1) by nearest rank, in ms; null when empty. */
  quantile(q: number): number | null {
    if (this.total === 0) return null;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (const bucket of [...this.buckets.keys()].sort((a, b) => a - b)) {
      seen += this.buckets.get(bucket) ?? 0;
      // The bucket (γ^(i-1), γ^i] is represented by the value with equal relative error to both ends.
      if (seen >= rank) return (2 * GAMMA ** bucket) / (GAMMA + 1);
    }
    return null;
  }
}
