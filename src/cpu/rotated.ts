import { aspectAngle } from './iou';
import type { CpuForward, CpuInputs, Dims, ResolvedParams } from './types';

/**
 * Rotated boxes in float64 (ops.md, "Rotated boxes"): `rotated_iou_loss` with its hand-written
 * gradient to all five components of `pred` (and to `predDelta` for KFIoU), and the
 * `pairwise_probiou` matrix. A box `(cx, cy, w, h, theta)` is a 2-D Gaussian with variance `P`
 * along its width axis and `Q` along its height axis; every term is written through `P`, `Q` and the
 * projections of the centre offset and of one box's axes on the other's, as ops.md asks.
 *
 * The gradient runs in reverse through a few shared quantities (their adjoints in {@link Adj}):
 * the offset's projections `du_i`, `dv_i`, the squared cosine and sine of the angle difference,
 * pred's `P1`, `Q1` and its (clamped) sides. {@link finish} turns those into the five components.
 */

/** Variants of `rotated_iou_loss`, in the order of the WGSL `VARIANT` override. */
export const ROTATED_VARIANTS = ['probiou', 'gwd', 'kld', 'jd', 'kld_symmax', 'kld_symmin', 'kfiou'] as const;
/** Every `fun` a variant takes, in the order of the WGSL `FUN` override. */
export const ROTATED_FUNS = ['log1p', 'sqrt', 'none', 'ln', 'exp'] as const;
/** The `fun`s of the Gaussian variants (`gwd`, `kld`, `jd`, `kld_symmax`, `kld_symmin`). */
export const GAUSSIAN_FUNS = ['log1p', 'sqrt', 'none'] as const;
/** The `fun`s of `kfiou`. */
export const KFIOU_FUNS = ['none', 'ln', 'exp'] as const;

export type RotatedVariant = (typeof ROTATED_VARIANTS)[number];
export type RotatedFun = (typeof ROTATED_FUNS)[number];

/** mmrotate's clamp of each side (`xy_wh_r_2_xy_sigma`). */
export const SIDE_MIN = 1e-7;
export const SIDE_MAX = 1e7;
/** The floor of mmrotate's `clamp(1e-7)` and `max(x, 1e-7)`. */
export const FLOOR = 1e-7;
/** GWD's floor of `sqrt(det1 * det2)`: `sqrt(clamp(det1 * det2, 1e-7))`. */
const SQRT_FLOOR = Math.sqrt(FLOOR);
const FOUR_OVER_PI2 = 4 / (Math.PI * Math.PI);

/** The resolved params a row needs. */
export interface RotatedConfig {
  variant: RotatedVariant;
  eps: number;
  ciou: boolean;
  fun: RotatedFun;
  tau: number;
  alpha: number;
  normalize: boolean;
  sqrt: boolean;
  beta: number;
}

/** The default `eps` of a variant (ops.md: 1e-7 for `probiou`, 1e-6 for `kfiou`). */
export const defaultEps = (variant: string) => (variant === 'kfiou' ? 1e-6 : 1e-7);

export function rotatedConfig(p: ResolvedParams): RotatedConfig {
  const variant = p.variant as RotatedVariant;
  return {
    variant,
    eps: (p.eps as number | undefined) ?? defaultEps(variant),
    ciou: p.ciou === true,
    fun: ((p.fun as RotatedFun | undefined) ?? (variant === 'kfiou' ? 'none' : 'log1p')) as RotatedFun,
    tau: (p.tau as number | undefined) ?? 0,
    alpha: (p.alpha as number | undefined) ?? 1,
    normalize: p.normalize !== false,
    sqrt: p.sqrt !== false,
    beta: (p.beta as number | undefined) ?? 1 / 9,
  };
}

const sgn = (x: number) => (x > 0 ? 1 : x < 0 ? -1 : 0);

/**
 * cos and sin of an angle reduced by a multiple of pi first: every quantity has period pi, and the
 * reduction keeps theta and theta + k*pi on the same numbers (up to the sign of both, which every
 * term squares away).
 */
export function cosSin(theta: number): [number, number] {
  const r = theta - Math.round(theta / Math.PI) * Math.PI;
  return [Math.cos(r), Math.sin(r)];
}

