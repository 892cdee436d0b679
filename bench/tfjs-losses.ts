/**
 * The benchmark's TF.js peer: each loss composed from tf ops the way a TF.js user would write
 * it, differentiated with tf.valueAndGrads. Inputs are tensors already on the backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';

export type Tensors = Record<string, tf.Tensor>;
export type LossFn = (t: Tensors) => tf.Scalar;

/** tf has no stop_gradient: a custom gradient of zero holds a term constant (CIoU's alpha). */
const stopGradient = tf.customGrad(((x: tf.Tensor) => ({ value: x.clone(), gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy) })) as unknown as Parameters<typeof tf.customGrad>[0]);

/** A 0/1 mask a <= b with no gradient: tf cannot differentiate comparisons on the gradient path. */
const lessEqualMask = tf.customGrad(((a: tf.Tensor, b: tf.Tensor) => ({
  value: tf.cast(tf.lessEqual(a, b), 'float32'),
  gradFunc: () => [tf.zerosLike(a), tf.zerosLike(b)],
})) as unknown as Parameters<typeof tf.customGrad>[0]);

const EPS = 1e-7;

function boxTerms(pred: tf.Tensor, target: tf.Tensor) {
  const [x1, y1, x2, y2] = tf.unstack(pred, 1);
  const [gx1, gy1, gx2, gy2] = tf.unstack(target, 1);
  const iw = tf.relu(tf.sub(tf.minimum(x2, gx2), tf.maximum(x1, gx1)));
  const ih = tf.relu(tf.sub(tf.minimum(y2, gy2), tf.maximum(y1, gy1)));
  const inter = tf.mul(iw, ih);
  const w = tf.sub(x2, x1);
  const h = tf.sub(y2, y1);
  const wg = tf.sub(gx2, gx1);
  const hg = tf.sub(gy2, gy1);
  const union = tf.sub(tf.add(tf.mul(w, h), tf.mul(wg, hg)), inter);
  const iou = tf.div(inter, tf.add(union, EPS));
  const cw = tf.sub(tf.maximum(x2, gx2), tf.minimum(x1, gx1));
  const ch = tf.sub(tf.maximum(y2, gy2), tf.minimum(y1, gy1));
  const c2 = tf.add(tf.add(tf.square(cw), tf.square(ch)), EPS);
  const dx = tf.sub(tf.add(x1, x2), tf.add(gx1, gx2));
  const dy = tf.sub(tf.add(y1, y2), tf.add(gy1, gy2));
  const rho2 = tf.div(tf.add(tf.square(dx), tf.square(dy)), 4);
  return { x1, y1, x2, y2, gx1, gy1, gx2, gy2, inter, union, iou, w, h, wg, hg, cw, ch, c2, dx, dy, rho2 };
}

/**
 * ultralytics' `_get_covariance_matrix`: the entries (a, b, c) of each box's covariance, from
 * (w^2/12, h^2/12, angle), given the box's columns.
 */
function ultralyticsCovariance(w: tf.Tensor, h: tf.Tensor, r: tf.Tensor) {
  const a = tf.div(tf.square(w), 12);
  const b = tf.div(tf.square(h), 12);
  const cos = tf.cos(r);
  const sin = tf.sin(r);
  const cos2 = tf.square(cos);
  const sin2 = tf.square(sin);
  return [tf.add(tf.mul(a, cos2), tf.mul(b, sin2)), tf.add(tf.mul(a, sin2), tf.mul(b, cos2)), tf.mul(tf.mul(tf.sub(a, b), cos), sin)];
}

/**
 * ultralytics' `probiou(obb1, obb2, eps=1e-7)` per row, as written there (t1, t2, t3 through the
 * covariances' entries, the Bhattacharyya distance clamped to [eps, 100]): the ProbIoU, `1 - hd`.
 * Each box tensor is unstacked once (ultralytics slices obb1 twice, for the centre and in
 * `_get_covariance_matrix`; on TF.js each unstack costs a tf.stack in the gradient, the slowest
 * kernel of this composition on SwiftShader).
 */
