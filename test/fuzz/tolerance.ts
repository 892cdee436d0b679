/**
 * THE TOLERANCE RULE of the differential fuzzer (one rule for every op; no per-case fudge).
 *
 * Every value the GPU returns (each element of `loss`, the reduced loss, each gradient element) is
 * held against the float64 CPU reference `cpu` of the same element:
 *
 *     |gpu - cpu| <= K_op * u * (|cpu| + S) + tiny          u = 2^-24 (float32 unit roundoff)
 *
 * - `K_op` is 64 for ops made of + - * / min max sqrt only (l1, mse, smooth_l1, huber, iou_loss
 *   iou/giou/diou/eiou in linear/square mode, pairwise iou/giou/diou), and 512 for ops that use
 *   exp, log, pow or atan (WGSL allows 3 + 2|x| ulp for exp/exp2, which is <= 256 ulp wherever
 *   the result is a normal float32, and a 2^-21 absolute error for log near 1).
 * - `S` is the magnitude of the terms the element is computed from, in the op's float32 error
 *   model (`termScale` below): 0 where a form without cancellation exists (regression losses and
 *   gradients must be accurate to K ulp of the value itself: that is what defect 6 asks near
 *   d = 0; balanced_l1's gradient with beta != 1 is the exception: it crosses 0 inside the curved
 *   zone, a difference of log1p(z) and (beta-1)/(beta(1+z)), whose sizes are its S); the logit magnitudes that a log-sum-exp or softplus cancels (`x - lse` has an absolute
 *   error of u*(|x| + |max|)); probabilities subtracted from labels in a gradient (`p - 1` where
 *   p rounds to 1); for boxes, 1 (`1 - iou` and the penalties are differences of O(1) ratios), the
 *   largest gradient of the row (a box's four partials share their terms), and the float32
 *   rounding of the centre offsets `x1 + x2 - x1g - x2g` wherever that sum is not exact in float32
 *   (it carries u*|coordinate|, which at 1e5 coordinates is expected), divided by the enclosing
 *   diagonal. For the kl_div loss the terms are p*(|d| + max|d|) with d the logit difference, so
 *   the cancellation of two nearly equal logs is NOT covered (defect 7). Where a focal weight is a
 *   power of a difference (QFL's |score - s|^beta, varifocal's |s - t|^gamma), that difference
 *   carries u*(s + |t|) and S adds its propagation through the power.
 * - 'mean'/'sum': `S` is the sum over the rows of |weight * (loss + S_row)| / denominator: the
 *   bound grows with the sum of the absolute terms, not with |sum|, since cancellation is expected.
 *   Gradients scale their row's `S` by |upstream| (gradOutput * weight / denominator).
 * - `tiny` = K_op * 2^-126 * max(1, |upstream|): float32 may flush subnormals to zero. For the logit
 *   ops, plus 2^-48 * |upstream|: their float64 reference forms sigmoid(x) * (1 - sigmoid(x)) and
 *   p - 1, exact to about 2^-52 of O(1) quantities, not relatively (a logit of 51 gives 0 there).
 * - Boxes in cxcywh/xywh: the corners carry u*|centre| from the conversion (however the kernel
 *   orders it), so S adds 2*(|centre| + |size|)/min size to the loss and that over min size^2 to
 *   gradients where the conversion is inexact; gradients add the iou/enclosure partials
 *   (w + h)/union and (cw + ch)/(cw*ch) that cancel at identical or nested boxes.
 * - A near tie of boxes (two corners that min/max compare, within float32 rounding of each other
 *   but not equal) may fall on either side in float32: the gradient of either side holds there.
 * - ops.md's "More box losses" (`moreTerms`): Focaler's interval divides the IoU term's error by
 *   u - d (and mode 'log' reads it relative to t0 - d); Alpha-IoU multiplies it by the power;
 *   Wise-IoU by R and its focusing factor; Shape-IoU's weights by up to 2; Inner-IoU's overlap
 *   widths carry the rounding of the offset and sizes they are formed from; MPDIoU's corner
 *   differences that of the corners. The IoU term at a bound of Focaler's interval, mmdetection's
 *   alpha at iou = 0.5 and Alpha-IoU's cap at 1 are ties like the corners' (either side holds).
 * - The first float32 rounding of the kernel's input transform is a float32 limit, not a defect:
 *   the GPU may match either the CPU on the inputs as given or the CPU on that rounded transform
 *   (regression: d = fround(pred - target); boxes: the xyxy corners rounded to float32, as the
 *   kernel converts cxcywh and xywh; gradients chained back to the format by hand).
 *
 * - The rotated ops (`rotated_iou_loss`, `pairwise_probiou`; K = 512): S is a running error bound
 *   of the kernel's own float32 program (./rotated.ts): the row evaluated in float64 in the order
 *   of shaders/rotated*.wgsl, forward and reverse, each intermediate carrying the bound of its
 *   float32 error (each rounding u of its result, inputs exact, float32 constants and uniforms their
 *   own rounding, cos/sin 4u absolutely, exp 3 + 2|x| ulp, log 2^-21 absolutely, atan2 a few ulp,
 *   results below 2^-126 flushable; divisions and exp beyond first order, by the least a divisor
 *   can be, or the kernel's clamp floor), times 8: so ProbIoU's D - 4r cancellation and its
 *   1/(2 hd) near identical boxes, GWD's W (u (P1 + Q1 + P2 + Q2)) through sqrt(Y), KL's
 *   0.5 tr - 1 + log V1 - log V2 through its sqrt, thin boxes' E/P1, KFIoU's Vb / (V1 + V2 - Vb +
 *   eps) and the theta partial's 2 cd sd enter as the kernel forms them, each gradient element
 *   with its own terms. A threshold within that bound of a computed value (bd0 against eps and
 *   100, GWD's g0, X and Y floors, the sqrt floors, r(KL12) against r(KL21)) is a tie: the row is
 *   evaluated on every combination of sides, and their spread is a jump (either side holds).
 *   test/fuzz/rotated-rule.test.ts checks the model's float64 values are the reference's, and
 *   that a flipped theta partial and ProbIoU's eps outside the sqrt are flagged.
 * - The ranking losses (`ap_loss`, `rank_sort`, `rankingTerms` below) return a loss already
 *   reduced (one number, or two) and an error-driven update times one gradOutput: each loss
 *   element and each update element is held to the rule with K = 64, S from their own float32
 *   model (the kernel's prefix-sum form of the ramp cancels terms of size |score|/delta).
 *
 * Outside the rule, always defects: a non-finite GPU value where the CPU's is finite (for finite
 * inputs), a non-finite CPU value for finite inputs (the reference must be right), a different
 * length or shape, and a refusal on one side only or with a different `DetlossError` code.
 */
import { crossEntropyDenominator } from '../../src/cpu/logits';
import { boxLoss, boxLossConfig } from '../../src/cpu/iou';
import type { ResolvedParams } from '../../src/cpu/types';
import type { FuzzCase, FuzzInput, HostData } from './cases';
import { rotatedConfig } from '../../src/cpu/rotated';
import { probiouPairTerms, rotatedRowTerms } from './rotated';

export const U = 2 ** -24;
const TINY = 2 ** -126;

const RATIONAL = new Set(['l1', 'mse', 'smooth_l1', 'huber', 'hinge', 'hinge_embedding', 'margin_ranking', 'nll', 'ap_loss', 'rank_sort']);

/** K_op for a case (see the rule above). */
export function kOf(c: FuzzCase): number {
  if (RATIONAL.has(c.op)) return 64;
  if (c.op === 'iou_loss') {
    // Shape-IoU and Wise-IoU use exp and pow, Alpha-IoU pow.
    const transcendental = ['ciou', 'siou', 'shape', 'wiou'].includes(c.options.variant as string) || c.options.mode === 'log';
    return transcendental || (c.options.power !== undefined && c.options.power !== 1) ? 512 : 64;
  }
  if (c.op === 'pairwise_iou') return c.options.variant === 'ciou' ? 512 : 64;
  return 512;
}

export const dataOf = (v: FuzzInput | undefined): HostData | undefined => (v === undefined ? undefined : 'data' in v ? v.data : v);
const f64 = (v: FuzzInput | undefined) => {
  const d = dataOf(v);
  return d ? Float64Array.from(d) : undefined;
};
const sigmoid = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
const pw = (x: number, y: number) => (y === 0 ? 1 : x === 0 ? 0 : x ** y);

/** The per-row data of `termScale`: S of each 'none' element (before weight), S of each gradient element (before upstream). */
export interface Terms {
  loss: Float64Array;
  grad: Float64Array;
  /** The output element a gradient element belongs to. */
  rowOf(k: number): number;
  /** Other gradients than the first (rotated_iou_loss's predDelta): S and row of each element, by name. */
  byName?: Record<string, { grad: Float64Array; rowOf(k: number): number }>;
}

/**
 * Magnitude (in units of u) of the float32 rounding of `x1 + x2 - x1g - x2g` in the order the
 * kernel takes (boxes.wgsl gap_of: corner differences first, or sums first, whichever has the
 * smaller partial results): 0 when its partial results are exact, else twice their size.
 */
