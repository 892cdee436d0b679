import type { CpuForward, CpuInputs, Dims, ResolvedParams } from './types';

/**
 * The box IoU family in float64 (ops.md, "Box losses" and "Pairwise matrices"):
 * `iou_loss` with its analytic gradient, and the `pairwise_iou` similarity matrix.
 */

/** Loss variants of `iou_loss`, in the order of the WGSL `VARIANT` override. */
export const IOU_VARIANTS = ['iou', 'giou', 'diou', 'ciou', 'eiou', 'siou', 'mpdiou', 'shape', 'wiou'] as const;
/** Similarities of `pairwise_iou` (the first four of `IOU_VARIANTS`, same codes). */
export const PAIRWISE_VARIANTS = ['iou', 'giou', 'diou', 'ciou'] as const;
/** Box layouts, in the order of the WGSL `FORMAT` override. */
export const BOX_FORMATS = ['xyxy', 'cxcywh', 'xywh'] as const;
/** How `variant: 'iou'` turns the IoU into a loss, in the order of the WGSL `MODE` override. */
export const IOU_MODES = ['linear', 'square', 'log'] as const;

export type IouVariant = (typeof IOU_VARIANTS)[number];
export type BoxFormat = (typeof BOX_FORMATS)[number];
export type IouMode = (typeof IOU_MODES)[number];

/** eps that `pairwise_iou` adds to the enclosing diagonal and to CIoU's alpha denominator (torchvision's). */
export const PAIRWISE_EPS = 1e-7;

const FOUR_OVER_PI2 = 4 / (Math.PI * Math.PI);

/**
 * The cap of Wise-IoU's exponent `rho2 / c2`: never reached by boxes of non-negative sizes (their
 * exponent is at most 1), it keeps `exp` and the gradient finite for inverted boxes, where the
 * enclosing diagonal can be 0 while the centres are apart. The WGSL kernel has the same constant.
 */
export const WIOU_EXP_MAX = 2;

/** a / b, or 0 where b is 0: a finite value where the formula has none. */
export const sdiv = (a: number, b: number) => (b === 0 ? 0 : a / b);
/** sign with sign(0) = 0: the gradient PyTorch gives abs at 0. */
const sgn = (x: number) => (x > 0 ? 1 : x < 0 ? -1 : 0);
/** d max(a, b) / d a: 1, 0, or 0.5 at a tie (PyTorch's `maximum`). */
const maxPart = (a: number, b: number) => (a > b ? 1 : a === b ? 0.5 : 0);
/** d min(a, b) / d a: 1, 0, or 0.5 at a tie (PyTorch's `minimum`). */
const minPart = (a: number, b: number) => (a < b ? 1 : a === b ? 0.5 : 0);

/**
 * The aspect angle of CIoU, `A(w, h) = h < 0 ? atan2(-w, -h) : atan2(w, h)`: torchvision's
 * `atan(w / h)` wherever `h != 0`, and `pi/2 * sign(w)` at `h = 0` (ops.md, `ciou`).
 *
 * @example
 * aspectAngle(1, 1); // pi/4
 * aspectAngle(2, 0); // pi/2
 * aspectAngle(0, -0); // 0, for either sign of either zero
 */
export function aspectAngle(w: number, h: number): number {
  // A NaN side gives NaN, as atan2 does, not the angle a comparison below would pick.
  if (Number.isNaN(w) || Number.isNaN(h)) return NaN;
  // Zeros are compared, never passed on: Math.atan2 reads their sign (atan2(0, -0) is pi).
  if (w === 0) return 0;
  if (h === 0) return w > 0 ? Math.PI / 2 : -Math.PI / 2;
  return h < 0 ? Math.atan2(-w, -h) : Math.atan2(w, h);
}

/**
 * Reads box `i` of `src` in `format` as xyxy into `out`.
 *
 * @example
 * const b = new Float64Array(4);
 * toXyxy(Float64Array.of(5, 5, 2, 4), 0, 'cxcywh', b); // b = [4, 3, 6, 7]
 */
export function toXyxy(src: ArrayLike<number>, i: number, format: BoxFormat, out: Float64Array): Float64Array {
  const a = src[4 * i];
  const b = src[4 * i + 1];
  const c = src[4 * i + 2];
  const d = src[4 * i + 3];
  if (format === 'cxcywh') {
    // torchvision's box_convert: cx -+ 0.5*w
    out[0] = a - 0.5 * c;
    out[1] = b - 0.5 * d;
    out[2] = a + 0.5 * c;
    out[3] = b + 0.5 * d;
  } else if (format === 'xywh') {
    out[0] = a;
    out[1] = b;
    out[2] = a + c;
    out[3] = b + d;
  } else {
    out[0] = a;
    out[1] = b;
    out[2] = c;
    out[3] = d;
  }
  return out;
}

/** Turns a gradient with respect to xyxy coordinates (in place) into one with respect to `format`. */
function gradFromXyxy(g: Float64Array, at: number, format: BoxFormat): void {
  const g1 = g[at];
  const g2 = g[at + 1];
  const g3 = g[at + 2];
  const g4 = g[at + 3];
  if (format === 'cxcywh') {
    g[at] = g1 + g3;
    g[at + 1] = g2 + g4;
    g[at + 2] = 0.5 * (g3 - g1);
    g[at + 3] = 0.5 * (g4 - g2);
  } else if (format === 'xywh') {
    g[at] = g1 + g3;
    g[at + 1] = g2 + g4;
  }
}

