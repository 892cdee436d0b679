/**
 * Float64 references for NLL and the margin losses (ops.md, "More classification and ranking
 * losses"). A hinge `max(0, z)` passes the gradient where `z >= 0` (PyTorch's `clamp_min`), so at
 * `z = 0` exactly the gradient is that of `z`.
 */
import type { CpuForward, CpuInputs, Dims, ResolvedParams } from './types';

/** The exponent cap of `exponential`: exp(80) is finite in float32. */
export const EXPONENTIAL_CAP = 80;

/**
 * `max(0, z)` and its slope in z under the clamp_min rule (1 at z = 0). A NaN z stays NaN, loss and
 * slope: PyTorch's `clamp_min(nan, 0)` is nan (ops.md: a NaN input is never hidden).
 */
const hingeOf = (z: number): [number, number] => (z >= 0 ? [z, 1] : z < 0 ? [0, 0] : [NaN, NaN]);

/** Per element: the loss and its slope in each prediction input; backward scales by the upstream. */
function elementwise(n: number, grads: readonly string[], f: (k: number, d: Float64Array) => number): CpuForward {
  const loss = new Float64Array(n);
  const d = grads.map(() => new Float64Array(n));
  const slope = new Float64Array(grads.length);
  for (let k = 0; k < n; k++) {
    slope.fill(0);
    loss[k] = f(k, slope);
    for (let g = 0; g < grads.length; g++) d[g][k] = slope[g];
  }
  return { loss, backward: (up) => Object.fromEntries(grads.map((name, g) => [name, d[g].map((v, k) => v * up[k])])) };
}

/** F.nll_loss: `-w[y] * logProbs[i, y]`, 0 for an ignored row. */
export function nllCpu(inputs: CpuInputs, p: ResolvedParams, dims: Dims): CpuForward {
  const lp = inputs.logProbs as Float64Array;
  const labels = inputs.labels as Int32Array;
  const cw = inputs.classWeight as Float64Array | undefined;
  const ignore = p.ignoreIndex as number;
  const { n, c } = dims;
  const loss = new Float64Array(n);
  const d = new Float64Array(n * c);
  for (let i = 0; i < n; i++) {
    const y = labels[i];
    if (y === ignore) continue;
    const w = cw ? cw[y] : 1;
    loss[i] = -w * lp[i * c + y];
    d[i * c + y] = -w;
  }
  return { loss, backward: (up) => ({ logProbs: d.map((v, k) => v * up[Math.floor(k / c)]) }) };
}

/** The SVM hinge: `max(0, margin - y * f)`. */
export function hingeCpu(inputs: CpuInputs, p: ResolvedParams): CpuForward {
  const f = inputs.logits as Float64Array;
  const y = inputs.targets as Float64Array;
  const margin = p.margin as number;
  return elementwise(f.length, ['logits'], (k, d) => {
    const [l, s] = hingeOf(margin - y[k] * f[k]);
    d[0] = -y[k] * s;
    return l;
  });
}

/** F.hinge_embedding_loss: `pred` where y = 1, `max(0, margin - pred)` where y = -1. */
export function hingeEmbeddingCpu(inputs: CpuInputs, p: ResolvedParams): CpuForward {
  const x = inputs.pred as Float64Array;
  const y = inputs.targets as Float64Array;
  const margin = p.margin as number;
  return elementwise(x.length, ['pred'], (k, d) => {
    if (y[k] > 0) {
      d[0] = 1;
      return x[k];
    }
    const [l, s] = hingeOf(margin - x[k]);
    d[0] = -s;
    return l;
  });
}

/** F.margin_ranking_loss: `max(0, -y * (input1 - input2) + margin)`, gradients for both inputs. */
export function marginRankingCpu(inputs: CpuInputs, p: ResolvedParams): CpuForward {
  const a = inputs.input1 as Float64Array;
  const b = inputs.input2 as Float64Array;
  const y = inputs.targets as Float64Array;
  const margin = p.margin as number;
  return elementwise(a.length, ['input1', 'input2'], (k, d) => {
    const [l, s] = hingeOf(-y[k] * (a[k] - b[k]) + margin);
    d[0] = -y[k] * s;
    d[1] = y[k] * s;
    return l;
  });
}

/** AdaBoost's exponential loss `exp(min(-y * f, 80))`; no gradient past the cap. */
export function exponentialCpu(inputs: CpuInputs): CpuForward {
  const f = inputs.logits as Float64Array;
  const y = inputs.targets as Float64Array;
  return elementwise(f.length, ['logits'], (k, d) => {
    const z = -y[k] * f[k];
    const e = Math.exp(Math.min(z, EXPONENTIAL_CAP));
    d[0] = z <= EXPONENTIAL_CAP ? -y[k] * e : 0;
    return e;
  });
}
