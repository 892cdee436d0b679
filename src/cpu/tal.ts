import { ciouU, ciouUK } from './ciou-u';
import type { CpuForward, CpuInputs, Dims, ResolvedParams } from './types';

/**
 * Float64 references of `tal_assign` (ultralytics' TaskAlignedAssigner) and `yolo_detection_loss`
 * (v8DetectionLoss with BboxLoss and DFLoss), ops.md "Task-aligned assignment and the YOLOv8 loss".
 * Plain loops over B x M x A pairs, a full sort per gt row for the top k: the reference the GPU is
 * held against, not a fast path.
 */

/** The in-gt margin of step 1: fixed, not the `eps` param. */
export const IN_GT_EPS = 1e-9;
/** The `eps` that `yolo_detection_loss` passes to its assignment. */
export const YOLO_ASSIGN_EPS = 1e-9;

/** The five outputs of `tal_assign`, flat: [B, A], [B, A, 4], [B, A, C], [B, A], [B, A] (boxes [B, A, 5] for the rotated assigner). */
export interface TalAssignment {
  labels: Int32Array;
  boxes: Float64Array;
  targetScores: Float64Array;
  foreground: Int32Array;
  gtIndex: Int32Array;
}

/** The sizes of an assignment: B images, A anchors, C classes, M gt rows per image. */
export interface TalSizes {
  b: number;
  a: number;
  c: number;
  m: number;
}

/** The params of an assignment. */
export interface TalParams {
  topk: number;
  alpha: number;
  beta: number;
  eps: number;
}

/**
 * The top-k order of one gt row: larger metric first, equal metrics by lower anchor index. A NaN
 * metric (non-finite input only) ranks above every number, as in `torch.topk`; the order stays total.
 */
function rankOrder(metric: Float64Array, off: number, a: number): number[] {
  const key = (i: number) => {
    const x = metric[off + i];
    return Number.isNaN(x) ? Infinity : x;
  };
  const idx = Array.from({ length: a }, (_, i) => i);
  idx.sort((u, v) => {
    const ku = key(u), kv = key(v);
    return ku > kv ? -1 : ku < kv ? 1 : u - v;
  });
  return idx;
}

/**
 * The geometry an assigner plugs into the shared steps: the columns of a box, the candidate test
 * (step 1) and the overlap of a candidate pair (step 2), both before the clamp at 0.
 */
export interface TalGeometry {
  /** Columns of a gt or predicted box: 4 (xyxy) or 5 (cx, cy, w, h, theta). */
  cols: number;
  /** Whether anchor (ax, ay) is a candidate of the gt box at gt[go .. go + cols). */
  inside(gt: ArrayLike<number>, go: number, ax: number, ay: number): boolean;
  /** The overlap of the gt box at gt[go ..] and the predicted box at pred[po ..], not clamped. */
  overlap(gt: ArrayLike<number>, go: number, pred: ArrayLike<number>, po: number): number;
}

const gtBox = new Float64Array(4);
const predBox4 = new Float64Array(4);

/** TaskAlignedAssigner's geometry: the strict in-gt test at the fixed 1e-9, ultralytics' CIoU. */
export const AXIS_ALIGNED: TalGeometry = {
  cols: 4,
  inside: (g, o, ax, ay) => Math.min(ax - g[o], ay - g[o + 1], g[o + 2] - ax, g[o + 3] - ay) > IN_GT_EPS,
  overlap(g, go, p, po) {
    for (let q = 0; q < 4; q++) {
      gtBox[q] = g[go + q];
      predBox4[q] = p[po + q];
    }
    return ciouU(gtBox, predBox4);
  },
};

