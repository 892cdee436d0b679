/**
 * The float64 reference of the three non-maximum suppressions of docs/ops.md ("Non-maximum
 * suppression"): `nms` (torchvision's `nms` / `batched_nms`), `nms_onnx` (ONNX
 * `NonMaxSuppression` as onnxruntime's CPU kernel runs it) and `nms_tfjs` (tfjs-core's
 * `nonMaxSuppressionImpl_`, Soft-NMS included). Each walks its candidates in sequence, as its
 * reference does; the GPU kernels are held to these.
 */
import type { CpuForward, CpuInputs, Dims, ResolvedParams } from './types';

/** Corners `(x1, y1, x2, y2)` of n boxes, float64, flat. */
export type Corners = Float64Array;

/** Boxes in `format` to corners, not sorted: a box with negative width or height stays inverted. */
export function torchCorners(boxes: ArrayLike<number>, n: number, format: string): Corners {
  const out = new Float64Array(4 * n);
  for (let i = 0; i < n; i++) {
    const [p, q, r, s] = [boxes[4 * i], boxes[4 * i + 1], boxes[4 * i + 2], boxes[4 * i + 3]];
    let c: number[];
    if (format === 'cxcywh') c = [p - r / 2, q - s / 2, p + r / 2, q + s / 2];
    else if (format === 'xywh') c = [p, q, p + r, q + s];
    else c = [p, q, r, s];
    out.set(c, 4 * i);
  }
  return out;
}

/**
 * ONNX and TF.js boxes `[y1, x1, y2, x2]` (any diagonal pair) to sorted corners; ONNX's centre
 * boxes `[xc, yc, w, h]` (`center`) to corners that are not sorted. IoU is symmetric in x and y, so
 * the axes are kept in the input's order.
 */
export function sortedCorners(boxes: ArrayLike<number>, n: number, center = false, offset = 0): Corners {
  const out = new Float64Array(4 * n);
  for (let i = 0; i < n; i++) {
    const o = offset + 4 * i;
    const [p, q, r, s] = [boxes[o], boxes[o + 1], boxes[o + 2], boxes[o + 3]];
    if (center) out.set([p - r / 2, q - s / 2, p + r / 2, q + s / 2], 4 * i);
    else out.set([Math.min(p, r), Math.min(q, s), Math.max(p, r), Math.max(q, s)], 4 * i);
  }
  return out;
}

const finiteBox = (c: Corners, i: number) => Number.isFinite(c[4 * i]) && Number.isFinite(c[4 * i + 1]) && Number.isFinite(c[4 * i + 2]) && Number.isFinite(c[4 * i + 3]);

/**
 * The shared overlap: IoU of boxes `i` and `j`, 0 when they are disjoint or touch, when either has
 * zero or negative width or height (inverted corners), and when either has a non-finite coordinate.
 */
export function overlapIou(c: Corners, i: number, j: number): number {
  if (!finiteBox(c, i) || !finiteBox(c, j)) return 0;
  const a = 4 * i, b = 4 * j;
  const iw = Math.min(c[a + 2], c[b + 2]) - Math.max(c[a], c[b]);
  const ih = Math.min(c[a + 3], c[b + 3]) - Math.max(c[a + 1], c[b + 1]);
  if (!(iw > 0 && ih > 0)) return 0;
  const inter = iw * ih;
  const areaA = (c[a + 2] - c[a]) * (c[a + 3] - c[a + 1]);
  const areaB = (c[b + 2] - c[b]) * (c[b + 3] - c[b + 1]);
  return inter / (areaA + areaB - inter);
}

/** DIoU-NMS's overlap, `IoU - rho2 / c2` (`pairwise_iou`'s `'diou'`); 0 for a non-finite box. */
export function overlapDiou(c: Corners, i: number, j: number): number {
  if (!finiteBox(c, i) || !finiteBox(c, j)) return 0;
  const a = 4 * i, b = 4 * j;
  const iou = overlapIou(c, i, j);
  const dx = c[a] + c[a + 2] - c[b] - c[b + 2];
  const dy = c[a + 1] + c[a + 3] - c[b + 1] - c[b + 3];
  const rho2 = (dx * dx + dy * dy) / 4;
  const cw = Math.max(Math.max(c[a + 2], c[b + 2]) - Math.min(c[a], c[b]), 0);
  const ch = Math.max(Math.max(c[a + 3], c[b + 3]) - Math.min(c[a + 1], c[b + 1]), 0);
  return iou - rho2 / (cw * cw + ch * ch + 1e-7);
}

