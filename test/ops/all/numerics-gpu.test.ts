import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DetlossContext } from '../../../src/api';
import { cpu } from '../../../src/cpu';
import { DetlossError } from '../../../src/errors';
import { countDevice, reset, type Counts } from '../../helpers/counting';
import { nodeContext } from '../../helpers/node-gpu';
import { BALANCED_CASES, balancedTolerance, balancedDiffs, FOCAL_CASES, focalMismatches, klNearIdenticalCase, type FocalCase } from '../../helpers/numerics-cases';

/**
 * The GPU kernels at the numerical edges of issue 9 (defects 6 to 8 and 11), on Node's WebGPU:
 * balanced_l1 for parameters whose b = e^(gamma/alpha) - 1 overflows f32 and near d = 0, kl_div on
 * near-identical distributions (thread per row and workgroup per row), the focal family at logits
 * whose sigmoid underflows f32, and targets outside [0, 1]. Held against the float64 reference.
 */

let dl: DetlossContext;
let dlRows: DetlossContext; // a workgroup per row from 16 classes
let counts: Counts;
beforeAll(async () => {
  dl = await nodeContext();
  dlRows = await nodeContext({ rowThreshold: 16 });
  counts = countDevice(dl.device);
});
afterAll(() => {
  dl?.destroy();
  dlRows?.destroy();
});

describe('balanced_l1 on the GPU: finite and accurate for every alpha, gamma, beta > 0', () => {
  it.each(BALANCED_CASES)('%j: a batch, and one element per call', async (params) => {
    const d = balancedDiffs(params.beta ?? 1, params);
    const pred = Float32Array.from(d);
    const target = new Float32Array(d.length);
    const ref = cpu.run('balanced_l1', { pred, target }, { ...params, reduction: 'none' });
    const r = await dl.run('balanced_l1', { pred, target }, { ...params, reduction: 'none' });
    const bad: string[] = [];
    for (let i = 0; i < d.length; i++) {
      const tol = balancedTolerance(pred[i], params);
      if (!(Math.abs(r.loss[i] - ref.loss[i]) <= tol.loss(ref.loss[i]))) bad.push(`d ${pred[i]}: loss ${r.loss[i]} vs ${ref.loss[i]}`);
      if (!(Math.abs(r.grad.pred[i] - ref.grad.pred[i]) <= tol.grad(ref.grad.pred[i]))) bad.push(`d ${pred[i]}: grad ${r.grad.pred[i]} vs ${ref.grad.pred[i]}`);
    }
    for (const i of [0, 3, 7, d.length - 1]) {
      const one = await dl.run('balanced_l1', { pred: pred.subarray(i, i + 1), target: target.subarray(i, i + 1) }, { ...params, reduction: 'sum' });
      const tol = balancedTolerance(pred[i], params);
      if (!(Math.abs(one.loss[0] - ref.loss[i]) <= tol.loss(ref.loss[i]))) bad.push(`one element d ${pred[i]}: loss ${one.loss[0]} vs ${ref.loss[i]}`);
      if (!(Math.abs(one.grad.pred[0] - ref.grad.pred[i]) <= tol.grad(ref.grad.pred[i]))) bad.push(`one element d ${pred[i]}: grad ${one.grad.pred[0]} vs ${ref.grad.pred[i]}`);
    }
    expect(bad).toEqual([]);
  });

  it('{alpha: 0.01, gamma: 1}: b = e^100 is past f32, the loss is alpha x (gamma/alpha + log x - 1), not NaN', async () => {
    const x = [0.5, 1e-3, 0.9];
    const r = await dl.run('balanced_l1', { pred: Float32Array.from(x), target: new Float32Array(3) }, { alpha: 0.01, gamma: 1, reduction: 'none' });
    x.forEach((v, i) => {
      const want = 0.01 * Math.fround(v) * (100 + Math.log(Math.fround(v)) - 1);
      expect(Math.abs(r.loss[i] - want), `x ${v}: ${r.loss[i]} vs ${want}`).toBeLessThan(1e-5 * want);
      expect(Math.abs(r.grad.pred[i] - 0.01 * (100 + Math.log(Math.fround(v))))).toBeLessThan(1e-5);
    });
  });
});

