import { hash } from 'node:crypto';

/** JSON with object keys sorted at every depth, so equal values always give equal text. */
export function canonicalJson(value: unknown): string {
  // A sorted copy keeps JSON.stringify on its fast path, which a replacer function leaves: half
  // the time for a submission's input.
  return JSON.stringify(sortedKeys(value));
}

function sortedKeys(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  const { toJSON } = value as { toJSON?: () => unknown };
  if (typeof toJSON === 'function') return sortedKeys(toJSON.call(value));
  if (Array.isArray(value)) return value.map(sortedKeys);
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort())
    sorted[key] = sortedKeys((value as Record<string, unknown>)[key]);
  return sorted;
}

/** One-shot: cheaper than a Hash object for the short texts on the request path. */
export function sha256Hex(data: string | Buffer): string {
  return hash('sha256', data, 'hex');
}
