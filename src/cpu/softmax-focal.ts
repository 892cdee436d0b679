/**
 * Float64 references for softmax_focal and class_balanced_focal (ops.md, "More classification and
 * ranking losses"). Stable forms throughout: log-sum-exp with the row maximum subtracted, and
 * 1 - p as the other classes' share of the row's sum, never as 1 minus a rounded probability.
 */
import { crossEntropyCpu, sigmoid, softplus } from './logits';
import type { CpuForward, CpuInputs, Dims, ResolvedParams } from './types';

/** Row forward: loss per row and d loss_i / d logits[i, :], then backward scales each row. */
function rowwise(n: number, c: number, f: (i: number, g: Float64Array) => number): CpuForward {
  const loss = new Float64Array(n);
  const d = new Float64Array(n * c);
  for (let i = 0; i < n; i++) loss[i] = f(i, d.subarray(i * c, (i + 1) * c));
  return { loss, backward: (up) => ({ logits: d.map((v, k) => v * up[Math.floor(k / c)]) }) };
}

/**
 * Multi-class focal loss (Lin et al. 2017): `-w[y] (1 - p_y)^gamma log p_y`, 0 for an ignored row.
 * With `u = 1 - p_y` and `l = -log p_y`, the gradient is `w[y] F (p_j - [j == y])` where
 * `F = u^gamma + gamma p_y l u^(gamma - 1)`, written as `u^gamma (1 + gamma p_y (l / u))` so
 * that nothing overflows where `u` underflows (`l / u -> 1` there). At `gamma = 0` the loss is
 * `cross_entropy`'s, and the reference is `crossEntropyCpu` itself (no label smoothing), so the
 * two agree to the bit.
 */
export function softmaxFocalCpu(inputs: CpuInputs, p: ResolvedParams, dims: Dims): CpuForward {
  const gamma = p.gamma as number;
  if (gamma === 0) return crossEntropyCpu(inputs, { ignoreIndex: p.ignoreIndex, labelSmoothing: 0 }, dims);
  const x = inputs.logits as Float64Array;
  const labels = inputs.labels as Int32Array;
  const cw = inputs.classWeight as Float64Array | undefined;
  const ignore = p.ignoreIndex as number;
  const { n, c } = dims;
  const e = new Float64Array(c);
  return rowwise(n, c, (i, g) => {
    const y = labels[i];
    if (y === ignore) return 0;
    const base = i * c;
    let m = -Infinity;
    for (let j = 0; j < c; j++) m = Math.max(m, x[base + j]);
    let s = 0;
    let other = 0; // sum of exp(x_j - m) over j != y: s * (1 - p_y), with no cancellation
    for (let j = 0; j < c; j++) {
      e[j] = Math.exp(x[base + j] - m);
      s += e[j];
      if (j !== y) other += e[j];
    }
    const u = other / s;
    const py = e[y] / s;
    // -log p_y = log(s / e_y): log1p(other / e_y) where p_y >= 1/2 (exact near p_y = 1), else log s - (x_y - m).
    const l = other <= e[y] ? Math.log1p(other / e[y]) : Math.log(s) - (x[base + y] - m);
    const wy = cw ? cw[y] : 1;
    const ug = u ** gamma;
    const f = ug * (1 + gamma * py * (u === 0 ? 1 : l / u));
    const a = wy * f;
    for (let j = 0; j < c; j++) g[j] = j === y ? -a * u : (a * e[j]) / s;
    return wy * ug * l;
  });
}

/**
 * The class-balanced weights of Cui et al. 2019: `(1 - beta) / (1 - beta^n_j)`, 0 where
 * `n_j <= 0`, scaled so that they sum to the number of classes (all 0 when no class has samples).
 * `1 - beta^n` is `-expm1(n log beta)`, exact for beta near 1. No checks: see `classBalancedWeights`.
 */
export function classBalancedWeights64(samplesPerClass: ArrayLike<number>, beta: number): Float64Array {
  const c = samplesPerClass.length;
  const w = new Float64Array(c);
  const lb = Math.log(beta); // -Infinity at beta = 0: then beta^n = 0 for every n > 0
  let sum = 0;
  for (let j = 0; j < c; j++) {
    const nj = samplesPerClass[j];
    w[j] = nj > 0 ? (1 - beta) / -Math.expm1(nj * lb) : 0;
    sum += w[j];
  }
  const scale = sum > 0 ? c / sum : 0;
  for (let j = 0; j < c; j++) w[j] *= scale;
  return w;
}

/**
 * Class-balanced sigmoid focal loss (the authors' form), per element:
 * `cb[y_i] (1 - p_t)^gamma bce(x_ij, t_ij)` with `t_ij = (j == y_i)`; a row whose label is no
 * class (background) has weight 1. `1 - p_t` is `sigmoid(-x)` for the label's column and
 * `sigmoid(x)` elsewhere, so its derivative over itself is `-sigmoid(x)` or `sigmoid(-x)`.
 */
export function classBalancedFocalCpu(inputs: CpuInputs, p: ResolvedParams, dims: Dims): CpuForward {
  const x = inputs.logits as Float64Array;
  const labels = inputs.labels as Int32Array;
  const cb = classBalancedWeights64(inputs.samplesPerClass as Float64Array, p.beta as number);
  const gamma = p.gamma as number;
  const { n, c } = dims;
  const loss = new Float64Array(n * c);
  const d = new Float64Array(n * c);
  for (let i = 0; i < n; i++) {
    const y = labels[i];
    const w = y >= 0 && y < c ? cb[y] : 1;
    for (let j = 0; j < c; j++) {
      const k = i * c + j;
      const s = sigmoid(x[k]);
      const sn = sigmoid(-x[k]);
      const pos = j === y;
      const q = pos ? sn : s; // 1 - p_t
      const bce = pos ? softplus(-x[k]) : softplus(x[k]);
      const dbce = pos ? -sn : s;
      const qg = gamma === 0 ? 1 : q ** gamma;
      // d q^gamma / dx = gamma q^gamma (dq/dx) / q, with (dq/dx) / q = -s or sn: no q^(gamma - 1).
      const dqg = gamma === 0 ? 0 : gamma * qg * (pos ? -s : sn);
      loss[k] = w * qg * bce;
      d[k] = w * (dbce * qg + bce * dqg);
    }
  }
  return { loss, backward: (up) => ({ logits: d.map((v, k) => v * up[k]) }) };
}
