/**
 * YOLOv8's detection loss composed from TF.js ops: what you would write without detloss, from
 * ultralytics' code (8.1-8.3: `TaskAlignedAssigner` in ultralytics/utils/tal.py, `v8DetectionLoss`,
 * `BboxLoss` and `DFLoss` in ultralytics/utils/loss.py, `bbox_iou(..., CIoU=True)` in
 * ultralytics/utils/metrics.py), differentiated by TF.js. It follows the same contract as detloss's
 * `yoloLoss` (ops.md, "Task-aligned assignment and the YOLOv8 loss") and has its signature, so the
 * trainer can swap one for the other.
 *
 * Everything is dense: the assigner works on [B, M, A] tensors (gt rows x anchors), and the box and
 * DFL losses run over every anchor weighted by its target score sum (0 on background anchors), since
 * PyTorch's boolean indexing (`pred_bboxes[fg_mask]`) has no synchronous TF.js counterpart inside a
 * gradient (`tf.booleanMaskAsync` reads the mask back).
 */
import * as tf from '@tensorflow/tfjs-core';

/** The loss's params, with ultralytics' defaults (ops.md's). */
export interface YoloParams {
  topk?: number;
  alpha?: number;
  beta?: number;
  boxGain?: number;
  clsGain?: number;
  dflGain?: number;
}

/** Ultralytics' `bbox_iou` eps, in the units of the boxes. */
const CIOU_EPS = 1e-7;
/** The in-gt test's margin (`select_candidates_in_gts`' eps; fixed, not the assigner's eps). */
const IN_GT_EPS = 1e-9;
/** The assigner's eps, in the normalisation of the target scores. */
const ASSIGN_EPS = 1e-9;