function orderedError(p1: number, p2: number, s1: number, s2: number): number {
  const f = Math.fround;
  const [a, b, sign] = Math.abs(f(s1)) + Math.abs(f(s2)) < Math.abs(f(p1)) + Math.abs(f(p2)) ? [s1, s2, -1] : [p1, p2, 1];
  const exact = f(a) === a && f(b) === b && f(a + sign * b) === a + sign * b;
  return exact ? 0 : 2 * (Math.abs(a) + Math.abs(b));
}
function centreError(a: number, b: number, c: number, d: number): number {
  return orderedError(a - c, b - d, a + b, c + d);
}

/**
 * The same for the kernel's own form of the offset in cxcywh and xywh (boxes.wgsl centre_gap):
 * 2 (c - cg), or 2 (x - xg) + (w - wg), whose two terms may cancel.
 */
function gapError(A: ArrayLike<number>, i: number, B: ArrayLike<number>, j: number, format: string, axis: number): number {
  if (format === 'xyxy') return 0;
  const dc = 2 * (A[4 * i + axis] - B[4 * j + axis]);
  if (format === 'cxcywh') return Math.fround(dc) === dc ? 0 : 2 * Math.abs(dc);
  const dw = A[4 * i + axis + 2] - B[4 * j + axis + 2];
  return orderedError(dc, dw, 2 * A[4 * i + axis] + A[4 * i + axis + 2], 2 * B[4 * j + axis] + B[4 * j + axis + 2]);
}

/**
 * S for a pair of boxes (xyxy corners as the kernel sees them, `conv` the magnitude of the float32
 * conversion of the corners from another format, 0 for xyxy or when exact): [loss term, gradient
 * term of the x corners, of the y corners]. Each partial derivative is held to the magnitudes of
 * its own terms (an x corner's IoU partial is made of the overlap height and the heights, not of
 * the widths): a row's small partials are not excused by its large ones.
 */
function boxTerms(p: ArrayLike<number>, t: ArrayLike<number>, variant: string, mode: string, eps: number, conv: number, axes: number[], gap: [number, number] = [0, 0], sizes?: number[], shapeScale = 0, r = 1, kr = 1): [number, number, number] {
  // the transcendental parts (held to the op's K): CIoU's v, log's own error; the rest, roundings of
  // + - * /, is scaled by kr = 64 / K
  let lossT = 0;
  let gxT = 0;
  let gyT = 0;
  // (the rounded reference's offset is formed from the rounded corners: 2 u*conv from the kernel's)
  const ex = Math.max(centreError(p[0], p[2], t[0], t[2]), gap[0], 2 * conv);
  const ey = Math.max(centreError(p[1], p[3], t[1], t[3]), gap[1], 2 * conv);
  // cxcywh and xywh: the kernel reads the sizes from the input (boxes.wgsl box_size), not from
  // corners rounded at the coordinates' scale (a box 1e-4 high at y = 1e4 has float32 corners 0 apart)
  const w = sizes ? sizes[0] : Math.abs(p[2] - p[0]);
  const h = sizes ? sizes[1] : Math.abs(p[3] - p[1]);
  const wg = sizes ? sizes[2] : Math.abs(t[2] - t[0]);
  const hg = sizes ? sizes[3] : Math.abs(t[3] - t[1]);
  const cw = Math.max(p[2], t[2]) - Math.min(p[0], t[0]);
  const ch = Math.max(p[3], t[3]) - Math.min(p[1], t[1]);
  const iw = Math.max(0, Math.min(p[2], t[2]) - Math.max(p[0], t[0]));
  const ih = Math.max(0, Math.min(p[3], t[3]) - Math.max(p[1], t[1]));
  const union = w * h + wg * hg - iw * ih + eps;
  const iou = union > 0 ? (iw * ih) / union : 0;
  // d loss / d iou of the IoU term: 1, or 2 iou (square), or 1/iou (log)
  const f = variant === 'iou' && mode === 'square' ? 2 * iou : variant === 'iou' && mode === 'log' ? 1 / Math.max(iou, 1e-30) : 1;
  // d iou / d x-corner = (d inter - iou d union) / union: the overlap height (where the boxes
  // overlap in x) and the heights; Inner-IoU's term is the IoU of the inner boxes, placed about the
  // target's centre with sizes times r, whose corners move by r times as much
  let gx: number;
  let gy: number;
  let term = iou;
  if (r === 1) {
    gx = union > 0 ? (f * ((iw > 0 ? ih : 0) + iou * (h + ih))) / union : 0;
    gy = union > 0 ? (f * ((ih > 0 ? iw : 0) + iou * (w + iw))) / union : 0;
  } else {
    const ox = (p[0] + p[2] - t[0] - t[2]) / 2;
    const oy = (p[1] + p[3] - t[1] - t[3]) / 2;
    const iiw = Math.max(0, Math.min(ox + (r * w) / 2, (r * wg) / 2) - Math.max(ox - (r * w) / 2, -(r * wg) / 2));
    const iih = Math.max(0, Math.min(oy + (r * h) / 2, (r * hg) / 2) - Math.max(oy - (r * h) / 2, -(r * hg) / 2));
    const iu = r * r * (w * h + wg * hg) - iiw * iih + eps;
    const ti = iu > 0 ? (iiw * iih) / iu : 0;
    term = ti;
    const fi = variant === 'iou' && mode === 'square' ? 2 * ti : variant === 'iou' && mode === 'log' ? 1 / Math.max(ti, 1e-30) : 1;
    gx = iu > 0 ? (fi * r * ((iiw > 0 ? iih : 0) + ti * (r * h + iih))) / iu : 0;
    gy = iu > 0 ? (fi * r * ((iih > 0 ? iiw : 0) + ti * (r * w + iiw))) / iu : 0;
  }
  // the IoU term carries u relative to the IoU (a ratio of products; union's cancellation at nested
  // boxes is bounded by it), so 1 - iou carries u*iou; its square 2 iou^2; its log u absolutely
  let loss = variant === 'iou' && mode === 'log' ? 0 : variant === 'iou' && mode === 'square' ? 2 * term * term : term;
  if (variant === 'iou' && mode === 'log') lossT += 1;
  const C = Math.abs(cw * ch) + eps;
  if (variant === 'giou') {
    // (C - union)/C: C - union cancels terms of C (and union / C may be formed instead)
    loss += 1 + union / C;
    // d union / C and union d C / C^2
    gx += (h + ih + (union * Math.abs(ch)) / C) / C;
    gy += (w + iw + (union * Math.abs(cw)) / C) / C;
  }
  const c2 = cw * cw + ch * ch + eps;
  const sx = Math.abs(p[0] + p[2] - t[0] - t[2]) / 2;
  const sy = Math.abs(p[1] + p[3] - t[1] - t[3]) / 2;
  const distance = variant !== 'iou' && variant !== 'giou';
  if (distance) {
    // rho^2 / c2: d rho^2 / c2 and rho^2 d c2 / c2^2 (an enclosing corner)
    const rho2 = sx * sx + sy * sy;
    loss += 2 * (rho2 / c2);
    gx += (sx + (2 * rho2 * Math.abs(cw)) / c2) / c2;
    gy += (sy + (2 * rho2 * Math.abs(ch)) / c2) / c2;
  }
  if (variant === 'eiou') {
    // (w - wg)^2 / (cw^2 + eps) and its partials 2 e/(cw^2 + eps) and 2 e^2 cw/(cw^2 + eps)^2 cancel
    // in the gradient (exactly, but for eps, when cw = w - wg: an eps below a float32 step of cw^2)
    // (the gap e = w - wg itself carries u*(w + wg): nearly equal sizes leave it few good digits)
    const [ax, ay] = [[w - wg, cw, w + wg], [h - hg, ch, h + hg]].map(([e, cc, sum]) => {
      const den = cc * cc + eps;
      loss += (e * e + 2 * Math.abs(e) * sum) / den;
      return (2 * (Math.abs(e) + sum)) / den + (2 * e * e * Math.abs(cc)) / (den * den);
    });
    gx += ax;
    gy += ay;
  }
  if (variant === 'ciou') {
    // alpha v, v = 4/pi^2 (atan(wg/hg) - atan(w/h))^2: d v / d x-corner ~ h / (w^2 + h^2)
    const d2 = w * w + h * h;
    const gap2 = Math.abs(Math.atan2(wg, hg) - Math.atan2(w, h)) + 1e-3;
    // alpha v = v^2 / (1 - iou + v): v relative (atan), and the cancellation of 1 - iou
    const v = (4 / Math.PI ** 2) * gap2 * gap2;
    const den = Math.abs(1 - iou) + v + 1e-7;
    lossT += 2 * v + (v * v * (1 + iou)) / (den * den);
    if (d2 > 0) {
      gxT += (1.7 * gap2 * h) / d2;
      gyT += (1.7 * gap2 * w) / d2;
    }
  }
  if (conv > 0) {
    // The kernel reads sizes and the centre offset from the input and takes only the intersection
    // and the enclosing box from its rounded corners; the rounded reference forms all of them from
    // those corners. The two differ by the corners' rounding (u*conv per side) in the sizes: in the
    // union, relative to it, as (w + h + wg + hg)/union; in CIoU's aspect angles by 1/(the longer
    // side) (atan of a ratio); in EIoU's width gaps over the enclosure; in Shape-IoU's weights by
    // 1/(the target's shorter side).
    // d union = h dw + w dh + hg dwg + wg dhg, each size off by the rounding of its axis' corners
    const [dw, dh, dwg, dhg] = axes.map((v) => 2 * v);
    const rel = union > 0 ? (h * dw + w * dh + hg * dwg + wg * dhg) / union : 0;
    loss += rel * Math.max(1, f * iou);
    // an x corner's partial holds the heights, a y corner's the widths
    // (and d union / d x-corner holds the pred's height: iou dh / union)
    gx += rel * gx + (union > 0 ? (f * iou * dh) / union : 0);
    gy += rel * gy + (union > 0 ? (f * iou * dw) / union : 0);
    const add = (l: number, g: number) => {
      loss += l;
      gx += g;
      gy += g;
    };
    if (variant === 'ciou') {
      const l1 = Math.max(w, h);
      const l2 = Math.max(wg, hg);
      add(2 * conv * ((l1 > 0 ? 1 / l1 : 0) + (l2 > 0 ? 1 / l2 : 0)), 2 * conv * ((l1 > 0 ? 1 / (l1 * l1) : 0) + (l2 > 0 ? 1 / (l2 * l2) : 0)));
    }
    if (variant === 'eiou' || variant === 'siou') {
      const a = Math.abs(cw) + eps;
      const b = Math.abs(ch) + eps;
      add(4 * conv * (1 / a + 1 / b), 4 * conv * (1 / (a * a) + 1 / (b * b)));
    }
    if (variant === 'shape') {
      // the weights 2 r^s / (r^s + 1), r = wg/hg: relative sensitivity s / (1 + r^s) to r's relative error
      const m = Math.min(wg, hg);
      const M = Math.max(wg, hg);
      if (m > 0) {
        const relW = (2 * conv * (1 + shapeScale)) / (m * (1 + (M / m) ** shapeScale));
        loss += relW;
        gx += relW * gx;
        gy += relW * gy;
      }
    }
  }
  if (!distance || (ex === 0 && ey === 0)) return [kr * loss + lossT, kr * gx + gxT, kr * gy + gyT];
  // the centre offset's own rounding (ex, ey: in units of u, as the values)
  loss += (sx * ex + sy * ey) / c2;
  gx += (ex + ey) / c2;
  gy += (ex + ey) / c2;
  if (variant === 'siou') {
    const sigma = Math.sqrt(sx * sx + sy * sy + eps);
    const inv = 1 / sigma + 1 / (Math.abs(cw) + eps) + 1 / (Math.abs(ch) + eps);
    loss += (ex + ey) * inv;
    gx += (ex + ey) * inv * inv;
    gy += (ex + ey) * inv * inv;
  }
  return [kr * loss + lossT, kr * gx + gxT, kr * gy + gyT];
}