/**
 * The candidate order over the indices `0 .. n-1` that `take` admits: decreasing score (+Inf first,
 * -Inf last), equal scores lower index first; a NaN score is never a candidate.
 */
export function candidateOrder(scores: ArrayLike<number>, n: number, take: (i: number) => boolean = () => true, offset = 0): number[] {
  const order: number[] = [];
  for (let i = 0; i < n; i++) if (!Number.isNaN(scores[offset + i]) && take(i)) order.push(i);
  return order.sort((i, j) => (scores[offset + j] > scores[offset + i] ? 1 : scores[offset + j] < scores[offset + i] ? -1 : i - j));
}

export interface NmsParams {
  iouThreshold: number;
  format?: string;
  variant?: string;
  scoreThreshold?: number;
}

/**
 * `nms`: torchvision's `nms`, per class when `classes` is given (`_batched_nms_vanilla`). Returns
 * the kept indices in decreasing score over all classes, equal scores lower index first.
 *
 * @example
 * nms(new Float64Array([0, 0, 10, 10, 1, 1, 10, 10]), new Float64Array([0.9, 0.8]), undefined, { iouThreshold: 0.5 }); // Int32Array [0]
 */
export function nms(boxes: ArrayLike<number>, scores: ArrayLike<number>, classes: ArrayLike<number> | undefined, p: NmsParams): Int32Array {
  const n = scores.length;
  const c = torchCorners(boxes, n, p.format ?? 'xyxy');
  const overlap = p.variant === 'diou' ? overlapDiou : overlapIou;
  const thr = p.scoreThreshold;
  const order = candidateOrder(scores, n, thr === undefined ? undefined : (i) => scores[i] > thr);
  const removed = new Uint8Array(n);
  const keep: number[] = [];
  for (let k = 0; k < order.length; k++) {
    const i = order[k];
    if (removed[i]) continue;
    keep.push(i);
    for (let l = k + 1; l < order.length; l++) {
      const j = order[l];
      if (removed[j] || (classes && classes[j] !== classes[i])) continue;
      if (overlap(c, i, j) > p.iouThreshold) removed[j] = 1;
    }
  }
  return Int32Array.from(keep);
}

export interface NmsOnnxParams {
  maxOutputBoxesPerClass?: number | bigint;
  iouThreshold?: number;
  scoreThreshold?: number;
  centerPointBox?: number;
}

/**
 * `nms_onnx`: ONNX `NonMaxSuppression` as onnxruntime computes it, on boxes [b, n, 4] and scores
 * [b, c, n]. Returns `selected` [k, 3] flat: rows `(batchIndex, classIndex, boxIndex)` by batch,
 * then class, then decreasing score.
 */
export function nmsOnnx(boxes: ArrayLike<number>, scores: ArrayLike<number>, sizes: { b: number; c: number; n: number }, p: NmsOnnxParams): Int32Array {
  const { b, c: classes, n } = sizes;
  const raw = p.maxOutputBoxesPerClass ?? 0;
  const m = typeof raw === 'bigint' ? (raw <= 0n ? 0 : raw >= BigInt(n) ? n : Number(raw)) : Math.min(Math.max(raw, 0), n);
  const iouThreshold = p.iouThreshold ?? 0;
  const thr = p.scoreThreshold;
  const rows: number[] = [];
  if (m === 0) return new Int32Array(0);
  for (let bi = 0; bi < b; bi++) {
    const corners = sortedCorners(boxes, n, p.centerPointBox === 1, bi * n * 4);
    for (let ci = 0; ci < classes; ci++) {
      const offset = (bi * classes + ci) * n;
      const order = candidateOrder(scores, n, thr === undefined ? undefined : (i) => scores[offset + i] > thr, offset);
      const selected: number[] = [];
      for (const j of order) {
        if (selected.length >= m) break;
        if (selected.every((s) => overlapIou(corners, j, s) <= iouThreshold)) {
          selected.push(j);
          rows.push(bi, ci, j);
        }
      }
    }
  }
  return Int32Array.from(rows);
}

export interface NmsTfjsParams {
  maxOutputSize: number;
  iouThreshold?: number;
  scoreThreshold?: number;
  softNmsSigma?: number;
}

/**
 * `nms_tfjs`: tfjs-core's `nonMaxSuppressionImpl_` (`tf.image.nonMaxSuppressionWithScore`), in
 * float64 as TF.js computes it. `selectedScores` are the scores at selection (decayed in
 * Soft-NMS), still float64: the op rounds them to f32.
 */