/** `x` held constant: its value passes, its gradient is zero (TF.js has no stop_gradient op). */
const stopGradient = tf.customGrad(((x: tf.Tensor) => ({
  value: x.clone(),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
})) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as <T extends tf.Tensor>(x: T) => T;

/**
 * `f()`, computed from `inputs` but as a constant: no gradient flows back through it (ultralytics
 * runs the assigner under `torch.no_grad()` on detached predictions). Wrapping only the inputs in
 * `stopGradient` is not enough in TF.js: the ops after it (`tf.topk`, the comparisons) would still
 * be on the tape, between the variables and the loss, and TF.js refuses to backpropagate through
 * an op without a gradient ("gradient function not found for TopK"). Inside a customGrad's forward
 * pass nothing is taped, and its gradient here is zero.
 */
function withoutGradient(f: () => tf.Tensor, inputs: tf.Tensor[]): tf.Tensor {
  const op = tf.customGrad((() => ({
    value: f(),
    gradFunc: () => inputs.map((x) => tf.zeros(x.shape, x.dtype)),
  })) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (...xs: tf.Tensor[]) => tf.Tensor;
  return op(...inputs);
}

/**
 * A bool tensor as float32 1s and 0s. Not `tf.cast(b, 'float32')`: on TF.js's WebGPU backend (4.22)
 * a cast from bool or int32 to float32 only relabels the tensor and keeps its int data, and a
 * kernel that copies its input as is (transpose, which `tf.sum` over an inner axis also runs) then
 * fails to compile ("type mismatch ... expected 'f32', got 'i32'") and returns garbage.
 */
const toFloat = (b: tf.Tensor) => tf.where(b, tf.scalar(1), tf.scalar(0));

/**
 * One-hot along a new last axis, as float32. Not `tf.oneHot`: it refuses a depth of 1 (one class,
 * or one gt row), which the assigner meets.
 */
const oneHot = (indices: tf.Tensor, depth: number) => toFloat(tf.equal(tf.expandDims(indices, -1), tf.range(0, depth, 1, 'int32')));

/** A box as its four coordinates x1, y1, x2, y2, each a tensor (broadcastable against the other box's). */
type Corners = [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];

/** The last axis (4, xyxy) of `boxes` split into four tensors without it. */
const corners = (boxes: tf.Tensor) => tf.unstack(boxes, boxes.rank - 1) as Corners;

/**
 * Ultralytics' CIoU (`bbox_iou(box1, box2, xywh=False, CIoU=True)`), with its eps placement: on the
 * heights, the union and the enclosing diagonal; the aspect term's weight `alpha` computed under
 * `no_grad` (here: held constant). Elementwise over the broadcast shape of the coordinates.
 */
function ciouU(box1: Corners, box2: Corners): tf.Tensor {
  const [b1x1, b1y1, b1x2, b1y2] = box1;
  const [b2x1, b2y1, b2x2, b2y2] = box2;
  const w1 = tf.sub(b1x2, b1x1);
  const h1 = tf.add(tf.sub(b1y2, b1y1), CIOU_EPS);
  const w2 = tf.sub(b2x2, b2x1);
  const h2 = tf.add(tf.sub(b2y2, b2y1), CIOU_EPS);
  // Intersection (clamp(0) as relu) and union.
  const inter = tf.mul(tf.relu(tf.sub(tf.minimum(b1x2, b2x2), tf.maximum(b1x1, b2x1))), tf.relu(tf.sub(tf.minimum(b1y2, b2y2), tf.maximum(b1y1, b2y1))));
  const union = tf.add(tf.sub(tf.add(tf.mul(w1, h1), tf.mul(w2, h2)), inter), CIOU_EPS);
  const iou = tf.div(inter, union);
  // The enclosing box's squared diagonal, and the squared distance between the centres.
  const cw = tf.sub(tf.maximum(b1x2, b2x2), tf.minimum(b1x1, b2x1));
  const ch = tf.sub(tf.maximum(b1y2, b2y2), tf.minimum(b1y1, b2y1));
  const c2 = tf.add(tf.add(tf.square(cw), tf.square(ch)), CIOU_EPS);
  const rho2 = tf.div(tf.add(tf.square(tf.sub(tf.add(b2x1, b2x2), tf.add(b1x1, b1x2))), tf.square(tf.sub(tf.add(b2y1, b2y2), tf.add(b1y1, b1y2)))), 4);
  const v = tf.mul(4 / Math.PI ** 2, tf.square(tf.sub(tf.atan(tf.div(w2, h2)), tf.atan(tf.div(w1, h1)))));
  const alpha = stopGradient(tf.div(v, tf.add(tf.sub(v, iou), 1 + CIOU_EPS)));
  return tf.sub(iou, tf.add(tf.div(rho2, c2), tf.mul(v, alpha)));
}

/** What the assigner returns (ops.md's `tal_assign` outputs). */
export interface Assignment {
  /** int32 [B, A]. */
  labels: tf.Tensor;
  /** [B, A, 4], copied from gtBoxes. */
  boxes: tf.Tensor;
  /** [B, A, C]. */
  targetScores: tf.Tensor;
  /** int32 [B, A], 1 for a foreground anchor. */
  foreground: tf.Tensor;
  /** int32 [B, A]. */
  gtIndex: tf.Tensor;
}

/**
 * Ultralytics' TaskAlignedAssigner on dense [B, M, A] tensors. No gradient: call it inside
 * `withoutGradient` (or outside any gradient). `scores` [B, A, C] probabilities, `predBoxes`
 * [B, A, 4] and `gtBoxes` [B, M, 4] xyxy, `anchors` [A, 2] centres, all in the same units;
 * `gtLabels` and `gtMask` int32 [B, M].
 *
 * Tie order: the top k per gt is `tf.topk`. On TF.js's CPU backend equal metrics come out lower
 * index first, which is ops.md's rule; other backends (WebGPU's sort) may order exact ties
 * differently, as `torch.topk` does. That matters only at an exact tie at a gt's k-th place,
 * typically among metric-0 anchors when fewer than k have a positive metric; such an anchor gets a
 * target score of 0 and adds nothing to the loss unless it also decides a multi-gt anchor. The
 * argmax over overlaps takes the first maximum, as `torch.argmax` and ops.md do.
 */
export function talAssign(
  scores: tf.Tensor,
  predBoxes: tf.Tensor,
  anchors: tf.Tensor,
  gtLabels: tf.Tensor,
  gtBoxes: tf.Tensor,
  gtMask: tf.Tensor,
  params: { topk?: number; alpha?: number; beta?: number; eps?: number } = {},
): Assignment {
  const { topk = 10, alpha = 0.5, beta = 6, eps = ASSIGN_EPS } = params;
  const [B, A, C] = scores.shape as number[];
  const M = (gtBoxes.shape as number[])[1];
  return tf.tidy(() => {
    if (M === 0) {
      // No gt rows: ultralytics returns the background label C everywhere and no foreground.
      return {
        labels: tf.fill([B, A], C, 'int32'),
        boxes: tf.zeros([B, A, 4]),
        targetScores: tf.zeros([B, A, C]),
        foreground: tf.zeros([B, A], 'int32'),
        gtIndex: tf.zeros([B, A], 'int32'),
      };
    }
    // Gt coordinates as [B, M, 1], anchor and predicted coordinates as [A] and [B, 1, A]: every
    // pairwise quantity below is [B, M, A].
    const gt = corners(tf.expandDims(gtBoxes, 2));
    const pd = corners(tf.expandDims(predBoxes, 1));
    const [ax, ay] = tf.unstack(anchors, 1);
    const real = tf.cast(tf.expandDims(gtMask, 2), 'bool');

    // select_candidates_in_gts: the anchor centre strictly inside the gt, by more than 1e-9.
    const deltas = tf.minimum(tf.minimum(tf.sub(ax, gt[0]), tf.sub(ay, gt[1])), tf.minimum(tf.sub(gt[2], ax), tf.sub(gt[3], ay)));
    const cand = tf.logicalAnd(tf.greater(deltas, IN_GT_EPS), real);

    // get_box_metrics: CIoU clamped at 0, the score of the gt's class, metric = s^alpha * ov^beta;
    // all three 0 outside the candidates.
    const ov = tf.where(cand, tf.relu(ciouU(gt, pd)), tf.zerosLike(deltas));
    const classScores = tf.gather(tf.transpose(scores, [0, 2, 1]), gtLabels, 1, 1);
    const s = tf.where(cand, classScores, tf.zerosLike(classScores));
    const metric = tf.mul(tf.pow(s, alpha), tf.pow(ov, beta));

    // select_topk_candidates: the topk anchors of largest metric per gt row (see the tie note
    // above), kept where they are candidates (a padding row keeps none).
    const { indices } = tf.topk(metric, topk);
    const inTopk = tf.sum(oneHot(indices, A), 2);
    let maskPos = tf.mul(inTopk, toFloat(cand));

    // select_highest_overlaps: an anchor selected by several gts goes to the gt of largest overlap
    // (over all rows; the first on equal overlaps).
    const multi = tf.broadcastTo(tf.expandDims(tf.greater(tf.sum(maskPos, 1), 1), 1), [B, M, A]);
    const isMax = tf.transpose(oneHot(tf.argMax(ov, 1), M), [0, 2, 1]);
    maskPos = tf.where(multi, isMax, maskPos);
    const fg = tf.greater(tf.sum(maskPos, 1), 0);
    const gtIndex = tf.argMax(maskPos, 1);

    // get_targets: the assigned gt's label and box (row 0's on background anchors).
    const labels = tf.gather(gtLabels, gtIndex, 1, 1);
    const boxes = tf.gather(gtBoxes, gtIndex, 1, 1);

    // The soft targets: metric * (the gt's best overlap) / (the gt's best metric + eps), over the
    // anchors the gt ended up with, in the assigned class of foreground anchors.
    const am = tf.mul(metric, maskPos);
    const posMetric = tf.max(am, 2, true);
    const posOv = tf.max(tf.mul(ov, maskPos), 2, true);
    const norm = tf.max(tf.div(tf.mul(am, posOv), tf.add(posMetric, eps)), 1);
    const fgF = toFloat(fg);
    const targetScores = tf.mul(oneHot(labels, C), tf.expandDims(tf.mul(fgF, norm), 2));
    return { labels, boxes, targetScores, foreground: tf.cast(fg, 'int32'), gtIndex };
  });
}

/**
 * Anchor centres in grid units of their level (cell centres 0.5, 1.5, ...), level after level,
 * row-major within a level, and each anchor's stride: ultralytics' `make_anchors`.
 */
export function makeAnchors(sizes: readonly (readonly [h: number, w: number])[], strides: readonly number[], offset = 0.5): { anchors: tf.Tensor2D; strides: tf.Tensor1D } {
  const xy: number[] = [];
  const st: number[] = [];
  sizes.forEach(([h, w], level) => {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        xy.push(x + offset, y + offset);
        st.push(strides[level]);
      }
    }
  });
  return { anchors: tf.tensor2d(xy, [st.length, 2]), strides: tf.tensor1d(st) };
}

