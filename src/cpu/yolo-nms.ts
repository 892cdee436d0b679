/**
 * The float64 reference of the YOLO post-process (docs/losses.md, "YOLO post-process"):
 * ultralytics' `non_max_suppression` on an exported detector's output [b, 4 + C, A]. Per image:
 * decode `[x, y, w, h]` to corners, take each anchor's best class (first of equal maxima), or with
 * `multiLabel` every (anchor, class) whose score passes; keep `score > confThreshold`; sort by
 * decreasing score (equal scores: lower candidate index, anchor-major); keep the first `maxNms`;
 * greedy NMS per class (`> iouThreshold` suppresses; one class when `agnostic`); the first
 * `maxDet`. An anchor with a NaN class score is no candidate (ultralytics' `amax` is NaN there).
 */
import { noLoss, overlapIou } from './nms';
import type { CpuForward, CpuInputs, Dims, ResolvedParams } from './types';

export interface YoloNmsParams {
  confThreshold: number;
  iouThreshold: number;
  maxDet: number;
  maxNms: number;
  multiLabel: boolean;
  agnostic: boolean;
}

/** One image's detections, or every image's: rows of corners, scores, classes and image indices. */
export interface YoloDetections {
  boxes: Float64Array;
  scores: Float64Array;
  classes: Int32Array;
  batchIndex: Int32Array;
  /** The smallest distance of a compared overlap from `iouThreshold`: how far the result is from a tie. */
  margin: number;
}

/**
 * The post-process of `output` [b, 4 + C, A] (flat). Every image's detections, image by image.
 *
 * @example
 * yoloNms(new Float32Array([5, 5, 4, 4, 0.9]), { b: 1, f: 5, a: 1 }, { confThreshold: 0.25, iouThreshold: 0.45, maxDet: 300, maxNms: 30000, multiLabel: false, agnostic: false });
 */
export function yoloNms(output: ArrayLike<number>, d: { b: number; f: number; a: number }, p: YoloNmsParams): YoloDetections {
  const C = d.f - 4;
  const A = d.a;
  const boxes: number[] = [];
  const scores: number[] = [];
  const classes: number[] = [];
  const batch: number[] = [];
  let margin = Infinity;
  for (let g = 0; g < d.b; g++) {
    const at = (k: number, a: number) => output[(g * d.f + k) * A + a];
    const corners = new Float64Array(4 * A);
    const cand: { i: number; box: number; score: number; cls: number }[] = [];
    for (let a = 0; a < A; a++) {
      const [x, y, w, h] = [at(0, a), at(1, a), at(2, a), at(3, a)];
      corners.set([x - w / 2, y - h / 2, x + w / 2, y + h / 2], 4 * a);
      let nan = false;
      for (let c = 0; c < C; c++) if (Number.isNaN(at(4 + c, a))) nan = true;
      if (nan) continue;
      if (p.multiLabel) {
        for (let c = 0; c < C; c++) if (at(4 + c, a) > p.confThreshold) cand.push({ i: a * C + c, box: a, score: at(4 + c, a), cls: c });
      } else {
        let best = 0;
        for (let c = 1; c < C; c++) if (at(4 + c, a) > at(4 + best, a)) best = c;
        if (at(4 + best, a) > p.confThreshold) cand.push({ i: a, box: a, score: at(4 + best, a), cls: best });
      }
    }
    cand.sort((u, v) => (v.score > u.score ? 1 : v.score < u.score ? -1 : u.i - v.i));
    const order = cand.slice(0, p.maxNms);
    const removed = new Uint8Array(order.length);
    let kept = 0;
    for (let k = 0; k < order.length && kept < p.maxDet; k++) {
      if (removed[k]) continue;
      const u = order[k];
      boxes.push(...corners.subarray(4 * u.box, 4 * u.box + 4));
      scores.push(u.score);
      classes.push(u.cls);
      batch.push(g);
      kept++;
      for (let l = k + 1; l < order.length; l++) {
        const v = order[l];
        if (removed[l] || (!p.agnostic && v.cls !== u.cls)) continue;
        const o = overlapIou(corners, u.box, v.box);
        margin = Math.min(margin, Math.abs(o - p.iouThreshold));
        if (o > p.iouThreshold) removed[l] = 1;
      }
    }
  }
  return { boxes: Float64Array.from(boxes), scores: Float64Array.from(scores), classes: Int32Array.from(classes), batchIndex: Int32Array.from(batch), margin };
}

/** The post-process on the CPU reference's inputs: `output` [b, 4 + C, A]. */
export function yoloNmsCpu(inputs: CpuInputs, p: ResolvedParams, dims: Dims): CpuForward {
  const r = yoloNms(inputs.output as Float64Array, { b: dims.b, f: dims.f, a: dims.n }, {
    confThreshold: p.confThreshold as number,
    iouThreshold: p.iouThreshold as number,
    maxDet: p.maxDet as number,
    maxNms: p.maxNms as number,
    multiLabel: p.multiLabel as boolean,
    agnostic: p.agnostic as boolean,
  });
  return noLoss({ boxes: r.boxes, scores: r.scores, classes: r.classes, batchIndex: r.batchIndex });
}
