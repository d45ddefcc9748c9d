import { describe, expect, it } from 'vitest';
import { backoffDelays } from './backoff.js';

describe('backoffDelays', () => {
  it('doubles from the first wait and stays at the longest', () => {
    const delays = backoffDelays();
    expect(Array.from({ length: 8 }, () => delays.next().value)).toEqual([
      250, 500, 1000, 2000, 4000, 5000, 5000, 5000,
    ]);
  });
});