/** A side as mmrotate reads it, `clamp(w, 1e-7, 1e7)`, and its derivative (passing at the bounds). */
function mmSide(w: number): [number, number] {
  if (w < SIDE_MIN) return [SIDE_MIN, 0];
  if (w > SIDE_MAX) return [SIDE_MAX, 0];
  return [w, 1];
}

/** The geometry of one pair: pred is box 1, target box 2 (ops.md, "Pair terms"). */
interface Pair {
  dx: number; dy: number;
  c1: number; s1: number; c2: number; s2: number;
  du1: number; dv1: number; du2: number; dv2: number;
  cd: number; sd: number; cd2: number; sd2: number;
  /** pred's sides as its family reads them (mmrotate: clamped), and d side / d w, d side / d h. */
  w1: number; h1: number; dw1: number; dh1: number;
  w2: number; h2: number;
  P1: number; Q1: number; P2: number; Q2: number;
  Euu: number; Evv: number; Fuu: number; Fvv: number;
  /** det(Sigma1 + Sigma2). */
  D: number;
}

function pairOf(p: ArrayLike<number>, po: number, t: ArrayLike<number>, to: number, mm: boolean): Pair {
  const dx = p[po] - t[to];
  const dy = p[po + 1] - t[to + 1];
  const [c1, s1] = cosSin(p[po + 4]);
  const [c2, s2] = cosSin(t[to + 4]);
  let w1 = p[po + 2], h1 = p[po + 3], w2 = t[to + 2], h2 = t[to + 3];
  let dw1 = 1, dh1 = 1;
  let k = 1 / 12;
  if (mm) {
    [w1, dw1] = mmSide(w1);
    [h1, dh1] = mmSide(h1);
    w2 = mmSide(w2)[0];
    h2 = mmSide(h2)[0];
    k = 1 / 4;
  }
  const P1 = k * w1 * w1, Q1 = k * h1 * h1, P2 = k * w2 * w2, Q2 = k * h2 * h2;
  const cd = c1 * c2 + s1 * s2;
  const sd = s2 * c1 - c2 * s1;
  const cd2 = cd * cd, sd2 = sd * sd;
  const Euu = P2 * cd2 + Q2 * sd2, Evv = P2 * sd2 + Q2 * cd2;
  const Fuu = P1 * cd2 + Q1 * sd2, Fvv = P1 * sd2 + Q1 * cd2;
  return {
    dx, dy, c1, s1, c2, s2,
    du1: dx * c1 + dy * s1, dv1: -dx * s1 + dy * c1,
    du2: dx * c2 + dy * s2, dv2: -dx * s2 + dy * c2,
    cd, sd, cd2, sd2, w1, h1, dw1, dh1, w2, h2, P1, Q1, P2, Q2, Euu, Evv, Fuu, Fvv,
    D: P1 * Q1 + P2 * Q2 + Q1 * Euu + P1 * Evv,
  };
}

/** Adjoints of the shared quantities: d loss / d (each), accumulated in reverse. */
interface Adj {
  dx: number; dy: number;
  du1: number; dv1: number; du2: number; dv2: number;
  /** d loss / d sd^2, with cd^2 = 1 - sd^2 (as the kernel: one adjoint, not two that cancel). */
  s2: number;
  P1: number; Q1: number;
  /** pred's sides as read (after mmrotate's clamp). */
  w1: number; h1: number;
}

const newAdj = (): Adj => ({ dx: 0, dy: 0, du1: 0, dv1: 0, du2: 0, dv2: 0, s2: 0, P1: 0, Q1: 0, w1: 0, h1: 0 });

/** Adds g * d D / d (pred's terms): D = P1*Q1 + P2*Q2 + Q1*Euu + P1*Evv. */
function backD(q: Pair, g: number, a: Adj): void {
  a.P1 += g * (q.Q1 + q.Evv);
  a.Q1 += g * (q.P1 + q.Euu);
  backE(q, g * q.Q1, g * q.P1, a);
}

/** Adds the adjoints of Euu = P2*cd^2 + Q2*sd^2 and Evv = P2*sd^2 + Q2*cd^2 (Sigma2 along pred's axes). */
function backE(q: Pair, gEuu: number, gEvv: number, a: Adj): void {
  a.s2 += (gEuu - gEvv) * (q.Q2 - q.P2);
}

