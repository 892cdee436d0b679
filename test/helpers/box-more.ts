/**
 * The newer box losses of ops.md ("More box losses"), written a second time from the contract's
 * text alone, in float64 and on xyxy boxes, for the tests of the CPU reference and the kernel. The
 * detached quantities (CIoU's alpha, Wise-IoU's c2 and focusing factor) can be frozen at given
 * values, so that a finite difference of this function is the gradient ops.md defines.
 */

/** The params of ops.md's "More box losses" (and the variant they go with), as the op takes them. */
export interface MoreParams {
  variant: 'iou' | 'giou' | 'diou' | 'ciou' | 'eiou' | 'siou' | 'mpdiou' | 'shape' | 'wiou';
  ciouAlpha?: 'torchvision' | 'mmdet';
  power?: number;
  innerRatio?: number;
  focaler?: [number, number];
  imageSize?: [number, number];
  scale?: number;
  wiouVersion?: 1 | 2 | 3;
  iouMean?: number;
  wiouAlpha?: number;
  wiouDelta?: number;
}

/** The values a gradient holds constant, per ops.md. */
export interface Detached {
  /** CIoU's alpha. */
  alpha: number;
  /** Wise-IoU's c2 (inside R = exp(rho2 / c2)). */
  c2: number;
  /** Wise-IoU's focusing factor. */
  factor: number;
}

const EPS = 1e-7;
const clamp = (x: number, lo: number, hi: number) => Math.min(Math.max(x, lo), hi);

/** IoU of two xyxy boxes as ops.md's shared terms define it (intersection only where both overlaps are > 0). */
export function plainIou(p: ArrayLike<number>, t: ArrayLike<number>, eps = EPS): number {
  const iw = Math.min(p[2], t[2]) - Math.max(p[0], t[0]);
  const ih = Math.min(p[3], t[3]) - Math.max(p[1], t[1]);
  const inter = iw > 0 && ih > 0 ? iw * ih : 0;
  const union = (p[2] - p[0]) * (p[3] - p[1]) + (t[2] - t[0]) * (t[3] - t[1]) - inter;
  return union + eps === 0 ? 0 : inter / (union + eps);
}

/** The box with its centre kept and its sides times r. */
const scaled = (b: ArrayLike<number>, r: number) => {
  const cx = (b[0] + b[2]) / 2;
  const cy = (b[1] + b[3]) / 2;
  const hw = (r * (b[2] - b[0])) / 2;
  const hh = (r * (b[3] - b[1])) / 2;
  return [cx - hw, cy - hh, cx + hw, cy + hh];
};

/**
 * The IoU term of ops.md's "Where the IoU term is replaced": the IoU, or that of the inner boxes,
 * through Focaler's interval.
 */
export function iouTerm(p: ArrayLike<number>, t: ArrayLike<number>, q: MoreParams, eps = EPS): number {
  const r = q.innerRatio ?? 1;
  let t0 = plainIou(p, t, eps);
  if (r !== 1) {
    const a = scaled(p, r);
    const b = scaled(t, r);
    const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
    const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
    const ii = iw > 0 && ih > 0 ? iw * ih : 0;
    const w = p[2] - p[0], h = p[3] - p[1], wg = t[2] - t[0], hg = t[3] - t[1];
    t0 = ii / (r * r * (w * h + wg * hg) - ii + eps);
  }
  const [d, u] = q.focaler ?? [0, 1];
  return clamp((t0 - d) / (u - d), 0, 1);
}

/** The detached values at a pair (for boxes with positive heights). */
export function detachedAt(p: ArrayLike<number>, t: ArrayLike<number>, q: MoreParams, eps = EPS): Detached {
  const iou = plainIou(p, t, eps);
  const w = p[2] - p[0], h = p[3] - p[1], wg = t[2] - t[0], hg = t[3] - t[1];
  const v = (4 / Math.PI ** 2) * (Math.atan(wg / hg) - Math.atan(w / h)) ** 2;
  const alpha = q.ciouAlpha === 'mmdet' ? (iou > 0.5 ? v / (1 - iou + v) : 0) : v / (1 - iou + v + eps);
  const cw = Math.max(p[2], t[2]) - Math.min(p[0], t[0]);
  const ch = Math.max(p[3], t[3]) - Math.min(p[1], t[1]);
  const beta = (1 - iou) / (q.iouMean ?? 1);
  const al = q.wiouAlpha ?? 1.9;
  const de = q.wiouDelta ?? 3;
  const version = q.wiouVersion ?? 3;
  const factor = version === 1 ? 1 : version === 2 ? Math.sqrt(beta) : beta / (de * al ** (beta - de));
  return { alpha, c2: cw * cw + ch * ch + eps, factor };
}