export function nmsTfjs(boxes: ArrayLike<number>, scores: ArrayLike<number>, p: NmsTfjsParams): { selectedIndices: Int32Array; selectedScores: Float64Array } {
  const n = scores.length;
  const c = sortedCorners(boxes, n);
  const iouThreshold = p.iouThreshold ?? 0.5;
  const scoreThreshold = p.scoreThreshold ?? -Infinity;
  const sigma = p.softNmsSigma ?? 0;
  const m = Math.min(Math.max(p.maxOutputSize, 0), n);
  const scale = sigma > 0 ? -0.5 / sigma : 0;
  // The live candidates: current score and the number of selected boxes already examined.
  const live = new Map<number, { score: number; from: number }>();
  for (let i = 0; i < n; i++) if (scores[i] > scoreThreshold) live.set(i, { score: scores[i], from: 0 });
  const selected: number[] = [];
  const selectedScores: number[] = [];
  while (selected.length < m && live.size > 0) {
    // The largest current score, lower index first among equals.
    let best = -1;
    for (const [i, s] of live) if (best < 0 || s.score > live.get(best)!.score || (s.score === live.get(best)!.score && i < best)) best = i;
    const cand = live.get(best)!;
    live.delete(best);
    const s0 = cand.score;
    let drop = false;
    for (let j = selected.length - 1; j >= cand.from; j--) {
      const v = overlapIou(c, best, selected[j]);
      if (v >= iouThreshold) {
        drop = true;
        break;
      }
      // +Infinity is never decayed: the factor is positive, even where float64's exp underflows to 0.
      if (v !== 0 && scale !== 0 && cand.score !== Infinity) cand.score *= Math.exp(scale * v * v);
      if (cand.score <= scoreThreshold) break;
    }
    if (drop) continue;
    cand.from = selected.length;
    if (cand.score === s0) {
      selected.push(best);
      selectedScores.push(cand.score);
    } else if (cand.score > scoreThreshold) {
      live.set(best, cand);
    }
  }
  return { selectedIndices: Int32Array.from(selected), selectedScores: Float64Array.from(selectedScores) };
}

export const noLoss = (outputs: Record<string, Float64Array | Int32Array>): CpuForward => ({
  loss: new Float64Array(0),
  reduced: { loss: new Float64Array(0), shape: [0] },
  backward: () => ({}),
  outputs,
});

/** `nms` on the CPU reference's inputs: `boxes` [n, 4], `scores` [n], optional `classes` [n]. */
export function nmsCpu(inputs: CpuInputs, p: ResolvedParams): CpuForward {
  const keep = nms(inputs.boxes as Float64Array, inputs.scores as Float64Array, inputs.classes as Int32Array | undefined, {
    iouThreshold: p.iouThreshold as number,
    format: p.format as string | undefined,
    variant: p.variant as string | undefined,
    scoreThreshold: p.scoreThreshold as number | undefined,
  });
  return noLoss({ keep });
}

/** `nms_onnx` on the CPU reference's inputs: `boxes` [b, n, 4], `scores` [b, c, n]. */
export function nmsOnnxCpu(inputs: CpuInputs, p: ResolvedParams, dims: Dims): CpuForward {
  const selected = nmsOnnx(inputs.boxes as Float64Array, inputs.scores as Float64Array, { b: dims.b, c: dims.c, n: dims.n }, {
    maxOutputBoxesPerClass: p.maxOutputBoxesPerClass as number | undefined,
    iouThreshold: p.iouThreshold as number | undefined,
    scoreThreshold: p.scoreThreshold as number | undefined,
    centerPointBox: p.centerPointBox as number | undefined,
  });
  return noLoss({ selected });
}

/** `nms_tfjs` on the CPU reference's inputs: `boxes` [n, 4], `scores` [n]. */
export function nmsTfjsCpu(inputs: CpuInputs, p: ResolvedParams): CpuForward {
  const r = nmsTfjs(inputs.boxes as Float64Array, inputs.scores as Float64Array, {
    maxOutputSize: p.maxOutputSize as number,
    iouThreshold: p.iouThreshold as number | undefined,
    scoreThreshold: p.scoreThreshold as number | undefined,
    softNmsSigma: p.softNmsSigma as number | undefined,
  });
  return noLoss({ selectedIndices: r.selectedIndices, selectedScores: r.selectedScores.map(Math.fround) });
}