/** What `boxLoss` needs besides the boxes; the fields after `eps` are those of ops.md's "More box losses". */
export interface BoxLossConfig {
  variant: IouVariant;
  /** Only read for `variant: 'iou'`. */
  mode: IouMode;
  eps: number;
  /** How CIoU weights `v` (default `'torchvision'`). */
  ciouAlpha?: CiouAlpha;
  /** Alpha-IoU's exponent (default 1). */
  power?: number;
  /** Inner-IoU's ratio (default 1: the IoU term is the IoU). */
  innerRatio?: number;
  /** Focaler-IoU's interval `[d, u]` (default `[0, 1]`). */
  focaler?: readonly number[];
  /** MPDIoU's `[W, H]`. */
  imageSize?: readonly number[];
  /** Shape-IoU's `scale` (default 0). */
  scale?: number;
  /** Wise-IoU: version, running mean of `1 - iou`, alpha and delta. */
  wiouVersion?: number;
  iouMean?: number;
  wiouAlpha?: number;
  wiouDelta?: number;
}

/** How CIoU weights its aspect term `v` (ops.md, `ciouAlpha`). */
export const CIOU_ALPHAS = ['torchvision', 'mmdet'] as const;
export type CiouAlpha = (typeof CIOU_ALPHAS)[number];

/** float32's largest finite value: where Alpha-IoU's `p^a` would pass it, the term is this (ops.md, `power`). */
export const F32_MAX = 3.4028234663852886e38;

/**
 * x^a for x >= 0 and a >= 1, and its derivative a x^(a-1); exactly x and 1 at a = 1. Each base is
 * raised as given, as PyTorch does (ops.md, `power`): an inverted box can make a penalty as large as
 * about 1/eps, and its loss and gradient are then PyTorch's, so training pushes the box back. Where
 * x^a would pass float32's largest finite value the term is that value, with no gradient. A NaN base
 * stays NaN. The WGSL kernel's pow_grad does the same.
 */
function powGrad(x: number, a: number): [number, number] {
  if (a === 1) return [x, 1];
  if (x <= 0) return [0, 0];
  const xa = x ** a;
  if (xa > F32_MAX) return [F32_MAX, 0];
  return [xa, a * x ** (a - 1)];
}

/**
 * An Alpha-IoU penalty's gradient with respect to pred's xyxy corners: `gPow = a p^(a-1)` times `j`,
 * the base's own gradient. None where a component would pass float32's largest finite value, as where
 * `p^a` would (ops.md, `power`): the kernel's float32 cannot hold it (an inverted box whose enclosing
 * box is nearly empty has a GIoU penalty near 1/eps, and at power 5 a gradient near 1e46). The WGSL
 * kernel's alpha_grad does the same.
 */
function alphaGrad(gPow: number, j: readonly number[]): number[] {
  const g = j.map((x) => gPow * x);
  return g.every((x) => Math.abs(x) <= F32_MAX) ? g : [0, 0, 0, 0];
}

/**
 * Shape-IoU's weights `(ww, hh) = (2 wg^s, 2 hg^s) / (wg^s + hg^s)`, as `2 / (1 + (hg/wg)^s)` and
 * `2 / (1 + (wg/hg)^s)`: the same numbers, but a ratio's power leaves the float range only where the
 * weight is 0 or 2, while the sides' powers overflow together (605^14 passes float32, 605^111 float64)
 * and made the weights Inf / Inf. A target side <= 0 weighs 0 (`ww = hh = 1` when both are, and at
 * s = 0 whatever the sides); a NaN side makes both NaN.
 */
export function shapeWeights(wg: number, hg: number, s: number): [number, number] {
  if (s === 0) return [1, 1];
  if (Number.isNaN(wg) || Number.isNaN(hg)) return [NaN, NaN];
  if (wg > 0 && hg > 0) return [2 / (1 + (hg / wg) ** s), 2 / (1 + (wg / hg) ** s)];
  if (wg > 0) return [2, 0];
  if (hg > 0) return [0, 2];
  return [1, 1];
}

/** d max(max(a, b), c) / d a, ties split evenly at each `maximum`. */
function maxOf3Part(a: number, b: number, c: number): number {
  return maxPart(a, b) * maxPart(Math.max(a, b), c);
}

/** The quantities of xyxy pred `p` and target `t` that the variants share (ops.md, "Box losses"). */
interface Shared {
  x1: number; y1: number; x2: number; y2: number;
  X1: number; Y1: number; X2: number; Y2: number;
  eps: number;
  /** Intersection sides; `inter` is their product where both are > 0 (`overlap`), else 0. */
  iw: number; ih: number; overlap: boolean; inter: number;
  /** pred's and target's sizes. */
  w: number; h: number; wg: number; hg: number;
  union: number;
  /** `union + eps`, the IoU's denominator. */
  den: number;
  iou: number;
  /** The enclosing box's sides. */
  cw: number; ch: number;
  /** Twice the centre offsets, pred minus target. */
  dx: number; dy: number;
}