/** Adds the adjoints of Fuu = P1*cd^2 + Q1*sd^2 and Fvv = P1*sd^2 + Q1*cd^2 (Sigma1 along target's axes). */
function backF(q: Pair, gFuu: number, gFvv: number, a: Adj): void {
  a.P1 += gFuu * q.cd2 + gFvv * q.sd2;
  a.Q1 += gFuu * q.sd2 + gFvv * q.cd2;
  a.s2 += (gFuu - gFvv) * (q.Q1 - q.P1);
}

/** d loss / d (cx, cy, w, h, theta) of pred from the adjoints, into out[o..o+5]. */
function finish(q: Pair, a: Adj, mm: boolean, out: Float64Array, o: number): void {
  out[o] = a.dx + a.du1 * q.c1 - a.dv1 * q.s1 + a.du2 * q.c2 - a.dv2 * q.s2;
  out[o + 1] = a.dy + a.du1 * q.s1 + a.dv1 * q.c1 + a.du2 * q.s2 + a.dv2 * q.c2;
  // P = k*w^2: dP/dw = 2k*w (k = 1/4 for mmrotate, 1/12 for ultralytics).
  const k2 = mm ? 0.5 : 1 / 6;
  out[o + 2] = (a.w1 + a.P1 * k2 * q.w1) * q.dw1;
  out[o + 3] = (a.h1 + a.Q1 * k2 * q.h1) * q.dh1;
  // d du1/d theta1 = dv1, d dv1/d theta1 = -du1, d sd^2/d theta1 = -2 cd sd.
  out[o + 4] = a.du1 * q.dv1 - a.dv1 * q.du1 - a.s2 * 2 * q.cd * q.sd;
}

/** `post(x)` of the Gaussian losses and its derivative. */
function post(x: number, cfg: RotatedConfig): [number, number] {
  let y = x, dy = 1;
  if (cfg.fun === 'log1p') {
    y = Math.log1p(x);
    dy = 1 / (1 + x);
  } else if (cfg.fun === 'sqrt') {
    y = Math.sqrt(Math.max(x, FLOOR));
    dy = x >= FLOOR ? 0.5 / y : 0;
  }
  if (cfg.tau >= 1) {
    const den = cfg.tau + y;
    return [1 - 1 / den, dy / (den * den)];
  }
  return [y, dy];
}

/** `sqrt(max(x, 1e-7))` when `on`, else x; and its derivative. */
function root(x: number, on: boolean): [number, number] {
  if (!on) return [x, 1];
  const y = Math.sqrt(Math.max(x, FLOOR));
  return [y, x >= FLOOR ? 0.5 / y : 0];
}

/** ProbIoU's pieces for a pair in ultralytics' sizes: `hd` and, with `grad`, the adjoints for g * d hd. */
function probiouHd(q: Pair, ra: number, eps: number, a: Adj | null, g: number): number {
  // r = |w1 h1| |w2 h2| / 144 = sqrt(det1 det2); ra = |w2 h2| / 144.
  const r = Math.abs(q.w1 * q.h1) * ra;
  const N = q.Q1 * q.du1 * q.du1 + q.P1 * q.dv1 * q.dv1 + q.Q2 * q.du2 * q.du2 + q.P2 * q.dv2 * q.dv2;
  const De = q.D + eps;
  const t12 = (0.25 * N) / De;
  const den = 4 * r + eps;
  const z = q.D / den;
  const t3 = 0.5 * Math.log(z + eps);
  const bd0 = t12 + t3;
  const bd = Math.min(Math.max(bd0, eps), 100);
  const e = Math.exp(-bd);
  const hd = Math.sqrt(1 - e + eps);
  if (!a || bd0 < eps || bd0 > 100) return hd;
  const gbd = (g * e) / (2 * hd);
  const gN = (gbd * 0.25) / De;
  const gz = (gbd * 0.5) / (z + eps);
  const gD = -gbd * (t12 / De) + gz / den;
  const gr = (-gz * z * 4) / den;
  a.du1 += gN * 2 * q.Q1 * q.du1;
  a.dv1 += gN * 2 * q.P1 * q.dv1;
  a.du2 += gN * 2 * q.Q2 * q.du2;
  a.dv2 += gN * 2 * q.P2 * q.dv2;
  a.Q1 += gN * q.du1 * q.du1;
  a.P1 += gN * q.dv1 * q.dv1;
  backD(q, gD, a);
  // abs' is 0 at 0: a zero side passes nothing through r.
  a.w1 += gr * sgn(q.w1) * Math.abs(q.h1) * ra;
  a.h1 += gr * sgn(q.h1) * Math.abs(q.w1) * ra;
  return hd;
}