/**
 * The terms of ops.md's "More box losses" params for row i of an `iou_loss` case (issue 14):
 * - `scale`: how much the IoU term's error is amplified: by 1/(u - d) in Focaler's interval, by at
 *   most `power` in Alpha-IoU's t^a (and a q^(a-1) for a penalty q > 1), by R * max(1, factor)
 *   in Wise-IoU (R <= e^2, the cap of its exponent), by the weights ww, hh <= 2 in Shape-IoU.
 * - `loss`, `grad`: Inner-IoU's inner boxes are placed about the target's centre from the centre
 *   offset and the sizes (iou.wgsl iou_term), so their overlap widths carry u*(|offset| + r*size)
 *   (and the conversion's error), relative to those widths; MPDIoU's corner differences carry
 *   u*|corner| (the kernel's frame, or the conversion's), times 2/(W^2 + H^2) in the gradient.
 * - Alpha-IoU's bases are capped at 1 (only inverted boxes exceed it): within rounding of 1 that is
 *   a tie too.
 * - `thin`: the inner overlap's conditioning: (size of its corners) / (its smaller width).
 * - `tie`, `flip`: a near tie that float32 may decide either way: two inner corners within its
 *   rounding, or the IoU term within rounding of a bound of Focaler's interval (the gradient of
 *   the other side, from the reference with the bound moved, is `flip`).
 */
function moreTerms(A: ArrayLike<number>, B: ArrayLike<number>, i: number, format: string, p: Record<string, unknown>, pa: number[], pb: number[], conv: number, k: number): { scale: number; rel: number; loss: number; grad: number; gradX: number; gradY: number; thin: number; tie: boolean; flip: number } {
  const out = { scale: 1, rel: 1, loss: 0, grad: 0, gradX: 0, gradY: 0, thin: 0, tie: false, flip: 0 };
  const variant = (p.variant as string) ?? 'iou';
  const r = (p.innerRatio as number | undefined) ?? 1;
  const [fd, fu] = (p.focaler as number[] | undefined) ?? [0, 1];
  const a = (p.power as number | undefined) ?? 1;
  const ea = xyxy64(A, i, format);
  const eb = xyxy64(B, i, format);
  const w = ea[2] - ea[0], h = ea[3] - ea[1], wg = eb[2] - eb[0], hg = eb[3] - eb[1];
  const cw = Math.max(ea[2], eb[2]) - Math.min(ea[0], eb[0]);
  const ch = Math.max(ea[3], eb[3]) - Math.min(ea[1], eb[1]);
  const ox = (ea[0] + ea[2] - eb[0] - eb[2]) / 2;
  const oy = (ea[1] + ea[3] - eb[1] - eb[3]) / 2;
  // Focaler's map (t0 - d)/(u - d) amplifies the IoU term's error inside its interval; outside it the
  // term is constant (a near bound is a tie, below)
  const t0f = p.focaler === undefined ? 0.5 : 1 - boxLoss(ea, eb, { variant: 'iou', mode: 'linear', eps: (p.eps as number) ?? 1e-7, innerRatio: r }, new Float64Array(4), 0);
  out.scale = t0f > fd && t0f < fu ? 1 / (fu - fd) : 1;
  if (a !== 1) {
    const q = (ox * ox + oy * oy) / (cw * cw + ch * ch + ((p.eps as number) ?? 1e-7));
    out.scale *= a * Math.max(1, q) ** (a - 1);
  }
  if (variant === 'shape') out.scale *= 2;
  if (variant === 'wiou') {
    const iou = 1 - boxLoss(ea, eb, { variant: 'iou', mode: 'linear', eps: (p.eps as number) ?? 1e-7 }, new Float64Array(4), 0);
    const beta = (1 - iou) / ((p.iouMean as number | undefined) ?? 1);
    const al = (p.wiouAlpha as number | undefined) ?? 1.9;
    const de = (p.wiouDelta as number | undefined) ?? 3;
    // loss = R (1 - t) f(beta): d loss = R (f + (1 - t) |f'| / mean) d(1 - t) ~ R (2 f + beta |f'|) d(1 - iou),
    // with R = exp(rho2 / c2) (its exponent capped at 2) as the boxes give it, not its cap e^2
    const version = (p.wiouVersion as number | undefined) ?? 3;
    // beta = (1 - iou)/mean is good to u*iou/mean absolutely: near 0 the factor's derivatives are
    // taken no closer than that
    const mean = (p.iouMean as number | undefined) ?? 1;
    const be = Math.max(beta, (k * U) / mean);
    const L = Math.log(al);
    const g0 = al ** (de - be) / de;
    const f = version === 1 ? 1 : version === 2 ? Math.sqrt(beta) : beta * al ** (de - beta) / de;
    const df = version === 1 ? 0 : version === 2 ? 0.5 / Math.sqrt(be) : g0 * Math.abs(1 - be * L);
    const d2f = version === 1 ? 0 : version === 2 ? 0.25 / be ** 1.5 : g0 * Math.abs(L) * Math.abs(2 - be * L);
    const c2 = cw * cw + ch * ch + ((p.eps as number) ?? 1e-7);
    const R = Math.exp(Math.min(2, (ox * ox + oy * oy) / c2));
    // the loss's and the gradient's, and that of beta's own rounding (1 - iou: u absolutely) in the gradient
    out.scale *= R * (2 * f + beta * df + (2 * df + beta * d2f) / mean) + 1e-30;
  }
  if (r !== 1) {
    // inner corners about the target's centre: (offset -+ r w / 2) against (-+ r wg / 2)
    // (from the centre offset and the sizes, read from the input: the conversion's rounding is not in them)
    const mx = Math.abs(ox) + r * Math.max(Math.abs(w), Math.abs(wg));
    const my = Math.abs(oy) + r * Math.max(Math.abs(h), Math.abs(hg));
    const plo = [ox - (r * w) / 2, oy - (r * h) / 2];
    const phi = [ox + (r * w) / 2, oy + (r * h) / 2];
    const lo = [-(r * wg) / 2, -(r * hg) / 2];
    const hi = [(r * wg) / 2, (r * hg) / 2];
    const iiw = Math.min(phi[0], hi[0]) - Math.max(plo[0], lo[0]);
    const iih = Math.min(phi[1], hi[1]) - Math.max(plo[1], lo[1]);
    const mag = [mx, my];
    const near = (x: number, y: number, k: number) => x !== y && Math.abs(x - y) <= 8 * U * mag[k];
    out.tie = [0, 1].some((k) => near(plo[k], lo[k], k) || near(phi[k], hi[k], k));
    if (iiw > 0 && iih > 0) {
      // the inner IoU t carries its overlap's relative error `thin`, and so do its partials
      // r (iih + t (h + iih)) / union (x corners), r (iiw + t (w + iiw)) / union (y corners)
      out.thin = Math.max(mx / iiw, my / iih);
      const iu = r * r * (Math.abs(w * h) + Math.abs(wg * hg)) - iiw * iih;
      const t = iu > 0 ? (iiw * iih) / iu : 0;
      // (times d loss / d t: 2 t for mode 'square', 1/t for 'log')
      const fm = variant === 'iou' && p.mode === 'square' ? 2 * t : variant === 'iou' && p.mode === 'log' ? 1 / Math.max(t, 1e-30) : 1;
      out.loss += out.thin * t * fm;
      // per axis: an x corner's partial holds the overlap height (its own relative error my/iih)
      // and t (the larger of the two)
      // ('square' and 'log' multiply by 2t or 1/t, which carry t's relative error `thin` as well)
      const nl = variant === 'iou' && (p.mode === 'square' || p.mode === 'log') ? out.thin : 0;
      if (iu > 0) {
        out.gradX += (fm * r * (my + out.thin * t * (r * Math.abs(h) + iih) + nl * (iih + t * (r * Math.abs(h) + iih)))) / iu;
        out.gradY += (fm * r * (mx + out.thin * t * (r * Math.abs(w) + iiw) + nl * (iiw + t * (r * Math.abs(w) + iiw)))) / iu;
      }
    }
  }
  // MPDIoU's corner differences are of the corners the kernel and the rounded reference share: one
  // rounding each, relative to themselves (no term of their own).
  const cfg = boxLossConfig({ variant: 'iou', mode: 'linear', eps: 1e-7, ...p } as ResolvedParams);
  const g = new Float64Array(4);
  const chain = format === 'xyxy' ? 1 : 2;
  if (a !== 1 && ['giou', 'diou', 'ciou'].includes(variant)) {
    // Alpha-IoU's bases are capped at 1 (src/cpu/iou.ts powGrad); only an inverted box takes one
    // there, and within float32 rounding of 1 (GIoU's c/(c + eps) with c < 0) it may fall either
    // way: the other side's gradient is a times the penalty's, bounded by the power-1 loss's.
    const c1 = cw * ch;
    const q = (ox * ox + oy * oy) / (cw * cw + ch * ch + cfg.eps);
    const iw = Math.min(ea[2], eb[2]) - Math.max(ea[0], eb[0]);
    const ih = Math.min(ea[3], eb[3]) - Math.max(ea[1], eb[1]);
    const union = w * h + wg * hg - (iw > 0 && ih > 0 ? iw * ih : 0);
    const pen = (c1 - union) / (c1 + cfg.eps);
    if ([pen, q].some((x) => Math.abs(x - 1) <= 1e-5)) {
      out.tie = true;
      boxLoss(ea, eb, { ...cfg, power: 1 }, g, 0);
      for (const v of g) out.flip = Math.max(out.flip, a * Math.abs(v) * chain);
    }
  }
  if (variant === 'ciou' && p.ciouAlpha === 'mmdet') {
    // mmdetection's alpha is 0 up to iou = 0.5 and v / (1 - iou + v) above: at a near tie the loss
    // may take either, a step of alpha * v (<= 1), and the gradient either side's
    const iou = 1 - boxLoss(ea, eb, { variant: 'iou', mode: 'linear', eps: cfg.eps }, new Float64Array(4), 0);
    if (Math.abs(iou - 0.5) <= 1e-5) {
      out.tie = true;
      out.loss += 1 / (k * U);
      boxLoss(ea, eb, { ...cfg, ciouAlpha: 'torchvision' }, g, 0);
      for (const v of g) out.flip = Math.max(out.flip, 2 * Math.abs(v) * chain);
    }
  }
  if (p.focaler !== undefined) {
    // the IoU term before Focaler's interval, and the rows's gradient with either bound moved
    const t0 = 1 - boxLoss(ea, eb, { variant: 'iou', mode: 'linear', eps: cfg.eps, innerRatio: r }, new Float64Array(4), 0);
    // mode 'log' reads t's error relative to t = (t0 - d)/(u - d): the subtraction amplifies t0's by t0/(t0 - d)
    // (the gradient -t'/t carries that relative error as a whole: `rel` scales the row's gradient)
    if (p.mode === 'log' && t0 > fd) {
      out.rel = Math.max(1, t0 / (t0 - fd));
      out.scale *= out.rel;
    }
    const slack = 1e-5 * (1 + out.thin);
    if (Math.abs(t0 - fd) <= slack || Math.abs(t0 - fu) <= slack) {
      out.tie = true;
      for (const f of [[fd - 2 * slack, fu], [fd + 2 * slack, fu], [fd, fu - 2 * slack], [fd, fu + 2 * slack]]) {
        boxLoss(ea, eb, { ...cfg, focaler: f }, g, 0);
        for (const v of g) out.flip = Math.max(out.flip, Math.abs(v) * chain);
      }
    }
  }
  return out;
}

