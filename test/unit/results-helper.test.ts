import { describe, expect, it } from 'vitest';
import { expectCompleteAllowingEarly } from '../helpers/results.js';

// The bridge test's order check: it must still catch a loss, a reordering beyond the allowance,
// and a disorder among the messages that did not come early.
describe('expectCompleteAllowingEarly', () => {
  const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

  it('accepts a message that came ahead of the queue, and repeats', () => {
    expect(expectCompleteAllowingEarly([...range(1, 20), 135, ...range(21, 134), 20, 136], 136, 2)).toEqual([135]);
    expect(expectCompleteAllowingEarly(range(1, 10), 10, 0)).toEqual([]);
  });

  it('refuses a loss, too many early messages, and disorder in the rest', () => {
    expect(() => expectCompleteAllowingEarly([...range(1, 20), ...range(22, 30)], 30, 2)).toThrow();
    expect(() => expectCompleteAllowingEarly([1, 2, 9, 8, 7, 3, 4, 5, 6], 9, 2)).toThrow(/ahead of lower ones/);
    expect(() => expectCompleteAllowingEarly([1, 3, 2, 4, 6, 5], 6, 0)).toThrow(/ahead of lower ones/);
  });
});
