import { describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { rand } from '../../helpers/counting';
import { checkCentralDifferences } from '../../helpers/finite-differences';

/**
 * Central differences of the CPU reference's loss (reduction 'sum', with weights) against its
 * analytic gradient. Elements within h of a kink (where the left and right slopes differ) are
 * not comparable and are counted; the test asserts almost every element was checked.
 */
function checkGradient(op: string, params: Record<string, unknown>, n = 200) {
  const pred = Float64Array.from(rand(n, 11, -2.5, 2.5));
  const target = Float64Array.from(rand(n, 12, -2.5, 2.5));
  const weight = Float64Array.from(rand(n, 13, 0.5, 1.5));
  const opts = { ...params, reduction: 'sum' as const };
  const g = cpu.run(op, { pred, target, weight }, opts).grad.pred;
  const loss = () => cpu.run(op, { pred, target, weight }, { ...opts, grad: false }).loss[0];
  const checked = checkCentralDifferences(pred, loss, (i, central) => {
    expect(g[i], `${op} element ${i}`).toBeCloseTo(central, 5);
  });
  expect(checked).toBeGreaterThan(0.95 * n);
}

describe('CPU gradients equal central finite differences', () => {
  it('l1', () => checkGradient('l1', {}));
  it('mse', () => checkGradient('mse', {}));
  it('smooth_l1, beta 1', () => checkGradient('smooth_l1', {}));
  it('smooth_l1, beta 0.11', () => checkGradient('smooth_l1', { beta: 0.11 }));
  it('smooth_l1, beta 0 (l1)', () => checkGradient('smooth_l1', { beta: 0 }));
  it('huber, delta 1', () => checkGradient('huber', {}));
  it('huber, delta 0.5', () => checkGradient('huber', { delta: 0.5 }));
  it('balanced_l1, defaults', () => checkGradient('balanced_l1', {}));
  it('balanced_l1, alpha 0.3 gamma 1 beta 0.5', () => checkGradient('balanced_l1', { alpha: 0.3, gamma: 1, beta: 0.5 }));
  it('the checker itself fails on a wrong gradient', () => {
    // mse's gradient is 2d; compare it to l1's loss slope to prove the comparison bites.
    const pred = Float64Array.of(1.5);
    const target = Float64Array.of(0);
    const g = cpu.run('mse', { pred, target }, { reduction: 'sum' }).grad.pred[0];
    const slope = (cpu.run('l1', { pred: Float64Array.of(1.5 + 1e-6), target }, { reduction: 'sum' }).loss[0] - 1.5) / 1e-6;
    expect(Math.abs(g - slope)).toBeGreaterThan(1);
  });
});

describe('CPU reference conventions', () => {
  it("'mean' of an empty input is 0", () => {
    expect(cpu.run('mse', { pred: new Float32Array(0), target: new Float32Array(0) }).loss[0]).toBe(0);
  });
  it('abs has gradient 0 at 0', () => {
    expect(cpu.run('l1', { pred: Float32Array.of(2), target: Float32Array.of(2) }).grad.pred[0]).toBe(0);
  });
  it('avgFactor replaces the count', () => {
    const pred = Float32Array.of(1, 2, 3);
    const target = new Float32Array(3);
    expect(cpu.run('l1', { pred, target }, { avgFactor: 4 }).loss[0]).toBeCloseTo(6 / 4, 12);
  });
});
