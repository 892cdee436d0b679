import type { CpuForward, CpuInputs, ResolvedParams } from '../ops/types';

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
export const balancedL1: Elementwise = (d, p) => {
  const alpha = p.alpha as number;
  const gamma = p.gamma as number;
  const beta = p.beta as number;
  const b = Math.exp(gamma / alpha) - 1;
  const x = Math.abs(d);
  if (x < beta) {
    const loss = (alpha / b) * (b * x + 1) * Math.log((b * x) / beta + 1) - alpha * x;
    // d/dx: alpha*log(b x/beta + 1) + alpha*(b x + 1)/(b x + beta) - alpha
    const dx = alpha * Math.log((b * x) / beta + 1) + (alpha * (b * x + 1)) / (b * x + beta) - alpha;
    return [loss, dx * sign(d)];
  }
  return [gamma * x + gamma / b - alpha * beta, gamma * sign(d)];
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