/** xyxy corners of box i in float64. */
function xyxy64(src: ArrayLike<number>, i: number, format: string): number[] {
  const [a, b, c, d] = [src[4 * i], src[4 * i + 1], src[4 * i + 2], src[4 * i + 3]];
  if (format === 'cxcywh') return [a - c / 2, b - d / 2, a + c / 2, b + d / 2];
  if (format === 'xywh') return [a, b, a + c, b + d];
  return [a, b, c, d];
}

/**
 * The kernel's frame for a pair (boxes.wgsl pair_origin): per axis, the reference point (centre in
 * cxcywh, corner in xywh) of the second box where the two points are closer to each other than
 * either is to 0, else 0. Moving there is exact (Sterbenz), and the corners are then formed at the
 * scale of the pair's offset and sizes, not of the coordinates.
 */
function frameOrigin(A: ArrayLike<number>, i: number, B: ArrayLike<number>, j: number, format: string): [number, number] {
  if (format === 'xyxy') return [0, 0];
  return [0, 1].map((k) => {
    const a = A[4 * i + k];
    const b = B[4 * j + k];
    return Math.abs(a - b) < Math.min(Math.abs(a), Math.abs(b)) ? b : 0;
  }) as [number, number];
}

/** Box i's xyxy corners in float64, moved by `o`. */
function corners64(src: ArrayLike<number>, i: number, format: string, o: [number, number]): number[] {
  const [a, b, c, d] = [src[4 * i] - o[0], src[4 * i + 1] - o[1], src[4 * i + 2], src[4 * i + 3]];
  if (format === 'cxcywh') return [a - c / 2, b - d / 2, a + c / 2, b + d / 2];
  if (format === 'xywh') return [a, b, a + c, b + d];
  return [a, b, src[4 * i + 2], src[4 * i + 3]];
}

/** Box i's xyxy corners moved by `o`, converted in float32 as the kernel does (boxes.wgsl pair_to_xyxy). */
function corners32(src: ArrayLike<number>, i: number, format: string, o: [number, number]): number[] {
  const r = Math.fround;
  const [a, b, c, d] = [src[4 * i] - o[0], src[4 * i + 1] - o[1], src[4 * i + 2], src[4 * i + 3]];
  if (format === 'cxcywh') return [r(a - r(0.5 * c)), r(b - r(0.5 * d)), r(a + r(0.5 * c)), r(b + r(0.5 * d))];
  if (format === 'xywh') return [a, b, r(a + c), r(b + d)];
  return [a, b, c, d];
}

/**
 * The xyxy corners of pred box i and target box j as the kernel forms them: in the pair's frame
 * (`frameOrigin`), converted in float32. A loss on boxes does not change when both move together,
 * so the reference on these corners is the reference on what the kernel computes from.
 */
export function pairCorners32(A: ArrayLike<number>, i: number, B: ArrayLike<number>, j: number, format: string): [number[], number[]] {
  const o = frameOrigin(A, i, B, j, format);
  return [corners32(A, i, format, o), corners32(B, j, format, o)];
}

/**
 * Magnitude of the float32 rounding of the pair's corners converted from `format`, in the kernel's
 * frame, per box and axis: [pred x, pred y, target x, target y], each 0 when that axis' corners
 * are exact (always in xyxy), else its larger corner there (offset plus size). The first element is
 * the largest of the four.
 */
function conversionError(A: ArrayLike<number>, i: number, B: ArrayLike<number>, j: number, format: string): [number, number[]] {
  if (format === 'xyxy') return [0, [0, 0, 0, 0]];
  const o = frameOrigin(A, i, B, j, format);
  const ea = corners64(A, i, format, o);
  const eb = corners64(B, j, format, o);
  const [pa, pb] = [corners32(A, i, format, o), corners32(B, j, format, o)];
  const axis = (e: number[], r: number[], k: number) => (e[k] === r[k] && e[k + 2] === r[k + 2] ? 0 : Math.max(Math.abs(e[k]), Math.abs(e[k + 2])));
  const axes = [axis(ea, pa, 0), axis(ea, pa, 1), axis(eb, pb, 0), axis(eb, pb, 1)];
  return [Math.max(...axes), axes];
}