function sharedTerms(p: ArrayLike<number>, t: ArrayLike<number>, eps: number): Shared {
  const x1 = p[0], y1 = p[1], x2 = p[2], y2 = p[3];
  const X1 = t[0], Y1 = t[1], X2 = t[2], Y2 = t[3];
  const iw = Math.min(x2, X2) - Math.max(x1, X1);
  const ih = Math.min(y2, Y2) - Math.max(y1, Y1);
  const overlap = iw > 0 && ih > 0;
  const inter = overlap ? iw * ih : 0;
  const w = x2 - x1, h = y2 - y1, wg = X2 - X1, hg = Y2 - Y1;
  const union = w * h + wg * hg - inter;
  const den = union + eps;
  const cw = Math.max(x2, X2) - Math.min(x1, X1);
  const ch = Math.max(y2, Y2) - Math.min(y1, Y1);
  const dx = x1 + x2 - X1 - X2;
  const dy = y1 + y2 - Y1 - Y2;
  return { x1, y1, x2, y2, X1, Y1, X2, Y2, eps, iw, ih, overlap, inter, w, h, wg, hg, union, den, iou: sdiv(inter, den), cw, ch, dx, dy };
}

/** Inner-IoU's boxes (same centres, sizes times `r`) and their IoU `value`, with what the backward pass reads. */
interface Inner {
  r: number; value: number;
  ix1: number; iy1: number; ix2: number; iy2: number;
  IX1: number; IY1: number; IX2: number; IY2: number;
  iiw: number; iih: number; iov: boolean; iu: number;
}

function innerTerm(s: Shared, r: number): Inner {
  const { x1, y1, x2, y2, X1, Y1, X2, Y2, w, h, wg, hg } = s;
  const cx = (x1 + x2) / 2, cy = (y1 + y2) / 2, CX = (X1 + X2) / 2, CY = (Y1 + Y2) / 2;
  const ix1 = cx - (r * w) / 2, ix2 = cx + (r * w) / 2, iy1 = cy - (r * h) / 2, iy2 = cy + (r * h) / 2;
  const IX1 = CX - (r * wg) / 2, IX2 = CX + (r * wg) / 2, IY1 = CY - (r * hg) / 2, IY2 = CY + (r * hg) / 2;
  const iiw = Math.min(ix2, IX2) - Math.max(ix1, IX1);
  const iih = Math.min(iy2, IY2) - Math.max(iy1, IY1);
  const iov = iiw > 0 && iih > 0;
  const ii = iov ? iiw * iih : 0;
  const iu = r * r * (w * h + wg * hg) - ii + s.eps;
  return { r, value: sdiv(ii, iu), ix1, iy1, ix2, iy2, IX1, IY1, IX2, IY2, iiw, iih, iov, iu };
}

/**
 * The IoU term (ops.md, "Where the IoU term is replaced"): the IoU, or that of the inner boxes
 * (`innerRatio`), mapped through Focaler's interval. `dT` is d value / d (IoU or inner IoU): the
 * clamp passes the gradient at its bounds (torch.clamp), none outside them.
 */
interface IouTerm {
  value: number;
  dT: number;
  inner?: Inner;
}

function iouTerm(s: Shared, cfg: BoxLossConfig): IouTerm {
  const r = cfg.innerRatio ?? 1;
  const inner = r !== 1 ? innerTerm(s, r) : undefined;
  const t0 = inner ? inner.value : s.iou;
  const [fd, fu] = cfg.focaler ?? [0, 1];
  const span = fu - fd;
  const tf = (t0 - fd) / span;
  return { value: Math.min(Math.max(tf, 0), 1), dT: tf >= 0 && tf <= 1 ? 1 / span : 0, inner };
}

/**
 * Adjoints of the loss with respect to the IoU term (`t`), the plain IoU and the shared terms; `corner`
 * takes terms written straight in pred's corners, `alpha` Alpha-IoU's penalties (each already in the corners).
 */
interface Adjoints {
  t: number; iou: number; union: number;
  w: number; h: number; cw: number; ch: number; dx: number; dy: number;
  corner: number[];
  alpha: number[];
}

/** Adjoints of the sides of the intersection and of the enclosing box, pred's size and twice the centre offset. */
type SideAdjoints = Partial<Record<'iw' | 'ih' | 'cw' | 'ch' | 'w' | 'h' | 'dx' | 'dy', number>>;

/** pred's corners from adjoints of the sides: iw = min(x2, X2) - max(x1, X1), cw = max(x2, X2) - min(x1, X1), w = x2 - x1. */
function toCorners(s: Shared, a: SideAdjoints): number[] {
  const { iw = 0, ih = 0, cw = 0, ch = 0, w = 0, h = 0, dx = 0, dy = 0 } = a;
  const { x1, y1, x2, y2, X1, Y1, X2, Y2 } = s;
  return [
    -iw * maxPart(x1, X1) - cw * minPart(x1, X1) - w + dx,
    -ih * maxPart(y1, Y1) - ch * minPart(y1, Y1) - h + dy,
    iw * minPart(x2, X2) + cw * maxPart(x2, X2) + w + dx,
    ih * minPart(y2, Y2) + ch * maxPart(y2, Y2) + h + dy,
  ];
}

/** Adds an Alpha-IoU penalty's gradient (see {@link alphaGrad}) to `g.alpha`. */
function addAlpha(g: Adjoints, j: number[]): void {
  j.forEach((x, k) => (g.alpha[k] += x));
}