/** KL(target || pred) (`kl21 = false`) or KL(pred || target), with the adjoints for g * d KL. */
function kl(q: Pair, cfg: RotatedConfig, swap: boolean, a: Adj | null, g: number): number {
  const a2 = cfg.alpha * cfg.alpha;
  const logV1 = Math.log(q.w1 * q.h1), logV2 = Math.log(q.w2 * q.h2);
  if (!swap) {
    const v = 0.5 * ((q.du1 * q.du1) / q.P1 + (q.dv1 * q.dv1) / q.Q1) / a2 + 0.5 * (q.Euu / q.P1 + q.Evv / q.Q1) + logV1 - logV2 - 1;
    if (a && g !== 0) {
      a.du1 += (g * q.du1) / (q.P1 * a2);
      a.dv1 += (g * q.dv1) / (q.Q1 * a2);
      a.P1 -= (g * 0.5 * ((q.du1 * q.du1) / a2 + q.Euu)) / (q.P1 * q.P1);
      a.Q1 -= (g * 0.5 * ((q.dv1 * q.dv1) / a2 + q.Evv)) / (q.Q1 * q.Q1);
      backE(q, (g * 0.5) / q.P1, (g * 0.5) / q.Q1, a);
      a.w1 += g / q.w1;
      a.h1 += g / q.h1;
    }
    return v;
  }
  const v = 0.5 * ((q.du2 * q.du2) / q.P2 + (q.dv2 * q.dv2) / q.Q2) / a2 + 0.5 * (q.Fuu / q.P2 + q.Fvv / q.Q2) + logV2 - logV1 - 1;
  if (a && g !== 0) {
    a.du2 += (g * q.du2) / (q.P2 * a2);
    a.dv2 += (g * q.dv2) / (q.Q2 * a2);
    backF(q, (g * 0.5) / q.P2, (g * 0.5) / q.Q2, a);
    a.w1 -= g / q.w1;
    a.h1 -= g / q.h1;
  }
  return v;
}

/**
 * The loss of one row and, where `grad` is given, d loss / d pred into grad[go..go+5] (and
 * d loss / d predDelta into gradDelta[gdo..gdo+2] for KFIoU with deltas).
 */