/**
 * TaskAlignedAssigner in float64, every step of ops.md's definition: candidates (strict in-gt test at
 * the fixed 1e-9, real gts only), ultralytics' CIoU overlap clamped at 0 and the metric
 * `s^alpha * ov^beta`, top k per real gt over all A anchors (ties to the lower anchor index, so
 * metric-0 anchors of lowest index fill the places left when fewer than k have a positive metric,
 * and a candidate among them is selected), one gt per anchor (the argmax of the overlap over all M
 * rows when two or more gts select it, first maximum; row 0 when every overlap is 0), then the
 * outputs. Background anchors copy row 0; with M = 0 every anchor gets label C and zeros.
 */
export function talAssign(
  scores: ArrayLike<number>,
  predBoxes: ArrayLike<number>,
  anchors: ArrayLike<number>,
  gtLabels: ArrayLike<number>,
  gtBoxes: ArrayLike<number>,
  gtMask: ArrayLike<number>,
  sizes: TalSizes,
  params: TalParams,
): TalAssignment {
  return assignWith(AXIS_ALIGNED, scores, predBoxes, anchors, gtLabels, gtBoxes, gtMask, sizes, params);
}

/**
 * The task-aligned assignment for a geometry (steps 1 to 6 of {@link talAssign}, whose candidate
 * test and overlap `geom` gives): `boxes` has `geom.cols` columns. `talAssign` and the rotated
 * assigner (src/cpu/rotated-tal.ts) are this with their geometry.
 */
export function assignWith(
  geom: TalGeometry,
  scores: ArrayLike<number>,
  predBoxes: ArrayLike<number>,
  anchors: ArrayLike<number>,
  gtLabels: ArrayLike<number>,
  gtBoxes: ArrayLike<number>,
  gtMask: ArrayLike<number>,
  sizes: TalSizes,
  params: TalParams,
): TalAssignment {
  const { b: B, a: A, c: C, m: M } = sizes;
  const { alpha, beta, eps } = params;
  const W = geom.cols;
  const k = Math.min(params.topk, A);
  const labels = new Int32Array(B * A);
  const boxes = new Float64Array(B * A * W);
  const targetScores = new Float64Array(B * A * C);
  const foreground = new Int32Array(B * A);
  const gtIndex = new Int32Array(B * A);
  const out = { labels, boxes, targetScores, foreground, gtIndex };
  if (M === 0) {
    // step 6: ultralytics' background index, zero boxes
    labels.fill(C);
    return out;
  }
  const ov = new Float64Array(M * A);
  const metric = new Float64Array(M * A);
  const cand = new Uint8Array(M * A);
  const count = new Int32Array(A);
  const selBy = new Int32Array(A);
  const owner = new Int32Array(A);
  const maxMetric = new Float64Array(M);
  const maxOv = new Float64Array(M);
  for (let b = 0; b < B; b++) {
    ov.fill(0);
    metric.fill(0);
    cand.fill(0);
    count.fill(0);
    // 1, 2: candidates, overlap and metric
    for (let j = 0; j < M; j++) {
      if (gtMask[b * M + j] !== 1) continue;
      const go = (b * M + j) * W;
      const l = gtLabels[b * M + j];
      for (let a = 0; a < A; a++) {
        if (!geom.inside(gtBoxes, go, anchors[2 * a], anchors[2 * a + 1])) continue;
        cand[j * A + a] = 1;
        const o = Math.max(geom.overlap(gtBoxes, go, predBoxes, (b * A + a) * W), 0);
        ov[j * A + a] = o;
        // (an out-of-range label reads NaN here; the op refuses it before this runs)
        const s = l >= 0 && l < C ? scores[(b * A + a) * C + l] : NaN;
        metric[j * A + a] = s ** alpha * o ** beta;
      }
    }
    // 3: top k per real gt; sel = in the top k and a candidate
    for (let j = 0; j < M; j++) {
      if (gtMask[b * M + j] !== 1) continue;
      const order = rankOrder(metric, j * A, A);
      for (let r = 0; r < k; r++) {
        const a = order[r];
        if (!cand[j * A + a]) continue;
        count[a]++;
        selBy[a] = j;
      }
    }
    // 4: one gt per anchor
    for (let a = 0; a < A; a++) {
      if (count[a] === 1) owner[a] = selBy[a];
      else if (count[a] >= 2) {
        let best = 0;
        let bestV = ov[a];
        for (let j = 1; j < M; j++) {
          const o = ov[j * A + a];
          // torch.argmax: the first maximum, NaN counting as the maximum
          if (o > bestV || (Number.isNaN(o) && !Number.isNaN(bestV))) {
            best = j;
            bestV = o;
          }
        }
        owner[a] = best;
      }
    }
    // 5: maxima over each gt's positive anchors, then the outputs
    maxMetric.fill(0);
    maxOv.fill(0);
    for (let a = 0; a < A; a++) {
      if (count[a] === 0) continue;
      const j = owner[a];
      maxMetric[j] = Math.max(maxMetric[j], metric[j * A + a]);
      maxOv[j] = Math.max(maxOv[j], ov[j * A + a]);
    }
    for (let a = 0; a < A; a++) {
      const fg = count[a] >= 1;
      const j = fg ? owner[a] : 0;
      const l = gtLabels[b * M + j];
      const i = b * A + a;
      foreground[i] = fg ? 1 : 0;
      gtIndex[i] = j;
      labels[i] = l;
      for (let q = 0; q < W; q++) boxes[i * W + q] = gtBoxes[(b * M + j) * W + q];
      if (fg && l >= 0 && l < C) targetScores[i * C + l] = (metric[j * A + a] * maxOv[j]) / (maxMetric[j] + eps);
    }
  }
  return out;
}