/**
 * One variant's loss of a row, with the adjoints of what it reads added to `g`. `t` is the IoU term,
 * `base` the loss's `1 - t^a` (Alpha-IoU's power `a`, 1 by default), `g.t` already its adjoint.
 */
type VariantLoss = (s: Shared, t: number, base: number, cfg: BoxLossConfig, g: Adjoints) => number;

/** `iou`: `1 - t^a`, or in mode `square` `1 - t^2`, in mode `log` `-log(max(t, eps))`. */
function iouVariant(s: Shared, t: number, base: number, cfg: BoxLossConfig, g: Adjoints): number {
  if (cfg.mode === 'square') {
    g.t = -2 * t;
    return 1 - t * t;
  }
  if (cfg.mode === 'log') {
    const m = Math.max(t, s.eps);
    g.t = -maxPart(t, s.eps) / m;
    return -Math.log(m);
  }
  return base;
}

/** GIoU: `+ (c - union) / (c + eps)`; with Alpha-IoU `max(pen, 0)^a`. */
function giouVariant(s: Shared, _t: number, base: number, cfg: BoxLossConfig, g: Adjoints): number {
  const a = cfg.power ?? 1;
  const { union, cw, ch, eps } = s;
  const c = cw * ch;
  const ce = c + eps;
  const pen = sdiv(c - union, ce);
  // d/dc (c - u)/(c + eps) = (u + eps)/(c + eps)^2
  const jC = sdiv(sdiv(union + eps, ce), ce);
  const jUnion = -sdiv(1, ce);
  if (a === 1) {
    // At a = 1 the penalty is unclamped.
    g.union += jUnion;
    g.cw += jC * ch;
    g.ch += jC * cw;
    return base + pen;
  }
  // Alpha-IoU raises max(pen, 0). union = w h + wg hg - inter, inter = iw ih where both overlap.
  const [pa, dpa] = powGrad(Math.max(pen, 0), a);
  const iw = s.overlap ? -jUnion * s.ih : 0;
  const ih = s.overlap ? -jUnion * s.iw : 0;
  addAlpha(g, alphaGrad(dpa, toCorners(s, { iw, ih, cw: jC * ch, ch: jC * cw, w: jUnion * s.h, h: jUnion * s.w })));
  return base + pa;
}

/**
 * DIoU's penalty `q = rho2 / c2` (rho2 = (dx^2 + dy^2) / 4, c2 = cw^2 + ch^2 + eps) and `q^a`. `gq` is
 * the adjoint of `q` that {@link distanceBack} carries: `a q^(a-1)`, or 0 where Alpha-IoU has put it
 * in the corners already.
 */
function centreDistance(s: Shared, a: number, g: Adjoints): { q: number; qa: number; c2: number; gq: number } {
  const { cw, ch, dx, dy } = s;
  const c2 = cw * cw + ch * ch + s.eps;
  const q = sdiv((dx * dx + dy * dy) / 4, c2);
  const [qa, dqa] = powGrad(q, a);
  if (a === 1) return { q, qa, c2, gq: dqa };
  const jCw = -sdiv(q, c2) * 2 * cw;
  const jCh = -sdiv(q, c2) * 2 * ch;
  addAlpha(g, alphaGrad(dqa, toCorners(s, { cw: jCw, ch: jCh, dx: sdiv(dx, 2 * c2), dy: sdiv(dy, 2 * c2) })));
  return { q, qa, c2, gq: 0 };
}

/** The adjoint `gq` of `q = rho2 / c2` to the centre offsets and the enclosing box's sides. */
function distanceBack(s: Shared, d: { q: number; c2: number }, gq: number, g: Adjoints): void {
  const gRho2 = gq * sdiv(1, d.c2);
  const gC2 = -gq * sdiv(d.q, d.c2);
  g.dx += (gRho2 * s.dx) / 2;
  g.dy += (gRho2 * s.dy) / 2;
  g.cw += gC2 * 2 * s.cw;
  g.ch += gC2 * 2 * s.ch;
}

/** DIoU: `+ q^a`. */
function diouVariant(s: Shared, _t: number, base: number, cfg: BoxLossConfig, g: Adjoints): number {
  const d = centreDistance(s, cfg.power ?? 1, g);
  distanceBack(s, d, d.gq, g);
  return base + d.qa;
}

/** The adjoint `gv` of CIoU's `v` to pred's size: dv/dA(w,h) = -8/pi^2 * da; dA/dw = h/(w^2+h^2), dA/dh = -w/(w^2+h^2) on either side of h = 0. */
function aspectBack(s: Shared, gv: number, da: number, g: Adjoints): void {
  const gA = gv * -2 * FOUR_OVER_PI2 * da;
  const r2 = s.w * s.w + s.h * s.h;
  g.w += sdiv(gA * s.h, r2);
  g.h -= sdiv(gA * s.w, r2);
}