/** `S` of every 'none' element and every gradient element of a case (the op's float32 error model). */
export function termScale(c: FuzzCase, cpuGrad: Float64Array | undefined, upstream: Float64Array): Terms {
  const p = c.options;
  const x = c.inputs;
  const n = c.dims.n;
  const id = (k: number) => k;
  switch (c.op) {
    case 'l1': case 'mse': case 'smooth_l1': case 'huber':
      return { loss: new Float64Array(n), grad: new Float64Array(n), rowOf: id };
    case 'rotated_iou_loss': {
      // ./rotated.ts: the running error bound of the kernel's float32 program, row by row
      const P = f64(x.pred)!;
      const T = f64(x.target)!;
      const pd = f64(x.predDelta);
      const td = f64(x.targetDelta);
      const cfg = rotatedConfig({ ...p, variant: p.variant ?? 'probiou' } as unknown as ResolvedParams);
      const loss = new Float64Array(n);
      const grad = new Float64Array(5 * n);
      const gd = new Float64Array(pd ? 2 * n : 0);
      for (let i = 0; i < n; i++) {
        const o = rotatedRowTerms(P, 5 * i, T, 5 * i, cfg, p.grad !== false, pd && td ? { pd, td, at: 2 * i } : undefined);
        loss[i] = o.loss;
        o.grad.forEach((v, k) => (grad[5 * i + k] = v));
        o.delta.forEach((v, k) => (gd[2 * i + k] = v));
      }
      return { loss, grad, rowOf: (k) => Math.floor(k / 5), byName: pd ? { predDelta: { grad: gd, rowOf: (k) => k >> 1 } } : undefined };
    }
    case 'pairwise_probiou': {
      const A = f64(x.a)!;
      const B = f64(x.b)!;
      const m = c.dims.m;
      const loss = new Float64Array(n * m);
      const eps = (p.eps as number | undefined) ?? 1e-7;
      for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) loss[i * m + j] = probiouPairTerms(A, i, B, j, eps).loss;
      return { loss, grad: new Float64Array(0), rowOf: id };
    }
    case 'balanced_l1': {
      const a = (p.alpha as number) ?? 0.5;
      const g = (p.gamma as number) ?? 1.5;
      const beta = (p.beta as number) ?? 1;
      const b = Math.exp(g / a) - 1;
      const pr = f64(x.pred)!;
      const tg = f64(x.target)!;
      const loss = new Float64Array(n);
      const grad = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const d = Math.abs(pr[i] - tg[i]);
        loss[i] = d < beta ? (a / b) * (b * d + 1) * Math.abs(Math.log1p((b * d) / beta)) + a * d : g * d + g / b + a * beta;
        // The gradient alpha (log1p z - (beta - 1)/(beta (1 + z))), z = b d / beta, crosses 0 inside
        // the curved zone when beta != 1: no form avoids that difference, so its terms set S.
        const z = (b * d) / beta;
        grad[i] = d < beta ? a * (Math.log1p(z) + Math.abs(beta - 1) / (beta * (1 + z))) : 0;
      }
      return { loss, grad, rowOf: id };
    }
    case 'iou_loss': case 'pairwise_iou': {
      const pair = c.op === 'pairwise_iou';
      const A = f64(pair ? x.a : x.pred)!;
      const B = f64(pair ? x.b : x.target)!;
      const m = pair ? c.dims.m : 1;
      const eps = pair ? 1e-7 : ((p.eps as number) ?? 1e-7);
      const variant = (p.variant as string) ?? 'iou';
      const format = (p.format as string) ?? 'xyxy';
      const loss = new Float64Array(n * m);
      const grad = new Float64Array(pair ? 0 : n * 4);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < m; j++) {
          const jj = pair ? j : i;
          // (pairwise: the rounded reference forms each entry as the kernel does, runner.ts
          // roundedReference through pairwiseValue's given sizes and offset, so the conversion's
          // rounding is in it and not in S)
          const [conv, axes] = pair ? [0, [0, 0, 0, 0]] : conversionError(A, i, B, jj, format);
          const gap: [number, number] = [gapError(A, i, B, jj, format, 0), gapError(A, i, B, jj, format, 1)];
          const [pa, pb] = pairCorners32(A, i, B, jj, format);
          const sizes = pair || format === 'xyxy' ? undefined : [A[4 * i + 2], A[4 * i + 3], B[4 * jj + 2], B[4 * jj + 3]].map(Math.abs);
          let [ls, gx, gy] = boxTerms(pa, pb, variant, (p.mode as string) ?? 'linear', eps, conv, axes, gap, sizes, (p.scale as number | undefined) ?? 0, pair ? 1 : ((p.innerRatio as number | undefined) ?? 1), 64 / kOf(c));
          const more = pair ? { scale: 1, rel: 1, loss: 0, grad: 0, gradX: 0, gradY: 0, thin: 0, tie: false, flip: 0 } : moreTerms(A, B, i, format, p, pa, pb, conv, kOf(c));
          if (!pair) {
            const kr = 64 / kOf(c);
            ls = more.scale * (ls + kr * more.loss);
            gx = more.scale * (gx + kr * (more.grad + more.gradX));
            gy = more.scale * (gy + kr * (more.grad + more.gradY));
          }
          loss[i * m + j] = ls;
          if (!pair) {
            let gmax = 0;
            for (let q = 0; q < 4; q++) gmax = Math.max(gmax, Math.abs(cpuGrad?.[4 * i + q] ?? 0));
            const up = Math.abs(upstream[i]);
            // The corners that min and max compare are the kernel's own (the inputs in xyxy, the
            // frame's float32 corners otherwise, which the rounded reference uses too): a tie of
            // them is decided alike on both sides. Only the ties of values the kernel computes
            // (moreTerms: inner corners, Focaler's bounds, mmdetection's alpha, Alpha-IoU's cap)
            // may fall either way; there the gradient of either side holds.
            // (more.flip is per unit upstream; gmax, from the reference's gradient, includes it)
            const flip = more.tie ? (4 * Math.max(gmax, more.flip * up)) / (kOf(c) * U) : 0;
            // An overlap width is one rounded difference of those corners (relative error u); the
            // inner boxes' are differences of corners the kernel rounds itself (moreTerms' thin,
            // in more.grad).
            // The variants and params whose partials this model does not follow one by one (SIoU's
            // angle, Shape-IoU's weights, Wise-IoU's factor, MPDIoU's corners, Inner-IoU, Focaler,
            // Alpha-IoU) share the row's largest partial among the four.
            const shared = ['siou', 'shape', 'wiou', 'mpdiou'].includes(variant) || more.scale !== 1 || more.grad !== 0 || more.rel !== 1 || p.innerRatio !== undefined;
            const row = up > 0 ? ((shared ? more.rel * gmax : 0) + flip) / up : 0;
            // cxcywh and xywh chain the corners' partials back: the centre (or corner) takes the sum of
            // both corners' partials, the size one of them (or half their difference)
            const g4 = format === 'xyxy' ? [gx, gy, gx, gy] : [2 * gx, 2 * gy, gx, gy];
            for (let q = 0; q < 4; q++) grad[4 * i + q] = g4[q] + row;
          }
        }
      }
      return { loss, grad, rowOf: (k) => Math.floor(k / 4) };
    }
    case 'sigmoid_focal': case 'varifocal': case 'bce_with_logits': {
      const X = f64(x.logits)!;
      const T = f64(x.targets)!;
      const len = X.length;
      const ncls = c.dims.c ?? 1;
      const posW = f64(x.posWeight);
      const loss = new Float64Array(len);
      const grad = new Float64Array(len);
      const alpha = (p.alpha as number) ?? (c.op === 'varifocal' ? 0.75 : 0.25);
      const gamma = (p.gamma as number) ?? 2;
      for (let k = 0; k < len; k++) {
        const v = X[k];
        const t = T[k];
        const s = sigmoid(v);
        const ce = Math.abs(v) * (1 + Math.abs(t)) + 1; // softplus(x) - x t, or its two-softplus form
        if (c.op === 'bce_with_logits') {
          const w = posW ? posW[k % ncls] : 1;
          loss[k] = (Math.abs(w * t) + Math.abs(1 - t) + Math.abs(1 + (w - 1) * t)) * (Math.abs(v) + 1);
          grad[k] = Math.abs(w * t) * sigmoid(-v) + Math.abs(1 - t) * s + Math.abs(1 + (w - 1) * t) + Math.abs(t);
        } else if (c.op === 'sigmoid_focal') {
          const at = alpha >= 0 ? Math.abs(alpha * t) + Math.abs((1 - alpha) * (1 - t)) : 1;
          const q = s * (1 - t) + sigmoid(-v) * t;
          const qg = pw(Math.abs(q), gamma);
          const dqg = gamma === 0 || q === 0 ? 0 : gamma * Math.abs(q) ** (gamma - 1) * Math.abs(1 - 2 * t) * s * (1 - s);
          loss[k] = at * ce * qg;
          grad[k] = at * ((s + Math.abs(t)) * qg + ce * dqg);
        } else if (t > 0) {
          const w = p.iouWeighted === false ? 1 : t;
          loss[k] = w * ce;
          grad[k] = w * (s + t);
        } else {
          const e = Math.abs(s - t);
          const de = t === 0 ? 0 : s + Math.abs(t); // e = |s - t| carries u*(s + |t|) when t != 0
          const d1 = gamma === 0 || e === 0 ? 0 : gamma * e ** (gamma - 1);
          const d2 = gamma === 0 || gamma === 1 || e === 0 ? 0 : gamma * Math.abs(gamma - 1) * e ** (gamma - 2);
          loss[k] = Math.abs(alpha) * (pw(e, gamma) + d1 * de) * ce;
          grad[k] = Math.abs(alpha) * ((pw(e, gamma) + d1 * de) * (s + Math.abs(t)) + ce * (d1 + d2 * de) * s * (1 - s));
        }
      }
      return { loss, grad, rowOf: (k) => k };
    }
    case 'hinge': case 'hinge_embedding': case 'margin_ranking': case 'exponential': {
      const y = f64(x.targets)!;
      const a = f64(x.logits ?? x.pred ?? x.input1)!;
      const b = f64(x.input2);
      const margin = (p.margin as number) ?? (c.op === 'margin_ranking' ? 0 : 1);
      const loss = new Float64Array(n);
      const grad = new Float64Array(n);
      // exponential: exp of an exact exponent (-y f), K ulp of the value itself; its cap compares exactly.
      if (c.op === 'exponential') return { loss, grad, rowOf: id };
      for (let i = 0; i < n; i++) {
        // z = margin - y f (hinge), margin - f (hinge_embedding at y = -1; the loss is f itself at
        // y = 1), margin - y (x1 - x2): a difference of these terms.
        const terms = c.op === 'margin_ranking' ? Math.abs(a[i]) + Math.abs(b![i]) + Math.abs(margin) : c.op === 'hinge_embedding' && y[i] === 1 ? 0 : Math.abs(a[i]) + Math.abs(margin);
        const z = c.op === 'margin_ranking' ? -y[i] * (a[i] - b![i]) + margin : c.op === 'hinge' ? margin - y[i] * a[i] : margin - a[i];
        loss[i] = terms;
        // Within float32 rounding of the kink z = 0, the gradient of either side (0, or +-1 times the
        // upstream, which the kernel forms in float32: twice the step leaves room for its rounding)
        // holds. At z = 0 exactly (float32 forms it exactly there) ops.md's rule holds: clamp_min's
        // gradient, that of z.
        grad[i] = terms > 0 && z !== 0 && Math.abs(z) <= 4 * U * terms ? 2 / (kOf(c) * U) : 0;
      }
      return { loss, grad, rowOf: id };
    }
    case 'class_balanced_focal': {
      const X = f64(x.logits)!;
      const labels = x.labels as Int32Array;
      const counts = f64(x.samplesPerClass)!;
      const len = c.dims.c;
      const beta = (p.beta as number) ?? 0.9999;
      const gamma = (p.gamma as number) ?? 2;
      // The class weights, normalised to sum to c: each carries a few ulp of its own (a power and a
      // quotient), and the normalising sum the largest of them; |log beta^n| / |1 - beta^n| conditions
      // 1 - beta^n where beta^n is near 1.
      const raw = Array.from(counts, (cnt) => (cnt > 0 ? (1 - beta) / -Math.expm1(cnt * Math.log(beta)) : 0));
      const sum = raw.reduce((s, v) => s + v, 0);
      // 1 - beta^n moves by n |log beta| beta^n per unit relative change of beta^n: near 1 that is
      // amplified (beta^n -> 1), near 0 it vanishes with beta^n
      const cond = Array.from(counts, (cnt) => (cnt > 0 && beta > 0 ? 1 + (Math.abs(cnt * Math.log(beta)) * beta ** cnt) / Math.abs(Math.expm1(cnt * Math.log(beta))) : 1));
      // the normalising sum carries each weight's error in proportion to its share of the sum
      const sumCond = sum > 0 ? raw.reduce((a, v, k) => a + v * cond[k], 0) / sum : 1;
      const loss = new Float64Array(n * len);
      const grad = new Float64Array(n * len);
      for (let i = 0; i < n; i++) {
        const y = labels[i];
        const bg = !(y >= 0 && y < len);
        const w = bg ? 1 : sum > 0 ? (len * raw[y]) / sum : 0;
        const wErr = bg ? 0 : w * (cond[y] + sumCond);
        for (let j = 0; j < len; j++) {
          const k = i * len + j;
          const v = X[k];
          const t = j === y ? 1 : 0;
          const s = sigmoid(v);
          const ce = Math.abs(v) * (1 + t) + 1;
          const q = s * (1 - t) + sigmoid(-v) * t;
          const qg = pw(Math.abs(q), gamma);
          const dqg = gamma === 0 || q === 0 ? 0 : gamma * Math.abs(q) ** (gamma - 1) * s * (1 - s);
          const bce = Math.abs(v) * t + Math.log1p(Math.exp(-Math.abs(v))) + Math.max(v, 0) * (1 - t) + Math.max(-v, 0) * t;
          loss[k] = w * ce * qg + wErr * bce * qg;
          grad[k] = w * ((s + t) * qg + ce * dqg) + wErr * ((s + t) * qg + bce * dqg);
        }
      }
      return { loss, grad, rowOf: (k) => k };
    }
    default:
      return rowTerms(c);
  }
}