export function rotatedRow(
  p: ArrayLike<number>, po: number, t: ArrayLike<number>, to: number, cfg: RotatedConfig,
  grad: Float64Array | null, go: number,
  deltas?: { pred: ArrayLike<number>; target: ArrayLike<number>; at: number; grad: Float64Array | null },
): number {
  const mm = cfg.variant !== 'probiou';
  const q = pairOf(p, po, t, to, mm);
  const a = grad ? newAdj() : null;
  let loss: number;
  switch (cfg.variant) {
    case 'probiou': {
      const hd = probiouHd(q, Math.abs(q.w2 * q.h2) / 144, cfg.eps, a, 1);
      loss = hd;
      if (cfg.ciou) {
        const da = aspectAngle(q.w2, q.h2) - aspectAngle(q.w1, q.h1);
        const v = FOUR_OVER_PI2 * da * da;
        const k = v / (v + hd + cfg.eps);
        loss += k * v;
        if (a) {
          // d A(w, h) = (h dw - w dh) / (w^2 + h^2), 0 at w = h = 0; k is held constant.
          const gA = -k * FOUR_OVER_PI2 * 2 * da;
          const s = q.w1 * q.w1 + q.h1 * q.h1;
          if (s > 0) {
            a.w1 += (gA * q.h1) / s;
            a.h1 -= (gA * q.w1) / s;
          }
        }
      }
      break;
    }
    case 'gwd': {
      const V1 = q.w1 * q.h1, V2 = q.w2 * q.h2;
      const g0raw = (V1 * V2) / 16;
      const g0 = Math.max(g0raw, SQRT_FLOOR);
      const X = q.P1 * q.Euu + q.Q1 * q.Evv + 2 * g0;
      const S = Math.sqrt(Math.max(X, FLOOR));
      const W = q.P1 + q.Q1 + q.P2 + q.Q2 - 2 * S;
      const Y = q.dx * q.dx + q.dy * q.dy + cfg.alpha * cfg.alpha * W;
      const gg = Math.sqrt(Math.max(Y, FLOOR));
      const scale = cfg.normalize ? 2 * Math.sqrt(Math.sqrt(g0)) : 1;
      const x = gg / scale;
      const [y, dy] = post(x, cfg);
      loss = y;
      if (a) {
        let gg0 = 0;
        // x = gg / (2 g0^(1/4)): d x / d g0 = -x / (4 g0).
        if (cfg.normalize) gg0 -= (dy * x) / (4 * g0);
        if (Y >= FLOOR) {
          const gY = (dy / scale) * (0.5 / gg);
          a.dx += gY * 2 * q.dx;
          a.dy += gY * 2 * q.dy;
          const gW = gY * cfg.alpha * cfg.alpha;
          a.P1 += gW;
          a.Q1 += gW;
          if (X >= FLOOR) {
            const gX = (-2 * gW * 0.5) / S;
            a.P1 += gX * q.Euu;
            a.Q1 += gX * q.Evv;
            backE(q, gX * q.P1, gX * q.Q1, a);
            gg0 += 2 * gX;
          }
        }
        if (g0raw >= SQRT_FLOOR) {
          const gV1 = (gg0 * V2) / 16;
          a.w1 += gV1 * q.h1;
          a.h1 += gV1 * q.w1;
        }
      }
      break;
    }
    case 'kld':
    case 'jd':
    case 'kld_symmax':
    case 'kld_symmin': {
      const k12 = kl(q, cfg, false, null, 0);
      const k21 = cfg.variant === 'kld' ? 0 : kl(q, cfg, true, null, 0);
      let x: number, g12: number, g21: number;
      if (cfg.variant === 'kld') {
        const [r, dr] = root(k12, cfg.sqrt);
        [x, g12, g21] = [r, dr, 0];
      } else if (cfg.variant === 'jd') {
        const [r, dr] = root(0.5 * (k12 + k21), cfg.sqrt);
        [x, g12, g21] = [r, 0.5 * dr, 0.5 * dr];
      } else {
        const [r12, d12] = root(k12, cfg.sqrt);
        const [r21, d21] = root(k21, cfg.sqrt);
        const first = cfg.variant === 'kld_symmax' ? r12 > r21 : r12 < r21;
        const part12 = r12 === r21 ? 0.5 : first ? 1 : 0;
        x = cfg.variant === 'kld_symmax' ? Math.max(r12, r21) : Math.min(r12, r21);
        [g12, g21] = [part12 * d12, (1 - part12) * d21];
      }
      const [y, dy] = post(x, cfg);
      loss = y;
      if (a) {
        kl(q, cfg, false, a, dy * g12);
        if (cfg.variant !== 'kld') kl(q, cfg, true, a, dy * g21);
      }
      break;
    }
    case 'kfiou': {
      const V1 = q.w1 * q.h1, V2 = q.w2 * q.h2;
      const sD = Math.sqrt(q.D);
      const Vb = (V1 * V2) / (4 * sD);
      const den = V1 + V2 - Vb + cfg.eps;
      const kf = Vb / den;
      let kfLoss: number, gkf: number;
      if (cfg.fun === 'ln') [kfLoss, gkf] = [-Math.log(kf + cfg.eps), -1 / (kf + cfg.eps)];
      else if (cfg.fun === 'exp') [kfLoss, gkf] = [Math.exp(1 - kf) - 1, -Math.exp(1 - kf)];
      else [kfLoss, gkf] = [1 - kf, -1];
      let xy = 0;
      const e0 = deltas ? deltas.pred[deltas.at] - deltas.target[deltas.at] : q.dx;
      const e1 = deltas ? deltas.pred[deltas.at + 1] - deltas.target[deltas.at + 1] : q.dy;
      const ge: number[] = [];
      for (const e of [e0, e1]) {
        const ae = Math.abs(e);
        if (ae < cfg.beta) {
          xy += (0.5 * e * e) / cfg.beta;
          ge.push(e / cfg.beta);
        } else {
          xy += ae - 0.5 * cfg.beta;
          ge.push(sgn(e));
        }
      }
      loss = xy + kfLoss;
      if (a) {
        if (deltas) {
          if (deltas.grad) [deltas.grad[deltas.at], deltas.grad[deltas.at + 1]] = ge;
        } else {
          a.dx += ge[0];
          a.dy += ge[1];
        }
        const gVb = (gkf * (den + Vb)) / (den * den);
        const gV1 = (-gkf * Vb) / (den * den) + (gVb * V2) / (4 * sD);
        a.w1 += gV1 * q.h1;
        a.h1 += gV1 * q.w1;
        backD(q, (-gVb * Vb) / (2 * q.D), a);
      }
      break;
    }
  }
  if (a && grad) finish(q, a, mm, grad, go);
  return loss;
}