/** CIoU: `+ q^a + (alpha v)^a`, or mmdetection's clamped form (`ciouAlpha: 'mmdet'`); alpha held constant. */
function ciouVariant(s: Shared, t: number, base: number, cfg: BoxLossConfig, g: Adjoints): number {
  const a = cfg.power ?? 1;
  const d = centreDistance(s, a, g);
  const da = aspectAngle(s.wg, s.hg) - aspectAngle(s.w, s.h);
  const v = FOUR_OVER_PI2 * da * da;
  if (cfg.ciouAlpha === 'mmdet') {
    // mmdetection: loss = 1 - clamp(t - q - alpha*v, -1, 1), no gradient where the clamp holds.
    const alpha = s.iou > 0.5 ? sdiv(v, 1 - s.iou + v) : 0;
    const x = t - d.q - alpha * v;
    const gx = x >= -1 && x <= 1 ? -1 : 0;
    g.t = gx;
    aspectBack(s, -gx * alpha, da, g);
    distanceBack(s, d, -gx, g);
    return 1 - Math.min(Math.max(x, -1), 1);
  }
  const alpha = sdiv(v, 1 - s.iou + v + s.eps);
  const [va, dva] = powGrad(alpha * v, a);
  let gv = dva * alpha;
  if (a !== 1) {
    const jA = alpha * -2 * FOUR_OVER_PI2 * da;
    const r2 = s.w * s.w + s.h * s.h;
    addAlpha(g, alphaGrad(dva, toCorners(s, { w: sdiv(jA * s.h, r2), h: -sdiv(jA * s.w, r2) })));
    gv = 0;
  }
  aspectBack(s, gv, da, g);
  distanceBack(s, d, d.gq, g);
  return base + d.qa + va;
}

/** EIoU: `+ q + (w - wg)^2 / (cw^2 + eps) + (h - hg)^2 / (ch^2 + eps)`. */
function eiouVariant(s: Shared, _t: number, base: number, cfg: BoxLossConfig, g: Adjoints): number {
  const d = centreDistance(s, cfg.power ?? 1, g);
  const { cw, ch, eps } = s;
  const cwe = cw * cw + eps;
  const che = ch * ch + eps;
  const ew = s.w - s.wg;
  const eh = s.h - s.hg;
  g.w += sdiv(2 * ew, cwe);
  g.h += sdiv(2 * eh, che);
  g.cw -= sdiv(sdiv(ew * ew, cwe), cwe) * 2 * cw;
  g.ch -= sdiv(sdiv(eh * eh, che), che) * 2 * ch;
  distanceBack(s, d, d.gq, g);
  return base + d.qa + (sdiv(ew * ew, cwe) + sdiv(eh * eh, che));
}

/** MPDIoU: `+ (d1 + d2) / (W^2 + H^2)`, d1 and d2 the squared distances of the top-left and bottom-right corners. */
function mpdiouVariant(s: Shared, _t: number, base: number, cfg: BoxLossConfig, g: Adjoints): number {
  const [W, H] = cfg.imageSize ?? [1, 1];
  const n = W * W + H * H;
  const e = [s.x1 - s.X1, s.y1 - s.Y1, s.x2 - s.X2, s.y2 - s.Y2];
  for (let k = 0; k < 4; k++) g.corner[k] += (2 * e[k]) / n;
  return base + (e[0] * e[0] + e[1] * e[1] + e[2] * e[2] + e[3] * e[3]) / n;
}

/**
 * One side of a shape cost, `(1 - exp(-o))^4 / 2` with `o = k |d - dg| / max(d, dg, eps)` (Shape-IoU's
 * weight `k`; 1 in SIoU): `q = 1 - exp(-o)`, and d/dd of the half fourth power (d/do is 2 q^3 (1 - q);
 * the max splits ties evenly).
 */
function shapeSide(d: number, dg: number, k: number, eps: number): { q: number; grad: number } {
  const m = Math.max(d, dg, eps);
  const o = sdiv(k * Math.abs(d - dg), m);
  const q = 1 - Math.exp(-o);
  const gO = 2 * q ** 3 * (1 - q);
  return { q, grad: k * sdiv(gO * sgn(d - dg), m) - sdiv(gO * o, m) * maxOf3Part(d, dg, eps) };
}

/** Shape-IoU: weights from the target's size, a weighted centre distance and a weighted shape cost. */
function shapeVariant(s: Shared, _t: number, base: number, cfg: BoxLossConfig, g: Adjoints): number {
  const [ww, hh] = shapeWeights(s.wg, s.hg, cfg.scale ?? 0);
  const { cw, ch, dx, dy } = s;
  const c2 = cw * cw + ch * ch + s.eps;
  const dist = sdiv((hh * dx * dx + ww * dy * dy) / 4, c2);
  const sw = shapeSide(s.w, s.wg, hh, s.eps);
  const sh = shapeSide(s.h, s.hg, ww, s.eps);
  g.dx += sdiv(hh * dx, 2 * c2);
  g.dy += sdiv(ww * dy, 2 * c2);
  const gC2 = -sdiv(dist, c2);
  g.cw += gC2 * 2 * cw;
  g.ch += gC2 * 2 * ch;
  g.w += sw.grad;
  g.h += sh.grad;
  return base + (dist + 0.5 * (sw.q ** 4 + sh.q ** 4));
}

