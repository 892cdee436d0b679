import { describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import type { F64Tensor, I32Tensor } from '../../../src/ops/op-types';
import { rand } from '../../helpers/counting';

/**
 * The CPU reference of the focal and classification losses at the edges ops.md names: logits of
 * ±100 and far beyond, all-background quality focal rows, cross-entropy's ignored rows with class
 * weights and label smoothing, one class, and empty batches. Expected values are written out here
 * from ops.md, independently of src/cpu.
 */

type T = F64Tensor | I32Tensor;
const f64 = (shape: number[], data: ArrayLike<number>): F64Tensor => ({ data: Float64Array.from(data), shape });
const i32 = (shape: number[], data: ArrayLike<number>): I32Tensor => ({ data: Int32Array.from(data), shape });
const u = (len: number, seed: number, lo = 0, hi = 1) => Array.from(rand(len, seed, lo, hi));
const softplus = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
const sigmoid = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

const close = (got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-12) => {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i]), `[${i}]: got ${got[i]}, want ${want[i]}`).toBeLessThanOrEqual(tol * (1 + Math.abs(want[i])));
};
const allFinite = (a: ArrayLike<number>) => Array.from(a).every(Number.isFinite);

/** Every op on an n x c problem whose logits are `x` (length n*c); targets and labels fixed per seed. */
function problem(op: string, n: number, c: number, x: number[]): { inputs: Record<string, T>; params: Record<string, unknown> } {
  const t = u(n * c, 3);
  const labels = u(n, 4).map((v) => Math.min(c - 1, Math.floor(v * c)));
  switch (op) {
    case 'sigmoid_focal':
      return { inputs: { logits: f64([n * c], x), targets: f64([n * c], t.map((v) => (v < 0.5 ? 0 : 1))) }, params: { gamma: 0.5 } };
    case 'quality_focal':
      return { inputs: { logits: f64([n, c], x), labels: i32([n], labels.map((v, i) => (i % 3 ? v : c))), scores: f64([n], u(n, 5)) }, params: { beta: 0.5 } };
    case 'distribution_focal':
      return { inputs: { logits: f64([n, c], x), targets: f64([n], u(n, 5, 0, c - 1.01)) }, params: {} };
    case 'varifocal':
      return { inputs: { logits: f64([n, c], x), targets: f64([n, c], t.map((v) => (v < 0.5 ? 0 : v))) }, params: { gamma: 0.5 } };
    case 'bce_with_logits':
      return { inputs: { logits: f64([n, c], x), targets: f64([n, c], t), posWeight: f64([c], u(c, 6, 0.5, 3)) }, params: {} };
    case 'cross_entropy':
      return {
        inputs: { logits: f64([n, c], x), labels: i32([n], labels.map((v, i) => (i % 4 === 1 ? -100 : v))), classWeight: f64([c], u(c, 6, 0.5, 3)) },
        params: { labelSmoothing: 0.1 },
      };
    case 'kl_div':
      return { inputs: { student: f64([n, c], x), teacher: f64([n, c], x.map((v, i) => (i % 2 ? -v : v / 2))) }, params: { temperature: 0.5, classReduction: 'mean' } };
    case 'dice':
      return { inputs: { logits: f64([n, c], x), targets: f64([n, c], t.map((v) => (v < 0.5 ? 0 : 1))) }, params: {} };
  }
  throw new Error(op);
}

const OPS = ['sigmoid_focal', 'quality_focal', 'distribution_focal', 'varifocal', 'bce_with_logits', 'cross_entropy', 'kl_div', 'dice'];

describe('extreme logits give finite losses and gradients', () => {
  it.each(OPS.flatMap((op) => [100, 1e4, 1e30, 3.4e38].map((m) => [op, m] as const)))('%s at ±%s', (op, m) => {
    const n = 6;
    const c = 5;
    const x = u(n * c, 2, -8, 8).map((v, i) => (i % 3 === 0 ? m : i % 3 === 1 ? -m : v));
    const { inputs, params } = problem(op, n, c, x);
    for (const reduction of ['none', 'mean', 'sum'] as const) {
      const r = cpu.run(op, inputs, { ...params, reduction });
      expect(allFinite(r.loss), `${reduction} loss ${Array.from(r.loss)}`).toBe(true);
      for (const g of Object.values(r.grad)) expect(allFinite(g), `${reduction} grad`).toBe(true);
    }
  });
});

