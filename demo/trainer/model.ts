/**
 * The trainer's detector: a small YOLO-style head in TF.js. Four 3x3 convolutions down to a
 * stride-8 feature map and a fifth to a stride-16 one; on each level a 1x1 convolution gives per
 * cell 4R DFL logits (R bins for each of the distances l, t, r, b, in grid units of the level) and
 * C class logits, as YOLOv8's head does. Trained with one of two implementations of YOLOv8's loss
 * (losses.ts): detloss's kernels (`detloss/tfjs`) or the same loss composed from TF.js ops.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type BatchTargets, CLASSES, SIZE, rng } from './data';
import { DETLOSS, type Levels, type LossSet, TFJS_OPS } from './losses';

export type Side = 'detloss' | 'tfjs';

export const LOSSES: Record<Side, LossSet> = { detloss: DETLOSS, tfjs: TFJS_OPS };

/** The head's levels: their strides in pixels, and their grids on a SIZE x SIZE image (8x8, 4x4). */
export const STRIDES: readonly number[] = [8, 16];
export const LEVELS: Levels = STRIDES.map((s) => [SIZE / s, SIZE / s] as const);
/** Anchors (cells) per image over both levels: 64 + 16. */
export const ANCHORS = LEVELS.reduce((n, [h, w]) => n + h * w, 0);
/**
 * DFL bins per side (ultralytics' reg_max): distances 0 to R - 1 grid units, and the DFL target is
 * clamped to R - 1.01. An anchor lies inside its box, so its distances are under the box's side,
 * at most 36 px: 4.5 cells at stride 8, 2.25 at stride 16. R = 8 covers them (up to 56 px at stride 8).
 */
export const REG_MAX = 8;

/** Layer shapes: [kh, kw, in, out] and the stride. conv4's output is the stride-8 level, conv5's the stride-16 one. */
const CONVS: readonly { shape: [number, number, number, number]; stride: number }[] = [
  { shape: [3, 3, 3, 8], stride: 2 },
  { shape: [3, 3, 8, 16], stride: 2 },
  { shape: [3, 3, 16, 32], stride: 2 },
  { shape: [3, 3, 32, 32], stride: 1 },
  { shape: [3, 3, 32, 32], stride: 2 },
];
const HEAD_IN = 32;
/** The head's outputs per cell: 4 * REG_MAX DFL logits (side after side), then CLASSES logits. */
const HEAD_OUT = 4 * REG_MAX + CLASSES;

/** Initial parameters, as plain arrays (so two models can start from the same numbers). */
export interface InitParams {
  names: string[];
  shapes: number[][];
  values: Float32Array[];
}

/**
 * He-normal convolution weights from `seed`, zero biases, and per level a head with small weights,
 * a DFL bias of 0 (every side starts at the mean bin, 3.5 cells, as ultralytics' constant bias
 * does) and a class bias at the 1 % prior (-log(99)).
 */
