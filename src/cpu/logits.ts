/**
 * Float64 references for the losses on logits (ops.md, "Classification"): the focal family and
 * the classification losses. Every sigmoid, softplus and softmax is in its stable form, so
 * logits of ±100 give finite losses and gradients.
 */
import type { CpuForward, CpuInputs, Dims, ResolvedParams } from './types';
import { sdiv } from './iou';

/** log(1 + exp(x)) without overflow. */
export const softplus = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
/** 1 / (1 + exp(-x)) without overflow. */
export const sigmoid = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

/** log_softmax of row i of x [n, c], written into out. */
function logSoftmaxRow(x: Float64Array, i: number, c: number, scale: number, out: Float64Array) {
  let m = -Infinity;
  for (let j = 0; j < c; j++) m = Math.max(m, x[i * c + j] * scale);
  let s = 0;
  for (let j = 0; j < c; j++) s += Math.exp(x[i * c + j] * scale - m);
  const lse = m + Math.log(s);
  for (let j = 0; j < c; j++) out[j] = x[i * c + j] * scale - lse;
}

/** Elementwise forward: loss and d loss / d logit per element, then backward scales by upstream. */
function elementwise(n: number, grad: string, f: (k: number) => [number, number]): CpuForward {
  const loss = new Float64Array(n);
  const d = new Float64Array(n);
  for (let k = 0; k < n; k++) [loss[k], d[k]] = f(k);
  return { loss, backward: (up) => ({ [grad]: d.map((v, k) => v * up[k]) }) };
}

/** Row forward: loss per row and d loss_i / d logits[i, :], then backward scales each row. */
function rowwise(n: number, c: number, grad: string, f: (i: number, g: Float64Array) => number): CpuForward {
  const loss = new Float64Array(n);
  const d = new Float64Array(n * c);
  for (let i = 0; i < n; i++) loss[i] = f(i, d.subarray(i * c, (i + 1) * c));
  return { loss, backward: (up) => ({ [grad]: d.map((v, k) => v * up[Math.floor(k / c)]) }) };
}

/**
 * torchvision sigmoid_focal_loss: alpha_t * ce * (1 - p_t)^gamma. 1 - p_t is
 * sigmoid(x)(1 - t) + sigmoid(-x) t, which stays exact where p_t rounds to 1.
 */
export function sigmoidFocalCpu(inputs: CpuInputs, p: ResolvedParams): CpuForward {
  const x = inputs.logits as Float64Array;
  const t = inputs.targets as Float64Array;
  const alpha = p.alpha as number;
  const gamma = p.gamma as number;
  return elementwise(x.length, 'logits', (k) => {
    const s = sigmoid(x[k]);
    const sn = sigmoid(-x[k]);
    // softplus(x) - x t as a sum of two non-negative terms: exact where one of them is tiny.
    const ce = (1 - t[k]) * softplus(x[k]) + t[k] * softplus(-x[k]);
    const q = s * (1 - t[k]) + sn * t[k];
    const dq = (1 - 2 * t[k]) * s * sn;
    const qg = gamma === 0 ? 1 : q ** gamma;
    // d q^gamma = gamma q^gamma dq/q: q^(gamma-1) overflows where q underflows.
    const dqg = gamma === 0 || q === 0 ? 0 : gamma * qg * (dq / q);
    const at = alpha >= 0 ? alpha * t[k] + (1 - alpha) * (1 - t[k]) : 1;
    // s - t as s(1 - t) - t sigmoid(-x): exact for t in {0, 1} where s rounds to 1.
    return [at * ce * qg, at * ((s * (1 - t[k]) - t[k] * sn) * qg + ce * dqg)];
  });
}

