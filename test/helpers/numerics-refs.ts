/**
 * Float64 references for the numerics edge tests (issue 9, defects 6 to 8 and 11), written from
 * ops.md's formulas independently of src/cpu: a power series for balanced_l1 near d = 0, its
 * closed-form limit where b = e^(gamma/alpha) - 1 is past float64, and the focal weights at logits
 * whose sigmoid underflows, in log space.
 */
import { rand } from './counting';

/** log(1 + exp(x)) without overflow. */
export const softplus = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
/** 1 / (1 + exp(-x)) without overflow. */
export const sigmoid = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

/**
 * balanced_l1 for x = |d| < beta with z = b x / beta < 0.25, from the power series of
 * alpha/b ((beta z + 1) log(1 + z) - beta z) = alpha/b sum_k c_k z^k, c_1 = 1 - beta,
 * c_k = (-1)^k (beta/(k-1) - 1/k). Returns [loss, d loss / d d].
 */
export function balancedL1Series(d: number, alpha: number, gamma: number, beta: number): [number, number] {
  const b = Math.expm1(gamma / alpha);
  const x = Math.abs(d);
  const z = (b * x) / beta;
  if (!(z < 0.25)) throw new Error(`series reference needs z < 0.25, got ${z}`);
  let loss = 1 - beta;
  let dz = 1 - beta;
  let zk = 1;
  for (let k = 2; k < 60; k++) {
    zk *= z;
    const ck = (k % 2 ? -1 : 1) * (beta / (k - 1) - 1 / k);
    loss += ck * zk;
    dz += k * ck * zk;
  }
  return [((alpha * x) / beta) * loss, (alpha / beta) * dz * Math.sign(d)];
}

/** ops.md's balanced_l1 as written, for parameters whose b is an ordinary float64 and z not small. */
export function balancedL1Plain(d: number, alpha: number, gamma: number, beta: number): [number, number] {
  const b = Math.exp(gamma / alpha) - 1;
  const x = Math.abs(d);
  if (x >= beta) return [gamma * x + gamma / b - alpha * beta, gamma * Math.sign(d)];
  const u = (b * x) / beta + 1;
  return [(alpha / b) * (b * x + 1) * Math.log(u) - alpha * x, (alpha * Math.log(u) + (alpha * (b * x + 1)) / (b * x + beta) - alpha) * Math.sign(d)];
}

/**
 * balanced_l1 where e^(gamma/alpha) is past 1e300: 1/b is below 1e-300, so for x >= 1e-200 the
 * loss is alpha x (gamma/alpha + log(x/beta) - 1) and its slope alpha (gamma/alpha + log(x/beta))
 * to float64 precision; past beta, gamma x - alpha beta.
 */
export function balancedL1HugeB(d: number, alpha: number, gamma: number, beta: number): [number, number] {
  const a = gamma / alpha;
  if (a < 700) throw new Error('only for gamma/alpha >= 700');
  const x = Math.abs(d);
  if (x >= beta) return [gamma * x - alpha * beta, gamma * Math.sign(d)];
  const l = a + Math.log(x / beta);
  return [alpha * x * (l - 1), alpha * l * Math.sign(d)];
}

/**
 * The focal weight w^g times a cross-entropy, where w = sigmoid(x) and the cross-entropy is
 * softplus(x) (target 0): varifocal (times alpha), quality_focal's background and score-0 columns,
 * sigmoid_focal with target 0 (times 1 - alpha). [loss, d loss / d x], with w^g = exp(g log w)
 * taken in log space so that nothing underflows into 0 * inf.
 */
export function focalTargetZero(x: number, g: number): [number, number] {
  const sp = softplus(x);
  const s = sigmoid(x);
  const sg = Math.exp(-g * softplus(-x));
  return [sp * sg, sg * (s + g * (1 - s) * sp)];
}

/**
 * Teacher logits within `noise` of the student's: the near-identical distributions of defect 7.
 * Returned as float32 values.
 */
export function nearIdentical(n: number, c: number, seed: number, noise: number, scale = 3): { student: Float32Array; teacher: Float32Array } {
  const student = rand(n * c, seed, -scale, scale);
  const e = rand(n * c, seed + 1, -noise, noise);
  const teacher = Float32Array.from(student, (v, i) => v + e[i]);
  return { student, teacher };
}

/**
 * kl_div per row in float64 (classReduction 'sum'), from the cumulant generating function of
 * delta_j = (t_j - s_j)/T under q = softmax(s/T): K(u) = log sum_j q_j e^(u delta_j), and
 * KL(p || q) = K'(1) - K(1) = integral_0^1 u K''(u) du, where K''(u) is the variance of delta
 * under q_j e^(u delta_j) (normalised), summed in two passes, never negative. The integral by
 * Simpson's rule on 64 intervals. Gradient: T (q_j - p_j) = -T q_j expm1(delta_j - K(1)).
 */
export function klRows(student: ArrayLike<number>, teacher: ArrayLike<number>, n: number, c: number, T: number): { loss: Float64Array; grad: Float64Array } {
  const loss = new Float64Array(n);
  const grad = new Float64Array(n * c);
  const q = new Float64Array(c);
  const delta = new Float64Array(c);
  const w = new Float64Array(c);
  const steps = 64;
  for (let i = 0; i < n; i++) {
    let ms = -Infinity;
    for (let j = 0; j < c; j++) ms = Math.max(ms, student[i * c + j] / T);
    let ss = 0;
    for (let j = 0; j < c; j++) ss += (q[j] = Math.exp(student[i * c + j] / T - ms));
    let dmax = -Infinity;
    for (let j = 0; j < c; j++) {
      q[j] /= ss;
      delta[j] = (teacher[i * c + j] - student[i * c + j]) / T;
      dmax = Math.max(dmax, delta[j]);
    }
    const variance = (u: number) => {
      let sw = 0;
      let mean = 0;
      for (let j = 0; j < c; j++) {
        w[j] = q[j] * Math.exp(u * (delta[j] - dmax));
        sw += w[j];
        mean += w[j] * delta[j];
      }
      mean /= sw;
      let v = 0;
      for (let j = 0; j < c; j++) v += w[j] * (delta[j] - mean) ** 2;
      return v / sw;
    };
    let integral = 0;
    for (let k = 0; k <= steps; k++) {
      const u = k / steps;
      integral += (k === 0 || k === steps ? 1 : k % 2 ? 4 : 2) * u * variance(u);
    }
    loss[i] = (T * T * integral) / (3 * steps);
    let y = 0;
    for (let j = 0; j < c; j++) y += q[j] * Math.expm1(delta[j]);
    const K1 = Math.log1p(y);
    for (let j = 0; j < c; j++) grad[i * c + j] = -T * q[j] * Math.expm1(delta[j] - K1);
  }
  return { loss, grad };
}