export function initParams(seed: number): InitParams {
  const rand = rng(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const names: string[] = [];
  const shapes: number[][] = [];
  const values: Float32Array[] = [];
  const add = (name: string, shape: number[], f: (i: number) => number) => {
    const size = shape.reduce((a, b) => a * b, 1);
    names.push(name);
    shapes.push(shape);
    values.push(Float32Array.from({ length: size }, (_, i) => f(i)));
  };
  CONVS.forEach(({ shape }, i) => {
    const std = Math.sqrt(2 / (shape[0] * shape[1] * shape[2]));
    add(`conv${i + 1}/w`, shape, () => std * normal());
    add(`conv${i + 1}/b`, [shape[3]], () => 0);
  });
  for (const stride of STRIDES) {
    add(`head${stride}/w`, [1, 1, HEAD_IN, HEAD_OUT], () => 0.01 * normal());
    add(`head${stride}/b`, [HEAD_OUT], (i) => (i < 4 * REG_MAX ? 0 : -Math.log(99)));
  }
  return { names, shapes, values };
}

/** A model's variables, made from `init` (each side gets its own copy). */
let made = 0;
export function makeVariables(init: InitParams, tag: string): tf.Variable[] {
  made++;
  return init.values.map((v, i) => tf.tidy(() => tf.variable(tf.tensor(v, init.shapes[i], 'float32'), true, `${tag}${made}/${init.names[i]}`)));
}

/** The head's outputs for a batch: `predDist` [B, A, 4R] and `predScores` [B, A, C], level after level, row-major. */
export function forward(vars: readonly tf.Variable[], x: tf.Tensor4D): { predDist: tf.Tensor3D; predScores: tf.Tensor3D } {
  const b = x.shape[0];
  let h: tf.Tensor4D = x;
  const features: tf.Tensor4D[] = [];
  CONVS.forEach(({ stride }, i) => {
    h = tf.fused.conv2d({ x: h, filter: vars[2 * i] as tf.Tensor4D, strides: stride, pad: 'same', bias: vars[2 * i + 1], activation: 'relu' });
    if (i >= CONVS.length - 2) features.push(h);
  });
  const k = 2 * CONVS.length;
  // Per level [B, h, w, HEAD_OUT] as [B, h*w, HEAD_OUT] (NHWC: y, then x), levels concatenated.
  const out = tf.concat(
    features.map((f, l) => {
      const o = tf.fused.conv2d({ x: f, filter: vars[k + 2 * l] as tf.Tensor4D, strides: 1, pad: 'same', bias: vars[k + 2 * l + 1] });
      return tf.reshape(o, [b, o.shape[1] * o.shape[2], HEAD_OUT]);
    }),
    1,
  );
  const predDist = tf.slice(out, [0, 0, 0], [b, ANCHORS, 4 * REG_MAX]) as tf.Tensor3D;
  const predScores = tf.slice(out, [0, 0, 4 * REG_MAX], [b, ANCHORS, CLASSES]) as tf.Tensor3D;
  return { predDist, predScores };
}

/**
 * Boxes from DFL logits: per side the softmax expectation over the bins (grid units), the box
 * (anchor - l, anchor - t, anchor + r, anchor + b) times the anchor's stride: [B, A, 4], xyxy, pixels.
 */
export function decodeBoxes(predDist: tf.Tensor3D, anchors: tf.Tensor2D, strides: tf.Tensor1D): tf.Tensor3D {
  const [b, a] = predDist.shape;
  const dist = tf.sum(tf.mul(tf.softmax(tf.reshape(predDist, [b, a, 4, REG_MAX])), tf.range(0, REG_MAX)), 3);
  const lt = tf.slice(dist, [0, 0, 0], [b, a, 2]);
  const rb = tf.slice(dist, [0, 0, 2], [b, a, 2]);
  return tf.mul(tf.concat([tf.sub(anchors, lt), tf.add(anchors, rb)], 2), tf.reshape(strides, [a, 1])) as tf.Tensor3D;
}

/** A batch on the GPU: the images and the padded ground truth. */
export interface Batch {
  x: tf.Tensor4D;
  /** int32 [B, M]. */
  gtLabels: tf.Tensor2D;
  /** [B, M, 4], xyxy, pixels. */
  gtBoxes: tf.Tensor3D;
  /** int32 [B, M]. */
  gtMask: tf.Tensor2D;
  dispose(): void;
}

export function uploadBatch(t: BatchTargets, size: number): Batch {
  const b = t.gtMask.length / t.rows;
  const x = tf.tensor4d(t.pixels, [b, size, size, 3]);
  const gtLabels = tf.tensor2d(t.gtLabels, [b, t.rows], 'int32');
  const gtBoxes = tf.tensor3d(t.gtBoxes, [b, t.rows, 4]);
  const gtMask = tf.tensor2d(t.gtMask, [b, t.rows], 'int32');
  const all = [x, gtLabels, gtBoxes, gtMask];
  return { x, gtLabels, gtBoxes, gtMask, dispose: () => all.forEach((t) => t.dispose()) };
}

/** One step's numbers: the total loss, its components, and the wall time of the step in ms. */
export interface StepResult {
  /** B * (box + cls + dfl): what is differentiated. */
  total: number;
  /** The components after the gains, not multiplied by B. */
  box: number;
  cls: number;
  dfl: number;
  ms: number;
  /** With `record`: the head's outputs the step's loss was computed on (before the update). */
  inputs?: { predDist: Float32Array; predScores: Float32Array };
}

/** A model, its optimizer (Adam), its anchors, and the loss it trains with. */
export class Trainer {
  readonly vars: tf.Variable[];
  /** [A, 2] anchor centres in grid units, [A] strides: from this side's own makeAnchors. */
  readonly anchors: tf.Tensor2D;
  readonly strides: tf.Tensor1D;
  private readonly optimizer: tf.Optimizer;

  constructor(
    readonly side: Side,
    init: InitParams,
    learningRate: number,
  ) {
    this.vars = makeVariables(init, side);
    this.optimizer = tf.train.adam(learningRate);
    ({ anchors: this.anchors, strides: this.strides } = LOSSES[side].makeAnchors(LEVELS, STRIDES));
  }

  /** The step's loss: YOLOv8's B * (box + cls + dfl) on the head's outputs and the batch's gts. */
  private loss(batch: Batch, parts: { t?: tf.Tensor; predDist?: tf.Tensor; predScores?: tf.Tensor }, record: boolean): tf.Scalar {
    const { predDist, predScores } = forward(this.vars, batch.x);
    const { loss, components } = LOSSES[this.side].yoloLoss(predDist, predScores, this.anchors, this.strides, batch.gtLabels, batch.gtBoxes, batch.gtMask);
    parts.t = tf.keep(tf.concat([tf.reshape(loss, [1]), components]));
    if (record) {
      parts.predDist = tf.keep(predDist);
      parts.predScores = tf.keep(predScores);
    }
    return loss;
  }

  /**
   * One optimizer step on `batch`; resolves once its losses are read back (that wait is in `ms`).
   * With `record`, also reads back the head's outputs of the step (after `ms` is taken).
   */
  async step(batch: Batch, record = false): Promise<StepResult> {
    const parts: { t?: tf.Tensor; predDist?: tf.Tensor; predScores?: tf.Tensor } = {};
    const t0 = performance.now();
    this.optimizer.minimize(() => this.loss(batch, parts, record), false, this.vars);
    const [total, box, cls, dfl] = await parts.t!.data();
    const ms = performance.now() - t0;
    parts.t!.dispose();
    const r: StepResult = { total, box, cls, dfl, ms };
    if (parts.predDist && parts.predScores) {
      r.inputs = { predDist: (await parts.predDist.data()) as Float32Array, predScores: (await parts.predScores.data()) as Float32Array };
      tf.dispose([parts.predDist, parts.predScores]);
    }
    return r;
  }

  /**
   * Predictions on images (no gradient): per anchor the best class, its score (the sigmoid of its
   * logit) and the decoded box (xyxy, pixels), image after image.
   */
  async predict(x: tf.Tensor4D): Promise<{ scores: Float32Array; labels: Int32Array; boxes: Float32Array }> {
    const [scores, labels, boxes] = tf.tidy(() => {
      const out = forward(this.vars, x);
      const p = tf.sigmoid(out.predScores);
      return [tf.max(p, 2), tf.argMax(p, 2), decodeBoxes(out.predDist, this.anchors, this.strides)];
    });
    const r = { scores: (await scores.data()) as Float32Array, labels: (await labels.data()) as Int32Array, boxes: (await boxes.data()) as Float32Array };
    tf.dispose([scores, labels, boxes]);
    return r;
  }

  /** All parameters, concatenated in layer order. */
  async params(): Promise<Float32Array> {
    const parts = await Promise.all(this.vars.map((v) => v.data() as Promise<Float32Array>));
    const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }

  dispose(): void {
    this.optimizer.dispose();
    tf.dispose([...this.vars, this.anchors, this.strides]);
  }
}
