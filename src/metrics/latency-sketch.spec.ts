import { describe, expect, it } from 'vitest';
import { LATENCY_RELATIVE_ERROR, LatencySketch } from './latency-sketch.js';

/** Nearest-rank quantile of a sorted list: the exact figure the sketch approximates. */
const exact = (sorted: number[], q: number) =>
  sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1]!;

describe('LatencySketch', () => {
  it('returns every quantile within 1 % of the exact nearest-rank value', () => {
    // Skewed like real latencies: mostly fast, a long tail.
    const values = Array.from(
      { length: 10_000 },
      (_, i) => 2 + (i % 97) * 0.3 + (i % 1000 === 0 ? 4000 : 0),
    );
    const sketch = new LatencySketch();
    for (const value of values) sketch.add(value);
    const sorted = [...values].sort((a, b) => a - b);
    for (const q of [0.01, 0.5, 0.9, 0.95, 0.99, 0.999, 1]) {
      const truth = exact(sorted, q);
      expect(Math.abs(sketch.quantile(q)! - truth) / truth).toBeLessThanOrEqual(
        LATENCY_RELATIVE_ERROR,
      );
    }
    expect(sketch.count).toBe(values.length);
  });

  it('merges by adding bucket counts, as the same samples added to one sketch', () => {
    const whole = new LatencySketch();
    const parts = [new LatencySketch(), new LatencySketch()];
    for (let i = 1; i <= 500; i++) {
      whole.add(i);
      parts[i % 2]!.add(i);
    }
    const merged = new LatencySketch();
    for (const part of parts)
      for (const [bucket, count] of part.entries()) merged.addToBucket(bucket, count);
    for (const q of [0.5, 0.95, 0.99]) expect(merged.quantile(q)).toBe(whole.quantile(q));
  });

  it('has no quantile when empty', () => {
    expect(new LatencySketch().quantile(0.5)).toBeNull();
  });
});