/** Wise-IoU: `R (1 - t)` times a focusing factor; R = exp(rho2 / c2) with c2 and the factor detached. */
function wiouVariant(s: Shared, t: number, _base: number, cfg: BoxLossConfig, g: Adjoints): number {
  const { cw, ch, dx, dy } = s;
  const c2 = cw * cw + ch * ch + s.eps;
  // rho2 / c2 <= 1 for boxes of non-negative sizes (both centres lie in the enclosing box); an
  // inverted box can leave c2 = eps with rho2 > 0, so the exponent is capped (no gradient there).
  const ex = sdiv((dx * dx + dy * dy) / 4, c2);
  const capped = ex > WIOU_EXP_MAX;
  const R = Math.exp(capped ? WIOU_EXP_MAX : ex);
  const beta = sdiv(1 - s.iou, cfg.iouMean ?? 1);
  const version = cfg.wiouVersion ?? 3;
  const al = cfg.wiouAlpha ?? 1.9;
  const de = cfg.wiouDelta ?? 3;
  const f = version === 1 ? 1 : version === 2 ? Math.sqrt(beta) : beta / (de * al ** (beta - de));
  const base = 1 - t;
  g.t = -R * f;
  const gRho2 = capped ? 0 : sdiv(base * f * R, c2);
  g.dx += (gRho2 * dx) / 2;
  g.dy += (gRho2 * dy) / 2;
  return R * base * f;
}

/**
 * SIoU's distance cost `2 - exp(-gamma px) - exp(-gamma py)` (ops.md) with its angle cost `gamma`,
 * offsets target minus pred; adds half its gradient to `g` and returns it.
 */
function siouDistance(s: Shared, g: Adjoints): number {
  const { eps } = s;
  const sx = -s.dx / 2;
  const sy = -s.dy / 2;
  const sigma = Math.sqrt(sx * sx + sy * sy + eps);
  const useAlpha = sdiv(Math.abs(sy), sigma) <= Math.SQRT2 / 2;
  const u = useAlpha ? sy : sx;
  const sn = useAlpha ? sdiv(Math.abs(sy), sigma) : sdiv(Math.abs(sx), sigma);
  // cos(2 asin(s) - pi/2) = sin(2 asin(s)) = 2 s sqrt(1 - s^2) (design.md, "Numerics")
  const root = Math.sqrt(Math.max(1 - sn * sn, 0));
  const gamma = 2 - 2 * sn * root;
  const cwe = s.cw + eps;
  const che = s.ch + eps;
  const rx = sdiv(sx, cwe);
  const ry = sdiv(sy, che);
  const px = rx * rx;
  const py = ry * ry;
  const ex = Math.exp(-gamma * px);
  const ey = Math.exp(-gamma * py);
  const gPx = 0.5 * gamma * ex;
  const gPy = 0.5 * gamma * ey;
  let gSx = sdiv(gPx * 2 * rx, cwe);
  let gSy = sdiv(gPy * 2 * ry, che);
  g.cw -= sdiv(gPx * 2 * px, cwe);
  g.ch -= sdiv(gPy * 2 * py, che);
  // angle: d/ds 2 s sqrt(1 - s^2) = 2 (1 - 2 s^2) / sqrt(1 - s^2)
  const gS = -(0.5 * (ex * px + ey * py)) * sdiv(2 * (1 - 2 * sn * sn), root);
  // s = |u| / sigma with u = sy (alpha) or sx (beta); sigma depends on both.
  const gU = sdiv(gS * sgn(u), sigma);
  const gSigma = -sdiv(sdiv(gS * Math.abs(u), sigma), sigma);
  if (useAlpha) gSy += gU;
  else gSx += gU;
  gSx += sdiv(gSigma * sx, sigma);
  gSy += sdiv(gSigma * sy, sigma);
  g.dx -= gSx / 2;
  g.dy -= gSy / 2;
  return 1 - ex + (1 - ey);
}

/** SIoU: `+ (dist + shape) / 2`, the shape cost unweighted. */
function siouVariant(s: Shared, _t: number, base: number, _cfg: BoxLossConfig, g: Adjoints): number {
  const dist = siouDistance(s, g);
  const sw = shapeSide(s.w, s.wg, 1, s.eps);
  const sh = shapeSide(s.h, s.hg, 1, s.eps);
  g.w += sw.grad;
  g.h += sh.grad;
  return base + (dist + (sw.q ** 4 + sh.q ** 4)) / 2;
}

/** Each variant's loss and adjoints, by name. */
const VARIANT_LOSS: Record<IouVariant, VariantLoss> = {
  iou: iouVariant,
  giou: giouVariant,
  diou: diouVariant,
  ciou: ciouVariant,
  eiou: eiouVariant,
  siou: siouVariant,
  mpdiou: mpdiouVariant,
  shape: shapeVariant,
  wiou: wiouVariant,
};

/** The IoU term's adjoint `gT0` (after Focaler's interval) back through the inner boxes to `g`. */
function innerBack(s: Shared, inner: Inner, gT0: number, g: Adjoints): void {
  const { r, value, ix1, iy1, ix2, iy2, IX1, IY1, IX2, IY2, iiw, iih, iov, iu } = inner;
  // value = ii / iu, iu = r^2 (w h + wg hg) - ii + eps
  let gIi = sdiv(gT0, iu);
  const gIu = -sdiv(gT0 * value, iu);
  gIi -= gIu;
  g.w += gIu * r * r * s.h;
  g.h += gIu * r * r * s.w;
  const gIiw = iov ? gIi * iih : 0;
  const gIih = iov ? gIi * iiw : 0;
  // ix1 = cx - r w / 2, ix2 = cx + r w / 2; a centre's adjoint reaches both corners by halves, as dx's does.
  const gx1 = -gIiw * maxPart(ix1, IX1), gx2 = gIiw * minPart(ix2, IX2);
  const gy1 = -gIih * maxPart(iy1, IY1), gy2 = gIih * minPart(iy2, IY2);
  g.dx += (gx1 + gx2) / 2;
  g.dy += (gy1 + gy2) / 2;
  g.w += ((gx2 - gx1) * r) / 2;
  g.h += ((gy2 - gy1) * r) / 2;
}

