/**
 * The trainer's two implementations of YOLOv8's detection loss (ultralytics' v8DetectionLoss:
 * TaskAlignedAssigner, then BCE on the classes, CIoU on the boxes and the distribution focal loss on
 * the DFL bins), side by side: detloss's WebGPU kernels through `detloss/tfjs`, and the same loss
 * composed from TF.js ops (yolo-tfjs.ts: what you would write without detloss), which TF.js
 * differentiates itself. Both take and return TF.js tensors with one signature, so the trainer can
 * swap one for the other and compare the two trainings step by step.
 */
import type * as tf from '@tensorflow/tfjs-core';
import * as detloss from 'detloss/tfjs';
import * as ops from './yolo-tfjs';

/** Feature map sizes, one [h, w] per level. */
export type Levels = readonly (readonly [h: number, w: number])[];

export interface LossSet {
  /** Anchor centres [A, 2] in grid units of their level, level after level, and their strides [A] in pixels. */
  makeAnchors(sizes: Levels, strides: readonly number[]): { anchors: tf.Tensor2D; strides: tf.Tensor1D };
  /**
   * `predDist` [B, A, 4R] DFL logits (sides l, t, r, b), `predScores` [B, A, C] class logits,
   * `gtLabels` int32 [B, M], `gtBoxes` [B, M, 4] xyxy in pixels, `gtMask` int32 [B, M]. `loss` is
   * `B * (box + cls + dfl)`, what ultralytics backpropagates; `components` is `[box, cls, dfl]`
   * after the gains (7.5, 0.5, 1.5).
   */
  yoloLoss(
    predDist: tf.Tensor,
    predScores: tf.Tensor,
    anchors: tf.Tensor2D,
    strides: tf.Tensor1D,
    gtLabels: tf.Tensor,
    gtBoxes: tf.Tensor,
    gtMask: tf.Tensor,
  ): { loss: tf.Scalar; components: tf.Tensor1D };
}

/**
 * detloss: one call. The kernels run on TF.js's own GPUDevice, assign, compute the loss and its
 * gradient in one pass, and register that gradient with TF.js, so `optimizer.minimize` just works.
 */
export const DETLOSS: LossSet = {
  makeAnchors: (sizes, strides) => detloss.makeAnchors(sizes, strides),
  yoloLoss: (predDist, predScores, anchors, strides, gtLabels, gtBoxes, gtMask) => detloss.yoloLoss(predDist, predScores, anchors, strides, gtLabels, gtBoxes, gtMask),
};

/** The same loss in TF.js ops, differentiated by TF.js. */
export const TFJS_OPS: LossSet = {
  makeAnchors: (sizes, strides) => ops.makeAnchors(sizes, strides),
  yoloLoss: (predDist, predScores, anchors, strides, gtLabels, gtBoxes, gtMask) => ops.yoloLoss(predDist, predScores, anchors, strides, gtLabels, gtBoxes, gtMask),
};
