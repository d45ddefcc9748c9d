/** Why a running job's signal fired; the runner settles the job accordingly. */
export class AbortReason extends Error {
  override name = 'AbortReason';

  constructor(
    /** `superseded`: the attempt lost its lease, and the job has moved on without it. */
    readonly kind: 'cancelled' | 'timeout' | 'shutdown' | 'superseded',
    message: string,
  ) {
    super(message);
  }
}

/**
 * Settles with `work` unless the signal fires first. Once it has fired, waits for `work` to end
 * (a command's process group to die, say) for up to `settleMs`, then rejects with its reason: a
 * generator that ignores its signal holds its slot no longer than that.
 */
export async function untilAborted<T>(
  work: Promise<T>,
  signal: AbortSignal,
  settleMs: number,
): Promise<T> {
  const ended = work.then(
    () => undefined,
    () => undefined,
  );
  let onAbort!: () => void;
  const aborted = new Promise<void>((resolve) => (onAbort = resolve));
  signal.addEventListener('abort', onAbort, { once: true });
  if (signal.aborted) onAbort();
  await Promise.race([ended, aborted]);
  signal.removeEventListener('abort', onAbort);
  if (!signal.aborted) return work;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([ended, new Promise((resolve) => (timer = setTimeout(resolve, settleMs)))]);
  clearTimeout(timer);
  throw signal.reason as Error;
}