const num = (p: ResolvedParams, name: string, fallback: number) => (p[name] as number | undefined) ?? fallback;

/**
 * The CPU reference of an assigner of `geom` (`tal_assign`'s, or the rotated one's): no loss, no
 * gradient, the five outputs.
 *
 * @example
 * const f = talCpuWith(AXIS_ALIGNED)({ scores, predBoxes, anchors, gtLabels, gtBoxes, gtMask }, { topk: 10, alpha: 0.5, beta: 6, eps: 1e-9 }, { b, a, c, m });
 * f.outputs!.foreground; // Int32Array [B*A]
 */
export function talCpuWith(geom: TalGeometry): (inputs: CpuInputs, p: ResolvedParams, dims: Dims) => CpuForward {
  return (inputs, p, dims) => {
    const anchors = inputs.anchors as Float64Array;
    const predBoxes = inputs.predBoxes as Float64Array;
    const a = dims.a ?? anchors.length / 2;
    const b = dims.b ?? (a ? predBoxes.length / (geom.cols * a) : 0);
    const scores = inputs.scores as Float64Array;
    const c = dims.c ?? (a * b ? scores.length / (a * b) : 0);
    const gtMask = inputs.gtMask as Int32Array;
    const m = dims.m ?? (b ? gtMask.length / b : 0);
    const r = assignWith(geom, scores, predBoxes, anchors, inputs.gtLabels as Int32Array, inputs.gtBoxes as Float64Array, gtMask, { b, a, c, m }, {
      topk: num(p, 'topk', 10),
      alpha: num(p, 'alpha', 0.5),
      beta: num(p, 'beta', 6),
      eps: num(p, 'eps', 1e-9),
    });
    return {
      loss: new Float64Array(0),
      reduced: { loss: new Float64Array(0), shape: [0] },
      backward: () => ({}),
      outputs: { ...r },
    };
  };
}

/** The CPU reference of `tal_assign`: no loss, no gradient, the five outputs. */
export const talAssignCpu = talCpuWith(AXIS_ALIGNED);

/** The sizes of `yolo_detection_loss`: B, A, C, M and R bins (`d = 4R`). */
interface YoloSizes extends TalSizes {
  r: number;
}