/**
 * The loss of ops.md's "More box losses" for xyxy boxes with positive heights (CIoU's aspect angle
 * is torchvision's atan(w / h) there), with the detached values taken from `frozen` where given.
 * `eiou` and `siou` are not written here: `penalty` supplies their penalty (the loss without
 * innerRatio and focaler, minus 1 - iou).
 */
export function moreLoss(p: ArrayLike<number>, t: ArrayLike<number>, q: MoreParams, frozen?: Detached, penalty = 0, eps = EPS): number {
  const fr = frozen ?? detachedAt(p, t, q, eps);
  const T = iouTerm(p, t, q, eps);
  const a = q.power ?? 1;
  const pw = (x: number) => (a === 1 ? x : x <= 0 ? 0 : x ** a);
  const w = p[2] - p[0], h = p[3] - p[1], wg = t[2] - t[0], hg = t[3] - t[1];
  const cw = Math.max(p[2], t[2]) - Math.min(p[0], t[0]);
  const ch = Math.max(p[3], t[3]) - Math.min(p[1], t[1]);
  const c2 = cw * cw + ch * ch + eps;
  // centre offsets, pred minus target
  const ox = (p[0] + p[2] - t[0] - t[2]) / 2;
  const oy = (p[1] + p[3] - t[1] - t[3]) / 2;
  const rho2 = ox * ox + oy * oy;
  switch (q.variant) {
    case 'iou':
      return 1 - pw(T);
    case 'giou': {
      const iw = Math.min(p[2], t[2]) - Math.max(p[0], t[0]);
      const ih = Math.min(p[3], t[3]) - Math.max(p[1], t[1]);
      const inter = iw > 0 && ih > 0 ? iw * ih : 0;
      const union = w * h + wg * hg - inter;
      const pen = (cw * ch - union) / (cw * ch + eps);
      return 1 - pw(T) + (a === 1 ? pen : pw(Math.max(pen, 0)));
    }
    case 'diou':
      return 1 - pw(T) + pw(rho2 / c2);
    case 'ciou': {
      const v = (4 / Math.PI ** 2) * (Math.atan(wg / hg) - Math.atan(w / h)) ** 2;
      if (q.ciouAlpha === 'mmdet') return 1 - clamp(T - rho2 / c2 - fr.alpha * v, -1, 1);
      return 1 - pw(T) + pw(rho2 / c2) + pw(fr.alpha * v);
    }
    case 'eiou':
    case 'siou':
      return 1 - T + penalty;
    case 'mpdiou': {
      const [W, H] = q.imageSize!;
      const d1 = (p[0] - t[0]) ** 2 + (p[1] - t[1]) ** 2;
      const d2 = (p[2] - t[2]) ** 2 + (p[3] - t[3]) ** 2;
      return 1 - T + (d1 + d2) / (W * W + H * H);
    }
    case 'shape': {
      const s = q.scale ?? 0;
      const ww = s === 0 ? 1 : (2 * wg ** s) / (wg ** s + hg ** s);
      const hh = s === 0 ? 1 : (2 * hg ** s) / (wg ** s + hg ** s);
      const dist = (hh * ox * ox + ww * oy * oy) / c2;
      const ow = (hh * Math.abs(w - wg)) / Math.max(w, wg, eps);
      const oh = (ww * Math.abs(h - hg)) / Math.max(h, hg, eps);
      return 1 - T + dist + 0.5 * ((1 - Math.exp(-ow)) ** 4 + (1 - Math.exp(-oh)) ** 4);
    }
    case 'wiou':
      return Math.exp(rho2 / fr.c2) * (1 - T) * fr.factor;
  }
}

/** Box `i` of `src` in `format`, as xyxy. */
export function xyxyOf(src: ArrayLike<number>, i: number, format: 'xyxy' | 'cxcywh' | 'xywh'): number[] {
  const [a, b, c, d] = [src[4 * i], src[4 * i + 1], src[4 * i + 2], src[4 * i + 3]];
  if (format === 'cxcywh') return [a - 0.5 * c, b - 0.5 * d, a + 0.5 * c, b + 0.5 * d];
  if (format === 'xywh') return [a, b, a + c, b + d];
  return [a, b, c, d];
}
