import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  PROBLEM_CODES,
  PROBLEM_TYPES,
  httpLayerCode,
  problemType,
  statusOf,
} from './problem-types.js';

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

describe('the problem types', () => {
  it("are the README's table, row for row", () => {
    const rows = README.split('\n')
      .filter((line) => line.startsWith('| `urn:kiln:problem:'))
      .map((line) =>
        line
          .split('|')
          .slice(1, -1)
          .map((cell) => cell.trim()),
      );
    expect(rows).toEqual(
      PROBLEM_CODES.map((code) => [
        `\`${problemType(code)}\``,
        String(PROBLEM_TYPES[code].status),
        PROBLEM_TYPES[code].meaning,
      ]),
    );
  });

  it('name each status of the HTTP layer once, and any other by its number', () => {
    const statuses = PROBLEM_CODES.flatMap((code) => {
      const { status, ...type } = PROBLEM_TYPES[code];
      return 'http' in type ? [status] : [];
    });
    expect(new Set(statuses).size).toBe(statuses.length);
    expect(httpLayerCode(404)).toBe('not-found');
    expect(httpLayerCode(418)).toBe('http-418');
    expect(statusOf('http-418')).toBe(418);
    expect(statusOf('job-finished')).toBe(409);
  });
});