/** S of the row ops (softmax and per-sample sums). */
function rowTerms(c: FuzzCase): Terms {
  const p = c.options;
  const x = c.inputs;
  const n = c.dims.n;
  const len = c.dims.c ?? c.dims.k ?? c.dims.p;
  const X = f64(x.logits ?? x.student ?? x.logProbs)!;
  const loss = new Float64Array(n);
  const grad = new Float64Array(n * len);
  const rowOf = (k: number) => Math.floor(k / Math.max(len, 1));
  const T = c.op === 'kl_div' ? ((p.temperature as number) ?? 1) : 1;
  const softmax = (src: Float64Array, i: number) => {
    let m = -Infinity;
    for (let j = 0; j < len; j++) m = Math.max(m, src[i * len + j] / T);
    let s = 0;
    for (let j = 0; j < len; j++) s += Math.exp(src[i * len + j] / T - m);
    return { m, lse: m + Math.log(s), prob: (j: number) => Math.exp(src[i * len + j] / T - m) / s };
  };
  for (let i = 0; i < n; i++) {
    const row = (j: number) => X[i * len + j];
    if (c.op === 'quality_focal') {
      const y = (x.labels as Int32Array)[i];
      const sc = dataOf(x.scores)![i];
      const beta = (p.beta as number) ?? 2;
      for (let j = 0; j < len; j++) {
        const v = row(j);
        const s = sigmoid(v);
        const ce = Math.abs(v) * (1 + (j === y ? Math.abs(sc) : 0)) + 1;
        if (j === y) {
          // e = |score - s| is a difference: it carries u*(s + |score|), propagated through e^beta
          const e = Math.abs(sc - s);
          const de = s + Math.abs(sc);
          const d1 = e === 0 || beta === 0 ? 0 : beta * e ** (beta - 1);
          const d2 = e === 0 || beta === 0 || beta === 1 ? 0 : beta * Math.abs(beta - 1) * e ** (beta - 2);
          loss[i] += ce * (pw(e, beta) + d1 * de);
          grad[i * len + j] = (s + Math.abs(sc)) * (pw(e, beta) + d1 * de) + ce * (d1 + d2 * de) * s * (1 - s);
        } else {
          loss[i] += ce * pw(s, beta);
          grad[i * len + j] = s * pw(s, beta) + (s === 0 || beta === 0 ? 0 : ce * beta * s ** (beta - 1) * s * (1 - s));
        }
      }
    } else if (c.op === 'distribution_focal') {
      const t = dataOf(x.targets)![i];
      const left = Math.trunc(t);
      const { m, prob } = softmax(X, i);
      loss[i] = Math.abs(row(left)) + (left + 1 < len ? Math.abs(row(left + 1)) : 0) + 2 * Math.abs(m) + 1;
      for (let j = 0; j < len; j++) grad[i * len + j] = prob(j) + (j === left || j === left + 1 ? 1 : 0);
    } else if (c.op === 'cross_entropy') {
      const y = (x.labels as Int32Array)[i];
      const ignore = (p.ignoreIndex as number) ?? -100;
      if (y === ignore) continue;
      const ls = (p.labelSmoothing as number) ?? 0;
      const cw = f64(x.classWeight);
      const w = (j: number) => (cw ? Math.abs(cw[j]) : 1);
      const { m, prob } = softmax(X, i);
      let wsum = 0;
      let smooth = 0;
      for (let j = 0; j < len; j++) {
        wsum += w(j);
        smooth += w(j) * (Math.abs(row(j)) + Math.abs(m) + 1);
      }
      loss[i] = (1 - ls) * w(y) * (Math.abs(row(y)) + Math.abs(m) + 1) + (ls / len) * smooth;
      const a = (1 - ls) * w(y) + (ls / len) * wsum;
      for (let j = 0; j < len; j++) grad[i * len + j] = prob(j) * a + (ls / len) * w(j) + (j === y ? (1 - ls) * w(y) : 0);
    } else if (c.op === 'nll') {
      // -w[y] * logProbs[i, y]: one product, exact to K ulp of itself.
    } else if (c.op === 'softmax_focal') {
      const y = (x.labels as Int32Array)[i];
      const ignore = (p.ignoreIndex as number) ?? -100;
      if (y === ignore || !(y >= 0 && y < len)) continue;
      const gamma = (p.gamma as number) ?? 2;
      const cw = f64(x.classWeight);
      const w = cw ? Math.abs(cw[y]) : 1;
      const { m, prob } = softmax(X, i);
      const py = prob(y);
      const logp = Math.min(0, row(y) - m - Math.log(Array.from({ length: len }, (_, j) => Math.exp(row(j) - m)).reduce((a, v) => a + v, 0)));
      // log p carries u*(|x_y| + |max| + 1) absolutely (as cross_entropy's); it reaches the loss through
      // (1 - p)^gamma (1 - p = -expm1(log p)) and -log p, and the gradient through those and p.
      // (the exponent's rounding is rational: an eighth of K = 512, beside exp's and log's own few ulp)
      const d = 1 + (Math.abs(row(y)) + Math.abs(m) + 1) / 8;
      const omp = -Math.expm1(logp);
      const f = pw(omp, gamma);
      const df = gamma === 0 || omp === 0 ? 0 : gamma * omp ** (gamma - 1) * py;
      loss[i] = w * d * (f + df * Math.abs(logp));
      // The gradient (p_j - [j = y]) (A + B), A = (1 - p)^gamma, B = gamma (1 - p)^(gamma - 1) p |log p|:
      // p_j carries d relatively, A moves by gamma (1 - p)^(gamma - 1) p d, B by that times (1 + |log p|).
      const A = f;
      const B = df * Math.abs(logp);
      for (let j = 0; j < len; j++) {
        const pj = prob(j);
        grad[i * len + j] = w * (pj + (j === y ? 1 : 0)) * (A + B + d * (A + B + df * (2 + Math.abs(logp))));
      }
    } else if (c.op === 'kl_div') {
      const div = p.classReduction === 'mean' ? Math.max(len, 1) : 1;
      const tch = f64(x.teacher)!;
      const P = softmax(tch, i);
      const Q = softmax(X, i);
      // The kernel's form (shaders/kl.wgsl): l_j = delta_j - D, delta_j = (t_j - s_j)/T, D = lse_t -
      // lse_s taken as log1p(sum q expm1(delta)) where that sum lies in (-0.5, 1) (error u*max|delta|),
      // else directly (u*(|lse_t| + |lse_s|)); loss sum q psi(l), psi(l) = (l - 1) e^l + 1 >= 0 (nothing
      // cancels), gradient T (q - p) = -T q expm1(l) where |l| < 1, else q - p as it is. Each rounding
      // of + - * / is held to 64 u, an eighth of K = 512 (which is for exp, log and expm1).
      let dmax = 0;
      for (let j = 0; j < len; j++) dmax = Math.max(dmax, Math.abs(tch[i * len + j] - row(j)) / T);
      const D = P.lse - Q.lse;
      const y = Math.expm1(D);
      const eD = y > -0.5 && y < 1 ? dmax : Math.abs(P.lse) + Math.abs(Q.lse);
      let l = 0;
      for (let j = 0; j < len; j++) {
        const pj = P.prob(j);
        const qj = Q.prob(j);
        const dj = (tch[i * len + j] - row(j)) / T;
        const lj = dj - D;
        const el = Math.exp(Math.min(lj, 80));
        // l's error: its terms', and D's own (log1p: 2^-21 absolutely, a few u, as log near 1)
        const eL = (Math.abs(dj) + eD + Math.abs(lj) + 1) / 8;
        // q = exp(s/T - lse_s): its exponent's rounding (rational) and exp's own few ulp
        const eq = 1 + (1 + Math.abs(row(j)) / T + Math.abs(Q.lse)) / 8;
        const ep = 1 + (1 + Math.abs(tch[i * len + j]) / T + Math.abs(P.lse)) / 8;
        const psi = (lj - 1) * el + 1;
        // (and psi's second order in l's error dl: dl^2 / 2, where l itself is about 0)
        const dl = 64 * U * (Math.abs(dj) + eD + Math.abs(lj) + 1);
        l += qj * (Math.abs(lj) * el * eL + Math.abs(psi) * eq + (dl * dl) / (2 * 512 * U));
        grad[i * len + j] = (T * (Math.abs(lj) < 1 ? qj * (Math.abs(Math.expm1(lj)) * eq + el * eL) : pj * ep + qj * eq)) / div;
      }
      loss[i] = (T * T * l) / div;
    } else if (c.op === 'dice') {
      const t = dataOf(x.targets)!;
      const eps = (p.eps as number) ?? 1e-3;
      const naive = p.naive === true;
      let a = 0;
      let b = 0;
      let cc = 0;
      for (let j = 0; j < len; j++) {
        const s = sigmoid(row(j));
        const tj = t[i * len + j];
        a += Math.abs(s * tj);
        b += naive ? s : s * s;
        cc += naive ? Math.abs(tj) : tj * tj;
      }
      const den = naive ? b + cc + eps : b + cc + 2 * eps;
      const num = naive ? 2 * a + eps : 2 * a;
      loss[i] = 1 + (den > 0 ? num / den : 0);
      for (let j = 0; j < len; j++) {
        const s = sigmoid(row(j));
        const tj = Math.abs(t[i * len + j]);
        grad[i * len + j] = den > 0 ? s * (1 - s) * ((2 * tj) / den + (num * (naive ? 1 : 2 * s)) / (den * den)) : 0;
      }
    }
  }
  return { loss, grad, rowOf };
}