export function tfjsProbiou(pred: tf.Tensor, target: tf.Tensor, eps = 1e-7): tf.Tensor {
  const [x1, y1, w1, h1, r1] = tf.unstack(pred, 1);
  const [x2, y2, w2, h2, r2] = tf.unstack(target, 1);
  const [a1, b1, c1] = ultralyticsCovariance(w1, h1, r1);
  const [a2, b2, c2] = ultralyticsCovariance(w2, h2, r2);
  const a12 = tf.add(a1, a2);
  const b12 = tf.add(b1, b2);
  const c12 = tf.add(c1, c2);
  const det = tf.sub(tf.mul(a12, b12), tf.square(c12));
  const den = tf.add(det, eps);
  const dx = tf.sub(x1, x2);
  const dy = tf.sub(y1, y2);
  const t1 = tf.mul(tf.div(tf.add(tf.mul(a12, tf.square(dy)), tf.mul(b12, tf.square(dx))), den), 0.25);
  const t2 = tf.mul(tf.div(tf.mul(tf.mul(c12, tf.sub(x2, x1)), dy), den), 0.5);
  const det1 = tf.relu(tf.sub(tf.mul(a1, b1), tf.square(c1)));
  const det2 = tf.relu(tf.sub(tf.mul(a2, b2), tf.square(c2)));
  const t3 = tf.mul(tf.log(tf.add(tf.div(det, tf.add(tf.mul(4, tf.sqrt(tf.mul(det1, det2))), eps)), eps)), 0.5);
  const bd = tf.clipByValue(tf.add(tf.add(t1, t2), t3), eps, 100);
  const hd = tf.sqrt(tf.add(tf.sub(1, tf.exp(tf.neg(bd))), eps));
  return tf.sub(1, hd);
}

/**
 * mmrotate's `xy_wh_r_2_xy_sigma`: the centre and the covariance R diag(w/2, h/2)^2 R^T with the
 * sides clamped to [1e-7, 1e7], its 2 x 2 products written entry by entry (a, b on the diagonal, c
 * off it), as ultralytics writes its own, rather than mmrotate's bmm as a batched tf.matMul of n 2 x 2
 * matrices.
 */
function mmrotateXySigma(boxes: tf.Tensor) {
  const [x, y, w0, h0, r] = tf.unstack(boxes, 1);
  const p = tf.square(tf.mul(0.5, tf.clipByValue(w0, 1e-7, 1e7)));
  const q = tf.square(tf.mul(0.5, tf.clipByValue(h0, 1e-7, 1e7)));
  const cos = tf.cos(r);
  const sin = tf.sin(r);
  const cos2 = tf.square(cos);
  const sin2 = tf.square(sin);
  return { x, y, a: tf.add(tf.mul(p, cos2), tf.mul(q, sin2)), b: tf.add(tf.mul(p, sin2), tf.mul(q, cos2)), c: tf.mul(tf.mul(tf.sub(p, q), cos), sin) };
}

/**
 * mmrotate's `kld_loss(pred, target, fun, tau, alpha, sqrt)` per row (GDLoss's defaults: fun
 * 'log1p', tau 0, alpha 1, sqrt true): KL(target || pred) through pred's inverse covariance
 * (adjugate over determinant), then `postprocess`.
 */
