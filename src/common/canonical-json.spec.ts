import { describe, expect, it } from 'vitest';
import { canonicalJson } from './canonical-json.js';

describe('canonicalJson', () => {
  it('sorts keys at every depth and keeps arrays in order', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { f: 1, e: 0 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[2,{"e":0,"f":1}]},"b":1}',
    );
  });

  it('gives equal values in any key order the same text', () => {
    expect(canonicalJson({ kind: 'music', input: { seed: 1, prompt: 'x' } })).toBe(
      canonicalJson({ input: { prompt: 'x', seed: 1 }, kind: 'music' }),
    );
  });

  it('writes what JSON.stringify writes for dates, undefined and integer-like keys', () => {
    const value = { when: new Date(0), gone: undefined, list: [undefined], 10: 'a', 2: 'b' };
    expect(canonicalJson(value)).toBe(
      '{"2":"b","10":"a","list":[null],"when":"1970-01-01T00:00:00.000Z"}',
    );
  });
});
