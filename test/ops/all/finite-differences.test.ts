// The shared finite-difference helper (test/helpers/finite-differences.ts) that the gradient tests
// stand on: it must difference the right coordinate, skip kinks, and leave its input as it was.
import { describe, expect, it } from 'vitest';
import { centralDifference, checkCentralDifferences, FD_STEP, isKink, slopes } from '../../helpers/finite-differences';

describe('finite differences', () => {
  it('the central difference of a cubic is its derivative to O(h^2), per coordinate', () => {
    const x = Float64Array.of(-1.5, 0.25, 2);
    const f = () => x[0] ** 3 + 2 * x[1] ** 3 + 3 * x[2] ** 3;
    const want = [3 * 1.5 ** 2, 6 * 0.25 ** 2, 9 * 4];
    for (let i = 0; i < 3; i++) expect(Math.abs(centralDifference(x, i, f) - want[i])).toBeLessThan(1e-6);
    expect(Array.from(x)).toEqual([-1.5, 0.25, 2]);
  });

  it('gives the left and right slopes, and calls a corner a kink', () => {
    const x = Float64Array.of(0, 1);
    const f = () => Math.abs(x[0]) + Math.abs(x[1]);
    const corner = slopes(x, 0, f);
    expect(corner.left).toBeCloseTo(-1, 6);
    expect(corner.right).toBeCloseTo(1, 6);
    expect(isKink(corner)).toBe(true);
    const smooth = slopes(x, 1, f);
    expect(isKink(smooth)).toBe(false);
    expect(smooth.central).toBeCloseTo(1, 6);
  });

  it('checks every coordinate but the kinks', () => {
    const x = Float64Array.of(0, 0.5, -0.5, 0);
    const f = () => x.reduce((s, v) => s + Math.abs(v), 0);
    const seen: [number, number][] = [];
    expect(checkCentralDifferences(x, f, (i, central) => seen.push([i, central]))).toBe(2);
    expect(seen.map(([i]) => i)).toEqual([1, 2]);
    expect(seen[0][1]).toBeCloseTo(1, 6);
    expect(seen[1][1]).toBeCloseTo(-1, 6);
    expect(Array.from(x)).toEqual([0, 0.5, -0.5, 0]);
    expect(FD_STEP).toBe(1e-6);
  });

  it('restores x when the objective throws at a shifted point', () => {
    const x = Float64Array.of(1, 2);
    const f = () => {
      if (x[1] !== 2) throw new Error('refused');
      return x[0] + x[1];
    };
    expect(() => centralDifference(x, 1, f)).toThrow('refused');
    expect(Array.from(x)).toEqual([1, 2]);
  });
});
