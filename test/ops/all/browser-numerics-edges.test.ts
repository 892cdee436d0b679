import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { openGpuPage, runInPage } from '../../../src/tools/browser';
import { useBrowserPage } from '../../helpers/browser-page';
import { BALANCED_CASES, balancedDiffs, balancedTolerance, FOCAL_CASES, focalMismatches, klNearIdenticalCase, type HostTensor } from '../../helpers/numerics-cases';

/**
 * The numerics edge cases of issue 9 (defects 6 to 8 and 11) in headless Chromium, on the built
 * package: balanced_l1 past f32's b and near d = 0, kl_div on near-identical rows, the focal
 * family at logits whose sigmoid underflows, targets outside [0, 1]. Same cases and tolerances as
 * test/ops/all/numerics-gpu.test.ts (test/helpers/numerics-cases.ts).
 */

const dist = fileURLToPath(new URL('../../../dist/', import.meta.url));
const gp = useBrowserPage(() => openGpuPage(dist));

type PageTensor = { dtype: 'f32' | 'i32'; shape: number[]; data: number[] };
const page = (inputs: Record<string, HostTensor>): Record<string, PageTensor> =>
  Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, { dtype: t.data instanceof Int32Array ? 'i32' : 'f32', shape: t.shape, data: Array.from(t.data) }]));

describe('numerics edges in Chromium', () => {
  it('balanced_l1 for every case, a batch and one element per call', async () => {
    const bad: string[] = [];
    for (const params of BALANCED_CASES) {
      const pred = Float32Array.from(balancedDiffs(params.beta ?? 1, params));
      const target = new Float32Array(pred.length);
      const ref = cpu.run('balanced_l1', { pred, target }, { ...params, reduction: 'none' });
      const r = await runInPage(gp.page, 'balanced_l1', page({ pred: { data: pred, shape: [pred.length] }, target: { data: target, shape: [pred.length] } }), { ...params, reduction: 'none' });
      if (!r.ok) {
        bad.push(`${JSON.stringify(params)}: ${r.code} ${r.message}`);
        continue;
      }
      for (let i = 0; i < pred.length; i++) {
        const tol = balancedTolerance(pred[i], params);
        if (!(Math.abs(r.loss[i] - ref.loss[i]) <= tol.loss(ref.loss[i]))) bad.push(`${JSON.stringify(params)} d ${pred[i]}: loss ${r.loss[i]} vs ${ref.loss[i]}`);
        if (!(Math.abs(r.grad.pred[i] - ref.grad.pred[i]) <= tol.grad(ref.grad.pred[i]))) bad.push(`${JSON.stringify(params)} d ${pred[i]}: grad ${r.grad.pred[i]} vs ${ref.grad.pred[i]}`);
      }
      for (const i of [3, 4]) {
        const one = await runInPage(gp.page, 'balanced_l1', page({ pred: { data: pred.subarray(i, i + 1), shape: [1] }, target: { data: target.subarray(i, i + 1), shape: [1] } }), { ...params, reduction: 'sum' });
        const tol = balancedTolerance(pred[i], params);
        if (!one.ok || !(Math.abs(one.loss[0] - ref.loss[i]) <= tol.loss(ref.loss[i]))) bad.push(`${JSON.stringify(params)} one element d ${pred[i]}: ${one.ok ? one.loss[0] : one.message} vs ${ref.loss[i]}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('kl_div on near-identical rows: the sum over 4,097 rows of 80 classes, and each row', async () => {
    const { inputs, want } = klNearIdenticalCase(4097, 80, 2, 87);
    const sum = await runInPage(gp.page, 'kl_div', page(inputs), { temperature: 2, reduction: 'sum' });
    const none = await runInPage(gp.page, 'kl_div', page(inputs), { temperature: 2, reduction: 'none' });
    expect(sum.ok && none.ok).toBe(true);
    if (!sum.ok || !none.ok) return;
    const total = want.loss.reduce((a, v) => a + v, 0);
    expect(Math.abs(sum.loss[0] - total) / total, `sum ${sum.loss[0]} vs ${total}`).toBeLessThan(2e-5);
    let worst = 0;
    for (let i = 0; i < 4097; i++) worst = Math.max(worst, Math.abs(none.loss[i] - want.loss[i]) / (want.loss[i] + 1e-9));
    expect(worst).toBeLessThan(1e-4);
  });

  it('the focal family at logits from 0 to ±740, gamma and beta in {0, 0.01, 0.5, 1, 2}', async () => {
    const bad: string[] = [];
    for (const fc of FOCAL_CASES) {
      const r = await runInPage(gp.page, fc.op, page(fc.inputs), { ...fc.params, reduction: 'none' });
      const ref = cpu.run(fc.op, fc.inputs, { ...fc.params, reduction: 'none' });
      if (!r.ok) bad.push(`${fc.op} ${JSON.stringify(fc.params)}: ${r.message}`);
      else bad.push(...focalMismatches(r.loss, r.grad.logits, ref, fc).map((m) => `${fc.op} ${JSON.stringify(fc.params)} ${m}`));
    }
    expect(bad).toEqual([]);
  });

  it('sigmoid_focal and varifocal targets outside [0, 1] are invalid_value on targets; a good call after is right', async () => {
    const bad = await runInPage(gp.page, 'sigmoid_focal', page({ logits: { data: Float32Array.of(0.3, 1), shape: [2] }, targets: { data: Float32Array.of(0, 1.25), shape: [2] } }), {});
    expect(bad.ok).toBe(false);
    if (!bad.ok) {
      expect(bad.code).toBe('invalid_value');
      expect(bad.message).toContain('targets[1]');
    }
    const vf = await runInPage(gp.page, 'varifocal', page({ logits: { data: Float32Array.of(0.3, 1), shape: [1, 2] }, targets: { data: Float32Array.of(-0.5, 1), shape: [1, 2] } }), {});
    expect(vf.ok ? 'ok' : vf.code).toBe('invalid_value');
    const inputs = { logits: { data: Float32Array.of(0.3, 1), shape: [2] }, targets: { data: Float32Array.of(0, 1), shape: [2] } };
    const good = await runInPage(gp.page, 'sigmoid_focal', page(inputs), { reduction: 'sum' });
    const ref = cpu.run('sigmoid_focal', inputs, { reduction: 'sum' });
    expect(good.ok && Math.abs(good.loss[0] - ref.loss[0]) < 1e-6).toBe(true);
  });
});
