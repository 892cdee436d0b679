import type { CpuForward, CpuInputs, ResolvedParams } from './types';

/** Per-element loss and d loss / d diff for the L1 family, in float64 (ops.md, "Regression"). */
type Elementwise = (d: number, p: ResolvedParams) => [number, number];

const sign = (d: number) => (d > 0 ? 1 : d < 0 ? -1 : 0);

export const l1: Elementwise = (d) => [Math.abs(d), sign(d)];
export const mse: Elementwise = (d) => [d * d, 2 * d];
export const smoothL1: Elementwise = (d, p) => {
  const beta = p.beta as number;
  const x = Math.abs(d);
  return x < beta ? [(0.5 * d * d) / beta, d / beta] : [x - 0.5 * beta, sign(d)];
};
export const huber: Elementwise = (d, p) => {
  const delta = p.delta as number;
  const x = Math.abs(d);
  return x <= delta ? [0.5 * d * d, d] : [delta * (x - 0.5 * delta), delta * sign(d)];
};
/**
 * Scale-safe constants of balanced_l1 for a = gamma/alpha: b = e^a - 1 (Infinity past a = 709),
 * 1/b, log(b) and gamma/b, each finite wherever the exact value is (b itself excepted).
 */
export function balancedL1Constants(alpha: number, gamma: number) {
  const a = gamma / alpha;
  const b = Math.expm1(a);
  // 1/b = e^-a / (1 - e^-a): no overflow for large a, exact to rounding for small a.
  const invB = a === 0 ? Infinity : Math.exp(-a) / -Math.expm1(-a);
  // log(b) = a + log(1 - e^-a), so it stays finite where b overflows.
  const logB = a > 1 ? a + Math.log1p(-Math.exp(-a)) : Math.log(b);
  // gamma/b = alpha * a / (e^a - 1): alpha in the limit a -> 0, 0 for a past 709.
  const gammaOverB = alpha * (a === 0 ? 1 : a / b);
  return { b, invB, logB, gammaOverB };
}

/**
 * balanced_l1 in float64. With q = x/beta and z = b q, the branch x < beta is
 * alpha/b * f(z), f(z) = (beta z + 1) log(1 + z) - beta z, and its derivative is
 * alpha * (log(1 + z) + (1 - beta) / (beta (1 + z))). Below z = 0.5 the loss is written as
 * alpha q (g(z)/z + (beta - 1)(log(1 + z) - 1)) with g(z) = (1 + z) log(1 + z) - z summed from
 * the atanh series in w = z/(2 + z), whose terms are all positive: no cancellation at d -> 0.
 * Above it, log(1 + z) = log(b) + log(q + 1/b) once b q overflows.
 */
export const balancedL1: Elementwise = (d, p) => {
  const alpha = p.alpha as number;
  const gamma = p.gamma as number;
  const beta = p.beta as number;
  const { b, invB, logB, gammaOverB } = balancedL1Constants(alpha, gamma);
  const x = Math.abs(d);
  if (x >= beta) return [gamma * x + gammaOverB - alpha * beta, gamma * sign(d)];
  const q = x / beta;
  const z = q === 0 ? 0 : q * b; // b may be Infinity
  if (z < 0.5) {
    const w = z / (2 + z);
    const w2 = w * w;
    // t = atanh(w)/w - 1 = sum_{k>=1} w^2k / (2k + 1)
    let t = 0;
    let term = 1;
    for (let k = 1; k < 40 && term > 1e-18; k++) {
      term *= w2;
      t += term / (2 * k + 1);
    }
    const l1 = Math.log1p(z);
    const h = w + (1 + w) * t + (beta - 1) * (l1 - 1);
    return [alpha * q * h, alpha * (l1 + (1 - beta) / (beta * (1 + z))) * sign(d)];
  }
  let l1: number;
  let inv: number; // 1 / (1 + z)
  if (Number.isFinite(z)) {
    l1 = Math.log1p(z);
    inv = 1 / (1 + z);
  } else {
    l1 = logB + Math.log(q + invB);
    inv = invB / (q + invB);
  }
  return [alpha * ((x + invB) * l1 - x), alpha * (l1 + ((1 - beta) / beta) * inv) * sign(d)];
};

/** Wraps an elementwise function of `d = pred - target` as a CPU forward pass. */
export function regressionCpu(f: Elementwise) {
  return (inputs: CpuInputs, p: ResolvedParams): CpuForward => {
    const pred = inputs.pred as Float64Array;
    const target = inputs.target as Float64Array;
    const n = pred.length;
    const loss = new Float64Array(n);
    const dd = new Float64Array(n);
    for (let i = 0; i < n; i++) [loss[i], dd[i]] = f(pred[i] - target[i], p);
    return {
      loss,
      backward(up) {
        const g = new Float64Array(n);
        for (let i = 0; i < n; i++) g[i] = up[i] * dd[i];
        return { pred: g };
      },
    };
  };
}
