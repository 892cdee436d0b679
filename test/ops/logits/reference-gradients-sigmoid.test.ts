import { describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { checkCentralDifferences } from '../../helpers/finite-differences';
import { LOGIT_OP_NAMES, logitInputs } from '../../helpers/logit-inputs';

/**
 * Central differences of each logit loss's CPU reference (reduction 'sum') against its analytic
 * gradient, in float64, on moderate logits. Kinks (varifocal's |s - t| at 0) are skipped where
 * the one-sided slopes differ; the test asserts almost every entry was compared.
 */
describe('CPU gradients of the logit losses equal central finite differences', () => {
  it.each(LOGIT_OP_NAMES.flatMap((op) => (op === 'cross_entropy' || op === 'bce_with_logits' ? [[op, 'weighted'], [op, 'plain']] : [[op, 'plain']])))(
    '%s (%s)',
    (op, variant) => {
      const { inputs, params } = logitInputs(op, 6, 5, 21, variant);
      const data: Record<string, { data: Float64Array | Int32Array; shape: number[] }> = {};
      for (const [k, t] of Object.entries(inputs)) data[k] = { data: t.dtype === 'i32' ? Int32Array.from(t.data) : Float64Array.from(t.data), shape: t.shape };
      const opts = { ...params, reduction: 'sum' as const };
      const ref = cpu.run(op, data, opts);
      const gradName = Object.keys(ref.grad)[0];
      const x = data[gradName].data as Float64Array;
      const loss = () => cpu.run(op, data, { ...opts, grad: false }).loss[0];
      const checked = checkCentralDifferences(x, loss, (i, central) => {
        expect(ref.grad[gradName][i], `${op} ${gradName}[${i}]`).toBeCloseTo(central, 5);
      });
      expect(checked).toBeGreaterThan(0.9 * x.length);
    },
  );
});
