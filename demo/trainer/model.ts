/**
 * The trainer's detector: a small anchor-free head in TF.js (four 3x3 convolutions down to a
 * stride-8 grid, then per cell class logits and four distances l, t, r, b decoded to an xyxy box),
 * trained with one of two loss sets that compute the same formulas (losses.ts): detloss's fused
 * kernels (`detloss/tfjs`) or the same losses written with TF.js ops.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type BatchTargets, CELLS, CLASSES, GRID, STRIDE, rng } from './data';
import { type BoxVariant, DETLOSS, type LossSet, TFJS_OPS } from './losses';

export type Side = 'detloss' | 'tfjs';

export const LOSSES: Record<Side, LossSet> = { detloss: DETLOSS, tfjs: TFJS_OPS };

/** Weight of the box loss in a step's total (as GFL's `loss_bbox` weight). */
export const BOX_WEIGHT = 2;

/** Layer shapes: [kh, kw, in, out] and the stride. */
const CONVS: readonly { shape: [number, number, number, number]; stride: number }[] = [
  { shape: [3, 3, 3, 8], stride: 2 },
  { shape: [3, 3, 8, 16], stride: 2 },
  { shape: [3, 3, 16, 32], stride: 2 },
  { shape: [3, 3, 32, 32], stride: 1 },
];
const HEAD_IN = 32;
/** The head's outputs per cell: CLASSES logits, then the distances l, t, r, b. */
const HEAD_OUT = CLASSES + 4;

/** Initial parameters, as plain arrays (so two models can start from the same numbers). */
export interface InitParams {
  names: string[];
  shapes: number[][];
  values: Float32Array[];
}

/**
 * He-normal convolution weights from `seed`, zero biases, a class bias at the 1 % prior
 * (-log(99)) and a distance bias that starts every box about 1.5 cells from its centre per side.
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
  add('head/w', [1, 1, HEAD_IN, HEAD_OUT], () => 0.01 * normal());
  // softplus(1.3) * 8 = 11.9 px
  add('head/b', [HEAD_OUT], (i) => (i < CLASSES ? -Math.log(99) : 1.3));
  return { names, shapes, values };
}

/** A model's variables, made from `init` (each side gets its own copy). */
let made = 0;
export function makeVariables(init: InitParams, tag: string): tf.Variable[] {
  made++;
  return init.values.map((v, i) => tf.tidy(() => tf.variable(tf.tensor(v, init.shapes[i], 'float32'), true, `${tag}${made}/${init.names[i]}`)));
}

/** Cell centres in pixels as [CELLS, 4] (cx, cy, cx, cy), and the signs that turn l, t, r, b into xyxy. */
function centres(): { centre: Float32Array; sign: Float32Array } {
  const centre = new Float32Array(CELLS * 4);
  for (let r = 0; r < GRID; r++) {
    for (let c = 0; c < GRID; c++) centre.set([(c + 0.5) * STRIDE, (r + 0.5) * STRIDE, (c + 0.5) * STRIDE, (r + 0.5) * STRIDE], (r * GRID + c) * 4);
  }
  return { centre, sign: Float32Array.from([-1, -1, 1, 1]) };
}
const CENTRES = centres();

/** The head's outputs for a batch: [B*CELLS, CLASSES] logits and [B*CELLS, 4] boxes (xyxy, pixels). */
export function forward(vars: readonly tf.Variable[], x: tf.Tensor4D): { logits: tf.Tensor2D; boxes: tf.Tensor2D } {
  let h: tf.Tensor4D = x;
  CONVS.forEach(({ stride }, i) => {
    h = tf.fused.conv2d({ x: h, filter: vars[2 * i] as tf.Tensor4D, strides: stride, pad: 'same', bias: vars[2 * i + 1], activation: 'relu' });
  });
  const k = 2 * CONVS.length;
  const n = x.shape[0] * CELLS;
  const out = tf.reshape(tf.fused.conv2d({ x: h, filter: vars[k] as tf.Tensor4D, strides: 1, pad: 'same', bias: vars[k + 1] }), [n, HEAD_OUT]);
  const logits = tf.slice(out, [0, 0], [n, CLASSES]) as tf.Tensor2D;
  const dist = tf.reshape(tf.mul(tf.softplus(tf.slice(out, [0, CLASSES], [n, 4])), STRIDE), [x.shape[0], CELLS, 4]);
  const centre = tf.tensor3d(CENTRES.centre, [1, CELLS, 4]);
  const boxes = tf.reshape(tf.add(centre, tf.mul(dist, tf.tensor3d(CENTRES.sign, [1, 1, 4]))), [n, 4]) as tf.Tensor2D;
  return { logits, boxes };
}