/** The similarity matrices: reduction 'none' by default, no gradient. */
export const PAIRWISE = new Set(['pairwise_iou', 'pairwise_probiou']);

/** |upstream| of each output element, as `cpu.run` forms it (gradOutput * weight / denominator). */
export function upstreamOf(c: FuzzCase, outCount: number): { up: Float64Array; denom: number } {
  const w = dataOf(c.inputs.weight);
  const go = dataOf(c.inputs.gradOutput);
  const reduction = (c.options.reduction as string) ?? (PAIRWISE.has(c.op) ? 'none' : 'mean');
  const up = new Float64Array(outCount);
  let denom = 1;
  if (reduction === 'none') {
    for (let i = 0; i < outCount; i++) up[i] = Math.abs((go ? go[i] : 1) * (w ? w[i] : 1));
    return { up, denom };
  }
  if (reduction === 'mean') {
    if (c.options.avgFactor !== undefined) denom = c.options.avgFactor as number;
    else if (c.op === 'cross_entropy' || c.op === 'softmax_focal' || c.op === 'nll') {
      const labels = c.inputs.labels as Int32Array;
      denom = crossEntropyDenominator(
        { labels, classWeight: f64(c.inputs.classWeight) },
        w ? Float64Array.from(w) : undefined,
        { ignoreIndex: (c.options.ignoreIndex as number) ?? -100 },
      );
    } else denom = outCount;
  }
  const g = go ? go[0] : 1;
  const scale = denom === 0 ? 0 : Math.abs(g / denom);
  for (let i = 0; i < outCount; i++) up[i] = scale * Math.abs(w ? w[i] : 1);
  return { up, denom };
}

/** Ops whose float64 reference forms sigmoid(x) * (1 - sigmoid(x)) and the like: exact to about 2^-52 of O(1), not relatively. */
export const LOGIT_OPS = new Set(['sigmoid_focal', 'quality_focal', 'distribution_focal', 'varifocal', 'bce_with_logits', 'cross_entropy', 'kl_div', 'dice', 'softmax_focal', 'class_balanced_focal']);

/** The allowed |gpu - cpu| of one value: the rule at the top of this file (`ref`: 1 for the logit ops' float64 reference term). */
export function allowed(k: number, cpu: number, s: number, upstream = 1, ref = 0): number {
  return k * U * (Math.abs(cpu) + s) + k * TINY * Math.max(1, upstream) + ref * 2 ** -48 * upstream;
}

/** The ranking losses: a loss already reduced (a mean over the positives) and an update, not a gradient. */
export const RANKING_OPS = new Set(['ap_loss', 'rank_sort']);

/**
 * S of the ranking losses (ops.md "Ranking losses"; shaders/ranking.wgsl), in units of u, held
 * with K = 64 (only + - * / min max clamp): `loss` per loss element, `grad` per update element per
 * unit |gradOutput|. The numerical argument, bounding first-order float32 errors; every sum in the
 * kernel is compensated (Kahan) and so costs ~2u of its absolute terms, not n u:
 *
 * - The ramp H(x) = clamp(x/(2 delta) + 1/2, 0, 1) is exact (0 or 1) off the ramp |x| < delta. The
 *   kernel sums H over sorted scores q as a count plus (sum_ramp q - c (s - delta)) / (2 delta),
 *   from compensated prefix sums: the terms that cancel there are |q| + |s| + delta per score on the
 *   ramp, so each on-ramp pair (i, j) carries u * a_ij, a_ij = (|s_i| + |s_j| + delta)/(2 delta):
 *   the cancellation grows with |score|/delta (a real float32 limit of that form: at |s| = 50 and
 *   delta = 1e-3 one on-ramp pair is good to ~5e4 u). Pairs at exactly +-delta are counted (closed
 *   ramp): float32 may put them on either side of the edge, where H is continuous.
 *   Where the kernel evaluates H one pair at a time (rank_sort's rank+, its sorting sums, its
 *   positives' update), a term is good to 3u (x = s_k - s_i, the product, the + 1/2).
 * - AP: NFP(i), rank+(i) carry eN = 1 + NFP + sum_{j in N} a_ij, eP = 1 + rank+ + sum_{k in P} a_ik;
 *   p = rank+/rank has e_p = (eP + p (eN + eP))/rank + 1; the interpolated precision ph, a running
 *   max in the same order, carries the running max of e_p. Loss 1 - mean ph: mean e_ph + 2.
 *   A positive's update -(1 - ph)/|P|: (e_ph + 1)/|P|.
 *   f = (1 - ph)/(1 - p) (when ph > p, else 1) divides by 1 - p: e_f = (e_ph + e_p)/(1 - p) + 1, and
 *   where 1 - p is within K u (e_ph + e_p) of 0 f is a tie: it may jump by up to 1 (ph = 1 and
 *   p -> 1 gives f -> 0, p = 1 gives f = 1; ph and p equal or not within rounding), which S
 *   allows as a jump J = 1 (a jump J adds J / (K u) to S).
 *   w = f / rank / |P|: e_w = (e_f + f (e_rank / rank + 2)) / (rank |P|).
 * - A negative's update sum_i H_ij w_i (both ops), from prefix sums of w and w q over the sorted
 *   positives: sum_i H_ij e_w(i) + sum_{i on the ramp of j} w_i a_ij + 3 |update|.
 * - Rank & Sort: rank+ (brute) eP = 1 + rank+ + 3 c_i (c_i positives on i's ramp); lr = NFP/rank:
 *   e_lr = (eN rank+ + eP NFP)/rank^2 + 1; the sorting error ls = all/rank+ - top/topH, a
 *   difference of two ratios in [0, 1]: each sum good to 3u per on-ramp term and 2u of itself,
 *   e_ls = (e_all + (all/rank+) eP)/rank+ + (e_top + (top/topH) e_topH)/topH + 2. D(m) likewise.
 *   Loss: [mean e_lr + 1, mean (e_ls + |ls|) + 1].
 *   A positive's update adds e_lr + e_ls and, per m with y_i < y_m, e_ls(m) r + |ls(m)| e_r with
 *   r = H_mi / D(m) in [0, 1] and e_r = (3 + r e_D(m)) / D(m), capped as a jump of 1 (a small D is
 *   a sum of H's good to 3u absolutely: the ratio is then any number in [0, 1], and ls(m) -> 0 with
 *   D(m), so the product stays continuous). The thresholds NFP > 1e-10 and D > 1e-10 are ties
 *   where NFP or D is within K u e of 1e-10: the terms they gate (lr, H_ij/rank, ls) are then
 *   allowed as jumps (they are O(NFP) or O(D), so small).
 *   The negatives' weight lr/NFP is 1/rank computed: e_w = (e_rank/rank + 3)/(rank |P|).
 * - Ignored elements get exactly 0, as do all with no positive (S = 0).
 */