/** Binary cross-entropy on logits, in the stable form max(x, 0) - x*t + log(1 + e^-|x|). */
const bceWithLogits = (x: tf.Tensor, t: tf.Tensor) => tf.add(tf.sub(tf.relu(x), tf.mul(x, t)), tf.log1p(tf.exp(tf.neg(tf.abs(x)))));

/**
 * v8DetectionLoss in TF.js ops: the total `B * (box + cls + dfl)`, which TF.js differentiates with
 * respect to `predDist` [B, A, 4R] (DFL logits, sides l, t, r, b) and `predScores` [B, A, C]
 * (class logits), and the components `[box, cls, dfl]` after the gains. `anchors` [A, 2] in grid
 * units, `strides` [A] in pixels, `gtBoxes` [B, M, 4] xyxy in pixels, `gtLabels` and `gtMask`
 * int32 [B, M].
 */
export function yoloLoss(
  predDist: tf.Tensor,
  predScores: tf.Tensor,
  anchors: tf.Tensor2D,
  strides: tf.Tensor1D,
  gtLabels: tf.Tensor,
  gtBoxes: tf.Tensor,
  gtMask: tf.Tensor,
  params: YoloParams = {},
): { loss: tf.Scalar; components: tf.Tensor1D } {
  const { topk = 10, alpha = 0.5, beta = 6, boxGain = 7.5, clsGain = 0.5, dflGain = 1.5 } = params;
  const [B, A, C] = predScores.shape as number[];
  const R = (predDist.shape as number[])[2] / 4;
  return tf.tidy(() => {
    // Decode: the distances l, t, r, b as the softmax expectation over the R bins (grid units),
    // and the predicted box around the anchor.
    const logits = tf.reshape(predDist, [B, A, 4, R]);
    const dist = tf.sum(tf.mul(tf.softmax(logits), tf.range(0, R)), 3);
    const lt = tf.slice(dist, [0, 0, 0], [B, A, 2]);
    const rb = tf.slice(dist, [0, 0, 2], [B, A, 2]);
    const predBoxes = tf.concat([tf.sub(anchors, lt), tf.add(anchors, rb)], 2);

    // The targets, as constants: the assignment (in pixels) and what the losses derive from it,
    // packed in one tensor [B, A, C + 4 + 4R] (a customGrad returns one): the target scores, the
    // target box in grid units, and the DFL's two-bin target distribution per side.
    const stride = tf.reshape(strides, [A, 1]);
    const packed = withoutGradient(() => {
      const a = talAssign(tf.sigmoid(predScores), tf.mul(predBoxes, stride), tf.mul(anchors, stride), gtLabels, gtBoxes, gtMask, { topk, alpha, beta });
      const target = tf.div(a.boxes, stride);
      // bbox2dist, clamped to [0, R - 1 - 0.01]; the left bin's weight is lo + 1 - t, the right's t - lo.
      const t = tf.clipByValue(tf.concat([tf.sub(anchors, tf.slice(target, [0, 0, 0], [B, A, 2])), tf.sub(tf.slice(target, [0, 0, 2], [B, A, 2]), anchors)], 2), 0, R - 1 - 0.01);
      const lo = tf.floor(t);
      const wl = tf.sub(tf.add(lo, 1), t);
      const wr = tf.sub(1, wl);
      const loI = tf.cast(lo, 'int32');
      const dflTarget = tf.add(tf.mul(oneHot(loI, R), tf.expandDims(wl, 3)), tf.mul(oneHot(tf.add(loI, tf.scalar(1, 'int32')), R), tf.expandDims(wr, 3)));
      return tf.concat([a.targetScores, target, tf.reshape(dflTarget, [B, A, 4 * R])], 2);
    }, [predDist, predScores, predBoxes, anchors, strides, gtLabels, gtBoxes, gtMask]);
    const targetScores = tf.slice(packed, [0, 0, 0], [B, A, C]);
    const targetBoxes = tf.slice(packed, [0, 0, C], [B, A, 4]);
    const dflTarget = tf.reshape(tf.slice(packed, [0, 0, C + 4], [B, A, 4 * R]), [B, A, 4, R]);

    // One normaliser for the batch, and each anchor's weight (0 on background anchors).
    const tss = tf.maximum(tf.sum(targetScores), 1);
    const weight = tf.sum(targetScores, 2);

    // Classification: BCE against the soft targets, summed, over tss.
    const cls = tf.div(tf.sum(bceWithLogits(predScores, targetScores)), tss);
    // Box: (1 - CIoU) in grid units, weighted.
    const ciou = ciouU(corners(predBoxes), corners(targetBoxes));
    const box = tf.div(tf.sum(tf.mul(weight, tf.sub(1, ciou))), tss);
    // DFL: cross-entropy against the two-bin target of each side, the mean over the sides, weighted.
    const ce = tf.neg(tf.sum(tf.mul(dflTarget, tf.logSoftmax(logits)), 3));
    const dfl = tf.div(tf.sum(tf.mul(weight, tf.mean(ce, 2))), tss);

    const components = tf.stack([tf.mul(box, boxGain), tf.mul(cls, clsGain), tf.mul(dfl, dflGain)]) as tf.Tensor1D;
    const loss = tf.mul(tf.sum(components), B) as tf.Scalar;
    return { loss, components };
  });
}
