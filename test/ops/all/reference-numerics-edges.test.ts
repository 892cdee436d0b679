import { describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { DetlossError } from '../../../src/errors';
import { rand } from '../../helpers/counting';
import { balancedL1HugeB, balancedL1Plain, balancedL1Series, focalTargetZero, klRows, nearIdentical, softplus } from '../../helpers/numerics-refs';

/**
 * The float64 reference at the numerical edges of issue 9 (defects 6, 7, 8 and 11): balanced_l1
 * for every alpha, gamma > 0 and near d = 0, the focal weights' gradients where sigmoid underflows,
 * the other logit losses at logits of ±740, kl_div on near-identical rows, and targets outside
 * [0, 1]. Expected values come from test/helpers/numerics-refs.ts, written from ops.md.
 */

const f64 = (a: ArrayLike<number>, shape?: number[]) => ({ data: Float64Array.from(a), shape: shape ?? [a.length] });
const rel = (got: number, want: number) => Math.abs(got - want) / Math.max(Math.abs(want), 1e-300);

function balanced(d: number[], params: Record<string, number>) {
  return cpu.run('balanced_l1', { pred: f64(d), target: f64(d.map(() => 0)) }, { ...params, reduction: 'none' });
}

describe('balanced_l1 reference: finite and accurate for every alpha, gamma, beta > 0', () => {
  it('alpha 0.001, gamma 1 (b = e^1000 - 1 is past float64): the closed-form limit', () => {
    const d = [1e-200, -1e-9, 0.3, -0.999, 1, 2.5, -40];
    for (const beta of [1, 0.11, 3]) {
      const r = balanced(d, { alpha: 0.001, gamma: 1, beta });
      for (let i = 0; i < d.length; i++) {
        const [l, g] = balancedL1HugeB(d[i], 0.001, 1, beta);
        expect(rel(r.loss[i], l), `beta ${beta} d ${d[i]}: loss ${r.loss[i]} vs ${l}`).toBeLessThan(1e-12);
        expect(rel(r.grad.pred[i], g), `beta ${beta} d ${d[i]}: grad ${r.grad.pred[i]} vs ${g}`).toBeLessThan(1e-12);
      }
    }
  });

  it('d near 0: the power series, to 1e-12 relative (the formula as written loses every digit)', () => {
    for (const [alpha, gamma, beta] of [
      [0.5, 1.5, 1],
      [0.5, 1.5, 0.11],
      [0.2, 1, 2],
      [1, 0.01, 1],
      [3, 1e-9, 0.5],
      [0.01, 1, 1],
    ]) {
      const b = Math.expm1(gamma / alpha);
      const d = [1e-12, -1e-9, 3e-7, -1e-6, 1e-4, (0.2 * beta) / b, (-0.24 * beta) / b].filter((v) => Math.abs(v) < beta && (b * Math.abs(v)) / beta < 0.25);
      expect(d.length).toBeGreaterThanOrEqual(2);
      const r = balanced(d, { alpha, gamma, beta });
      for (let i = 0; i < d.length; i++) {
        const [l, g] = balancedL1Series(d[i], alpha, gamma, beta);
        expect(rel(r.loss[i], l), `${alpha} ${gamma} ${beta} d ${d[i]}: loss ${r.loss[i]} vs ${l}`).toBeLessThan(1e-12);
        expect(rel(r.grad.pred[i], g), `${alpha} ${gamma} ${beta} d ${d[i]}: grad ${r.grad.pred[i]} vs ${g}`).toBeLessThan(1e-12);
      }
    }
  });

  it('away from 0 with ordinary b: the formula as written', () => {
    const d = Array.from(rand(200, 5, -3, 3));
    for (const [alpha, gamma, beta] of [
      [0.5, 1.5, 1],
      [0.5, 1.5, 0.11],
      [0.05, 2, 1.5],
    ]) {
      const r = balanced(d, { alpha, gamma, beta });
      const b = Math.expm1(gamma / alpha);
      for (let i = 0; i < d.length; i++) {
        if ((b * Math.abs(d[i])) / beta < 0.5) continue;
        const [l, g] = balancedL1Plain(d[i], alpha, gamma, beta);
        expect(Math.abs(r.loss[i] - l)).toBeLessThan(1e-12 * (1 + Math.abs(l)));
        expect(Math.abs(r.grad.pred[i] - g)).toBeLessThan(1e-12 * (1 + Math.abs(g)));
      }
    }
  });

  it('continuous at x = beta and finite everywhere, from gamma/alpha = 1e-12 to 1e6', () => {
    for (const alpha of [1e6, 10, 0.5, 0.0113, 0.01, 0.001, 1e-6]) {
      for (const beta of [1e-3, 1, 50]) {
        const gamma = 1;
        const d = [beta * (1 - 1e-12), beta, 0, 1e-30, beta * 0.5, -beta * 0.999999, beta * 7];
        const r = balanced(d, { alpha, gamma, beta });
        expect(Array.from(r.loss).every(Number.isFinite) && Array.from(r.grad.pred).every(Number.isFinite), `alpha ${alpha} beta ${beta}: ${r.loss} ${r.grad.pred}`).toBe(true);
        expect(r.loss[2] === 0 && r.grad.pred[2] === 0).toBe(true);
        expect(Math.abs(r.loss[0] - r.loss[1]), `alpha ${alpha} beta ${beta}`).toBeLessThan(1e-9 * (1 + Math.abs(r.loss[1])));
      }
    }
  });
});

describe('focal weights at logits whose sigmoid underflows: no 0 * inf in the reference', () => {
  const xs = [-800, -745, -740, -200, -103, -100, -88, 0.5, 88, 200, 740, 800];
  const gs = [0, 0.01, 0.5, 1, 2];

  it.each(gs)('varifocal, target 0, gamma %s', (gamma) => {
    const r = cpu.run('varifocal', { logits: f64(xs, [1, xs.length]), targets: f64(xs.map(() => 0), [1, xs.length]) }, { alpha: 0.75, gamma, reduction: 'none' });
    xs.forEach((x, i) => {
      const [l, g] = focalTargetZero(x, gamma);
      expect(rel(r.loss[i], 0.75 * l) < 1e-12 || Math.abs(r.loss[i] - 0.75 * l) < 1e-300, `x ${x}: loss ${r.loss[i]} vs ${0.75 * l}`).toBe(true);
      expect(rel(r.grad.logits[i], 0.75 * g) < 1e-12 || Math.abs(r.grad.logits[i] - 0.75 * g) < 1e-300, `x ${x}: grad ${r.grad.logits[i]} vs ${0.75 * g}`).toBe(true);
    });
  });

  it.each(gs)('quality_focal, background and score-0 columns, beta %s', (beta) => {
    // Row i's label is column i (score 0: its column is bce(x, 0) |0 - s|^beta), the last row is background.
    const c = xs.length;
    const logits = Array.from({ length: 2 * c }, (_, k) => xs[k % c]);
    const r = cpu.run('quality_focal', { logits: f64(logits, [2, c]), labels: { data: Int32Array.of(3, c), shape: [2] }, scores: f64([0, 0.7]) }, { beta, reduction: 'none' });
    const want = [0, 0];
    for (let k = 0; k < 2 * c; k++) {
      const [l, g] = focalTargetZero(logits[k], beta);
      want[Math.floor(k / c)] += l;
      const got = r.grad.logits[k];
      expect(rel(got, g) < 1e-12 || Math.abs(got - g) < 1e-300, `[${k}] x ${logits[k]}: grad ${got} vs ${g}`).toBe(true);
    }
    expect(rel(r.loss[0], want[0])).toBeLessThan(1e-12);
    expect(rel(r.loss[1], want[1])).toBeLessThan(1e-12);
  });

  it.each(gs)('sigmoid_focal, targets 0, 1 and 0.5, gamma %s', (gamma) => {
    for (const t of [0, 1, 0.5]) {
      const r = cpu.run('sigmoid_focal', { logits: f64(xs), targets: f64(xs.map(() => t)) }, { alpha: 0.25, gamma, reduction: 'none' });
      expect(Array.from(r.loss).every(Number.isFinite) && Array.from(r.grad.logits).every(Number.isFinite), `t ${t}: ${r.grad.logits}`).toBe(true);
      if (t === 0 || t === 1) {
        xs.forEach((x, i) => {
          // target 1 mirrors target 0: loss(x) = loss0(-x), gradient -grad0(-x)
          const [l, g] = t === 0 ? focalTargetZero(x, gamma).map((v) => 0.75 * v) : focalTargetZero(-x, gamma).map((v, k) => (k ? -0.25 * v : 0.25 * v));
          expect(rel(r.loss[i], l) < 1e-12 || Math.abs(r.loss[i] - l) < 1e-300, `t ${t} x ${x}: loss ${r.loss[i]} vs ${l}`).toBe(true);
          expect(rel(r.grad.logits[i], g) < 1e-12 || Math.abs(r.grad.logits[i] - g) < 1e-300, `t ${t} x ${x}: grad ${r.grad.logits[i]} vs ${g}`).toBe(true);
        });
      }
    }
  });

  it('the other logit losses stay finite at logits of ±740 and beyond', () => {
    const x = [-800, -740, -200, 0, 200, 740, 800, -740];
    const t = [0, 1, 0.5, 1, 0, 0, 1, 0.3];
    const finite = (r: { loss: Float64Array; grad: Record<string, Float64Array> }) =>
      Array.from(r.loss).every(Number.isFinite) && Object.values(r.grad).every((g) => Array.from(g).every(Number.isFinite));
    const cases: [string, Record<string, unknown>, Record<string, unknown>][] = [
      ['bce_with_logits', { logits: f64(x, [2, 4]), targets: f64(t, [2, 4]), posWeight: f64([0.5, 3, 1e-3, 20]) }, {}],
      ['dice', { logits: f64(x, [2, 4]), targets: f64(t.map(Math.round), [2, 4]) }, { eps: 0 }],
      ['dice', { logits: f64(x, [2, 4]), targets: f64(t.map(Math.round), [2, 4]) }, { naive: true }],
      ['distribution_focal', { logits: f64(x, [2, 4]), targets: f64([0.5, 2.999]) }, {}],
      ['cross_entropy', { logits: f64(x, [2, 4]), labels: { data: Int32Array.of(0, 3), shape: [2] }, classWeight: f64([1, 2, 0, 0.5]) }, { labelSmoothing: 0.1 }],
      ['kl_div', { student: f64(x, [2, 4]), teacher: f64(x.slice().reverse(), [2, 4]) }, { temperature: 1e-3 }],
      ['kl_div', { student: f64(x, [2, 4]), teacher: f64(x.map((v) => -v), [2, 4]) }, { temperature: 1e-3, classReduction: 'mean' }],
    ];
    for (const [op, inputs, params] of cases) {
      for (const reduction of ['none', 'sum'] as const) {
        const r = cpu.run(op, inputs, { ...params, reduction });
        expect(finite(r), `${op} ${JSON.stringify(params)} ${reduction}: ${r.loss} ${JSON.stringify(r.grad)}`).toBe(true);
      }
    }
    // the exact values where they are simple: bce with pos weight at x = -800, t = 1 is w * 800
    const r = cpu.run('bce_with_logits', { logits: f64([-800, 800], [1, 2]), targets: f64([1, 0], [1, 2]), posWeight: f64([3, 1]) }, { reduction: 'none' });
    expect(r.loss[0]).toBe(3 * 800);
    expect(r.loss[1]).toBe(800);
    expect(Array.from(r.grad.logits)).toEqual([-3, 1]);
    expect(softplus(800)).toBe(800);
  });
});

describe('kl_div reference on near-identical distributions', () => {
  it('matches the cancellation-free form to 1e-9 per row and on the sum over 4,097 rows', () => {
    for (const c of [2, 80]) {
      const n = 4097;
      const { student, teacher } = nearIdentical(n, c, 21 + c, 1e-3);
      const want = klRows(student, teacher, n, c, 2);
      const r = cpu.run('kl_div', { student: f64(student, [n, c]), teacher: f64(teacher, [n, c]) }, { temperature: 2, reduction: 'none' });
      let worst = 0;
      for (let i = 0; i < n; i++) worst = Math.max(worst, rel(r.loss[i], want.loss[i]));
      expect(worst, `c ${c}`).toBeLessThan(1e-9);
      const s = cpu.run('kl_div', { student: f64(student, [n, c]), teacher: f64(teacher, [n, c]) }, { temperature: 2, reduction: 'sum' });
      expect(rel(s.loss[0], want.loss.reduce((a, v) => a + v, 0))).toBeLessThan(1e-9);
    }
  });
});

describe('sigmoid_focal and varifocal refuse targets outside [0, 1]', () => {
  const cases: [string, number[], number][] = [
    ['sigmoid_focal', [0, 1, 0.5, 1.5, -1], 3],
    ['sigmoid_focal', [-1e-7, 0, 1], 0],
    ['sigmoid_focal', [0, 1, 1.0000001], 2],
    ['varifocal', [0, 0.7, -0.2, 0], 2],
    ['varifocal', [0, 2, 0, 0], 1],
  ];
  it.each(cases)('%s targets %j: invalid_value naming index %i', (op, t, bad) => {
    const logits = op === 'varifocal' ? f64(t.map(() => 0.3), [1, t.length]) : f64(t.map(() => 0.3));
    const targets = op === 'varifocal' ? f64(t, [1, t.length]) : f64(t);
    let err: unknown;
    try {
      cpu.run(op, { logits, targets }, {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DetlossError);
    expect((err as DetlossError).code).toBe('invalid_value');
    expect((err as DetlossError).argument).toBe('targets');
    expect((err as DetlossError).message).toContain(`targets[${bad}]`);
  });

  it('targets exactly 0 and 1 and in between are accepted', () => {
    const r = cpu.run('sigmoid_focal', { logits: f64([1, -1, 0]), targets: f64([0, 1, 0.25]) }, { reduction: 'sum' });
    expect(Number.isFinite(r.loss[0])).toBe(true);
  });
});