describe('kl_div on near-identical distributions', () => {
  it.each([
    ['a thread per row', 80, 2, 4097],
    ['a thread per row', 80, 1, 4097],
    ['a workgroup per row', 80, 2, 4097],
    ['a workgroup per row', 300, 1, 257],
    ['a thread per row', 2, 1, 4097],
  ] as const)('%s, c = %i, T = %d: the sum over %i rows, each row, and one row per call', async (path, c, T, n) => {
    const ctx = path === 'a thread per row' ? dl : dlRows;
    const { inputs, want } = klNearIdenticalCase(n, c, T, 7 + c);
    const sum = await ctx.run('kl_div', inputs, { temperature: T, reduction: 'sum' });
    const total = want.loss.reduce((a, v) => a + v, 0);
    expect(Math.abs(sum.loss[0] - total) / total, `sum ${sum.loss[0]} vs ${total}`).toBeLessThan(2e-5);
    const none = await ctx.run('kl_div', inputs, { temperature: T, reduction: 'none' });
    let worst = 0;
    let worstGrad = 0;
    for (let i = 0; i < n; i++) {
      // 1e-13 = 1e-7 (noise)^2: rows of c = 2 whose two deltas nearly agree have kl near 0
      worst = Math.max(worst, Math.abs(none.loss[i] - want.loss[i]) / (want.loss[i] + 1e-9));
      let scale = 1e-5; // gradients are about T (noise / T) = 1e-3; rows of c = 2 may have far less
      for (let j = 0; j < c; j++) scale = Math.max(scale, Math.abs(want.grad[i * c + j]));
      for (let j = 0; j < c; j++) worstGrad = Math.max(worstGrad, Math.abs(none.grad.student[i * c + j] - want.grad[i * c + j]) / scale);
    }
    expect(worst, 'worst row').toBeLessThan(1e-4);
    expect(worstGrad, 'worst gradient, relative to its row').toBeLessThan(1e-4);
    const one = await ctx.run('kl_div', { student: { data: inputs.student.data.subarray(0, c), shape: [1, c] }, teacher: { data: inputs.teacher.data.subarray(0, c), shape: [1, c] } }, { temperature: T, reduction: 'sum' });
    expect(Math.abs(one.loss[0] - want.loss[0]) / want.loss[0]).toBeLessThan(1e-4);
  });
});

describe('kl_div where the student probability falls below float32 normals and the teacher one does not', () => {
  // Found by the fuzzer: q e^l written as -q expm1(l) lost p whole once q was flushed to 0.
  it.each([
    ['one row of 2, T = 0.5', [44.81527328491211, -0.42017626762390137], [-58.39859390258789, -66.4845962524414], 0.5],
    ['logits at +-200, T = 4', [-64.76, 24.11, 200, -32.42, 88, -148.58, -200, 45.38], [-68.02, 105.12, 200, -143.75, -114.6, 153.15, -72.98, 0], 4],
  ] as [string, number[], number[], number][])('%s: gradient p - q within float32 of the reference, on both kernels', async (_name, s, t, temperature) => {
    const c = s.length;
    const inputs = { student: { data: Float32Array.from(s), shape: [1, c] }, teacher: { data: Float32Array.from(t), shape: [1, c] } };
    const ref = cpu.run('kl_div', inputs, { temperature, reduction: 'none' });
    // T (q_j - p_j) to 512 float32 ulps (the fuzzer's bound for exp: WGSL allows it 3 + 2|x| ulps) of the larger of p_j, q_j.
    const softmax = (x: number[]) => {
      const m = Math.max(...x.map((v) => v / temperature));
      const e = x.map((v) => Math.exp(v / temperature - m));
      const z = e.reduce((a, b) => a + b, 0);
      return e.map((v) => v / z);
    };
    const p = softmax(Array.from(Float32Array.from(t)));
    const q = softmax(Array.from(Float32Array.from(s)));
    for (const ctx of [dl, dlRows]) {
      const r = await ctx.run('kl_div', inputs, { temperature, reduction: 'none' });
      for (let j = 0; j < c; j++) {
        const want = ref.grad.student[j];
        const allowed = 512 * 2 ** -24 * temperature * Math.max(p[j], q[j]) + 1e-37;
        expect(Math.abs(r.grad.student[j] - want), `grad[${j}] ${r.grad.student[j]} vs ${want}`).toBeLessThanOrEqual(allowed);
      }
      expect(Math.abs(r.loss[0] - ref.loss[0])).toBeLessThanOrEqual(1e-5 * Math.abs(ref.loss[0]) + 1e-30);
    }
  });
});

