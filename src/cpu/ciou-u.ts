import { aspectAngle, sdiv } from './iou';

/**
 * Ultralytics' CIoU (`bbox_iou(..., CIoU=True)` in `ultralytics/utils/metrics.py`), the `ciou_u` of
 * ops.md ("Task-aligned assignment and the YOLOv8 loss"), in float64: its value and its gradient with
 * respect to the first box, with `k` held constant. The eps sits in other places than `iou_loss`'s:
 * on both heights, on the union and on the enclosing diagonal, and in `k`'s denominator as `1 + e`.
 */

/** The `e` of `ciou_u`, in the units of the boxes. */
export const CIOU_U_EPS = 1e-7;

const FOUR_OVER_PI2 = 4 / (Math.PI * Math.PI);

/** d max(a, b) / d a: 1, 0, or 0.5 at a tie (PyTorch's `maximum`). */
const maxPart = (a: number, b: number) => (a > b ? 1 : a === b ? 0.5 : 0);
/** d min(a, b) / d a: 1, 0, or 0.5 at a tie (PyTorch's `minimum`). */
const minPart = (a: number, b: number) => (a < b ? 1 : a === b ? 0.5 : 0);

/** The quantities of `ciou_u(p, t)` that its value and gradient read. */
interface Terms {
  x1: number; y1: number; x2: number; y2: number;
  X1: number; Y1: number; X2: number; Y2: number;
  w: number; h: number;
  iw: number; ih: number;
  union: number; iou: number;
  cw: number; ch: number; c2: number;
  dx: number; dy: number; q: number;
  da: number; v: number;
  /** `v / (v - iou + (1 + e))`. */
  k: number;
}

function terms(p: ArrayLike<number>, t: ArrayLike<number>): Terms {
  const e = CIOU_U_EPS;
  const x1 = p[0], y1 = p[1], x2 = p[2], y2 = p[3];
  const X1 = t[0], Y1 = t[1], X2 = t[2], Y2 = t[3];
  const w = x2 - x1, h = y2 - y1 + e;
  const W = X2 - X1, H = Y2 - Y1 + e;
  const iw = Math.min(x2, X2) - Math.max(x1, X1);
  const ih = Math.min(y2, Y2) - Math.max(y1, Y1);
  // max(iw, 0) * max(ih, 0): a NaN side stays NaN
  const inter = Math.max(iw, 0) * Math.max(ih, 0);
  const union = w * h + W * H - inter + e;
  const iou = sdiv(inter, union);
  const cw = Math.max(x2, X2) - Math.min(x1, X1);
  const ch = Math.max(y2, Y2) - Math.min(y1, Y1);
  const c2 = cw * cw + ch * ch + e;
  const dx = x1 + x2 - X1 - X2;
  const dy = y1 + y2 - Y1 - Y2;
  const q = sdiv((dx * dx + dy * dy) / 4, c2);
  const da = aspectAngle(W, H) - aspectAngle(w, h);
  const v = FOUR_OVER_PI2 * da * da;
  const k = sdiv(v, v - iou + (1 + e));
  return { x1, y1, x2, y2, X1, Y1, X2, Y2, w, h, iw, ih, union, iou, cw, ch, c2, dx, dy, q, da, v, k };
}

/**
 * `ciou_u(p, t)` for xyxy boxes `p` and `t` (symmetric in the two):
 * `iou - (rho2 / c2 + k v)`. With `grad`, writes d ciou_u / d p to `grad[at..at+4]`: `k` is a
 * constant, min/max ties split the gradient evenly, and an intersection side <= 0 passes none. The
 * aspect term is `iou_loss`'s {@link aspectAngle}: plain `atan(w/h)` wherever `h != 0` (here `h`
 * already carries `+ e`), `pi/2 * sign(w)` at `h = 0`, with the gradient of `atan2(w, h)` from the
 * side `h > 0` there (`dA/dw = 0`, `dA/dh = -1/w`; 0 at w = h = 0). `kHeld` replaces `k` by a number
 * given: a finite-difference test holds it at its value at the point ({@link ciouUK}), as the
 * gradient does.
 *
 * @example
 * ciouU([0, 0, 2, 2], [0, 0, 2, 2]); // 4 / (4 + 5e): about 1
 * ciouU([0, 0, 2, 2], [1, 1, 3, 3]); // 1/7 - 2/18, about 0.0317
 */
export function ciouU(p: ArrayLike<number>, t: ArrayLike<number>, grad?: Float64Array, at = 0, kHeld?: number): number {
  const s = terms(p, t);
  const { x1, y1, x2, y2, X1, Y1, X2, Y2, w, h, iw, ih, union, iou, cw, ch, c2, dx, dy, q, da, v } = s;
  const k = kHeld ?? s.k;
  const value = iou - (q + k * v);
  if (!grad) return value;

  // reverse mode from d value = 1; iou = inter / union, union = w h + W H - inter + e
  let gInter = sdiv(1, union);
  const gUnion = -sdiv(iou, union);
  let gw = gUnion * h;
  let gh = gUnion * w;
  gInter -= gUnion;
  // inter = iw ih only where both are > 0
  const overlap = iw > 0 && ih > 0;
  const giw = overlap ? gInter * ih : 0;
  const gih = overlap ? gInter * iw : 0;
  // - q, q = rho2 / c2, rho2 = (dx^2 + dy^2) / 4, c2 = cw^2 + ch^2 + e
  const gRho2 = -sdiv(1, c2);
  const gC2 = sdiv(q, c2);
  const gdx = (gRho2 * dx) / 2;
  const gdy = (gRho2 * dy) / 2;
  const gcw = gC2 * 2 * cw;
  const gch = gC2 * 2 * ch;
  // - k v, k constant: dv/dA(w, h) = -2 * 4/pi^2 * da
  const gA = -k * (-2 * FOUR_OVER_PI2 * da);
  const r2 = w * w + h * h;
  gw += sdiv(gA * h, r2);
  gh -= sdiv(gA * w, r2);
  // iw = min(x2, X2) - max(x1, X1); cw = max(x2, X2) - min(x1, X1); w = x2 - x1; h = y2 - y1 + e
  grad[at] = -giw * maxPart(x1, X1) - gcw * minPart(x1, X1) - gw + gdx;
  grad[at + 1] = -gih * maxPart(y1, Y1) - gch * minPart(y1, Y1) - gh + gdy;
  grad[at + 2] = giw * minPart(x2, X2) + gcw * maxPart(x2, X2) + gw + gdx;
  grad[at + 3] = gih * minPart(y2, Y2) + gch * maxPart(y2, Y2) + gh + gdy;
  return value;
}

/** CIoU's `k = v / (v - iou + (1 + e))` for boxes `p` and `t`, the weight of `v` that the gradient of `ciou_u` holds constant. */
export const ciouUK = (p: ArrayLike<number>, t: ArrayLike<number>): number => terms(p, t).k;