/** mmdetection quality_focal_loss: per row, the sum over classes. */
export function qualityFocalCpu(inputs: CpuInputs, p: ResolvedParams, dims: Dims): CpuForward {
  const x = inputs.logits as Float64Array;
  const labels = inputs.labels as Int32Array;
  const scores = inputs.scores as Float64Array;
  const beta = p.beta as number;
  const { n, c } = dims;
  return rowwise(n, c, 'logits', (i, g) => {
    let sum = 0;
    const y = labels[i];
    for (let j = 0; j < c; j++) {
      const v = x[i * c + j];
      const s = sigmoid(v);
      if (j === y) {
        const sc = scores[i];
        const e = Math.abs(sc - s);
        const bce = (1 - sc) * softplus(v) + sc * softplus(-v);
        const eb = e ** beta;
        sum += bce * eb;
        // d e^beta = beta e^beta (s/e) sgn(s - sc) (1 - s): no e^(beta-1), which overflows where e underflows.
        const de = e === 0 ? 0 : beta * eb * (s / e) * (s > sc ? 1 : -1) * (1 - s);
        g[j] = (s * (1 - sc) - sc * sigmoid(-v)) * eb + bce * de;
      } else {
        // bce with a zero target is softplus(x); scale s^beta
        const sb = s ** beta;
        sum += softplus(v) * sb;
        // d s^beta = beta s^beta (1 - s)
        g[j] = s * sb + softplus(v) * beta * sb * (1 - s);
      }
    }
    return sum;
  });
}

/** mmdetection distribution_focal_loss: CE to the two bins around the target, weighted linearly. */
export function distributionFocalCpu(inputs: CpuInputs, _p: ResolvedParams, dims: Dims): CpuForward {
  const x = inputs.logits as Float64Array;
  const t = inputs.targets as Float64Array;
  const { n, k } = dims;
  const ls = new Float64Array(k);
  return rowwise(n, k, 'logits', (i, g) => {
    logSoftmaxRow(x, i, k, 1, ls);
    const left = Math.trunc(t[i]);
    const wl = left + 1 - t[i];
    const wr = t[i] - left;
    for (let j = 0; j < k; j++) g[j] = Math.exp(ls[j]);
    g[left] -= wl;
    if (left + 1 < k) g[left + 1] -= wr;
    return -ls[left] * wl - (left + 1 < k ? ls[left + 1] * wr : 0);
  });
}

/** mmdetection varifocal_loss: bce * focal weight, the weight differentiated too (mmdetection does not detach it). */
export function varifocalCpu(inputs: CpuInputs, p: ResolvedParams): CpuForward {
  const x = inputs.logits as Float64Array;
  const t = inputs.targets as Float64Array;
  const alpha = p.alpha as number;
  const gamma = p.gamma as number;
  const iouWeighted = p.iouWeighted as boolean;
  return elementwise(x.length, 'logits', (k) => {
    const s = sigmoid(x[k]);
    const bce = (1 - t[k]) * softplus(x[k]) + t[k] * softplus(-x[k]);
    const dbce = s * (1 - t[k]) - t[k] * sigmoid(-x[k]);
    if (t[k] > 0) {
      const w = iouWeighted ? t[k] : 1;
      return [bce * w, dbce * w];
    }
    const e = Math.abs(s - t[k]);
    const w = alpha * e ** gamma;
    // d e^gamma = gamma e^gamma (s/e) sgn(s - t) (1 - s): no e^(gamma-1), which overflows where e underflows.
    const dw = e === 0 ? 0 : gamma * w * (s / e) * (s > t[k] ? 1 : -1) * (1 - s);
    return [bce * w, dbce * w + bce * dw];
  });
}

/** F.binary_cross_entropy_with_logits with an optional pos_weight [c]. */
export function bceWithLogitsCpu(inputs: CpuInputs, _p: ResolvedParams, dims: Dims): CpuForward {
  const x = inputs.logits as Float64Array;
  const t = inputs.targets as Float64Array;
  const pw = inputs.posWeight as Float64Array | undefined;
  const c = dims.c;
  return elementwise(x.length, 'logits', (k) => {
    const w = pw ? pw[k % c] : 1;
    // w t softplus(-x) + (1 - t) softplus(x)
    const loss = w * t[k] * softplus(-x[k]) + (1 - t[k]) * softplus(x[k]);
    return [loss, -w * t[k] * sigmoid(-x[k]) + (1 - t[k]) * sigmoid(x[k])];
  });
}

