import { describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { classBalancedWeights } from '../../../src/index';
import { checkCentralDifferences } from '../../helpers/finite-differences';

/** A deterministic generator (LCG), so the cases are the same on every run. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
const logits = (n: number, c: number, seed: number, scale = 4) => {
  const r = rng(seed);
  return Float64Array.from({ length: n * c }, () => (r() * 2 - 1) * scale);
};
const labels = (n: number, c: number, seed: number, extra: number[] = []) => {
  const r = rng(seed);
  return Int32Array.from({ length: n }, (_, i) => (i < extra.length ? extra[i] : Math.floor(r() * c)));
};
const bits = (a: Float64Array | Float32Array) => Array.from(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));

describe('softmax_focal at gamma = 0 is cross_entropy, bit for bit (CPU reference)', () => {
  const n = 9;
  const c = 5;
  const x = logits(n, c, 1);
  // Extreme rows: a label with p = 1 (loss exactly 0), and one with p far below float64's range.
  x.set([100, -100, 0, 0, 0], 0);
  x.set([-100, 100, 3, 0, 0], c);
  const y = labels(n, c, 2, [0, 0, -100, 4]);
  const cw = Float64Array.from({ length: c }, (_, j) => 0.5 + j * 0.3);
  const weight = Float64Array.from({ length: n }, (_, i) => 0.25 + i * 0.2);
  const cases: [string, Record<string, unknown>, Record<string, unknown>][] = [
    ['plain none', {}, { reduction: 'none' }],
    ['classWeight mean', { classWeight: cw }, { reduction: 'mean' }],
    ['classWeight + weight mean', { classWeight: cw, weight }, { reduction: 'mean' }],
    ['weight sum', { weight }, { reduction: 'sum' }],
    ['ignoreIndex 2 none', { classWeight: cw, labels: Int32Array.from(y, (v) => (v === -100 ? 2 : v)) }, { reduction: 'none', ignoreIndex: 2 }],
    ['gradOutput none', { gradOutput: Float64Array.from({ length: n }, (_, i) => i - 4) }, { reduction: 'none' }],
    ['avgFactor', {}, { reduction: 'mean', avgFactor: 3 }],
  ];
  it.each(cases)('%s', (_name, extra, opts) => {
    const inputs = { logits: x, labels: y, ...extra };
    const ce = cpu.run('cross_entropy', inputs, opts);
    const sf = cpu.run('softmax_focal', inputs, { ...opts, gamma: 0 });
    expect(bits(sf.loss)).toEqual(bits(ce.loss));
    expect(bits(sf.grad.logits)).toEqual(bits(ce.grad.logits));
    expect(sf.shape).toEqual(ce.shape);
  });
  it('and the focal path approaches it continuously as gamma -> 0', () => {
    const ce = cpu.run('cross_entropy', { logits: x, labels: y, classWeight: cw }, { reduction: 'none' });
    const sf = cpu.run('softmax_focal', { logits: x, labels: y, classWeight: cw }, { reduction: 'none', gamma: 1e-12 });
    for (let i = 0; i < n; i++) expect(sf.loss[i]).toBeCloseTo(ce.loss[i], 9);
    for (let k = 0; k < n * c; k++) expect(sf.grad.logits[k]).toBeCloseTo(ce.grad.logits[k], 9);
  });
});

describe('softmax_focal computes 1 - p without cancellation', () => {
  it('keeps the loss of a row whose p_y rounds to 1 in float64', () => {
    // p_y = 1 / (1 + 2 e^-40): 1 - p_y is 8.5e-18, below float64's epsilon, so 1 - p would be 0.
    const x = Float64Array.from([40, 0, 0]);
    const r = cpu.run('softmax_focal', { logits: x, labels: Int32Array.from([0]) }, { reduction: 'none', gamma: 2 });
    const t = 2 * Math.exp(-40); // 1 - p_y and -log p_y, to 1e-17 relative
    expect(r.loss[0]).toBeGreaterThan(0);
    expect(Math.abs(r.loss[0] - t ** 3) / t ** 3).toBeLessThan(1e-12);
    // d/dx_y = -F u with F = u^2 (1 + 2 p_y l/u) ~ 3 u^2; the others each F p_j.
    expect(Math.abs(r.grad.logits[0] + 3 * t ** 3) / (3 * t ** 3)).toBeLessThan(1e-12);
    expect(Math.abs(r.grad.logits[1] - 1.5 * t ** 3) / (1.5 * t ** 3)).toBeLessThan(1e-12);
  });
  it('gives finite losses and gradients at logits of ±100, gamma below 1 included', () => {
    const x = Float64Array.from([100, -100, 0, -100, 100, 0, 100, 100, -100, 0, 0, 0]);
    for (const gamma of [0, 0.25, 1, 2, 5]) {
      const r = cpu.run('softmax_focal', { logits: x, labels: Int32Array.from([0, 0, 2, 1]) }, { reduction: 'none', gamma });
      for (const v of [...r.loss, ...r.grad.logits]) expect(Number.isFinite(v), `gamma ${gamma}`).toBe(true);
      expect(r.loss[1]).toBeCloseTo(200, 9);
    }
  });
});

describe('CPU gradients equal central finite differences', () => {
  const n = 6;
  const c = 5;
  type Case = [string, string, Record<string, unknown>, Record<string, unknown>];
  const cases: Case[] = [
    ['softmax_focal', 'gamma 2', {}, { gamma: 2 }],
    ['softmax_focal', 'gamma 0.5 + classWeight', { classWeight: Float64Array.from([0.5, 2, 1, 0.25, 1.5]) }, { gamma: 0.5 }],
    ['softmax_focal', 'gamma 1.5 + ignore', { labels: labels(n, c, 4, [-100, 3, -100]) }, { gamma: 1.5 }],
    ['class_balanced_focal', 'beta 0.9999 gamma 2', { samplesPerClass: Float64Array.from([0, 582, 1902, 1, 40]) }, { beta: 0.9999 }],
    ['class_balanced_focal', 'beta 0.99 gamma 0.5, background rows', { samplesPerClass: Float64Array.from([10, 582, 0, 1, 40]), labels: labels(n, c, 5, [5, -1, 7]) }, { beta: 0.99, gamma: 0.5 }],
    ['class_balanced_focal', 'beta 0 gamma 0', { samplesPerClass: Float64Array.from([3, 0, 9, 1, 4]) }, { beta: 0, gamma: 0 }],
  ];
  it.each(cases)('%s (%s)', (op, _name, extra, params) => {
    const x = logits(n, c, 7, 3);
    const inputs = { logits: x, labels: labels(n, c, 3), ...extra };
    const up = Float64Array.from({ length: op === 'softmax_focal' ? n : n * c }, (_, k) => 0.5 + ((k * 7) % 5) / 4);
    const opts = { ...params, reduction: 'none' as const };
    const ref = cpu.run(op, { ...inputs, gradOutput: up }, opts);
    const objective = () => {
      const l = cpu.run(op, inputs, { ...opts, grad: false }).loss;
      return l.reduce((a, v, k) => a + v * up[k], 0);
    };
    const checked = checkCentralDifferences(x, objective, (i, central) => {
      expect(ref.grad.logits[i], `${op} logits[${i}]`).toBeCloseTo(central, 5);
    });
    expect(checked).toBe(x.length);
  });
});

describe('class_balanced_focal weights', () => {
  it('classBalancedWeights: (1 - beta)/(1 - beta^n), 0 without samples, summing to c', () => {
    const counts = [0, 582, 1902, 1];
    const w = classBalancedWeights(counts, 0.9999);
    expect(w).toBeInstanceOf(Float32Array);
    const raw = counts.map((k) => (k > 0 ? (1 - 0.9999) / (1 - 0.9999 ** k) : 0));
    const sum = raw.reduce((a, v) => a + v, 0);
    raw.forEach((v, j) => expect(w[j]).toBeCloseTo((4 * v) / sum, 6));
    expect(w[0]).toBe(0);
    expect(w.reduce((a, v) => a + v, 0)).toBeCloseTo(4, 5);
    // beta = 0: every class with samples weighs the same.
    expect(Array.from(classBalancedWeights([0, 5, 50], 0))).toEqual([0, 1.5, 1.5]);
    // No samples anywhere: all 0, not NaN.
    expect(Array.from(classBalancedWeights([0, 0], 0.9)).every((v) => v === 0)).toBe(true);
  });
  it('are the weights class_balanced_focal applies: with gamma 0 it is bce_with_logits weighted by cb[y] per row', () => {
    const n = 5;
    const c = 4;
    const x = logits(n, c, 11);
    const y = Int32Array.from([1, 3, 2, 9, 1]);
    const counts = Float64Array.from([7, 120, 3, 0]);
    const w = classBalancedWeights(counts, 0.999);
    const targets = Float64Array.from({ length: n * c }, (_, k) => +(k % c === y[Math.floor(k / c)]));
    const weight = Float64Array.from({ length: n * c }, (_, k) => {
      const yi = y[Math.floor(k / c)];
      return yi >= 0 && yi < c ? w[yi] : 1;
    });
    const cb = cpu.run('class_balanced_focal', { logits: x, labels: y, samplesPerClass: counts }, { reduction: 'none', beta: 0.999, gamma: 0 });
    const bce = cpu.run('bce_with_logits', { logits: { data: x, shape: [n, c] }, targets, weight }, { reduction: 'none' });
    // The helper rounds its weights to float32; the op keeps them in float64.
    for (let k = 0; k < n * c; k++) expect(cb.loss[k]).toBeCloseTo(bce.loss[k], 6);
  });
});

describe('validation', () => {
  const x = logits(3, 4, 1);
  const y = Int32Array.from([0, 3, 1]);
  const counts = Float64Array.from([1, 2, 3, 4]);
  it('softmax_focal refuses a label that is no class nor ignoreIndex', () => {
    expect(() => cpu.run('softmax_focal', { logits: x, labels: Int32Array.from([0, 4, 1]) })).toThrow(expect.objectContaining({ code: 'invalid_value', argument: 'labels' }));
    expect(() => cpu.run('softmax_focal', { logits: x, labels: Int32Array.from([0, -1, 1]) })).toThrow(expect.objectContaining({ code: 'invalid_value', argument: 'labels' }));
    expect(() => cpu.run('softmax_focal', { logits: x, labels: Int32Array.from([0, -1, 1]) }, { ignoreIndex: -1 })).not.toThrow();
  });
  it('softmax_focal refuses a negative gamma and labels of the wrong dtype', () => {
    expect(() => cpu.run('softmax_focal', { logits: x, labels: y }, { gamma: -1 })).toThrow(expect.objectContaining({ code: 'invalid_param', argument: 'gamma' }));
    expect(() => cpu.run('softmax_focal', { logits: x, labels: Float32Array.from(y) as never })).toThrow(expect.objectContaining({ code: 'wrong_dtype', argument: 'labels' }));
  });
  it('class_balanced_focal refuses beta outside [0, 1)', () => {
    for (const beta of [1, 1.5, -0.1]) {
      expect(() => cpu.run('class_balanced_focal', { logits: x, labels: y, samplesPerClass: counts }, { beta })).toThrow(expect.objectContaining({ code: 'invalid_param', argument: 'beta' }));
      expect(() => classBalancedWeights(counts, beta)).toThrow(expect.objectContaining({ code: 'invalid_param', argument: 'beta' }));
    }
  });
  it('class_balanced_focal refuses negative counts and counts of the wrong dtype', () => {
    const bad = Float64Array.from([1, -2, 3, 4]);
    expect(() => cpu.run('class_balanced_focal', { logits: x, labels: y, samplesPerClass: bad })).toThrow(expect.objectContaining({ code: 'invalid_value', argument: 'samplesPerClass' }));
    expect(() => classBalancedWeights(bad, 0.9)).toThrow(expect.objectContaining({ code: 'invalid_value', argument: 'samplesPerClass' }));
    expect(() => cpu.run('class_balanced_focal', { logits: x, labels: y, samplesPerClass: Int32Array.from([1, 2, 3, 4]) as never })).toThrow(
      expect.objectContaining({ code: 'wrong_dtype', argument: 'samplesPerClass' }),
    );
  });
  it('class_balanced_focal takes any other label as background (weight 1)', () => {
    const r = cpu.run('class_balanced_focal', { logits: x, labels: Int32Array.from([-5, 4, 100]), samplesPerClass: Float64Array.from([0, 0, 0, 0]) }, { reduction: 'sum', gamma: 0 });
    const targets = new Float64Array(12);
    expect(r.loss[0]).toBeCloseTo(cpu.run('bce_with_logits', { logits: { data: x, shape: [3, 4] }, targets }, { reduction: 'sum' }).loss[0], 12);
  });
});
