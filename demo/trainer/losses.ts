/**
 * The trainer's two loss sets, side by side: detloss's fused WebGPU kernels through `detloss/tfjs`,
 * and the same formulas written with TF.js ops (what you would write without detloss), which TF.js
 * differentiates itself. Both take TF.js tensors and return a scalar, so the trainer can swap one for
 * the other and compare the two trainings step by step.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as detloss from 'detloss/tfjs';

export type BoxVariant = 'giou' | 'ciou';

/** The two losses of a step: the box loss over the positive cells, and quality focal over all cells. */
export interface LossSet {
  /** `pred` and `target`: [n, 4] boxes, xyxy. The mean over the n boxes. */
  box(pred: tf.Tensor2D, target: tf.Tensor2D, variant: BoxVariant): tf.Scalar;
  /** `logits`: [n, classes]; `labels`: [n] int32, `classes` for background; `scores`: [n] IoU targets. */
  quality(logits: tf.Tensor2D, labels: tf.Tensor1D, scores: tf.Tensor1D): tf.Scalar;
}

/**
 * detloss: one call per loss. The kernels run on TF.js's own GPUDevice, compute the loss and its
 * gradient in one pass, and register that gradient with TF.js, so `optimizer.minimize` just works.
 * The default reduction is the mean, as below.
 */
export const DETLOSS: LossSet = {
  box: (pred, target, variant) => (variant === 'ciou' ? detloss.ciou(pred, target) : detloss.giou(pred, target)) as tf.Scalar,
  quality: (logits, labels, scores) => detloss.qualityFocal(logits, labels, scores) as tf.Scalar,
};

/** Keeps the denominators away from zero, as detloss's kernels do. */
const EPS = 1e-7;

/** `x` held constant: its value passes, its gradient is zero (TF.js has no stop_gradient op). */
const stopGradient = tf.customGrad(((x: tf.Tensor) => ({
  value: x.clone(),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
})) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor) => tf.Tensor;

/** What GIoU and CIoU share, per row: IoU, the enclosing box, the sides, the centres' distance. */
function boxParts(pred: tf.Tensor2D, target: tf.Tensor2D) {
  const [x1, y1, x2, y2] = tf.unstack(pred, 1);
  const [u1, v1, u2, v2] = tf.unstack(target, 1);
  const w = tf.sub(x2, x1);
  const h = tf.sub(y2, y1);
  const wt = tf.sub(u2, u1);
  const ht = tf.sub(v2, v1);
  // Intersection and union.
  const inter = tf.mul(tf.relu(tf.sub(tf.minimum(x2, u2), tf.maximum(x1, u1))), tf.relu(tf.sub(tf.minimum(y2, v2), tf.maximum(y1, v1))));
  const union = tf.sub(tf.add(tf.mul(w, h), tf.mul(wt, ht)), inter);
  const iou = tf.div(inter, tf.add(union, EPS));
  // The smallest box enclosing both: its width and height.
  const cw = tf.sub(tf.maximum(x2, u2), tf.minimum(x1, u1));
  const ch = tf.sub(tf.maximum(y2, v2), tf.minimum(y1, v1));
  // The squared distance between the centres, and the squared diagonal of the enclosing box.
  const dx = tf.sub(tf.add(x1, x2), tf.add(u1, u2));
  const dy = tf.sub(tf.add(y1, y2), tf.add(v1, v2));
  const centres2 = tf.div(tf.add(tf.square(dx), tf.square(dy)), 4);
  const diagonal2 = tf.add(tf.add(tf.square(cw), tf.square(ch)), EPS);
  return { w, h, wt, ht, union, iou, cw, ch, centres2, diagonal2 };
}

/** GIoU: 1 − IoU + (|C| − |A ∪ B|) / |C|, C the enclosing box; the mean over the rows. */
function giou(pred: tf.Tensor2D, target: tf.Tensor2D): tf.Scalar {
  const b = boxParts(pred, target);
  const enclosing = tf.mul(b.cw, b.ch);
  return tf.mean(tf.add(tf.sub(1, b.iou), tf.div(tf.sub(enclosing, b.union), tf.add(enclosing, EPS)))) as tf.Scalar;
}

/**
 * CIoU: 1 − IoU + ρ² / c² + α·v, with v = 4/π² (atan(wt/ht) − atan(w/h))² the aspect-ratio term and
 * α = v / (1 − IoU + v) held constant; the mean over the rows.
 */
function ciou(pred: tf.Tensor2D, target: tf.Tensor2D): tf.Scalar {
  const b = boxParts(pred, target);
  const diou = tf.add(tf.sub(1, b.iou), tf.div(b.centres2, b.diagonal2));
  const v = tf.mul(4 / Math.PI ** 2, tf.square(tf.sub(tf.atan(tf.div(b.wt, b.ht)), tf.atan(tf.div(b.w, b.h)))));
  const alpha = stopGradient(tf.div(v, tf.add(tf.add(tf.sub(1, b.iou), v), EPS)));
  return tf.mean(tf.add(diou, tf.mul(alpha, v))) as tf.Scalar;
}

/** Binary cross-entropy on logits, in the stable form max(x, 0) − x·t + log(1 + e^−|x|). */
const bceWithLogits = (x: tf.Tensor, t: tf.Tensor) => tf.add(tf.sub(tf.relu(x), tf.mul(x, t)), tf.log1p(tf.exp(tf.neg(tf.abs(x)))));

/**
 * Quality focal loss (GFL): on a cell's labelled class, BCE against its IoU score scaled by
 * |score − σ(x)|²; on every other class, BCE against 0 scaled by σ(x)². Summed over the classes,
 * the mean over the rows.
 */
function qualityFocal(logits: tf.Tensor2D, labels: tf.Tensor1D, scores: tf.Tensor1D): tf.Scalar {
  // A background label (the class count) is outside oneHot's range and gives a row of zeros.
  const labelled = tf.oneHot(labels, logits.shape[1]);
  const target = tf.mul(labelled, tf.expandDims(scores, 1));
  const p = tf.sigmoid(logits);
  const positive = tf.mul(bceWithLogits(logits, target), tf.square(tf.abs(tf.sub(target, p))));
  const negative = tf.mul(bceWithLogits(logits, tf.zerosLike(logits)), tf.square(p));
  return tf.mean(tf.sum(tf.where(tf.cast(labelled, 'bool'), positive, negative), 1)) as tf.Scalar;
}

/** The same losses in TF.js ops, differentiated by TF.js. */
export const TFJS_OPS: LossSet = {
  box: (pred, target, variant) => (variant === 'ciou' ? ciou(pred, target) : giou(pred, target)),
  quality: qualityFocal,
};