export function tfjsKld(pred: tf.Tensor, target: tf.Tensor, opts: { fun?: 'log1p' | 'sqrt' | 'none'; tau?: number; alpha?: number; sqrt?: boolean } = {}): tf.Tensor {
  const { fun = 'log1p', tau = 0, alpha = 1, sqrt = true } = opts;
  const sp = mmrotateXySigma(pred);
  const st = mmrotateXySigma(target);
  const detP = tf.sub(tf.mul(sp.a, sp.b), tf.square(sp.c));
  const detT = tf.sub(tf.mul(st.a, st.b), tf.square(st.c));
  const dx = tf.sub(sp.x, st.x);
  const dy = tf.sub(sp.y, st.y);
  // 0.5 * d^T inv(Sigma_p) d, inv(Sigma_p) = [[b, -c], [-c, a]] / det
  const xy = tf.mul(0.5, tf.div(tf.add(tf.sub(tf.mul(sp.b, tf.square(dx)), tf.mul(tf.mul(2, sp.c), tf.mul(dx, dy))), tf.mul(sp.a, tf.square(dy))), detP));
  // 0.5 * tr(inv(Sigma_p) Sigma_t) + 0.5 * (log det_p - log det_t) - 1
  const tr = tf.div(tf.sub(tf.add(tf.mul(sp.b, st.a), tf.mul(sp.a, st.b)), tf.mul(2, tf.mul(sp.c, st.c))), detP);
  const whr = tf.sub(tf.add(tf.mul(0.5, tr), tf.mul(0.5, tf.sub(tf.log(detP), tf.log(detT)))), 1);
  let d = tf.add(alpha === 1 ? xy : tf.div(xy, alpha * alpha), whr);
  if (sqrt) d = tf.sqrt(tf.maximum(d, 1e-7));
  if (fun === 'log1p') d = tf.log1p(d);
  else if (fun === 'sqrt') d = tf.sqrt(tf.maximum(d, 1e-7));
  return tau >= 1 ? tf.sub(1, tf.div(1, tf.add(d, tau))) : d;
}