/** The one chain rule: the IoU term through Focaler and the inner boxes or the IoU, then every adjoint to pred's corners. */
function chainRule(s: Shared, term: IouTerm, g: Adjoints, grad: Float64Array, at: number): void {
  const gT0 = g.t * term.dT;
  if (term.inner) innerBack(s, term.inner, gT0, g);
  else g.iou += gT0;
  // iou = inter / (union + eps)
  let gInter = sdiv(g.iou, s.den);
  g.union -= sdiv(g.iou * s.iou, s.den);
  // union = w*h + wg*hg - inter
  g.w += g.union * s.h;
  g.h += g.union * s.w;
  gInter -= g.union;
  // inter = iw * ih only where both are > 0
  const iw = s.overlap ? gInter * s.ih : 0;
  const ih = s.overlap ? gInter * s.iw : 0;
  const c = toCorners(s, { iw, ih, cw: g.cw, ch: g.ch, w: g.w, h: g.h, dx: g.dx, dy: g.dy });
  for (let k = 0; k < 4; k++) grad[at + k] = c[k] + g.corner[k] + g.alpha[k];
}

/**
 * One row of `iou_loss`: the loss of xyxy box `p` against xyxy box `t`, and its gradient with
 * respect to `p` written to `grad[at..at+4]` (reverse mode, by hand, with the tie conventions of
 * ops.md: ties of min/max split 0.5/0.5, abs' (0) = 0, an empty or touching intersection
 * contributes no gradient, CIoU's alpha held constant).
 *
 * The shared terms first, then the IoU term (ops.md, "Where the IoU term is replaced"): the IoU, or
 * that of the inner boxes (`innerRatio`), mapped through Focaler's interval. Every variant's `1 - iou`
 * reads the IoU term; the penalties and CIoU's alpha read the plain `iou`. The variant's function
 * ({@link VARIANT_LOSS}) gives the loss and the adjoints of the terms it read; one chain rule takes
 * them to the corners.
 *
 * @example
 * const g = new Float64Array(4);
 * boxLoss([0, 0, 2, 2], [1, 1, 3, 3], { variant: 'giou', mode: 'linear', eps: 1e-7 }, g, 0); // 1 - 1/7 + 2/9
 */
export function boxLoss(p: ArrayLike<number>, t: ArrayLike<number>, cfg: BoxLossConfig, grad: Float64Array, at: number): number {
  const s = sharedTerms(p, t, cfg.eps);
  const term = iouTerm(s, cfg);
  const [ta, dta] = powGrad(term.value, cfg.power ?? 1);
  const g: Adjoints = { t: -dta, iou: 0, union: 0, w: 0, h: 0, cw: 0, ch: 0, dx: 0, dy: 0, corner: [0, 0, 0, 0], alpha: [0, 0, 0, 0] };
  const loss = VARIANT_LOSS[cfg.variant](s, term.value, 1 - ta, cfg, g);
  chainRule(s, term, g, grad, at);
  return loss;
}

/** The {@link BoxLossConfig} of resolved `iou_loss` params. */
export function boxLossConfig(p: ResolvedParams): BoxLossConfig {
  return {
    variant: p.variant as IouVariant,
    mode: p.mode as IouMode,
    eps: p.eps as number,
    ciouAlpha: (p.ciouAlpha as CiouAlpha | undefined) ?? 'torchvision',
    power: (p.power as number | undefined) ?? 1,
    innerRatio: (p.innerRatio as number | undefined) ?? 1,
    focaler: (p.focaler as readonly number[] | undefined) ?? [0, 1],
    imageSize: p.imageSize as readonly number[] | undefined,
    scale: (p.scale as number | undefined) ?? 0,
    wiouVersion: (p.wiouVersion as number | undefined) ?? 3,
    iouMean: (p.iouMean as number | undefined) ?? 1,
    wiouAlpha: (p.wiouAlpha as number | undefined) ?? 1.9,
    wiouDelta: (p.wiouDelta as number | undefined) ?? 3,
  };
}

/** Whether the four numbers of box `i` are finite. */
const rowFinite = (src: ArrayLike<number>, i: number) =>
  Number.isFinite(src[4 * i]) && Number.isFinite(src[4 * i + 1]) && Number.isFinite(src[4 * i + 2]) && Number.isFinite(src[4 * i + 3]);

/**
 * The CPU reference of `iou_loss`: per-row loss and, for `backward`, the gradient with respect to
 * `pred` in its own format.
 *
 * @example
 * const f = iouLossCpu({ pred, target }, { variant: 'ciou', format: 'xyxy', eps: 1e-7, mode: 'linear' }, { n });
 * f.loss; f.backward(ones).pred;
 */
