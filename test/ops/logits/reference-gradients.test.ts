import { describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { rand } from '../../helpers/counting';
import { checkCentralDifferences } from '../../helpers/finite-differences';

/**
 * Central differences of the focal and classification losses' CPU gradients, in float64, over
 * the params the fixtures leave at one value (fractional gamma and beta, alpha off, soft targets,
 * temperatures, class-mean KL, naive dice, an ignoreIndex that is a class) and through the
 * wrapper (`weight` and per-element `gradOutput` with 'none', `avgFactor` with 'mean').
 */

type T = { data: Float64Array | Int32Array; shape: number[] };
const f64 = (shape: number[], data: ArrayLike<number>): T => ({ data: Float64Array.from(data), shape });
const i32 = (shape: number[], data: ArrayLike<number>): T => ({ data: Int32Array.from(data), shape });
const u = (len: number, seed: number, lo = 0, hi = 1) => Array.from(rand(len, seed, lo, hi));
const ints = (len: number, seed: number, hi: number) => u(len, seed).map((v) => Math.min(hi - 1, Math.floor(v * hi)));

interface Case {
  name: string;
  op: string;
  grad: string;
  inputs: (n: number, c: number, seed: number) => Record<string, T>;
  params: Record<string, unknown>;
}

const logits = (n: number, c: number, seed: number) => f64([n, c], u(n * c, seed, -6, 6));
const CASES: Case[] = [
  ...[{ alpha: 0.25, gamma: 2 }, { alpha: -1, gamma: 0 }, { alpha: 0.6, gamma: 0.5 }, { alpha: 0.25, gamma: 3 }].map((params) => ({
    name: `sigmoid_focal ${JSON.stringify(params)} soft targets`,
    op: 'sigmoid_focal',
    grad: 'logits',
    inputs: (n: number, c: number, s: number) => ({ logits: f64([n * c], u(n * c, s, -6, 6)), targets: f64([n * c], u(n * c, s + 1)) }),
    params,
  })),
  ...[0.5, 1, 3].map((beta) => ({
    name: `quality_focal beta=${beta}`,
    op: 'quality_focal',
    grad: 'logits',
    // labels: classes, c (background) and -1 (background)
    inputs: (n: number, c: number, s: number) => ({
      logits: logits(n, c, s),
      labels: i32([n], ints(n, s + 1, c + 2).map((v) => (v === c + 1 ? -1 : v))),
      scores: f64([n], u(n, s + 2)),
    }),
    params: { beta },
  })),
  ...[2, 9].map((k) => ({
    name: `distribution_focal k=${k}`,
    op: 'distribution_focal',
    grad: 'logits',
    inputs: (n: number, _c: number, s: number) => ({ logits: logits(n, k, s), targets: f64([n], u(n, s + 1, 0, k - 1 - 1e-3)) }),
    params: {},
  })),
  ...[{ iouWeighted: true }, { iouWeighted: false, alpha: 0.5, gamma: 1 }, { alpha: 0.9, gamma: 3 }].map((params) => ({
    name: `varifocal ${JSON.stringify(params)}`,
    op: 'varifocal',
    grad: 'logits',
    inputs: (n: number, c: number, s: number) => ({ logits: logits(n, c, s), targets: f64([n, c], u(n * c, s + 1).map((v) => (v < 0.5 ? 0 : v))) }),
    params,
  })),
  {
    name: 'bce_with_logits posWeight, soft targets',
    op: 'bce_with_logits',
    grad: 'logits',
    inputs: (n, c, s) => ({ logits: logits(n, c, s), targets: f64([n, c], u(n * c, s + 1)), posWeight: f64([c], u(c, s + 2, 0.1, 4)) }),
    params: {},
  },
  {
    name: 'cross_entropy ignoreIndex a class, labelSmoothing, classWeight',
    op: 'cross_entropy',
    grad: 'logits',
    inputs: (n, c, s) => ({ logits: logits(n, c, s), labels: i32([n], ints(n, s + 1, c)), classWeight: f64([c], u(c, s + 2, 0.2, 3)) }),
    params: { ignoreIndex: 1, labelSmoothing: 0.3 },
  },
  {
    name: 'cross_entropy labelSmoothing 1',
    op: 'cross_entropy',
    grad: 'logits',
    inputs: (n, c, s) => ({ logits: logits(n, c, s), labels: i32([n], ints(n, s + 1, c)) }),
    params: { labelSmoothing: 1 },
  },
  ...[{ temperature: 0.5, classReduction: 'mean' }, { temperature: 4 }, { temperature: 1, classReduction: 'mean' }].map((params) => ({
    name: `kl_div ${JSON.stringify(params)}`,
    op: 'kl_div',
    grad: 'student',
    inputs: (n: number, c: number, s: number) => ({ student: logits(n, c, s), teacher: logits(n, c, s + 1) }),
    params,
  })),
  ...[{ naive: false }, { naive: true }, { naive: false, eps: 1 }, { naive: true, eps: 0 }].map((params) => ({
    name: `dice ${JSON.stringify(params)} soft targets`,
    op: 'dice',
    grad: 'logits',
    inputs: (n: number, c: number, s: number) => ({ logits: logits(n, c, s), targets: f64([n, c], u(n * c, s + 1)) }),
    params,
  })),
];

/** sum(go * loss) for 'none' and go * loss otherwise: the objective whose gradient cpu.run returns. */
function objective(op: string, inputs: Record<string, T>, opts: Record<string, unknown>, go: Float64Array): number {
  const r = cpu.run(op, inputs, { ...opts, grad: false });
  let s = 0;
  for (let i = 0; i < r.loss.length; i++) s += go[i] * r.loss[i];
  return s;
}

const WRAPPERS = [
  { name: "'none' with weight and gradOutput", reduction: 'none' as const },
  { name: "'mean' with weight, gradOutput and avgFactor", reduction: 'mean' as const, avgFactor: 3.5 },
  { name: "'sum'", reduction: 'sum' as const },
];

describe('CPU gradients of the focal and classification losses equal central differences', () => {
  it.each(CASES.flatMap((c) => WRAPPERS.map((w) => [`${c.name}, ${w.name}`, c, w] as const)))('%s', (_name, c, w) => {
    const n = 5;
    const width = 4;
    const inputs = c.inputs(n, width, 11);
    const outLen = cpu.run(c.op, inputs, { ...c.params, reduction: 'none', grad: false }).loss.length;
    const opts: Record<string, unknown> = { ...c.params, reduction: w.reduction, ...(w.avgFactor ? { avgFactor: w.avgFactor } : {}) };
    const go = w.reduction === 'none' ? Float64Array.from(u(outLen, 5, -2, 2)) : Float64Array.of(w.reduction === 'mean' ? -1.7 : 1);
    if (w.reduction !== 'sum') {
      inputs.weight = f64([outLen], u(outLen, 6, 0, 2));
      inputs.gradOutput = f64(w.reduction === 'none' ? [outLen] : [], go);
    }
    const ref = cpu.run(c.op, inputs, opts);
    expect(Object.keys(ref.grad)).toEqual([c.grad]);
    const g = ref.grad[c.grad];
    const x = inputs[c.grad].data as Float64Array;
    expect(g.length).toBe(x.length);
    // Kinks (|s - t| = 0), where the one-sided slopes differ, are skipped.
    const checked = checkCentralDifferences(x, () => objective(c.op, inputs, opts, go), (i, fd) => {
      expect(Math.abs(g[i] - fd), `${c.grad}[${i}]: analytic ${g[i]}, central difference ${fd}`).toBeLessThan(1e-6 * (1 + Math.abs(fd)));
    });
    expect(checked).toBeGreaterThan(0.9 * x.length);
  });
});