/**
 * F.cross_entropy with class weights, ignore_index and label smoothing; 0 for ignored rows. Without
 * label smoothing only `classWeight[y]` enters, as in PyTorch (which then calls nll_loss): another
 * class's weight, even NaN or infinite, reaches neither the loss nor the gradient.
 */
export function crossEntropyCpu(inputs: CpuInputs, p: ResolvedParams, dims: Dims): CpuForward {
  const x = inputs.logits as Float64Array;
  const labels = inputs.labels as Int32Array;
  const cw = inputs.classWeight as Float64Array | undefined;
  const ignore = p.ignoreIndex as number;
  const ls = p.labelSmoothing as number;
  const smoothing = ls > 0;
  const { n, c } = dims;
  const q = new Float64Array(c);
  let wsum = 0;
  for (let j = 0; j < c; j++) wsum += cw ? cw[j] : 1;
  return rowwise(n, c, 'logits', (i, g) => {
    const y = labels[i];
    if (y === ignore) return 0;
    logSoftmaxRow(x, i, c, 1, q);
    const wy = cw ? cw[y] : 1;
    let smooth = 0;
    if (smoothing) for (let j = 0; j < c; j++) smooth += (cw ? cw[j] : 1) * q[j];
    const a = smoothing ? (1 - ls) * wy + (ls / c) * wsum : wy;
    for (let j = 0; j < c; j++) g[j] = Math.exp(q[j]) * a - (smoothing ? (ls / c) * (cw ? cw[j] : 1) : 0);
    g[y] -= (1 - ls) * wy;
    return -(1 - ls) * wy * q[y] - (smoothing ? (ls / c) * smooth : 0);
  });
}

/** PyTorch's 'mean' for cross-entropy: sum(weight_i * classWeight[y_i]) over rows not ignored. */
export function crossEntropyDenominator(inputs: CpuInputs, weight: Float64Array | undefined, p: ResolvedParams): number {
  const labels = inputs.labels as Int32Array;
  const cw = inputs.classWeight as Float64Array | undefined;
  let d = 0;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] === p.ignoreIndex) continue;
    d += (weight ? weight[i] : 1) * (cw ? cw[labels[i]] : 1);
  }
  return d;
}

/**
 * KL distillation: T^2 * sum_j p_j (log p_j - log q_j), p = softmax(teacher/T), q = softmax(student/T).
 * Evaluated as T^2 sum_j q_j psi(l_j), psi(l) = (l - 1) e^l + 1 >= 0 (adding sum_j (q_j - p_j) = 0
 * term by term), with l_j = delta_j - D, delta_j = (t_j - s_j)/T and D = lse_t - lse_s =
 * log1p(sum_j q_j expm1(delta_j)): for near-identical rows no step subtracts nearly equal numbers.
 * The gradient T (q_j - p_j) is -T q_j expm1(l_j).
 */
export function klDivCpu(inputs: CpuInputs, p: ResolvedParams, dims: Dims): CpuForward {
  const s = inputs.student as Float64Array;
  const t = inputs.teacher as Float64Array;
  const T = p.temperature as number;
  const perClass = p.classReduction === 'mean';
  const { n, c } = dims;
  const lp = new Float64Array(c);
  const lq = new Float64Array(c);
  // c = 0 has no classes to average over: divide by 1, as the kernel does, not by 0.
  const div = perClass ? Math.max(c, 1) : 1;
  return rowwise(n, c, 'student', (i, g) => {
    logSoftmaxRow(t, i, c, 1 / T, lp);
    logSoftmaxRow(s, i, c, 1 / T, lq);
    if (!rowFinite(s, t, i * c, c)) return klDirect(lp, lq, T, div, g);
    let y = 0;
    for (let j = 0; j < c; j++) {
      const delta = (t[i * c + j] - s[i * c + j]) / T;
      // q e^delta - q, with the exponent capped: past the cap y is far outside the window below.
      y += Math.abs(delta) < 1 ? Math.exp(lq[j]) * Math.expm1(delta) : Math.exp(Math.min(lq[j] + delta, 700)) - Math.exp(lq[j]);
    }
    const D = y > -0.5 && y < 1 ? Math.log1p(y) : lq[0] - lp[0] + (t[i * c] - s[i * c]) / T;
    let kl = 0;
    for (let j = 0; j < c; j++) {
      const q = Math.exp(lq[j]);
      const l = (t[i * c + j] - s[i * c + j]) / T - D;
      if (l < 700) {
        kl += q * (Math.abs(l) < 0.5 ? psiSeries(l) : (l - 1) * Math.exp(l) + 1);
        g[j] = (T * q * (0 - Math.expm1(l))) / div; // 0 - x: +0, not -0, where p = q
      } else {
        const pj = Math.exp(lp[j]);
        kl += pj * (l - 1) + q;
        g[j] = (T * (q - pj)) / div;
      }
    }
    return (T * T * kl) / div;
  });
}

