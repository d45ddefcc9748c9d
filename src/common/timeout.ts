import { setTimeout as sleep } from 'node:timers/promises';

/** What `withTimeout` rejects with when the time is up. */
export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/** `promise`'s outcome, or a TimeoutError saying what timed out once `ms` have passed. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  const timer = new AbortController();
  try {
    return await Promise.race([
      promise,
      sleep(ms, undefined, { signal: timer.signal }).then(() => {
        throw new TimeoutError(`${what} timed out after ${ms} ms`);
      }),
    ]);
  } finally {
    timer.abort();
  }
}

/** Whether `promise` settles within `ms`; shutdown steps use it so none can hang the process. */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  try {
    await withTimeout(promise, ms, 'a shutdown step');
    return true;
  } catch (error) {
    return !(error instanceof TimeoutError);
  }
}