export function rankingTerms(c: FuzzCase): { loss: Float64Array; grad: Float64Array } {
  const s = f64(c.inputs.logits)!;
  const y = f64(c.inputs.targets)!;
  const ap = c.op === 'ap_loss';
  const delta = (c.options.delta as number | undefined) ?? (ap ? 1 : 0.5);
  const n = s.length;
  const grad = new Float64Array(n);
  const pos: number[] = [];
  const neg: number[] = [];
  for (let i = 0; i < n; i++) {
    if (y[i] > 0) pos.push(i);
    else if (y[i] === 0) neg.push(i);
  }
  const np = pos.length;
  if (np === 0) return { loss: new Float64Array(ap ? 1 : 2), grad };
  const KU = kOf(c) * U;
  /** S of a jump J (either side holds). */
  const jump = (J: number) => J / KU;
  const H = (x: number) => Math.min(1, Math.max(0, x / (2 * delta) + 0.5));
  const ramp = (x: number) => Math.abs(x) <= delta * (1 + 1e-6);
  const amp = (a: number, b: number) => (Math.abs(a) + Math.abs(b) + delta) / (2 * delta);

  const nfp = new Float64Array(np);
  const eN = new Float64Array(np);
  const rp = new Float64Array(np);
  const eP = new Float64Array(np);
  for (let a = 0; a < np; a++) {
    const si = s[pos[a]];
    let sum = 0;
    let e = 1;
    let on = false;
    for (const j of neg) {
      const x = s[j] - si;
      sum += H(x);
      if (ramp(x)) {
        e += amp(si, s[j]);
        on = true;
      }
    }
    nfp[a] = sum;
    // AP: with no negative on the ramp, NFP is a count, summed exactly
    eN[a] = ap && !on ? 0 : e + sum;
    let r = ap ? 0.5 : 0; // the sum over P holds i's own H(0) = 1/2; AP's rank+ is 1 + the others'
    let ep = 1;
    for (const k of pos) {
      const x = s[k] - si;
      r += H(x);
      if (ramp(x)) ep += ap ? amp(si, s[k]) : 3;
    }
    rp[a] = r;
    eP[a] = ep + r;
  }
  const rank = Float64Array.from(rp, (v, a) => v + nfp[a]);
  const eRank = Float64Array.from(eN, (v, a) => v + eP[a]);
  const w = new Float64Array(np);
  const ew = new Float64Array(np);
  /** Per positive: negatives' jumps when its NFP is at the 1e-10 threshold (rank_sort). */
  const nfpTie = new Uint8Array(np);
  const loss = new Float64Array(ap ? 1 : 2);

  if (ap) {
    const p = Float64Array.from(rp, (v, a) => v / rank[a]);
    // (the quotient's own rounding: u p)
    const ep = Float64Array.from(p, (v, a) => (eP[a] + v * eRank[a]) / rank[a] + v);
    const order = pos.map((_, a) => a).sort((a, b) => s[pos[a]] - s[pos[b]] || pos[a] - pos[b]);
    const ph = new Float64Array(np);
    const eph = new Float64Array(np);
    let m = 0;
    let em = 0;
    for (const a of order) {
      m = Math.max(m, p[a]);
      em = Math.max(em, ep[a]);
      ph[a] = m;
      eph[a] = em;
    }
    let sum = 0;
    let phSum = 0;
    for (let a = 0; a < np; a++) {
      sum += eph[a];
      phSum += ph[a];
      grad[pos[a]] = (eph[a] + 1) / np;
      const f = ph[a] > p[a] ? (1 - ph[a]) / (1 - p[a]) : 1;
      const gap = 1 - p[a];
      const ef = gap <= KU * (eph[a] + ep[a]) ? jump(1) : Math.min(jump(1), (eph[a] + ep[a]) / gap + 1);
      w[a] = f / rank[a] / np;
      ew[a] = (ef + f * (eRank[a] / rank[a] + 2)) / (rank[a] * np);
    }
    // 1 - mean ph: the mean's own rounding is u mean ph (the subtraction's, u of the result, is |cpu|'s)
    loss[0] = sum / np + phSum / np;
  } else {
    const lr = new Float64Array(np);
    const elr = new Float64Array(np);
    const ls = new Float64Array(np);
    const els = new Float64Array(np);
    const D = new Float64Array(np);
    const eD = new Float64Array(np);
    for (let a = 0; a < np; a++) {
      const i = pos[a];
      const si = s[i];
      let all = 0, eAll = 1, top = 0, eTop = 1, topH = 0, eTopH = 1, d = 0, ed = 1;
      for (const k of pos) {
        const h = H(s[k] - si);
        const on = ramp(s[k] - si) ? 3 : 0;
        all += h * (1 - y[k]);
        eAll += on;
        if (y[k] >= y[i]) {
          top += h * (1 - y[k]);
          topH += h;
          eTop += on;
          eTopH += on;
        } else {
          d += h;
          ed += on;
        }
      }
      lr[a] = nfp[a] / rank[a];
      elr[a] = (eN[a] * rp[a] + eP[a] * nfp[a]) / (rank[a] * rank[a]) + 1;
      ls[a] = all / rp[a] - top / topH;
      els[a] = (eAll + 2 * all + (all / rp[a]) * eP[a]) / rp[a] + (eTop + 2 * top + (top / topH) * (eTopH + topH)) / topH + 2;
      D[a] = d;
      eD[a] = ed + d;
      nfpTie[a] = nfp[a] <= 1e-10 + KU * eN[a] ? 1 : 0;
      w[a] = nfp[a] > 1e-10 ? 1 / rank[a] / np : 0;
      ew[a] = (eRank[a] / rank[a] + 3) / (rank[a] * np);
    }
    let sr = 0;
    let ss = 0;
    for (let a = 0; a < np; a++) {
      sr += elr[a];
      ss += els[a] + Math.abs(ls[a]);
      const i = pos[a];
      let e = elr[a] + els[a] + 2 * (lr[a] + Math.abs(ls[a]));
      if (nfpTie[a]) e += jump(lr[a]);
      if (D[a] <= 1e-10 + KU * eD[a]) e += jump(Math.abs(ls[a]));
      for (let b = 0; b < np; b++) {
        const m = pos[b];
        if (!(y[i] < y[m])) continue;
        const h = H(s[i] - s[m]);
        const small = D[b] <= 1e-10 + KU * eD[b];
        if (small) e += els[b] + jump(Math.abs(ls[b]));
        else {
          const r = h / D[b];
          e += els[b] * r + Math.abs(ls[b]) * Math.min(jump(1), (3 + r * eD[b]) / D[b]) + 2 * Math.abs(ls[b]) * r;
        }
      }
      grad[i] = e / np;
    }
    loss[0] = sr / np + 1;
    loss[1] = ss / np + 1;
  }

  // The negatives: sum_i H_ij w_i from the prefix sums over the sorted positives.
  const u = new Float64Array(n);
  for (let a = 0; a < np; a++) {
    const si = s[pos[a]];
    for (const j of neg) {
      const x = s[j] - si;
      const h = H(x);
      if (h > 0) {
        u[j] += h * w[a];
        grad[j] += h * ew[a] + (nfpTie[a] ? jump(h / rank[a] / np) : 0);
      }
      if (ramp(x)) grad[j] += w[a] * amp(si, s[j]);
    }
  }
  for (const j of neg) grad[j] += 3 * u[j];
  return { loss, grad };
}