/** IoU of each row of `a` with the same row of `b` (xyxy), as QFL's quality target. */
function rowIou(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor1D {
  const [x1, y1, x2, y2] = tf.unstack(a, 1);
  const [u1, v1, u2, v2] = tf.unstack(b, 1);
  const iw = tf.relu(tf.sub(tf.minimum(x2, u2), tf.maximum(x1, u1)));
  const ih = tf.relu(tf.sub(tf.minimum(y2, v2), tf.maximum(y1, v1)));
  const inter = tf.mul(iw, ih);
  const union = tf.sub(tf.add(tf.mul(tf.sub(x2, x1), tf.sub(y2, y1)), tf.mul(tf.sub(u2, u1), tf.sub(v2, v1))), inter);
  return tf.div(inter, tf.add(union, 1e-7)) as tf.Tensor1D;
}

/**
 * The quality target of each cell: the IoU of its predicted box with its assigned box on positive
 * cells, 0 on background, held constant (no gradient flows into the scores, as in GFL).
 */
const qualityTarget = tf.customGrad(((boxes: tf.Tensor2D, targets: tf.Tensor2D, mask: tf.Tensor1D) => ({
  value: tf.mul(rowIou(boxes, targets), mask),
  gradFunc: () => [tf.zerosLike(boxes), tf.zerosLike(targets), tf.zerosLike(mask)],
})) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (boxes: tf.Tensor2D, targets: tf.Tensor2D, mask: tf.Tensor1D) => tf.Tensor1D;

/** A batch on the GPU: the images and the targets the loss needs. */
export interface Batch {
  x: tf.Tensor4D;
  labels: tf.Tensor1D;
  boxes: tf.Tensor2D;
  mask: tf.Tensor1D;
  positives: tf.Tensor1D;
  posBoxes: tf.Tensor2D;
  /** Cells / positives: turns QFL's mean over cells into a mean over positives (GFL's avg_factor). */
  norm: number;
  dispose(): void;
}

export function uploadBatch(t: BatchTargets, size: number): Batch {
  const n = t.labels.length;
  const b = n / CELLS;
  const x = tf.tensor4d(t.pixels, [b, size, size, 3]);
  const labels = tf.tensor1d(t.labels, 'int32');
  const boxes = tf.tensor2d(t.boxes, [n, 4]);
  const mask = tf.tensor1d(t.mask);
  const positives = tf.tensor1d(t.positives, 'int32');
  const posBoxes = tf.gather(boxes, positives) as tf.Tensor2D;
  const all = [x, labels, boxes, mask, positives, posBoxes];
  return { x, labels, boxes, mask, positives, posBoxes, norm: n / Math.max(t.positives.length, 1), dispose: () => all.forEach((t) => t.dispose()) };
}

/** One step's numbers: the total loss, its two parts, and the wall time of the step in ms. */
export interface StepResult {
  total: number;
  box: number;
  cls: number;
  ms: number;
}

/** A model, its optimizer (Adam), and the loss set it trains with. */
export class Trainer {
  readonly vars: tf.Variable[];
  private readonly optimizer: tf.Optimizer;

  constructor(
    readonly side: Side,
    init: InitParams,
    readonly variant: BoxVariant,
    learningRate: number,
  ) {
    this.vars = makeVariables(init, side);
    this.optimizer = tf.train.adam(learningRate);
  }

  /** The step's loss: BOX_WEIGHT * box loss over the positive cells + quality focal over all cells. */
  private loss(batch: Batch, parts: { t?: tf.Tensor }): tf.Scalar {
    const losses = LOSSES[this.side];
    const { logits, boxes } = forward(this.vars, batch.x);
    const box = losses.box(tf.gather(boxes, batch.positives) as tf.Tensor2D, batch.posBoxes, this.variant);
    const scores = qualityTarget(boxes, batch.boxes, batch.mask);
    const cls = tf.mul(losses.quality(logits, batch.labels, scores), batch.norm) as tf.Scalar;
    const total = tf.add(tf.mul(box, BOX_WEIGHT), cls) as tf.Scalar;
    parts.t = tf.keep(tf.stack([total, box, cls]));
    return total;
  }

  /** One optimizer step on `batch`; resolves once its losses are read back (that wait is in `ms`). */
  async step(batch: Batch): Promise<StepResult> {
    const parts: { t?: tf.Tensor } = {};
    const t0 = performance.now();
    this.optimizer.minimize(() => this.loss(batch, parts), false, this.vars);
    const [total, box, cls] = await parts.t!.data();
    const ms = performance.now() - t0;
    parts.t!.dispose();
    return { total, box, cls, ms };
  }

  /** Predictions on images (no gradient): per cell the best class, its score and the box. */
  async predict(x: tf.Tensor4D): Promise<{ scores: Float32Array; labels: Int32Array; boxes: Float32Array }> {
    const [scores, labels, boxes] = tf.tidy(() => {
      const out = forward(this.vars, x);
      const p = tf.sigmoid(out.logits);
      return [tf.max(p, 1), tf.argMax(p, 1), out.boxes];
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
    tf.dispose(this.vars);
  }
}