export function iouLossCpu(inputs: CpuInputs, p: ResolvedParams, dims: Dims): CpuForward {
  const pred = inputs.pred as Float64Array;
  const target = inputs.target as Float64Array;
  const n = dims.n ?? pred.length / 4;
  const format = p.format as BoxFormat;
  const cfg = boxLossConfig(p);
  const loss = new Float64Array(n);
  const g = new Float64Array(4 * n);
  const pb = new Float64Array(4);
  const tb = new Float64Array(4);
  const plain: BoxLossConfig = { variant: 'iou', mode: 'linear', eps: cfg.eps };
  const scratch = new Float64Array(4);
  let sumIouLoss = 0;
  for (let i = 0; i < n; i++) {
    toXyxy(pred, i, format, pb);
    toXyxy(target, i, format, tb);
    loss[i] = boxLoss(pb, tb, cfg, g, 4 * i);
    gradFromXyxy(g, 4 * i, format);
    // A coordinate at +-Inf has no neighbourhood to differentiate in: the row's gradient is NaN (the
    // formulas give 0 * Inf there, a mix of 0 and NaN that the kernel's compiler may fold either way).
    if (!rowFinite(pred, i) || !rowFinite(target, i)) g.fill(NaN, 4 * i, 4 * i + 4);
    if (cfg.variant === 'wiou') sumIouLoss += boxLoss(pb, tb, plain, scratch, 0);
  }
  return {
    loss,
    aux: cfg.variant === 'wiou' ? { batchIouMean: n ? sumIouLoss / n : 0 } : undefined,
    backward(up) {
      const out = new Float64Array(4 * n);
      for (let i = 0; i < 4 * n; i++) out[i] = up[i >> 2] * g[i];
      return { pred: out };
    },
  };
}

/**
 * Entry (i, j) of `pairwise_iou` for xyxy boxes `a` and `b`: torchvision's `box_iou`,
 * `generalized_box_iou`, `distance_box_iou` or `complete_box_iou` (ops.md, "Pairwise matrices").
 * A pair with no defined value (zero union, zero enclosing area) gets 0 for that term.
 *
 * @example
 * pairwiseValue([0, 0, 2, 2], [1, 1, 3, 3], 'iou'); // 1/7
 */
export function pairwiseValue(a: ArrayLike<number>, b: ArrayLike<number>, variant: IouVariant, given?: { sa: ArrayLike<number>; sb: ArrayLike<number>; d: ArrayLike<number> }): number {
  const iw = Math.max(Math.min(a[2], b[2]) - Math.max(a[0], b[0]), 0);
  const ih = Math.max(Math.min(a[3], b[3]) - Math.max(a[1], b[1]), 0);
  const inter = iw * ih;
  // (`given`: the sizes and the centre offset taken apart from the corners, as a kernel that reads
  // them from cxcywh or xywh input forms them; the test suite's float32 model uses it)
  const w = given ? given.sa[0] : a[2] - a[0];
  const h = given ? given.sa[1] : a[3] - a[1];
  const wg = given ? given.sb[0] : b[2] - b[0];
  const hg = given ? given.sb[1] : b[3] - b[1];
  const union = w * h + wg * hg - inter;
  const iou = sdiv(inter, union);
  if (variant === 'iou') return iou;
  const cw = Math.max(Math.max(a[2], b[2]) - Math.min(a[0], b[0]), 0);
  const ch = Math.max(Math.max(a[3], b[3]) - Math.min(a[1], b[1]), 0);
  if (variant === 'giou') {
    const c = cw * ch;
    return iou - sdiv(c - union, c);
  }
  const c2 = cw * cw + ch * ch + PAIRWISE_EPS;
  const cx = given ? given.d[0] : (a[0] + a[2]) / 2 - (b[0] + b[2]) / 2;
  const cy = given ? given.d[1] : (a[1] + a[3]) / 2 - (b[1] + b[3]) / 2;
  const diou = iou - (cx * cx + cy * cy) / c2;
  if (variant === 'diou') return diou;
  const da = aspectAngle(w, h) - aspectAngle(wg, hg);
  const v = FOUR_OVER_PI2 * da * da;
  const alpha = sdiv(v, 1 - iou + v + PAIRWISE_EPS);
  return diou - alpha * v;
}

/**
 * The CPU reference of `pairwise_iou`: the [n, m] matrix, no gradient.
 *
 * @example
 * pairwiseIouCpu({ a, b }, { variant: 'giou', format: 'xyxy' }, { n: 2, m: 3 }).loss; // 6 numbers
 */
export function pairwiseIouCpu(inputs: CpuInputs, p: ResolvedParams, dims: Dims): CpuForward {
  const a = inputs.a as Float64Array;
  const b = inputs.b as Float64Array;
  const n = dims.n ?? a.length / 4;
  const m = dims.m ?? b.length / 4;
  const format = p.format as BoxFormat;
  const variant = p.variant as IouVariant;
  const out = new Float64Array(n * m);
  const bb = Array.from({ length: m }, (_, j) => toXyxy(b, j, format, new Float64Array(4)));
  const ab = new Float64Array(4);
  for (let i = 0; i < n; i++) {
    toXyxy(a, i, format, ab);
    for (let j = 0; j < m; j++) out[i * m + j] = pairwiseValue(ab, bb[j], variant);
  }
  return { loss: out, backward: () => ({}) };
}