/**
 * Whether `len` values from `at` are all finite. A row with a NaN or an infinite value is NaN, loss
 * and gradient: no term of these Gaussians has a value there (an infinite angle has no cos or sin,
 * and an infinite centre or side puts Inf - Inf or 0 * Inf into the covariance algebra).
 */
function rowFinite(a: ArrayLike<number>, at: number, len: number): boolean {
  for (let k = 0; k < len; k++) if (!Number.isFinite(a[at + k])) return false;
  return true;
}

/** `rotated_iou_loss` (ops.md): the [n] loss and d loss / d pred [n, 5] (and predDelta [n, 2]). */
export function rotatedIouLossCpu(inputs: CpuInputs, p: ResolvedParams, dims: Dims): CpuForward {
  const pred = inputs.pred as Float64Array;
  const target = inputs.target as Float64Array;
  const pd = inputs.predDelta as Float64Array | undefined;
  const td = inputs.targetDelta as Float64Array | undefined;
  const n = dims.n ?? pred.length / 5;
  const cfg = rotatedConfig(p);
  const loss = new Float64Array(n);
  const g = new Float64Array(5 * n);
  const gd = pd ? new Float64Array(2 * n) : null;
  for (let i = 0; i < n; i++) {
    const deltas = pd && td ? { pred: pd, target: td, at: 2 * i, grad: gd } : undefined;
    loss[i] = rotatedRow(pred, 5 * i, target, 5 * i, cfg, g, 5 * i, deltas);
    if (!rowFinite(pred, 5 * i, 5) || !rowFinite(target, 5 * i, 5) || (pd && td && (!rowFinite(pd, 2 * i, 2) || !rowFinite(td, 2 * i, 2)))) {
      loss[i] = NaN;
      g.fill(NaN, 5 * i, 5 * i + 5);
      gd?.fill(NaN, 2 * i, 2 * i + 2);
    }
  }
  return {
    loss,
    backward(up): Record<string, Float64Array> {
      const out = new Float64Array(5 * n);
      for (let i = 0; i < 5 * n; i++) out[i] = up[Math.floor(i / 5)] * g[i];
      if (!gd) return { pred: out };
      const outD = new Float64Array(2 * n);
      for (let i = 0; i < 2 * n; i++) outD[i] = up[i >> 1] * gd[i];
      return { pred: out, predDelta: outD };
    },
  };
}

/** ProbIoU (`1 - hd`) of box i of a and box j of b, ultralytics' `batch_probiou` with `eps`. */
export function probiouValue(a: ArrayLike<number>, ao: number, b: ArrayLike<number>, bo: number, eps: number): number {
  const q = pairOf(a, ao, b, bo, false);
  return 1 - probiouHd(q, Math.abs(q.w2 * q.h2) / 144, eps, null, 0);
}

/** `pairwise_probiou` (ops.md): the [n, m] ProbIoU matrix; no gradient. */
export function pairwiseProbiouCpu(inputs: CpuInputs, p: ResolvedParams, dims: Dims): CpuForward {
  const a = inputs.a as Float64Array;
  const b = inputs.b as Float64Array;
  const n = dims.n ?? a.length / 5;
  const m = dims.m ?? b.length / 5;
  const eps = p.eps as number;
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) out[i * m + j] = rowFinite(a, 5 * i, 5) && rowFinite(b, 5 * j, 5) ? probiouValue(a, 5 * i, b, 5 * j, eps) : NaN;
  }
  return { loss: out, backward: () => ({}) };
}
