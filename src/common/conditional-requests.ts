import { combineRanges, parse } from 'range-parser';

/**
 * Whether `If-None-Match` names this ETag: the client's copy is current (`304`). Compared weakly,
 * as RFC 9110 asks for If-None-Match: `W/"x"` and `"x"` match.
 */
export function matchesIfNoneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  const bare = (tag: string) => tag.replace(/^W\//, '');
  return header.trim() === '*' || header.split(/\s*,\s*/).some((tag) => bare(tag) === bare(etag));
}

/** What a download answers to its `Range` and `If-Range` headers. */
export type ByteRange =
  { kind: 'whole' } | { kind: 'part'; start: number; end: number } | { kind: 'unsatisfiable' };

/**
 * One byte range of a file of `size` bytes, as RFC 9110 asks: a range whose `If-Range` names
 * another version, a malformed one, or several at once (no multipart answers) get the whole file;
 * ranges that all start past the end are unsatisfiable.
 */
export function byteRange(
  size: number,
  etag: string,
  { range, ifRange }: { range?: string; ifRange?: string },
): ByteRange {
  if (!range || (ifRange !== undefined && ifRange !== etag)) return { kind: 'whole' };
  const { code, type, ranges } = parse(size, range);
  // Bit 1: a malformed range; bit 2: one that starts past the end.
  if (code & 1 || type !== 'bytes') return { kind: 'whole' };
  if (ranges.length === 0) return code & 2 ? { kind: 'unsatisfiable' } : { kind: 'whole' };
  const [only, ...more] = combineRanges(ranges);
  if (!only || more.length > 0) return { kind: 'whole' };
  return { kind: 'part', start: only.start, end: only.end };
}
