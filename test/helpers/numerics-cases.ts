/**
 * Cases and tolerances shared by the Node and Chromium numerics edge tests
 * (test/ops/all/numerics-gpu.test.ts, test/ops/all/browser-numerics-edges.test.ts).
 */
import { rand } from './counting';
import { klRows, nearIdentical } from './numerics-refs';

export type BalancedParams = { alpha: number; gamma: number; beta?: number };

/** balanced_l1 parameters from b tiny to b far past f32 (gamma/alpha from 1e-7 to 1000). */
export const BALANCED_CASES: BalancedParams[] = [
  { alpha: 0.5, gamma: 1.5 },
  { alpha: 0.5, gamma: 1.5, beta: 0.11 },
  { alpha: 0.2, gamma: 1, beta: 2 },
  { alpha: 0.0113, gamma: 1 }, // b = 2.1e38, just under f32's largest
  { alpha: 0.01, gamma: 1 }, // b = 2.7e43
  { alpha: 0.001, gamma: 1 }, // b = e^1000, past float64 too
  { alpha: 0.001, gamma: 1, beta: 0.05 },
  { alpha: 1e4, gamma: 1e-3, beta: 0.5 }, // b = 1e-7
];

/** Differences d covering 0, the series' range, the branch points z = 0.25 and 0.5, beta, and beyond. */
export function balancedDiffs(beta: number, params?: BalancedParams): number[] {
  // Not exactly beta: the f32 beta the kernel compares with may round to either side of float64's.
  const d = [0, 1e-30, -1e-12, 1e-9, -1e-6, 3e-5, -1e-4, 1e-3, -0.01, 0.05, 0.1, -0.3, 0.5, 0.9, -0.999, 1.0001, 1.5, -3, 50].map((v, i) => (i > 6 ? v * beta : v));
  if (params) {
    const b = Math.expm1(params.gamma / params.alpha);
    // Where b is past f32 these are below f32's smallest normal, which a GPU may flush to 0: left out.
    for (const z of [0.25, 0.5]) for (const f of [0.999, 1.001]) if ((z * f) / b < 1 && (z * f * beta) / b > 1e-37) d.push((z * f * beta) / b);
  }
  return [...d, ...Array.from(rand(24, 17, -2 * beta, 2 * beta))].map((v) => Math.fround(v));
}

/**
 * How far the f32 kernel may be from the float64 reference for balanced_l1 at d: 1e-5 relative,
 * plus 1e-6 times the size of the terms the f32 evaluation adds up (zero for beta = 1 near d = 0,
 * where the loss is alpha x z/2: the old kernel was off by 60x there).
 */
export function balancedTolerance(d: number, p: BalancedParams) {
  const { alpha, gamma } = p;
  const beta = p.beta ?? 1;
  const a = gamma / alpha;
  const lb = a > 1 ? a + Math.log1p(-Math.exp(-a)) : Math.log(Math.expm1(a));
  const x = Math.abs(d);
  const q = x / beta;
  const lq = Math.log(Math.max(q, 1e-300));
  const big = lb + lq > Math.log(0.25);
  const l1 = big ? Math.abs(lb + lq) : 0;
  const lossScale =
    (alpha * x * Math.abs(1 - beta)) / beta + (big ? alpha * (x + (2 * x) / beta) * (1 + l1) : 0) + (x >= beta ? gamma * x + alpha * beta : 0);
  const gradScale = (alpha * Math.abs(1 - beta)) / beta + (big ? alpha * (1 + Math.abs(lb) + Math.abs(lq)) : 0) + (x >= beta ? gamma : 0);
  return {
    loss: (ref: number) => 1e-5 * Math.abs(ref) + 1e-6 * lossScale + 1e-38,
    grad: (ref: number) => 1e-5 * Math.abs(ref) + 1e-6 * gradScale + 1e-38,
  };
}

export type HostTensor = { data: Float32Array | Int32Array; shape: number[] };
export type FocalCase = { op: string; inputs: Record<string, HostTensor>; params: Record<string, number | boolean> };

/** Logits from 0 to ±740: sigmoid underflows f32 past ±88 and float64 past ±745. */
export const EXTREME_LOGITS = [-740, -200, -103, -100, -95, -88, -30, -17, -1, 0, 1, 17, 30, 88, 95, 100, 103, 200, 740];

/** varifocal, quality_focal and sigmoid_focal at EXTREME_LOGITS, for gamma / beta in {0, 0.01, 0.5, 1, 2}. */
export const FOCAL_CASES: FocalCase[] = [0, 0.01, 0.5, 1, 2].flatMap((g): FocalCase[] => {
  const xs = EXTREME_LOGITS;
  const c = xs.length;
  const rows = (k: number) => Float32Array.from({ length: k * c }, (_, i) => xs[i % c]);
  return [
    {
      op: 'varifocal',
      inputs: { logits: { data: rows(2), shape: [2, c] }, targets: { data: Float32Array.from({ length: 2 * c }, (_, i) => (i < c ? 0 : 0.3)), shape: [2, c] } },
      params: { gamma: g, alpha: 0.75, iouWeighted: true },
    },
    {
      op: 'quality_focal',
      inputs: { logits: { data: rows(3), shape: [3, c] }, labels: { data: Int32Array.of(3, c, 5), shape: [3] }, scores: { data: Float32Array.of(0, 0.5, 0.7), shape: [3] } },
      params: { beta: g },
    },
    {
      op: 'sigmoid_focal',
      inputs: { logits: { data: rows(3), shape: [3 * c] }, targets: { data: Float32Array.from({ length: 3 * c }, (_, i) => [0, 1, 0.5][Math.floor(i / c)]), shape: [3 * c] } },
      params: { gamma: g, alpha: 0.25 },
    },
  ];
});

/** Entries where the GPU's loss or gradient is not the reference's to 1e-4 relative (plus 1e-30: f32's subnormals). */
export function focalMismatches(loss: number[], grad: number[], ref: { loss: Float64Array; grad: Record<string, Float64Array> }, fc: FocalCase): string[] {
  const bad: string[] = [];
  const x = fc.inputs.logits.data;
  const perRow = loss.length === x.length ? 1 : x.length / loss.length;
  for (let i = 0; i < loss.length; i++) {
    if (!(Math.abs(loss[i] - ref.loss[i]) <= 1e-4 * Math.abs(ref.loss[i]) + 1e-30)) bad.push(`loss[${i}]${perRow === 1 ? ` x ${x[i]}` : ''}: ${loss[i]} vs ${ref.loss[i]}`);
  }
  for (let k = 0; k < grad.length; k++) {
    if (!(Math.abs(grad[k] - ref.grad.logits[k]) <= 1e-4 * Math.abs(ref.grad.logits[k]) + 1e-30)) bad.push(`grad[${k}] x ${x[k]}: ${grad[k]} vs ${ref.grad.logits[k]}`);
  }
  return bad;
}

/** n rows of c near-identical student and teacher logits (teacher = student + U(-1e-3, 1e-3)) and their float64 kl_div. */
export function klNearIdenticalCase(n: number, c: number, T: number, seed: number) {
  const { student, teacher } = nearIdentical(n, c, seed, 1e-3);
  return {
    inputs: { student: { data: student, shape: [n, c] }, teacher: { data: teacher, shape: [n, c] } },
    want: klRows(student, teacher, n, c, T),
  };
}