describe('the focal family at logits whose sigmoid underflows f32: the reference, not NaN', () => {
  it.each(FOCAL_CASES.map((c) => [`${c.op} ${JSON.stringify(c.params)}`, c] as [string, FocalCase]))('%s', async (_name, fc) => {
    const r = await dl.run(fc.op, fc.inputs, { ...fc.params, reduction: 'none' });
    const ref = cpu.run(fc.op, fc.inputs, { ...fc.params, reduction: 'none' });
    expect(focalMismatches(Array.from(r.loss), Array.from(r.grad.logits), ref, fc)).toEqual([]);
  });
});

describe('sigmoid_focal and varifocal refuse targets outside [0, 1] before any GPU work', () => {
  it.each([
    ['sigmoid_focal', Float32Array.of(0, 0.5, 1, -0.25), [4], 3],
    ['sigmoid_focal', Float32Array.of(2), [1], 0],
    ['varifocal', Float32Array.of(0, 1.5, 0, 0.2), [2, 2], 1],
  ] as const)('%s targets %s', async (op, targets, shape, bad) => {
    reset(counts);
    const logits = { data: new Float32Array(targets.length).fill(0.3), shape: [...shape] };
    const err = await dl.run(op, { logits, targets: { data: targets, shape: [...shape] } }, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DetlossError);
    expect((err as DetlossError).code).toBe('invalid_value');
    expect((err as DetlossError).argument).toBe('targets');
    expect((err as DetlossError).message).toContain(`targets[${bad}]`);
    expect(counts.dispatches).toBe(0);
    const good = await dl.run(op, { logits, targets: { data: targets.map((v) => Math.min(Math.max(v, 0), 1)), shape: [...shape] } }, { reduction: 'sum' });
    const ref = cpu.run(op, { logits, targets: { data: targets.map((v) => Math.min(Math.max(v, 0), 1)), shape: [...shape] } }, { reduction: 'sum' });
    expect(Math.abs(good.loss[0] - ref.loss[0])).toBeLessThan(1e-5 * (1 + Math.abs(ref.loss[0])));
  });

  it('NaN targets with check: false resolve (whatever the values), and check: true refuses them', async () => {
    const logits = Float32Array.of(0.3, -2, 5);
    const targets = Float32Array.of(NaN, 0.5, 1);
    const r = await dl.run('sigmoid_focal', { logits, targets }, { reduction: 'none' });
    expect(r.loss.length).toBe(3);
    expect(Number.isFinite(r.loss[1])).toBe(true);
    const err = await dl.run('sigmoid_focal', { logits, targets }, { check: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DetlossError);
    const v = await dl.run('varifocal', { logits: { data: logits, shape: [1, 3] }, targets: { data: targets, shape: [1, 3] } }, { reduction: 'sum' });
    expect(v.loss.length).toBe(1);
  });
});

describe("a 'mean' that float32 holds, of terms whose sum it does not", () => {
  // Found by the fuzzer: exponential's capped terms (e^80 = 5.5e34) times weights in the
  // thousands summed past 3.4e38 before the division by n, and the GPU returned Infinity for a
  // mean of 2e36. Each loss is now scaled before it is added.
  it.each([
    ['software', {}],
    ['hardware', { plan: 'hardware' as const }],
    ['hardware, vec4 off, tiny tree', { plan: { kind: 'hardware' as const, vectorWidth: 1 as const, reduceLanes: 4, reducePer: 2 } }],
  ])('is finite and equals the CPU (%s plan)', async (_, options) => {
    const ctx = await nodeContext(options);
    try {
      const n = 257;
      const logits = Float32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? -90 : -80));
      const targets = new Float32Array(n).fill(1);
      const weight = Float32Array.from({ length: n }, (_, i) => (i % 2 ? 1500 : 900));
      const ref = cpu.run('exponential', { logits, targets, weight }, { reduction: 'mean' });
      expect(ref.loss[0]).toBeGreaterThan(1e36);
      expect(ref.loss[0] * n).toBeGreaterThan(3.4e38); // the plain sum would overflow float32
      const r = await ctx.run('exponential', { logits, targets, weight }, { reduction: 'mean' });
      expect(Number.isFinite(r.loss[0])).toBe(true);
      expect(Math.abs(r.loss[0] - ref.loss[0]) / ref.loss[0]).toBeLessThan(1e-5);
      for (let i = 0; i < n; i++) expect(Number.isFinite(r.grad.logits[i])).toBe(true);
    } finally {
      ctx.destroy();
    }
  });
});