function yoloSizes(inputs: CpuInputs, dims: Dims): YoloSizes {
  const anchors = inputs.anchors as Float64Array;
  const predDist = inputs.predDist as Float64Array;
  const predScores = inputs.predScores as Float64Array;
  const gtMask = inputs.gtMask as Int32Array;
  const a = dims.a ?? anchors.length / 2;
  const b = dims.b;
  const c = dims.c ?? (a * b ? predScores.length / (a * b) : 0);
  const d = dims.d ?? (a * b ? predDist.length / (a * b) : 0);
  const m = dims.m ?? (b ? gtMask.length / b : 0);
  return { b, a, c, m, r: d / 4 };
}

/**
 * Step 1 of the loss: the softmax `q` of every side's R logits ([B, A, 4, R]) and its expectation
 * `dist` ([B, A, 4], grid units, sides left, top, right, bottom).
 */
function decode(predDist: ArrayLike<number>, n: number, R: number): { q: Float64Array; dist: Float64Array } {
  const q = new Float64Array(n * 4 * R);
  const dist = new Float64Array(n * 4);
  for (let s = 0; s < n * 4; s++) {
    const o = s * R;
    let mx = -Infinity;
    for (let i = 0; i < R; i++) mx = Math.max(mx, predDist[o + i]);
    let sum = 0;
    for (let i = 0; i < R; i++) sum += q[o + i] = Math.exp(predDist[o + i] - mx);
    let d = 0;
    for (let i = 0; i < R; i++) {
      q[o + i] /= sum;
      d += i * q[o + i];
    }
    dist[s] = d;
  }
  return { q, dist };
}

/** The predicted box of anchor `a` in grid units, `(ax - d_l, ay - d_t, ax + d_r, ay + d_b)`, into `out`. */
function predBox(anchors: ArrayLike<number>, dist: Float64Array, i: number, a: number, out: Float64Array): Float64Array {
  const ax = anchors[2 * a], ay = anchors[2 * a + 1];
  out[0] = ax - dist[4 * i];
  out[1] = ay - dist[4 * i + 1];
  out[2] = ax + dist[4 * i + 2];
  out[3] = ay + dist[4 * i + 3];
  return out;
}

const sigmoid = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

/**
 * Step 2 of the loss: the assignment that `yolo_detection_loss` makes, `tal_assign` run on
 * `sigmoid(predScores)`, the decoded boxes and the anchors in pixels (`* stride`), with `eps` 1e-9.
 * Hold it fixed and pass it to {@link yoloLossWithAssignment} to differentiate the loss numerically.
 */
export function yoloAssignment(inputs: CpuInputs, p: ResolvedParams, dims: Dims): TalAssignment {
  const { b: B, a: A, c: C, m: M, r: R } = yoloSizes(inputs, dims);
  const anchors = inputs.anchors as Float64Array;
  const strides = inputs.strides as Float64Array;
  const predScores = inputs.predScores as Float64Array;
  const { dist } = decode(inputs.predDist as Float64Array, B * A, R);
  const scores = Float64Array.from(predScores, sigmoid);
  const predBoxes = new Float64Array(B * A * 4);
  const box = new Float64Array(4);
  for (let b = 0; b < B; b++) {
    for (let a = 0; a < A; a++) {
      const i = b * A + a;
      predBox(anchors, dist, i, a, box);
      for (let q = 0; q < 4; q++) predBoxes[4 * i + q] = box[q] * strides[a];
    }
  }
  const anchorsPx = new Float64Array(A * 2);
  for (let a = 0; a < A; a++) {
    anchorsPx[2 * a] = anchors[2 * a] * strides[a];
    anchorsPx[2 * a + 1] = anchors[2 * a + 1] * strides[a];
  }
  return talAssign(scores, predBoxes, anchorsPx, inputs.gtLabels as Int32Array, inputs.gtBoxes as Float64Array, inputs.gtMask as Int32Array, { b: B, a: A, c: C, m: M }, {
    topk: num(p, 'topk', 10),
    alpha: num(p, 'alpha', 0.5),
    beta: num(p, 'beta', 6),
    eps: YOLO_ASSIGN_EPS,
  });
}

