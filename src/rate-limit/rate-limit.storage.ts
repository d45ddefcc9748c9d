import type { ThrottlerStorage } from '@nestjs/throttler';

export interface Count {
  key: string;
  ttlMs: number;
  limit: number;
  weight: number;
}

export interface Counted {
  /** Weight counted in each window, this request's included unless it was refused. */
  used: number[];
  resetMs: number[];
  /** Index of the first count past its limit; then nothing was counted. */
  refused: number | null;
}

/**
 * Requests against the same keys and limits that arrived in one turn of the event loop: the k
 * counts, and each request's k weights one request after the other.
 */
export interface Batch {
  counts: readonly Count[];
  weights: number[];
  waiting: { resolve: (counted: Counted) => void; reject: (error: unknown) => void }[];
}

/**
 * Fixed-window counters for the named limits, shared by every replica: a request is admitted if
 * every one of its weights fits under its key's limit, and then counted in all of them; a refused
 * request counts nothing, so a client that backs off gets its whole budget next window. A window
 * opens with the first request counted in it and lapses by itself.
 *
 * Every limit of a request is counted in one round trip, and a caller's requests that arrive in the
 * same turn of the event loop share one: under load, a busy client's requests cost one round trip
 * per turn instead of one each, with the same answers as one by one. A store only supplies that
 * round trip (`hit`) and its names.
 */
export abstract class RateLimitStorage implements ThrottlerStorage {
  private batches = new Map<string, Batch>();

  /** False while the store is known to be down: the guard lets requests through without asking. */
  abstract get available(): boolean;

  /** The counter of one caller's named limit. */
  abstract key(tracker: string, limit: string): string;

  /** Removes up to `limit` counters whose window has lapsed; how many it removed. */
  abstract sweep(limit: number): Promise<number>;

  /**
   * Counts a batch in one round trip, in arrival order. Answers, per request, the k counts after it
   * and the 1-based index of its refusal (0: none), then the milliseconds left in each key's window.
   */
  protected abstract hit(batch: Batch): Promise<number[]>;

  count(counts: readonly Count[]): Promise<Counted> {
    let group = '';
    for (const count of counts) group += `${count.key} ${count.limit} ${count.ttlMs}\n`;
    let batch = this.batches.get(group);
    if (!batch) {
      if (this.batches.size === 0) setImmediate(() => this.flush());
      batch = { counts, weights: [], waiting: [] };
      this.batches.set(group, batch);
    }
    for (const count of counts) batch.weights.push(count.weight);
    const { waiting } = batch;
    return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
  }

  /**
   * `ThrottlerStorage`'s one method, which makes this the module's `storage`: one request of weight
   * 1 against one limit. Kiln's guard counts through `count`.
   */
  async increment(key: string, ttl: number, limit: number) {
    const { used, resetMs, refused } = await this.count([{ key, ttlMs: ttl, limit, weight: 1 }]);
    const seconds = Math.ceil((resetMs[0] ?? ttl) / 1000);
    const isBlocked = refused !== null;
    return {
      totalHits: (used[0] ?? 0) + (isBlocked ? 1 : 0),
      timeToExpire: seconds,
      isBlocked,
      timeToBlockExpire: isBlocked ? seconds : 0,
    };
  }

  private flush(): void {
    const batches = this.batches;
    this.batches = new Map();
    for (const batch of batches.values()) void this.send(batch);
  }

  private async send(batch: Batch): Promise<void> {
    const { counts, waiting } = batch;
    let reply: number[];
    try {
      reply = await this.hit(batch);
    } catch (error) {
      for (const { reject } of waiting) reject(error);
      return;
    }
    const k = counts.length;
    const resetMs = reply.slice(waiting.length * (k + 1));
    waiting.forEach(({ resolve }, r) => {
      const offset = r * (k + 1);
      const refused = reply[offset + k] ?? 0;
      resolve({
        used: reply.slice(offset, offset + k),
        resetMs,
        refused: refused > 0 ? refused - 1 : null,
      });
    });
  }
}