describe('at logits of ±100 each loss takes its limiting value', () => {
  const run = (op: string, inputs: Record<string, T>, params: Record<string, unknown> = {}) => cpu.run(op, inputs, { ...params, reduction: 'none' });
  it('sigmoid_focal: alpha_t * |x| * 1 where the prediction is confidently wrong, 0 where right', () => {
    const r = run('sigmoid_focal', { logits: f64([4], [100, -100, 100, -100]), targets: f64([4], [0, 1, 1, 0]) }, { alpha: 0.25, gamma: 2 });
    close(r.loss, [75, 25, 0, 0]);
    close(r.grad.logits, [0.75, -0.25, 0, 0]);
  });
  it('bce_with_logits: softplus(±100) with posWeight on the positive term', () => {
    const r = run('bce_with_logits', { logits: f64([1, 4], [100, -100, 100, -100]), targets: f64([1, 4], [0, 1, 1, 0]), posWeight: f64([4], [3, 3, 3, 3]) });
    close(r.loss, [100, 300, 0, 0]);
    close(r.grad.logits, [1, -3, 0, 0]);
  });
  it('cross_entropy: the logit gap, gradient softmax - one-hot', () => {
    const r = run('cross_entropy', { logits: f64([2, 3], [100, -100, 0, -100, 100, 0]), labels: i32([2], [1, 1]) });
    close(r.loss, [200, 0]);
    close(r.grad.logits, [1, -1, 0, 0, 0, 0]);
  });
  it('kl_div: teacher and student certain of different classes', () => {
    const r = run('kl_div', { student: f64([1, 2], [-100, 100]), teacher: f64([1, 2], [100, -100]) });
    close(r.loss, [200]);
    close(r.grad.student, [-1, 1]);
  });
  it('distribution_focal: half the mass on each neighbouring bin', () => {
    const r = run('distribution_focal', { logits: f64([1, 4], [100, -100, -100, -100]), targets: f64([1], [0.5]) });
    close(r.loss, [100]);
    close(r.grad.logits, [0.5, -0.5, 0, 0]);
  });
  it('quality_focal: background softplus(x) s^beta, positive |score - s|^beta bce', () => {
    const r = run('quality_focal', { logits: f64([2, 2], [100, -100, -100, 100]), labels: i32([2], [5, 0]), scores: f64([2], [0.3, 1]) });
    // row 0: background, s = (1, 0); row 1: class 0 with s = 0 and score 1 (|1 - 0|^2 * 100), class 1 background s = 1
    close(r.loss, [100, 200]);
    close(r.grad.logits, [1, 0, -1, 1]);
  });
  it('varifocal: a negative scaled by alpha |s|^gamma, a positive by its target', () => {
    const r = run('varifocal', { logits: f64([1, 3], [100, -100, -100]), targets: f64([1, 3], [0, 0, 0.7]) }, { alpha: 0.75, gamma: 2 });
    close(r.loss, [75, 0, 0.7 * 70]);
    close(r.grad.logits, [0.75, 0, -0.49]);
  });
  it('dice: saturated predictions equal to the targets leave eps / (m + eps)', () => {
    const r = run('dice', { logits: f64([1, 4], [100, -100, 100, -100]), targets: f64([1, 4], [1, 0, 1, 0]) }, { eps: 1e-3 });
    close(r.loss, [1e-3 / (2 + 1e-3)]);
    close(r.grad.logits, [0, 0, 0, 0]);
  });
});

describe('quality_focal rows with no positive', () => {
  it('every label outside 0..c-1 is background: sum_j softplus(x_j) sigmoid(x_j)^beta', () => {
    const n = 6;
    const c = 4;
    const x = u(n * c, 8, -9, 9);
    const beta = 1.5;
    const want = new Float64Array(n);
    const wantGrad = new Float64Array(n * c);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < c; j++) {
        const v = x[i * c + j];
        const s = sigmoid(v);
        want[i] += softplus(v) * s ** beta;
        wantGrad[i * c + j] = s ** (beta + 1) + softplus(v) * beta * s ** beta * (1 - s);
      }
    }
    const results = [-1, c, c + 7, -100, 2 ** 31 - 1, -(2 ** 31)].map((bg) =>
      cpu.run('quality_focal', { logits: f64([n, c], x), labels: i32([n], new Array(n).fill(bg)), scores: f64([n], u(n, 9)) }, { beta, reduction: 'none' }),
    );
    for (const r of results) {
      close(r.loss, want);
      close(r.grad.logits, wantGrad);
    }
  });
  it('the score of a background row has no effect', () => {
    const x = f64([3, 2], u(6, 1, -3, 3));
    const labels = i32([3], [2, 2, 2]);
    const a = cpu.run('quality_focal', { logits: x, labels, scores: f64([3], [0, 0.5, 1]) }, { reduction: 'sum' });
    const b = cpu.run('quality_focal', { logits: x, labels, scores: f64([3], [0.9, 0.1, 0.2]) }, { reduction: 'sum' });
    close(a.loss, b.loss, 0);
    close(a.grad.logits, b.grad.logits, 0);
  });
});

