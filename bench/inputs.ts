/**
 * The benchmark's inputs: one case's arrays (the same for every contender, from a seeded generator)
 * and the options its call takes. Shared by the harness (bench/harness.ts) and the plan probe
 * (bench/plan-probe.ts).
 */
import { rng } from '../demo/playground/inputs';
import { talInputs, yoloInputs } from './yolo-inputs';
import { clusteredBoxes, detectorOutput } from './detector-output';
import type { BenchCase } from '../src/tools/bench/cases';

/** One input array with its shape. */
export interface Shaped {
  data: Float32Array | Int32Array;
  shape: number[];
}

function boxes(n: number, r: () => number, jitterOf?: Float32Array): Float32Array {
  const b = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) {
    if (jitterOf) {
      for (let k = 0; k < 4; k++) b[i * 4 + k] = jitterOf[i * 4 + k] + (r() - 0.5) * 8;
      if (b[i * 4 + 2] < b[i * 4] + 1) b[i * 4 + 2] = b[i * 4] + 1;
      if (b[i * 4 + 3] < b[i * 4 + 1] + 1) b[i * 4 + 3] = b[i * 4 + 1] + 1;
    } else {
      const x = r() * 500;
      const y = r() * 500;
      b[i * 4] = x;
      b[i * 4 + 1] = y;
      b[i * 4 + 2] = x + 4 + r() * 60;
      b[i * 4 + 3] = y + 4 + r() * 60;
    }
  }
  return b;
}