/** What {@link yoloLossWithAssignment} may hold at given values besides the assignment. */
export interface YoloHeld {
  /** CIoU's `k` of each anchor, [B, A] (read at foreground anchors): a {@link YoloForward}'s `ciouK`. */
  ciouK?: Float64Array;
}

/** A `yolo_detection_loss` forward, with the CIoU `k` it used at each foreground anchor ([B, A], 0 elsewhere). */
export interface YoloForward extends CpuForward {
  ciouK: Float64Array;
}

/**
 * Steps 3 to 6 of `yolo_detection_loss` for a given assignment (its `foreground`, `boxes` and
 * `targetScores` are read), which is a constant: the loss `B * (box + cls + dfl)` after the gains,
 * `outputs.components`, and `backward(upstream)` the gradients of `upstream[0] * loss` with respect to
 * `predDist` and `predScores` (tss, the weights, the DFL targets and CIoU's `k` constants).
 *
 * The gradient holds CIoU's `k` constant, so a finite difference matches it only with `k` held too:
 * pass `held.ciouK`, the `ciouK` of the forward at the point.
 *
 * @example
 * const a = yoloAssignment(inputs, p, dims);
 * const f0 = yoloLossWithAssignment(inputs, a, p, dims);
 * const objective = () => yoloLossWithAssignment(inputs, a, p, dims, { ciouK: f0.ciouK }).loss[0];
 */