export const TFJS_LOSSES: Record<string, LossFn> = {
  smooth_l1: ({ pred, target }) => {
    // the form of tf.losses.huberLoss: 0.5*min(|d|, beta)^2/beta + (|d| - min(|d|, beta))
    const ad = tf.abs(tf.sub(pred, target));
    const beta = 1;
    const q = tf.minimum(ad, beta);
    return tf.mean(tf.add(tf.div(tf.mul(0.5, tf.square(q)), beta), tf.sub(ad, q)));
  },
  giou: ({ pred, target }) => {
    const b = boxTerms(pred, target);
    const area = tf.mul(b.cw, b.ch);
    return tf.mean(tf.add(tf.sub(1, b.iou), tf.div(tf.sub(area, b.union), tf.add(area, EPS))));
  },
  ciou: ({ pred, target }) => {
    const b = boxTerms(pred, target);
    const diou = tf.add(tf.sub(1, b.iou), tf.div(b.rho2, b.c2));
    const v = tf.mul(4 / Math.PI ** 2, tf.square(tf.sub(tf.atan(tf.div(b.wg, b.hg)), tf.atan(tf.div(b.w, b.h)))));
    const alpha = stopGradient(tf.div(v, tf.add(tf.add(tf.sub(1, b.iou), v), EPS))) as tf.Tensor;
    return tf.mean(tf.add(diou, tf.mul(alpha, v)));
  },
  siou: ({ pred, target }) => {
    const b = boxTerms(pred, target);
    const sx = tf.div(b.dx, -2);
    const sy = tf.div(b.dy, -2);
    const sigma = tf.sqrt(tf.add(tf.add(tf.square(sx), tf.square(sy)), EPS));
    const sinAlpha = tf.div(tf.abs(sy), sigma);
    const sinBeta = tf.div(tf.abs(sx), sigma);
    const useAlpha = tf.cast(lessEqualMask(sinAlpha, tf.scalar(Math.SQRT1_2)) as tf.Tensor, 'bool');
    const sinA = tf.where(useAlpha, sinAlpha, sinBeta);
    const angle = tf.cos(tf.sub(tf.mul(2, tf.asin(sinA)), Math.PI / 2));
    const gamma = tf.sub(2, angle);
    const px = tf.square(tf.div(sx, tf.add(b.cw, EPS)));
    const py = tf.square(tf.div(sy, tf.add(b.ch, EPS)));
    const dist = tf.add(tf.sub(1, tf.exp(tf.neg(tf.mul(gamma, px)))), tf.sub(1, tf.exp(tf.neg(tf.mul(gamma, py)))));
    const ow = tf.div(tf.abs(tf.sub(b.w, b.wg)), tf.maximum(tf.maximum(b.w, b.wg), EPS));
    const oh = tf.div(tf.abs(tf.sub(b.h, b.hg)), tf.maximum(tf.maximum(b.h, b.hg), EPS));
    const shape = tf.add(tf.pow(tf.sub(1, tf.exp(tf.neg(ow))), 4), tf.pow(tf.sub(1, tf.exp(tf.neg(oh))), 4));
    return tf.mean(tf.add(tf.sub(1, b.iou), tf.div(tf.add(dist, shape), 2)));
  },
  shape: ({ pred, target }) => {
    // Shape-IoU at scale 0 (ww = hh = 1): 1 - iou + rho2/c2 + 0.5 * shape cost
    const b = boxTerms(pred, target);
    const ow = tf.div(tf.abs(tf.sub(b.w, b.wg)), tf.maximum(tf.maximum(b.w, b.wg), EPS));
    const oh = tf.div(tf.abs(tf.sub(b.h, b.hg)), tf.maximum(tf.maximum(b.h, b.hg), EPS));
    const cost = tf.add(tf.pow(tf.sub(1, tf.exp(tf.neg(ow))), 4), tf.pow(tf.sub(1, tf.exp(tf.neg(oh))), 4));
    return tf.mean(tf.add(tf.add(tf.sub(1, b.iou), tf.div(b.rho2, b.c2)), tf.mul(0.5, cost)));
  },
  wiou: ({ pred, target }) => {
    // Wise-IoU v3 with iouMean 1, alpha 1.9, delta 3: exp(rho2 / c2) (c2 detached) * (1 - iou) * r, r detached
    const b = boxTerms(pred, target);
    const l = tf.sub(1, b.iou);
    const big = tf.exp(tf.div(b.rho2, stopGradient(b.c2) as tf.Tensor));
    const beta = stopGradient(l) as tf.Tensor;
    const focus = tf.div(beta, tf.mul(3, tf.pow(tf.scalar(1.9), tf.sub(beta, 3))));
    return tf.mean(tf.mul(tf.mul(big, l), focus));
  },
  // ultralytics' RotatedBboxLoss: 1 - probiou(pred, target), here with reduction 'mean'
  probiou: ({ pred, target }) => tf.mean(tf.sub(1, tfjsProbiou(pred, target))),
  // mmrotate's GDLoss(loss_type='kld') with its defaults (fun 'log1p', tau 0, alpha 1, sqrt true)
  kld: ({ pred, target }) => tf.mean(tfjsKld(pred, target)),
  sigmoid_focal: ({ logits, targets }) => {
    const alpha = 0.25;
    const p = tf.sigmoid(logits);
    const ce = tf.add(tf.sub(tf.relu(logits), tf.mul(logits, targets)), tf.log1p(tf.exp(tf.neg(tf.abs(logits)))));
    const pt = tf.add(tf.mul(p, targets), tf.mul(tf.sub(1, p), tf.sub(1, targets)));
    const at = tf.add(tf.mul(alpha, targets), tf.mul(1 - alpha, tf.sub(1, targets)));
    return tf.mean(tf.mul(at, tf.mul(ce, tf.square(tf.sub(1, pt)))));
  },
  quality_focal: ({ logits, labels, scores }) => {
    const c = logits.shape[1]!;
    const bce = (x: tf.Tensor, t: tf.Tensor) => tf.add(tf.sub(tf.relu(x), tf.mul(x, t)), tf.log1p(tf.exp(tf.neg(tf.abs(x)))));
    const onehot = tf.oneHot(labels as tf.Tensor1D, c); // background labels (outside 0..c-1) give a zero row
    const t = tf.mul(onehot, tf.expandDims(scores, 1));
    const s = tf.sigmoid(logits);
    const pos = tf.mul(bce(logits, t), tf.square(tf.abs(tf.sub(t, s))));
    const neg = tf.mul(bce(logits, tf.zerosLike(logits)), tf.square(s));
    return tf.mean(tf.sum(tf.where(tf.cast(onehot, 'bool'), pos, neg), 1));
  },
  cross_entropy: ({ logits, labels }) => {
    const onehot = tf.oneHot(labels as tf.Tensor1D, logits.shape[1]!);
    return tf.mean(tf.neg(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), 1)));
  },
  softmax_focal: ({ logits, labels }) => {
    // gamma 2, no class weights: mean over rows of -(1 - p_y)^2 log p_y, 1 - p_y as -expm1(log p_y)
    const onehot = tf.oneHot(labels as tf.Tensor1D, logits.shape[1]!);
    const lpy = tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), 1);
    return tf.mean(tf.neg(tf.mul(tf.square(tf.neg(tf.expm1(lpy))), lpy)));
  },
  class_balanced_focal: ({ logits, labels, samplesPerClass }) => {
    // beta 0.9999, gamma 2: cb = (1 - beta)/(1 - beta^n), 0 without samples, scaled to sum to c;
    // a background row (label c) weighs 1. Mean over the n*c elements.
    const c = logits.shape[1]!;
    const beta = 0.9999;
    const has = tf.greater(samplesPerClass, 0);
    const raw = tf.where(has, tf.div(1 - beta, tf.sub(1, tf.pow(tf.scalar(beta), samplesPerClass))), tf.zerosLike(samplesPerClass));
    const cb = tf.mul(raw, tf.div(c, tf.sum(raw)));
    const labelled = tf.less(labels, c);
    const rowW = tf.where(labelled, tf.gather(cb, tf.minimum(labels, c - 1)), tf.onesLike(tf.cast(labels, 'float32')));
    const t = tf.oneHot(labels as tf.Tensor1D, c); // a background label gives a zero row
    const tf32 = tf.cast(t, 'float32');
    const p = tf.sigmoid(logits);
    const bce = tf.add(tf.sub(tf.relu(logits), tf.mul(logits, tf32)), tf.log1p(tf.exp(tf.neg(tf.abs(logits)))));
    const q = tf.add(tf.mul(tf32, tf.sub(1, p)), tf.mul(tf.sub(1, tf32), p));
    return tf.mean(tf.mul(tf.expandDims(rowW, 1), tf.mul(bce, tf.square(q))));
  },
  distribution_focal: ({ logits, targets }) => {
    const k = logits.shape[1]!;
    const left = tf.floor(targets);
    const wl = tf.sub(tf.add(left, 1), targets);
    const wr = tf.sub(targets, left);
    const ls = tf.logSoftmax(logits);
    const li = tf.cast(left, 'int32') as tf.Tensor1D;
    const pick = (idx: tf.Tensor1D) => tf.sum(tf.mul(tf.oneHot(idx, k), ls), 1);
    return tf.mean(tf.neg(tf.add(tf.mul(pick(li), wl), tf.mul(pick(tf.add(li, tf.scalar(1, 'int32')) as tf.Tensor1D), wr))));
  },
};