/** The case's inputs, the same for every contender. */
export function makeInputs(c: BenchCase): Record<string, Shaped> {
  const r = rng(1234 + c.n);
  const n = c.n;
  const w = c.width ?? 1;
  const floats = (len: number, lo: number, hi: number) => {
    const a = new Float32Array(len);
    for (let i = 0; i < len; i++) a[i] = lo + r() * (hi - lo);
    return a;
  };
  const ints = (len: number, f: () => number) => {
    const a = new Int32Array(len);
    for (let i = 0; i < len; i++) a[i] = f();
    return a;
  };
  switch (c.op) {
    case 'l1':
    case 'smooth_l1':
      return { pred: { data: floats(n, -3, 3), shape: [n] }, target: { data: floats(n, -3, 3), shape: [n] } };
    case 'iou_loss': {
      const target = boxes(n, r);
      return { pred: { data: boxes(n, r, target), shape: [n, 4] }, target: { data: target, shape: [n, 4] } };
    }
    case 'rotated_iou_loss': {
      // (cx, cy, w, h, theta): targets with sides 4 to 64 px at angles in [-1.3, 1.3] rad; pred near
      // each (centre +-4 px, sides within +-20%, angle +-0.25 rad), as a detector's positives are.
      const target = new Float32Array(n * 5);
      const pred = new Float32Array(n * 5);
      for (let i = 0; i < n; i++) {
        const o = i * 5;
        target.set([r() * 500, r() * 500, 4 + r() * 60, 4 + r() * 60, (r() - 0.5) * 2.6], o);
        pred.set([target[o] + (r() - 0.5) * 8, target[o + 1] + (r() - 0.5) * 8, target[o + 2] * (0.8 + r() * 0.4), target[o + 3] * (0.8 + r() * 0.4), target[o + 4] + (r() - 0.5) * 0.5], o);
      }
      return { pred: { data: pred, shape: [n, 5] }, target: { data: target, shape: [n, 5] } };
    }
    case 'pairwise_iou':
      return { a: { data: boxes(n, r), shape: [n, 4] }, b: { data: boxes(n, r), shape: [n, 4] } };
    case 'sigmoid_focal': {
      // Element-wise: a width only shapes the logits as [n, width] (dense classification heads).
      const shape = c.width ? [n, w] : [n];
      const t = new Float32Array(n * w);
      for (let i = 0; i < t.length; i++) t[i] = r() < 0.1 ? 1 : 0;
      return { logits: { data: floats(n * w, -6, 6), shape }, targets: { data: t, shape } };
    }
    case 'quality_focal':
      return {
        logits: { data: floats(n * w, -6, 6), shape: [n, w] },
        labels: { data: ints(n, () => (r() < 0.2 ? Math.floor(r() * w) : w)), shape: [n] },
        scores: { data: floats(n, 0, 1), shape: [n] },
      };
    case 'cross_entropy':
      return { logits: { data: floats(n * w, -6, 6), shape: [n, w] }, labels: { data: ints(n, () => Math.floor(r() * w)), shape: [n] } };
    case 'distribution_focal':
      return { logits: { data: floats(n * w, -6, 6), shape: [n, w] }, targets: { data: floats(n, 0, w - 1.01), shape: [n] } };
    case 'softmax_focal':
      return { logits: { data: floats(n * w, -6, 6), shape: [n, w] }, labels: { data: ints(n, () => Math.floor(r() * w)), shape: [n] } };
    case 'class_balanced_focal':
      return {
        logits: { data: floats(n * w, -6, 6), shape: [n, w] },
        labels: { data: ints(n, () => (r() < 0.2 ? Math.floor(r() * w) : w)), shape: [n] },
        samplesPerClass: { data: Float32Array.from({ length: w }, () => Math.floor(r() * 5000)), shape: [w] },
      };
  }
  if (c.op === 'yolo_detection_loss' || c.op === 'tal_assign') {
    // YOLOv8n's training shapes at B = n images: 640 x 640, strides 8/16/32, C = 80, R = 16, M = 50
    // rows with 8 real boxes each. tal_assign gets what the loss hands its assigner.
    const y = yoloInputs({ b: n, size: 640, c: 80, r: 16, m: 50, real: 8, seed: 1234 + n });
    return { ...(c.op === 'tal_assign' ? talInputs(y) : y) };
  }
  if (c.op === 'ap_loss' || c.op === 'rank_sort') {
    // Scores of the whole minibatch; positives (1, or an IoU for rank_sort) score higher on average, 1% ignored.
    const pos = c.positives ?? 0.01;
    const t = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const u = r();
      t[i] = u < pos ? (c.op === 'ap_loss' ? 1 : 0.1 + 0.9 * r()) : u < pos + 0.01 ? -1 : 0;
    }
    const s = floats(n, -4, 4).map((v, i) => (t[i] > 0 ? v + 2 : v));
    return { logits: { data: s, shape: [n] }, targets: { data: t, shape: [n] } };
  }
  if (c.op === 'nms') {
    const { boxes, scores } = clusteredBoxes(n, 1234 + n);
    return { boxes: { data: boxes, shape: [n, 4] }, scores: { data: scores, shape: [n] } };
  }
  if (c.op === 'yolo_nms') {
    const { data, shape } = detectorOutput({ b: n, size: 640, c: 80, objects: 20, seed: 1234 + n });
    return { output: { data, shape } };
  }
  throw new Error(`bench: no input generator for ${c.op}`);
}

export const isPairwise = (c: BenchCase) => c.op === 'pairwise_iou';
/** The assigner and the YOLO loss: named outputs, no reduction. */
export const isYolo = (c: BenchCase) => c.op === 'yolo_detection_loss' || c.op === 'tal_assign';
/** Non-maximum suppression: indices or detections of data-dependent length, no reduction. */
export const isNms = (c: BenchCase) => c.op === 'nms' || c.op === 'yolo_nms';

/** The options of the case's call: 'mean' (cross_entropy with its avgFactor), or 'none' for the pairwise matrix. */
export function options(c: BenchCase): Record<string, unknown> & { reduction?: 'none' | 'mean' } {
  if (isPairwise(c)) return { ...c.params, reduction: 'none' };
  // The assigner and the YOLO loss take no reduction.
  if (isYolo(c) || isNms(c)) return { ...c.params };
  // Cross-entropy's 'mean' divides by data (weights of the rows not ignored), which inputs already on
  // the device cannot give the host; here no row is ignored and there are no class weights, so it is n.
  if (c.op === 'cross_entropy') return { ...c.params, reduction: 'mean', avgFactor: c.n };
  return { ...c.params, reduction: 'mean' };
}