/** ops.md's cross-entropy, row by row: (1-ls)(-w[y] q[y]) - (ls/c) sum_j w_j q_j, 0 for ignored rows. */
function crossEntropyRef(x: number[], labels: number[], cw: number[] | undefined, c: number, ignore: number, ls: number): number[] {
  return labels.map((y, i) => {
    if (y === ignore) return 0;
    const row = x.slice(i * c, (i + 1) * c);
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
    const w = (j: number) => (cw ? cw[j] : 1);
    let smooth = 0;
    for (let j = 0; j < c; j++) smooth += w(j) * (row[j] - lse);
    return (1 - ls) * -w(y) * (row[y] - lse) - (ls / c) * smooth;
  });
}

describe('cross_entropy with ignored rows, class weights and label smoothing', () => {
  const n = 9;
  const c = 5;
  const x = u(n * c, 12, -5, 5);
  const cw = u(c, 13, 0.2, 2);
  const weight = u(n, 14, 0.5, 1.5);
  const ignore = -1;
  const labels = u(n, 15).map((v, i) => (i % 3 === 1 ? ignore : Math.min(c - 1, Math.floor(v * c))));
  const inputs = { logits: f64([n, c], x), labels: i32([n], labels), classWeight: f64([c], cw), weight: f64([n], weight) };
  const params = { ignoreIndex: ignore, labelSmoothing: 0.2 };

  it("'none': ops.md's formula per row, 0 loss and 0 gradient on ignored rows", () => {
    const r = cpu.run('cross_entropy', inputs, { ...params, reduction: 'none' });
    close(r.loss, crossEntropyRef(x, labels, cw, c, ignore, 0.2).map((v, i) => v * weight[i]));
    for (let i = 0; i < n; i++) {
      if (labels[i] !== ignore) continue;
      expect(r.loss[i]).toBe(0);
      expect(Array.from(r.grad.logits.subarray(i * c, (i + 1) * c))).toEqual(new Array(c).fill(0));
    }
  });
  it("'mean' divides by sum(weight_i classWeight[y_i]) over the rows not ignored; avgFactor replaces it", () => {
    const per = crossEntropyRef(x, labels, cw, c, ignore, 0.2);
    let num = 0;
    let den = 0;
    for (let i = 0; i < n; i++) {
      num += weight[i] * per[i];
      if (labels[i] !== ignore) den += weight[i] * cw[labels[i]];
    }
    close(cpu.run('cross_entropy', inputs, { ...params, reduction: 'mean' }).loss, [num / den]);
    close(cpu.run('cross_entropy', inputs, { ...params, reduction: 'mean', avgFactor: 4 }).loss, [num / 4]);
    close(cpu.run('cross_entropy', inputs, { ...params, reduction: 'sum' }).loss, [num]);
  });
  it('the logits of ignored rows have no effect', () => {
    const y = x.map((v, k) => (labels[Math.floor(k / c)] === ignore ? v * 50 + 3 : v));
    const a = cpu.run('cross_entropy', inputs, { ...params, reduction: 'mean' });
    const b = cpu.run('cross_entropy', { ...inputs, logits: f64([n, c], y) }, { ...params, reduction: 'mean' });
    close(a.loss, b.loss, 0);
    close(a.grad.logits, b.grad.logits, 0);
  });
  it('an ignoreIndex that is a class ignores that class', () => {
    const lab = labels.map((v) => (v === ignore ? 2 : v));
    const r = cpu.run('cross_entropy', { ...inputs, labels: i32([n], lab) }, { ignoreIndex: 2, labelSmoothing: 0.2, reduction: 'none' });
    close(r.loss, crossEntropyRef(x, lab, cw, c, 2, 0.2).map((v, i) => v * weight[i]));
  });
  it("every row ignored: 'mean' is 0, not 0/0", () => {
    const r = cpu.run('cross_entropy', { ...inputs, labels: i32([n], new Array(n).fill(ignore)) }, { ...params, reduction: 'mean' });
    expect(Array.from(r.loss)).toEqual([0]);
    expect(r.grad.logits.every((v) => v === 0)).toBe(true);
  });
});