/** Pairwise IoU/GIoU of a [n,4] and b [m,4] by broadcasting, as a TF.js user would. */
export function tfjsPairwise(a: tf.Tensor, b: tf.Tensor, variant: 'iou' | 'giou'): tf.Tensor {
  const [ax1, ay1, ax2, ay2] = tf.unstack(a, 1).map((t) => tf.expandDims(t, 1));
  const [bx1, by1, bx2, by2] = tf.unstack(b, 1).map((t) => tf.expandDims(t, 0));
  const iw = tf.relu(tf.sub(tf.minimum(ax2, bx2), tf.maximum(ax1, bx1)));
  const ih = tf.relu(tf.sub(tf.minimum(ay2, by2), tf.maximum(ay1, by1)));
  const inter = tf.mul(iw, ih);
  const union = tf.sub(tf.add(tf.mul(tf.sub(ax2, ax1), tf.sub(ay2, ay1)), tf.mul(tf.sub(bx2, bx1), tf.sub(by2, by1))), inter);
  const iou = tf.div(inter, union);
  if (variant === 'iou') return iou;
  const area = tf.mul(tf.sub(tf.maximum(ax2, bx2), tf.minimum(ax1, bx1)), tf.sub(tf.maximum(ay2, by2), tf.minimum(ay1, by1)));
  return tf.sub(iou, tf.div(tf.sub(area, union), area));
}