/** Whether row entries at..at+c-1 of both tensors are finite. */
function rowFinite(a: Float64Array, b: Float64Array, at: number, c: number): boolean {
  for (let j = at; j < at + c; j++) if (!Number.isFinite(a[j]) || !Number.isFinite(b[j])) return false;
  return true;
}

/**
 * kl_div's row with a value that is not finite, term by term as PyTorch's F.kl_div takes it:
 * xlogy(p, p) - p log q. +Inf where q_j = 0 < p_j (a student logit of -Inf), 0 where p_j = 0 < q_j (a
 * teacher logit of -Inf), NaN where both are 0 or a softmax is undefined (a NaN or +Inf logit, a row
 * of -Inf, where log_softmax gives NaN). The gradient, unspecified there, is T (q - p).
 */
function klDirect(lp: Float64Array, lq: Float64Array, T: number, div: number, g: Float64Array): number {
  let kl = 0;
  for (let j = 0; j < lp.length; j++) {
    const pj = Math.exp(lp[j]);
    kl += (pj === 0 ? 0 : pj * lp[j]) - pj * lq[j];
    g[j] = (T * (Math.exp(lq[j]) - pj)) / div;
  }
  return (T * T * kl) / div;
}

/** psi(l) = (l - 1) e^l + 1 = sum_{k>=2} (k-1) l^k / k! for |l| < 0.5. */
function psiSeries(l: number): number {
  let sum = 0;
  let term = l; // l^k / k!, from k = 1
  for (let k = 2; k < 30; k++) {
    term *= l / k;
    sum += (k - 1) * term;
    if (Math.abs(term) < 1e-18 * Math.abs(sum)) break;
  }
  return sum;
}

/** mmdetection dice_loss on sigmoid(logits), per row. */
export function diceCpu(inputs: CpuInputs, p: ResolvedParams, dims: Dims): CpuForward {
  const x = inputs.logits as Float64Array;
  const t = inputs.targets as Float64Array;
  const eps = p.eps as number;
  const naive = p.naive as boolean;
  const { n } = dims;
  const w = dims.p;
  return rowwise(n, w, 'logits', (i, g) => {
    let a = 0;
    let b = 0;
    let c = 0;
    for (let j = 0; j < w; j++) {
      const s = sigmoid(x[i * w + j]);
      const tj = t[i * w + j];
      a += s * tj;
      b += naive ? s : s * s;
      c += naive ? tj : tj * tj;
    }
    const den = naive ? b + c + eps : b + c + 2 * eps;
    const num = naive ? 2 * a + eps : 2 * a;
    for (let j = 0; j < w; j++) {
      const s = sigmoid(x[i * w + j]);
      const tj = t[i * w + j];
      const dd = sdiv(2 * tj, den) - sdiv(num * (naive ? 1 : 2 * s), den * den);
      g[j] = -dd * s * (1 - s);
    }
    // eps = 0 with empty rows (or all-zero sums) gives 0 / 0; sdiv, like the kernel's safe_div, reads it as 0.
    return 1 - sdiv(num, den);
  });
}