describe('one class (c = 1), and two DFL bins (k = 2)', () => {
  const x = [3, -2, 0.5];
  it('cross_entropy: log_softmax of one logit is 0, so loss and gradient vanish', () => {
    const r = cpu.run('cross_entropy', { logits: f64([3, 1], x), labels: i32([3], [0, 0, -100]), classWeight: f64([1], [2]) }, { labelSmoothing: 0.3, reduction: 'mean' });
    expect(Array.from(r.loss)).toEqual([0]);
    expect(Array.from(r.grad.logits)).toEqual([0, 0, 0]);
  });
  it('kl_div: two one-class distributions agree', () => {
    const r = cpu.run('kl_div', { student: f64([3, 1], x), teacher: f64([3, 1], [9, 9, 9]) }, { reduction: 'sum', classReduction: 'mean' });
    expect(Array.from(r.loss)).toEqual([0]);
    expect(Array.from(r.grad.student)).toEqual([0, 0, 0]);
  });
  it('bce_with_logits and varifocal with c = 1 are their element formulas', () => {
    const t = [1, 0, 0.4];
    const b = cpu.run('bce_with_logits', { logits: f64([3, 1], x), targets: f64([3, 1], t), posWeight: f64([1], [3]) }, { reduction: 'none' });
    close(b.loss, x.map((v, i) => 3 * t[i] * softplus(-v) + (1 - t[i]) * softplus(v)));
    const vf = cpu.run('varifocal', { logits: f64([3, 1], x), targets: f64([3, 1], t) }, { reduction: 'none' });
    close(vf.loss, x.map((v, i) => (softplus(v) - v * t[i]) * (t[i] > 0 ? t[i] : 0.75 * sigmoid(v) ** 2)));
  });
  it('quality_focal with c = 1: label 0 is positive, label 1 background', () => {
    const r = cpu.run('quality_focal', { logits: f64([2, 1], [0.5, 0.5]), labels: i32([2], [0, 1]), scores: f64([2], [0.9, 0.9]) }, { reduction: 'none' });
    const s = sigmoid(0.5);
    close(r.loss, [(softplus(0.5) - 0.5 * 0.9) * (0.9 - s) ** 2, softplus(0.5) * s * s]);
  });
  it('dice with p = 1', () => {
    const r = cpu.run('dice', { logits: f64([2, 1], [0, 2]), targets: f64([2, 1], [1, 0]) }, { reduction: 'none', eps: 0.01 });
    const s = [0.5, sigmoid(2)];
    close(r.loss, [1 - (2 * s[0]) / (s[0] * s[0] + 1 + 0.02), 1 - 0]);
  });
  it('distribution_focal with k = 2 is cross-entropy against (1 - t, t)', () => {
    const t = [0, 0.25, 0.999];
    const lg = [1, -1, 2, 2, -3, 0.5];
    const r = cpu.run('distribution_focal', { logits: f64([3, 2], lg), targets: f64([3], t) }, { reduction: 'none' });
    close(
      r.loss,
      t.map((ti, i) => {
        const lse = Math.log(Math.exp(lg[2 * i]) + Math.exp(lg[2 * i + 1]));
        return -(1 - ti) * (lg[2 * i] - lse) - ti * (lg[2 * i + 1] - lse);
      }),
    );
  });
});

describe('empty batches', () => {
  it.each(OPS)('%s with n = 0: empty output, 0 for mean and sum, empty gradients', (op) => {
    const { inputs, params } = problem(op, 0, 4, []);
    for (const reduction of ['none', 'mean', 'sum'] as const) {
      for (const extra of [{}, { weight: f64([0], []) }, reduction === 'mean' ? { avgFactor: 2 } : {}]) {
        const { avgFactor, ...tensors } = extra as { avgFactor?: number };
        const r = cpu.run(op, { ...inputs, ...tensors }, { ...params, reduction, ...(avgFactor ? { avgFactor } : {}) });
        expect(Array.from(r.loss)).toEqual(reduction === 'none' ? [] : [0]);
        expect(r.shape).toEqual(reduction === 'none' ? (op === 'varifocal' || op === 'bce_with_logits' ? [0, 4] : [0]) : []);
        const g = Object.values(r.grad);
        expect(g.length).toBe(1);
        expect(g[0].length).toBe(0);
      }
    }
  });
});
