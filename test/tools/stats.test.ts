import { describe, expect, it } from 'vitest';
import { median } from '../../src/tools/stats';

describe('median (the benchmark and the demo share it)', () => {
  it('is the middle value, or the mean of the two middle ones, whatever the order', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
    expect(median([5, 5, 1, 9, 9, 9, 2])).toBe(5);
    expect(median([])).toBeNaN();
  });
  it('leaves its input as it was', () => {
    const xs = [3, 1, 2];
    median(xs);
    expect(xs).toEqual([3, 1, 2]);
  });
});