export function yoloLossWithAssignment(inputs: CpuInputs, assignment: TalAssignment, p: ResolvedParams, dims: Dims, held: YoloHeld = {}): YoloForward {
  const { b: B, a: A, c: C, r: R } = yoloSizes(inputs, dims);
  const anchors = inputs.anchors as Float64Array;
  const strides = inputs.strides as Float64Array;
  const predScores = inputs.predScores as Float64Array;
  const boxGain = num(p, 'boxGain', 7.5);
  const clsGain = num(p, 'clsGain', 0.5);
  const dflGain = num(p, 'dflGain', 1.5);
  const { targetScores: ts, foreground, boxes } = assignment;
  const { q, dist } = decode(inputs.predDist as Float64Array, B * A, R);
  const predDist = inputs.predDist as Float64Array;

  // 3: normaliser
  let tsSum = 0;
  for (let i = 0; i < B * A * C; i++) tsSum += ts[i];
  const tss = Math.max(tsSum, 1);

  // 4: classification
  let bceSum = 0;
  for (let i = 0; i < B * A * C; i++) {
    const x = predScores[i];
    bceSum += Math.max(x, 0) - x * ts[i] + Math.log1p(Math.exp(-Math.abs(x)));
  }
  const cls = bceSum / tss;

  // 5: box and DFL over the foreground anchors
  const weight = new Float64Array(B * A);
  const gCiou = new Float64Array(B * A * 4);
  const ciouK = new Float64Array(B * A);
  const lo = new Float64Array(B * A * 4);
  const wl = new Float64Array(B * A * 4);
  let boxSum = 0;
  let dflSum = 0;
  const P = new Float64Array(4);
  const T = new Float64Array(4);
  const tMax = R - 1 - 0.01;
  for (let b = 0; b < B; b++) {
    for (let a = 0; a < A; a++) {
      const i = b * A + a;
      if (foreground[i] !== 1) continue;
      let w = 0;
      for (let c = 0; c < C; c++) w += ts[i * C + c];
      weight[i] = w;
      const stride = strides[a];
      for (let s = 0; s < 4; s++) T[s] = boxes[4 * i + s] / stride;
      predBox(anchors, dist, i, a, P);
      const kCiou = held.ciouK ? held.ciouK[i] : ciouUK(P, T);
      ciouK[i] = kCiou;
      boxSum += w * (1 - ciouU(P, T, gCiou, 4 * i, kCiou));
      const ax = anchors[2 * a], ay = anchors[2 * a + 1];
      const target = [ax - T[0], ay - T[1], T[2] - ax, T[3] - ay];
      let dfl = 0;
      for (let s = 0; s < 4; s++) {
        const t = Math.min(Math.max(target[s], 0), tMax);
        const l = Math.floor(t);
        const wLeft = l + 1 - t;
        const wRight = 1 - wLeft;
        lo[4 * i + s] = l;
        wl[4 * i + s] = wLeft;
        const o = (4 * i + s) * R;
        let mx = -Infinity;
        for (let k = 0; k < R; k++) mx = Math.max(mx, predDist[o + k]);
        let se = 0;
        for (let k = 0; k < R; k++) se += Math.exp(predDist[o + k] - mx);
        const lse = mx + Math.log(se);
        // (a NaN target has no bin: its CE is NaN, and nothing is read or written out of range)
        const inRange = l >= 0 && l <= R - 2;
        const zl = inRange ? predDist[o + l] : NaN;
        const zr = inRange ? predDist[o + l + 1] : NaN;
        dfl += wLeft * (lse - zl) + wRight * (lse - zr);
      }
      dflSum += (w * dfl) / 4;
    }
  }
  const box = boxSum / tss;
  const dflLoss = dflSum / tss;
  const components = Float64Array.of(boxGain * box, clsGain * cls, dflGain * dflLoss);
  const total = B * (components[0] + components[1] + components[2]);

  return {
    loss: Float64Array.of(total),
    reduced: { loss: Float64Array.of(total), shape: [] },
    outputs: { components },
    ciouK,
    backward(upstream) {
      const scale = upstream[0] * B;
      const gScores = new Float64Array(B * A * C);
      const cs = (scale * clsGain) / tss;
      for (let i = 0; i < B * A * C; i++) gScores[i] = cs * (sigmoid(predScores[i]) - ts[i]);
      const gDist = new Float64Array(B * A * 4 * R);
      for (let i = 0; i < B * A; i++) {
        if (foreground[i] !== 1) continue;
        const cb = (scale * boxGain * weight[i]) / tss;
        const cd = (scale * dflGain * weight[i]) / tss / 4;
        for (let s = 0; s < 4; s++) {
          // d(1 - ciou)/dP; P_l = ax - d_l, P_t = ay - d_t, P_r = ax + d_r, P_b = ay + d_b
          const gP = -cb * gCiou[4 * i + s];
          const gd = s < 2 ? -gP : gP;
          const o = (4 * i + s) * R;
          const ds = dist[4 * i + s];
          const l = lo[4 * i + s];
          const wLeft = wl[4 * i + s];
          for (let k = 0; k < R; k++) {
            const qk = q[o + k];
            // d d_s / d z_k = q_k (k - d_s); d CE(z, j) / d z_k = q_k - [k = j]
            let g = gd * qk * (k - ds) + cd * qk;
            if (k === l) g -= cd * wLeft;
            if (k === l + 1) g -= cd * (1 - wLeft);
            gDist[o + k] = g;
          }
        }
      }
      return { predDist: gDist, predScores: gScores };
    },
  };
}

/**
 * The CPU reference of `yolo_detection_loss`: the assignment of {@link yoloAssignment}, then
 * {@link yoloLossWithAssignment}. `loss` and `reduced.loss` hold the one total; `gradOutput` is the
 * caller's `upstream[0]`.
 *
 * @example
 * const f = yoloDetectionLossCpu(inputs, { topk: 10, alpha: 0.5, beta: 6, boxGain: 7.5, clsGain: 0.5, dflGain: 1.5 }, { b, a, c, m, d });
 * f.loss[0]; f.outputs!.components; f.backward(Float64Array.of(1)).predDist;
 */
export function yoloDetectionLossCpu(inputs: CpuInputs, p: ResolvedParams, dims: Dims): CpuForward {
  return yoloLossWithAssignment(inputs, yoloAssignment(inputs, p, dims), p, dims);
}
