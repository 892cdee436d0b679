/**
 * THE TIE RULE AND THE TOLERANCE RULE of the assigner ops in the differential fuzzer:
 * `tal_assign` (five outputs, three of them integers) and `yolo_detection_loss` (a loss, its
 * components and two gradients, through an assignment of its own). ops.md, "Notes for
 * implementers": the assignment is made of comparisons (the in-gt test, the top-k order, the
 * argmax of the overlaps), and a float32 kernel may decide one differently from the float64
 * reference where the two sides are within float32 rounding of each other. So:
 *
 * 1. Every decision of the reference is replayed in float64 beside an error bound of each number
 *    it compares (`talDecisions`):
 *    - in-gt: the kernel's test is `min(anchor - gt.xy, gt.zw - anchor) > 1e-9` in float32, whose
 *      subtractions (and the YOLO loss's anchor * stride) WGSL rounds correctly: it is replayed in
 *      float32 (Math.fround). A pair whose float32 and float64 verdicts differ is a tie; so is one
 *      whose margin lies within 4u of |anchor * stride| of 1e-9 when that product is inexact (a
 *      fused multiply-add would round it otherwise).
 *    - the overlap `max(ciou_u, 0)` carries an absolute error E (`ciouError`): 64u, plus the
 *      aspect term's 16384u * k * v (WGSL's atan2 is bounded at 4096 ULP only), plus the
 *      rounding of the centre sums (4u |coordinate| over the enclosing diagonal), plus what the
 *      predicted box's own coordinates carry (the YOLO loss decodes them: the softmax
 *      expectation's exp at 3 + 2|x| ULP, times the stride) through CIoU's gradient (three times
 *      its first-order effect). The overlap is an interval [ov - E, ov + E] clamped at 0; a pair whose CIoU
 *      lies within E of 0 may be 0 or not.
 *    - the metric `s^alpha * ov^beta` carries a relative error: alpha times the score's (the
 *      YOLO loss's sigmoid: (6 + 2|x|)u of exp), beta * E / ov, and pow's (exact forms for
 *      alpha 0.5 and integer beta: (2y + 4)u; else exp2(y log2 x): ln2 y (2^-21 + 3u|log2 x|) +
 *      (3 + 2|y log2 x|)u). Its interval is twice that wide (SAFE); where the score, the overlap,
 *      either power or the metric is below 2^-110, float32 may flush it to 0 (a sigmoid of -88 is
 *      6e-39), and the interval starts at 0. A pair that is not
 *      a candidate, or whose CIoU is at most -E, has metric exactly 0 on both sides.
 *    - top k per real gt: the reference's top k (metric descending, index ascending) is clear
 *      when the smallest lower bound in it exceeds the largest upper bound outside it; otherwise
 *      the pairs whose intervals meet there are contested, and the row is a tie unless every one
 *      of them is an exact 0 (then index order decides on both sides).
 *    - one gt per anchor: an anchor that two or more gts select goes to the first largest overlap
 *      over all rows; a row whose overlap interval reaches the winner's (from below, or equal from
 *      above) is a tie, unless the two gt boxes are the same bits (the same overlap on both sides).
 *    An image with any tie is not compared exactly: its outputs are held to what any valid
 *    assignment keeps (test/helpers/tal-checks.ts: indices in range, labels and boxes the rows
 *    they name, targetScores only at foreground anchors in their label, foreground centres inside
 *    a real gt, at most topk per real gt), and for `yolo_detection_loss` (whose batch shares one
 *    normaliser) a tie anywhere leaves the loss, components and gradients to those checks and to
 *    finiteness (components >= 0 for gains >= 0, the loss B times their sum).
 *
 * 2. An image with no tie: labels, foreground and gtIndex equal the reference's EXACTLY, boxes bit
 *    for bit (copies of gtBoxes), and each target score lies in the interval that the metrics'
 *    and overlaps' intervals give `metric * maxOv / (maxMetric + eps)` (widened by 8u and 2^-110;
 *    at a gt's clearly largest metric, numerator and denominator are the same float32 number).
 *
 * 3. `yolo_detection_loss` with no tie: every value (loss, components, gradients) within
 *        allowed(512, cpu, S) + Delta
 *    of the reference (tolerance.ts's `allowed`: K u (|cpu| + S) + tiny). S is the magnitude of
 *    the terms each value is formed from (BCE: |x| + |bce| + |x| t per class entry over the
 *    normaliser; box: w (1 + |ciou|) plus E / (K u) at each foreground anchor; DFL: w times the
 *    log-sum-exp and the two logits it cancels; the gradients: their own terms, with the CIoU
 *    gradient's spread over the R bins, each bin's softmax probability good to its exp's 3 + 2|x|
 *    ULP and k - d_s to the expectation's error). Where a corner of the decoded box and the gt's
 *    that CIoU's min / max compare are within float32 rounding (a peaked softmax whose expectation
 *    rounds to an integer, on a gt edge on the grid), the gradient of either side holds, as in
 *    tolerance.ts's rule for boxes. Delta is the target scores' float32 uncertainty carried
 *    through: for each foreground anchor, the change of every value when its target score moves
 *    to the far end of its interval (the reference with that score moved), summed in absolute
 *    value over the anchors, twice.
 *
 * With a NaN or an infinity in an input (unchecked), ops.md leaves the numbers unspecified: the
 * outputs are held to the invariants above (no finiteness), the shapes and lengths, and a refusal
 * on one side only is a failure as for every op.
 */
import { ciouU, ciouUK } from '../../src/cpu/ciou-u';
import { IN_GT_EPS, yoloAssignment, yoloLossWithAssignment, type TalAssignment } from '../../src/cpu/tal';
import type { CpuInputs, Dims, ResolvedParams } from '../../src/cpu/types';
import { OPS } from '../../src/ops/registry';
import { assignmentBreach, yoloBreach } from '../helpers/tal-checks';
import type { FuzzCase } from './cases';
import { U, allowed, dataOf } from './tolerance';

export const TAL_OPS = new Set(['tal_assign', 'yolo_detection_loss']);

/** The interval factor of the tie rule (the bounds are first-order sums). */
const SAFE = 2;
/** Below this a float32 product or power may flush to 0. */
const FLUSH = 2 ** -110;
const K = 512;

type Res = { loss: ArrayLike<number>; shape: number[]; grad: Record<string, ArrayLike<number>>; outputs?: Record<string, ArrayLike<number>> };

const f64 = (c: FuzzCase, name: string) => Float64Array.from(dataOf(c.inputs[name]) ?? []);
const sigmoid = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
const pw = (x: number, y: number) => (y === 0 ? 1 : x === 0 ? 0 : x ** y);

/** The params of an assigner case, as the op resolves them. */
export function talParams(c: FuzzCase): ResolvedParams {
  const p: ResolvedParams = {};
  for (const [k, spec] of Object.entries(OPS[c.op].params)) p[k] = (c.options[k] as number | undefined) ?? (spec.default as number);
  return p;
}
/** The sizes of an assigner case (b, a, c, m, and d = 4R for the YOLO loss). */
export function talDims(c: FuzzCase): Dims & { b: number; a: number; c: number; m: number } {
  return { b: c.dims.b, a: c.dims.a, c: c.dims.c, m: c.dims.m, ...(c.op === 'yolo_detection_loss' ? { d: 4 * c.dims.r } : {}) };
}
/** The case's inputs as the CPU reference's internals take them (float64, int32). */
export function talCpuInputs(c: FuzzCase): CpuInputs {
  const out: CpuInputs = {};
  for (const [k, spec] of Object.entries(OPS[c.op].inputs)) {
    const d = dataOf(c.inputs[k]);
    if (d) out[k] = spec.dtype === 'i32' ? (d as Int32Array) : Float64Array.from(d);
  }
  return out;
}

/** Relative error of x^y in float32 as pow_u forms it (shaders/tal.wgsl). */
function powError(x: number, y: number): number {
  if (y === 0 || x === 0) return 0;
  if (y === 0.5) return 4 * U;
  if (y === Math.floor(y) && y <= 64) return (2 * y + 4) * U;
  const l = Math.abs(Math.log2(x));
  return Math.LN2 * y * (2 ** -21 + 3 * U * l) + (3 + 2 * y * l) * U;
}

/**
 * The absolute float32 error of `ciou_u(g, p)` (see the rule): `pErr` is the absolute error of the
 * predicted box's coordinates (0 for a box given as float32 input).
 */
export function ciouError(g: ArrayLike<number>, p: ArrayLike<number>, pErr: number): number {
  const e = 1e-7;
  const w1 = p[2] - p[0], h1 = p[3] - p[1] + e;
  const w2 = g[2] - g[0], h2 = g[3] - g[1] + e;
  const iw = Math.max(0, Math.min(p[2], g[2]) - Math.max(p[0], g[0]));
  const ih = Math.max(0, Math.min(p[3], g[3]) - Math.max(p[1], g[1]));
  const union = Math.abs(w1 * h1 + w2 * h2 - iw * ih) + e;
  const cw = Math.max(p[2], g[2]) - Math.min(p[0], g[0]);
  const ch = Math.max(p[3], g[3]) - Math.min(p[1], g[1]);
  const c2 = cw * cw + ch * ch + e;
  const dx = Math.abs(g[0] + g[2] - p[0] - p[2]);
  const dy = Math.abs(g[1] + g[3] - p[1] - p[3]);
  let M = 0;
  for (let q = 0; q < 4; q++) M = Math.max(M, Math.abs(p[q]), Math.abs(g[q]));
  const gap = Math.atan(w2 / h2) - Math.atan(w1 / h1);
  const v = (4 / Math.PI ** 2) * gap * gap;
  const iou = (iw * ih) / union;
  const k = v / (v - iou + 1 + e);
  // the predicted box's own error, to first order through CIoU's gradient (k held: thrice, for k's own change)
  let moved = 0;
  if (pErr > 0) {
    const gr = new Float64Array(4);
    ciouU(p, g, gr);
    for (let q = 0; q < 4; q++) moved += Math.abs(gr[q]);
  }
  return 64 * U + 16384 * U * k * v + (4 * U * M * (dx + dy)) / c2 + 3 * pErr * moved;
}

/** What the replay of an assignment gives (see the rule). */
export interface TalDecisions {
  /** Per image: why its assignment may differ in float32, or '' when every decision is clear. */
  ties: string[];
  /** Per anchor (B*A): the interval its target score (in its label's class) may take in float32. */
  tsLo: Float64Array;
  tsHi: Float64Array;
  /** The assignment the replay made (float64), for the YOLO loss's tolerance. */
  assignment: TalAssignment;
  /** Per anchor: the absolute error of its predicted box's coordinates (pixels). */
  boxErr: Float64Array;
}

/** The scores, predicted boxes and anchors in pixels that the assignment reads, and their float32 errors. */
function assignerInputs(c: FuzzCase) {
  const { b: B, a: A, c: C } = talDims(c);
  if (c.op === 'tal_assign') {
    return { scores: f64(c, 'scores'), scoreErr: new Float64Array(B * A * C), boxes: f64(c, 'predBoxes'), boxErr: new Float64Array(B * A), anchors: f64(c, 'anchors'), anchorExact: new Uint8Array(A).fill(1) };
  }
  const R = c.dims.r;
  const x = f64(c, 'predScores');
  const scores = Float64Array.from(x, sigmoid);
  const scoreErr = Float64Array.from(x, (v) => (v < 0 ? (6 + 2 * Math.abs(v)) * U : 4 * U));
  const z = f64(c, 'predDist');
  const anc = f64(c, 'anchors');
  const st = f64(c, 'strides');
  const boxes = new Float64Array(B * A * 4);
  const boxErr = new Float64Array(B * A);
  for (let i = 0; i < B * A; i++) {
    const a = i % A;
    let worst = 0;
    const d = [0, 0, 0, 0];
    for (let s = 0; s < 4; s++) {
      // (the reference's decode, in its order: the replay must make its very assignment)
      const o = (4 * i + s) * R;
      let m = -Infinity;
      for (let k = 0; k < R; k++) m = Math.max(m, z[o + k]);
      const q = new Float64Array(R);
      let sum = 0;
      for (let k = 0; k < R; k++) sum += q[k] = Math.exp(z[o + k] - m);
      for (let k = 0; k < R; k++) {
        q[k] /= sum;
        d[s] += k * q[k];
      }
      // the expectation's error: each exp good to 3 + 2|x| ULP moves it by q_k |k - d| that much
      // (numerator and denominator: d = sum k q_k / sum q_k), and its sums round
      let err = 0;
      for (let k = 0; k < R; k++) err += q[k] * (3 + 2 * (m - z[o + k]) + 2) * U * Math.abs(k - d[s]);
      worst = Math.max(worst, 2 * err + 2 * R * U * (1 + d[s]));
    }
    const [ax, ay] = [anc[2 * a], anc[2 * a + 1]];
    const box = [ax - d[0], ay - d[1], ax + d[2], ay + d[3]];
    for (let q = 0; q < 4; q++) boxes[4 * i + q] = box[q] * st[a];
    boxErr[i] = st[a] * (worst + 2 * U * (Math.abs(ax) + Math.abs(ay) + R)) + 2 * U * Math.max(...box.map((v) => Math.abs(v * st[a])));
  }
  const anchors = Float64Array.from(anc, (v, i) => v * st[i >> 1]);
  const anchorExact = Uint8Array.from({ length: A }, (_, a) => (Math.fround(anchors[2 * a]) === anchors[2 * a] && Math.fround(anchors[2 * a + 1]) === anchors[2 * a + 1] ? 1 : 0));
  return { scores, scoreErr, boxes, boxErr, anchors, anchorExact };
}

/** Replays the assignment of a finite case in float64 with the error bounds of its comparisons (see the rule). */
export function talDecisions(c: FuzzCase): TalDecisions {
  const { b: B, a: A, c: C, m: M } = talDims(c);
  const p = talParams(c);
  const alpha = p.alpha as number;
  const beta = p.beta as number;
  const eps = c.op === 'tal_assign' ? (p.eps as number) : 1e-9;
  const k = Math.min(p.topk as number, A);
  const gl = dataOf(c.inputs.gtLabels)!;
  const gb = f64(c, 'gtBoxes');
  const gm = dataOf(c.inputs.gtMask)!;
  const { scores, scoreErr, boxes, boxErr, anchors, anchorExact } = assignerInputs(c);
  const ties = new Array<string>(B).fill('');
  const tsLo = new Float64Array(B * A);
  const tsHi = new Float64Array(B * A);
  const labels = new Int32Array(B * A);
  const outBoxes = new Float64Array(B * A * 4);
  const targetScores = new Float64Array(B * A * C);
  const foreground = new Int32Array(B * A);
  const gtIndex = new Int32Array(B * A);
  const assignment: TalAssignment = { labels, boxes: outBoxes, targetScores, foreground, gtIndex };
  if (M === 0) {
    labels.fill(C);
    return { ties, tsLo, tsHi, assignment, boxErr };
  }
  const f = Math.fround;
  const in32 = f(IN_GT_EPS);
  for (let b = 0; b < B; b++) {
    const tie = (why: string) => {
      if (!ties[b]) ties[b] = why;
    };
    // pairs: candidate, overlap and metric with their intervals
    const n = M * A;
    const cand = new Uint8Array(n);
    const ov = new Float64Array(n);
    const ovLo = new Float64Array(n);
    const ovHi = new Float64Array(n);
    const met = new Float64Array(n);
    const mLo = new Float64Array(n);
    const mHi = new Float64Array(n);
    for (let j = 0; j < M; j++) {
      if (gm[b * M + j] !== 1) continue;
      const g = gb.subarray((b * M + j) * 4, (b * M + j) * 4 + 4);
      const l = gl[b * M + j];
      for (let a = 0; a < A; a++) {
        const [ax, ay] = [anchors[2 * a], anchors[2 * a + 1]];
        const m64 = Math.min(ax - g[0], ay - g[1], g[2] - ax, g[3] - ay);
        const [x32, y32] = [f(ax), f(ay)];
        const m32 = Math.min(f(x32 - g[0]), f(y32 - g[1]), f(g[2] - x32), f(g[3] - y32));
        const inGt = m64 > IN_GT_EPS;
        if (inGt !== m32 > in32) tie(`in-gt: gt ${j}, anchor ${a}: margin ${m64} in float64, ${m32} in float32`);
        else if (!anchorExact[a] && Math.abs(m64 - IN_GT_EPS) <= 4 * U * (Math.abs(ax) + Math.abs(ay))) tie(`in-gt: gt ${j}, anchor ${a}: margin ${m64} within the rounding of anchor * stride`);
        if (!inGt) continue;
        const at = j * A + a;
        cand[at] = 1;
        const pb = boxes.subarray((b * A + a) * 4, (b * A + a) * 4 + 4);
        const ci = ciouU(g, pb);
        const E = ciouError(g, pb, boxErr[b * A + a]);
        const o = Math.max(ci, 0);
        ov[at] = o;
        // a CIoU at most -E is an exact 0 on both sides
        ovLo[at] = ci <= -E ? 0 : Math.max(0, ci - SAFE * E);
        ovHi[at] = ci <= -E ? 0 : Math.max(0, ci + SAFE * E);
        const s = scores[(b * A + a) * C + l];
        const sa = pw(s, alpha);
        const ob = pw(o, beta);
        const m = sa * ob;
        met[at] = m;
        // an exact 0 on both sides: an overlap of exactly 0 (beta > 0), or a given score of exactly 0 (alpha > 0)
        if ((ovHi[at] === 0 && beta > 0) || (c.op === 'tal_assign' && s === 0 && alpha > 0)) continue;
        // the interval: the monotone metric of the score's and the overlap's intervals, and pow's own error
        const sErr = SAFE * scoreErr[(b * A + a) * C + l];
        const powErr = SAFE * (powError(s, alpha) + powError(Math.max(o, ovHi[at]), beta) + 4 * U);
        // a score (a sigmoid of -88 is 6e-39), an overlap, a power or the metric that float32 may flush to 0
        const flush = [s, o, sa, ob, m].some((v) => v < FLUSH);
        mLo[at] = flush ? 0 : Math.max(0, pw(s * (1 - sErr), alpha) * pw(ovLo[at], beta) * (1 - powErr));
        mHi[at] = pw(s * (1 + sErr), alpha) * pw(ovHi[at], beta) * (1 + powErr) + (flush ? FLUSH : 0);
      }
    }
    // 3: top k per real gt, by (metric desc, index asc)
    const count = new Int32Array(A);
    const selBy = new Int32Array(A);
    const sel = new Uint8Array(n);
    for (let j = 0; j < M; j++) {
      if (gm[b * M + j] !== 1) continue;
      const off = j * A;
      const order = Array.from({ length: A }, (_, i) => i).sort((u, v) => (met[off + u] > met[off + v] ? -1 : met[off + u] < met[off + v] ? 1 : u - v));
      for (let r = 0; r < k; r++) {
        const a = order[r];
        if (!cand[off + a]) continue;
        sel[off + a] = 1;
        count[a]++;
        selBy[a] = j;
      }
      if (k >= A) continue;
      let minLo = Infinity;
      for (let r = 0; r < k; r++) minLo = Math.min(minLo, mLo[off + order[r]]);
      let maxHi = -Infinity;
      for (let r = k; r < A; r++) maxHi = Math.max(maxHi, mHi[off + order[r]]);
      if (minLo > maxHi) continue;
      // contested pairs: a tie unless each is an exact 0 (then index order decides on both sides)
      const contested = order.filter((a, r) => (r < k ? mLo[off + a] <= maxHi : mHi[off + a] >= minLo));
      const exactZero = (a: number) => mLo[off + a] === 0 && mHi[off + a] === 0 && met[off + a] === 0;
      if (!contested.every(exactZero)) tie(`top-k: gt ${j}: the ${k}-th metric's interval meets the next (anchors ${contested.slice(0, 4).join(', ')})`);
    }
    // 4: one gt per anchor
    const owner = new Int32Array(A);
    for (let a = 0; a < A; a++) {
      if (count[a] === 1) owner[a] = selBy[a];
      else if (count[a] >= 2) {
        let best = 0;
        for (let j = 1; j < M; j++) if (ov[j * A + a] > ov[best * A + a]) best = j;
        owner[a] = best;
        const lo = (j: number) => (cand[j * A + a] ? ovLo[j * A + a] : 0);
        const hi = (j: number) => (cand[j * A + a] ? ovHi[j * A + a] : 0);
        for (let j = 0; j < M; j++) {
          if (j === best) continue;
          const sameBox = [0, 1, 2, 3].every((q) => gb[(b * M + j) * 4 + q] === gb[(b * M + best) * 4 + q]) && cand[j * A + a] === cand[best * A + a];
          if (sameBox) continue;
          const exactBoth = hi(j) === 0 && lo(best) === 0 && hi(best) === 0;
          if (exactBoth) continue;
          if (j < best ? hi(j) >= lo(best) : hi(j) > lo(best)) tie(`argmax: anchor ${a}: the overlaps of rows ${best} and ${j} are within rounding`);
        }
      }
    }
    // 5: the outputs, and the interval of each target score
    const maxM = new Float64Array(M);
    const maxMLo = new Float64Array(M);
    const maxMHi = new Float64Array(M);
    const maxO = new Float64Array(M);
    const maxOLo = new Float64Array(M);
    const maxOHi = new Float64Array(M);
    for (let a = 0; a < A; a++) {
      if (!count[a]) continue;
      const j = owner[a];
      const at = j * A + a;
      maxM[j] = Math.max(maxM[j], met[at]);
      maxMLo[j] = Math.max(maxMLo[j], mLo[at]);
      maxMHi[j] = Math.max(maxMHi[j], mHi[at]);
      maxO[j] = Math.max(maxO[j], ov[at]);
      maxOLo[j] = Math.max(maxOLo[j], cand[at] ? ovLo[at] : 0);
      maxOHi[j] = Math.max(maxOHi[j], cand[at] ? ovHi[at] : 0);
    }
    // A gt's largest metric, where one anchor's is clearly above the others it got, is that very
    // float32 number on the GPU too: its own target score is then maxOv * m / (m + eps), with no
    // independent error of the numerator's metric and the denominator's
    const clearMax = new Int32Array(M).fill(-1);
    for (let j = 0; j < M; j++) {
      let best = -1;
      for (let a = 0; a < A; a++) if (count[a] && owner[a] === j && (best < 0 || met[j * A + a] > met[j * A + best])) best = a;
      if (best < 0) continue;
      let others = 0;
      for (let a = 0; a < A; a++) if (a !== best && count[a] && owner[a] === j) others = Math.max(others, mHi[j * A + a]);
      if (mLo[j * A + best] > others) clearMax[j] = best;
    }
    for (let a = 0; a < A; a++) {
      const i = b * A + a;
      const fg = count[a] >= 1;
      const j = fg ? owner[a] : 0;
      const l = gl[b * M + j];
      foreground[i] = fg ? 1 : 0;
      gtIndex[i] = j;
      labels[i] = l;
      for (let q = 0; q < 4; q++) outBoxes[4 * i + q] = gb[(b * M + j) * 4 + q];
      if (!fg) continue;
      const at = j * A + a;
      targetScores[i * C + l] = (met[at] * maxO[j]) / (maxM[j] + eps);
      if (clearMax[j] === a) {
        tsLo[i] = ((maxOLo[j] * mLo[at]) / (mLo[at] + eps)) * (1 - 8 * U);
        tsHi[i] = ((maxOHi[j] * mHi[at]) / (mHi[at] + eps)) * (1 + 8 * U) + FLUSH;
      } else {
        tsLo[i] = ((mLo[at] * maxOLo[j]) / (maxMHi[j] + eps)) * (1 - 8 * U);
        tsHi[i] = ((mHi[at] * maxOHi[j]) / (maxMLo[j] + eps)) * (1 + 8 * U) + FLUSH;
      }
    }
  }
  return { ties, tsLo, tsHi, assignment, boxErr };
}

type Verdict = { key: string; message: string } | null;

/**
 * Holds a surface's result of an assigner case to the rule at the top of this file. `g` is the
 * surface's, `r` the reference's (`cpu.run`), both already of the same loss shape and gradient
 * names (the runner checked).
 */
export function checkTal(c: FuzzCase, where: string, g: Res, r: Res, nonFinite: boolean): Verdict {
  const d = talDims(c);
  const p = talParams(c);
  const names = Object.keys(OPS[c.op].outputs ?? {}).sort();
  const have = Object.keys(g.outputs ?? {}).sort();
  if (names.join() !== have.join()) return { key: `${where} outputs-differ`, message: `outputs [${have}], want [${names}]` };
  for (const k of names) {
    if (g.outputs![k].length !== r.outputs![k].length) return { key: `${where} output-length-differs`, message: `outputs.${k}: ${g.outputs![k].length} vs ${r.outputs![k].length}` };
  }
  if (c.op === 'tal_assign') {
    const breach = assignmentBreach(c.inputs, g.outputs, d, p.topk as number, { finite: !nonFinite });
    if (breach) return { key: `${where} ${nonFinite ? 'non-finite-rule' : 'invariant'} outputs`, message: breach };
    if (nonFinite) return null;
    const t = talDecisions(c);
    // the replay must be the reference's assignment, or its bounds mean nothing
    const drift = replayDrift(t.assignment, r.outputs!);
    if (drift) return { key: `${where} tie-rule-replay-differs`, message: drift };
    const { b: B, a: A, c: C } = d;
    for (let b = 0; b < B; b++) {
      if (t.ties[b]) continue;
      for (let a = 0; a < A; a++) {
        const i = b * A + a;
        for (const k of ['labels', 'foreground', 'gtIndex'] as const) {
          if (g.outputs![k][i] !== r.outputs![k][i]) return { key: `${where} mismatch outputs.${k}`, message: `image ${b} anchor ${a}: ${k} ${g.outputs![k][i]}, CPU ${r.outputs![k][i]} (no decision of the image within float32 rounding of a tie)` };
        }
        for (let q = 0; q < 4; q++) {
          if (g.outputs!.boxes[4 * i + q] !== r.outputs!.boxes[4 * i + q]) return { key: `${where} mismatch outputs.boxes`, message: `image ${b} anchor ${a}: boxes[${q}] ${g.outputs!.boxes[4 * i + q]}, CPU ${r.outputs!.boxes[4 * i + q]}` };
        }
        const l = r.outputs!.labels[i];
        if (!r.outputs!.foreground[i]) continue;
        const v = g.outputs!.targetScores[i * C + l];
        if (!(v >= t.tsLo[i] && v <= t.tsHi[i])) {
          return { key: `${where} mismatch outputs.targetScores`, message: `image ${b} anchor ${a}: targetScores ${v}, CPU ${r.outputs!.targetScores[i * C + l]}, outside [${t.tsLo[i]}, ${t.tsHi[i]}]` };
        }
      }
    }
    return null;
  }
  // yolo_detection_loss
  const gains: [number, number, number] = [p.boxGain as number, p.clsGain as number, p.dflGain as number];
  const lengths = { predDist: dataOf(c.inputs.predDist)!.length, predScores: dataOf(c.inputs.predScores)!.length };
  const breach = yoloBreach(g, lengths, d.b, { finite: !nonFinite, gains, grad: c.options.grad !== false });
  if (breach) return { key: `${where} ${nonFinite ? 'non-finite-rule' : 'invariant'} loss`, message: breach };
  if (nonFinite) return null;
  const t = talDecisions(c);
  const ref = yoloAssignment(talCpuInputs(c), p, d);
  const drift = replayDrift(t.assignment, ref as unknown as Record<string, ArrayLike<number>>);
  if (drift) return { key: `${where} tie-rule-replay-differs`, message: drift };
  if (t.ties.some(Boolean)) return null;
  const tol = yoloTolerance(c, t, ref);
  const judge = (out: string, got: ArrayLike<number>, want: ArrayLike<number>, bound: Float64Array): Verdict => {
    let worst: { i: number; ratio: number } | undefined;
    for (let i = 0; i < want.length; i++) {
      const err = Math.abs(got[i] - want[i]);
      if (!(err <= bound[i])) {
        const ratio = err / bound[i];
        if (!worst || !(ratio <= worst.ratio)) worst = { i, ratio };
      }
    }
    if (!worst) return null;
    const i = worst.i;
    return { key: `${where} mismatch ${out}`, message: `${out}[${i}]: GPU ${got[i]}, CPU ${want[i]}, |diff| ${Math.abs(got[i] - want[i]).toExponential(3)} > allowed ${bound[i].toExponential(3)} (${worst.ratio.toFixed(1)}x)` };
  };
  return (
    judge('loss', g.loss, r.loss, tol.loss) ??
    judge('outputs.components', g.outputs!.components, r.outputs!.components, tol.components) ??
    (c.options.grad === false ? null : judge('grad.predDist', g.grad.predDist, r.grad.predDist, tol.predDist) ?? judge('grad.predScores', g.grad.predScores, r.grad.predScores, tol.predScores))
  );
}

/** Where the replay's assignment differs from the reference's (a defect of the replay), or undefined. */
function replayDrift(mine: TalAssignment, ref: Record<string, ArrayLike<number>>): string | undefined {
  for (const k of ['labels', 'foreground', 'gtIndex'] as const) {
    for (let i = 0; i < mine[k].length; i++) if (mine[k][i] !== ref[k][i]) return `the replay's ${k}[${i}] is ${mine[k][i]}, the reference's ${ref[k][i]}`;
  }
  for (let i = 0; i < mine.targetScores.length; i++) {
    if (Math.abs(mine.targetScores[i] - ref.targetScores[i]) > 1e-12 * (1 + Math.abs(ref.targetScores[i]))) return `the replay's targetScores[${i}] is ${mine.targetScores[i]}, the reference's ${ref.targetScores[i]}`;
  }
  return undefined;
}

/**
 * A near tie of the CIoU's corners (tolerance.ts's rule for boxes): where the decoded box's corner
 * and the gt's that min / max compare (x1 with x1, ..., and the intersection's sides at 0) are
 * within float32 rounding of each other but not equal, float32 may fall on either side, and the
 * gradient of either side holds (ops.md: a tie splits it, an empty side passes none). Returns, per
 * corner of the predicted box, how far the gradient moves when each such corner is put on the
 * tie and just past it (k held).
 */
function cornerTies(P: Float64Array, T: Float64Array, pErr: number, g0: Float64Array): Float64Array {
  const out = new Float64Array(4);
  const k = ciouUK(P, T);
  const alt = new Float64Array(4);
  const tryAt = (q: number, v: number) => {
    const Q = Float64Array.from(P);
    Q[q] = v;
    ciouU(Q, T, alt, 0, k);
    for (let s = 0; s < 4; s++) out[s] = Math.max(out[s], Math.abs(alt[s] - g0[s]));
  };
  for (let q = 0; q < 4; q++) {
    const r = 2 * pErr + 8 * U * (Math.abs(P[q]) + Math.abs(T[q]));
    // the same corners (min / max of x1, x2, y1, y2)
    if (Math.abs(P[q] - T[q]) <= r) for (const v of [T[q], T[q] - 2 * r, T[q] + 2 * r]) tryAt(q, v);
    // an intersection side at 0: this corner against the gt's opposite one
    const o = (q + 2) % 4;
    if (Math.abs(P[q] - T[o]) <= r) for (const v of [T[o], T[o] - 2 * r, T[o] + 2 * r]) tryAt(q, v);
  }
  return out;
}

/** The allowed |gpu - cpu| of each value of a YOLO case with no tie: rule 3 at the top of this file. */
export function yoloTolerance(c: FuzzCase, t: TalDecisions, ref: TalAssignment): { loss: Float64Array; components: Float64Array; predDist: Float64Array; predScores: Float64Array } {
  const d = talDims(c);
  const p = talParams(c);
  const { b: B, a: A, c: C } = d;
  const R = c.dims.r;
  const inputs = talCpuInputs(c);
  const x = inputs.predScores as Float64Array;
  const z = inputs.predDist as Float64Array;
  const anc = inputs.anchors as Float64Array;
  const st = inputs.strides as Float64Array;
  const go = dataOf(c.inputs.gradOutput);
  const upv = go ? go[0] : 1;
  const up = Math.abs(upv);
  const [bg, cg, dg] = [Math.abs(p.boxGain as number), Math.abs(p.clsGain as number), Math.abs(p.dflGain as number)];
  const ts = ref.targetScores;
  let tsSum = 0;
  for (let i = 0; i < ts.length; i++) tsSum += ts[i];
  const tss = Math.max(tsSum, 1);

  // S: the terms each value is formed from
  let sCls = 0;
  const sScores = new Float64Array(B * A * C);
  for (let i = 0; i < B * A * C; i++) {
    const bce = Math.max(x[i], 0) - x[i] * ts[i] + Math.log1p(Math.exp(-Math.abs(x[i])));
    sCls += Math.abs(x[i]) + Math.abs(bce) + Math.abs(x[i]) * ts[i] + 1;
    sScores[i] = ((up * B * cg) / tss) * (sigmoid(x[i]) + ts[i]);
  }
  sCls /= tss;
  let sBox = 0;
  let sDfl = 0;
  const sDist = new Float64Array(B * A * 4 * R);
  const P = new Float64Array(4);
  const T = new Float64Array(4);
  const gC = new Float64Array(4);
  for (let i = 0; i < B * A; i++) {
    if (ref.foreground[i] !== 1) continue;
    const a = i % A;
    let w = 0;
    for (let k = 0; k < C; k++) w += ts[i * C + k];
    const q = new Float64Array(4 * R);
    const qErr = new Float64Array(4 * R);
    const dist = [0, 0, 0, 0];
    const dErr = [0, 0, 0, 0];
    let spread = 0;
    let lseTerms = 0;
    for (let s = 0; s < 4; s++) {
      const o = (4 * i + s) * R;
      let m = -Infinity;
      let lo = Infinity;
      for (let k = 0; k < R; k++) {
        m = Math.max(m, z[o + k]);
        lo = Math.min(lo, z[o + k]);
      }
      spread = Math.max(spread, Math.min(m - lo, 40));
      let sum = 0;
      for (let k = 0; k < R; k++) sum += q[s * R + k] = Math.exp(z[o + k] - m);
      for (let k = 0; k < R; k++) {
        q[s * R + k] /= sum;
        dist[s] += k * q[s * R + k];
        // each exp good to 3 + 2|x| ULP, then a division and a product
        qErr[s * R + k] = (3 + 2 * (m - z[o + k]) + 4) * U;
      }
      for (let k = 0; k < R; k++) dErr[s] += 2 * q[s * R + k] * qErr[s * R + k] * Math.abs(k - dist[s]);
      dErr[s] += 2 * R * U * (1 + dist[s]);
      lseTerms += Math.abs(m + Math.log(sum)) + 2 * Math.max(Math.abs(m), Math.abs(lo));
    }
    const [ax, ay] = [anc[2 * a], anc[2 * a + 1]];
    P.set([ax - dist[0], ay - dist[1], ax + dist[2], ay + dist[3]]);
    for (let s = 0; s < 4; s++) T[s] = ref.boxes[4 * i + s] / st[a];
    const ci = ciouU(P, T, gC, 0);
    // the box's own error in grid units: what assignerInputs found in pixels, over the stride
    const E = ciouError(T, P, t.boxErr[i] / st[a]);
    sBox += w * (1 + Math.abs(ci) + E / (K * U));
    sDfl += (w * (lseTerms + spread)) / 4;
    // The gradient into bin k of side s: box: dd_s q_k (k - d_s), dd_s = (CIoU's gradient) * w * unit
    // * boxGain; DFL: cd (q_k - hot), cd = w * unit * dflGain / 4. Their absolute errors: the CIoU
    // gradient's (K u times its terms: the IoU's, the distance's, the aspect's, each about 1 / a
    // side of the boxes or of the enclosure, and E over the smaller side), q_k's own (qErr), and
    // k - d_s's (d_s good to dErr); the DFL's targets (the anchor and the gt box over the stride,
    // rounded at their size) move its weights.
    const side = Math.max(1e-7, Math.min(P[2] - P[0], P[3] - P[1], T[2] - T[0], T[3] - T[1]));
    const cw = Math.max(P[2], T[2]) - Math.min(P[0], T[0]);
    const ch = Math.max(P[3], T[3]) - Math.min(P[1], T[1]);
    const gErr = K * U * (Math.max(...Array.from(gC, Math.abs)) + 4 / side + 8 / Math.sqrt(cw * cw + ch * ch + 1e-7)) + E / side;
    const gTie = cornerTies(P, T, t.boxErr[i] / st[a], gC);
    const tErr = 4 * U * (Math.abs(ax) + Math.abs(ay) + Math.max(...Array.from(T, Math.abs)) + R);
    const pre = (up * B * w) / tss;
    for (let s = 0; s < 4; s++) {
      for (let k = 0; k < R; k++) {
        const qk = q[s * R + k];
        const box = bg * ((gErr + gTie[s]) * qk * Math.abs(k - dist[s]) + (Math.abs(gC[s]) + gTie[s]) * qk * (qErr[s * R + k] * Math.abs(k - dist[s]) + dErr[s]));
        const dfl = (dg / 4) * (qk * qErr[s * R + k] + 2 * tErr + K * U * (qk + 1));
        sDist[(4 * i + s) * R + k] = (pre * (box + dfl)) / (K * U);
      }
    }
  }
  sBox /= tss;
  sDfl /= tss;

  // Delta: each foreground anchor's target score moved to the far end of its interval
  const held = { ciouK: yoloLossWithAssignment(inputs, ref, p, d).ciouK };
  const f0 = yoloLossWithAssignment(inputs, ref, p, d, held);
  const g0 = c.options.grad === false ? undefined : f0.backward(Float64Array.of(upv));
  const dLoss = new Float64Array(1);
  const dComp = new Float64Array(3);
  const dDist = new Float64Array(B * A * 4 * R);
  const dScores = new Float64Array(B * A * C);
  for (let i = 0; i < B * A; i++) {
    if (ref.foreground[i] !== 1) continue;
    const l = ref.labels[i];
    const v = ts[i * C + l];
    const delta = Math.max(t.tsHi[i] - v, v - t.tsLo[i]);
    if (!(delta > 0)) continue;
    const moved = Float64Array.from(ts);
    moved[i * C + l] = v + delta;
    const fi = yoloLossWithAssignment(inputs, { ...ref, targetScores: moved }, p, d, held);
    dLoss[0] += 2 * Math.abs(fi.loss[0] - f0.loss[0]);
    for (let k = 0; k < 3; k++) dComp[k] += 2 * Math.abs(fi.outputs!.components[k] - f0.outputs!.components[k]);
    if (g0) {
      const gi = fi.backward(Float64Array.of(upv));
      for (let k = 0; k < dDist.length; k++) dDist[k] += 2 * Math.abs(gi.predDist[k] - g0.predDist[k]);
      for (let k = 0; k < dScores.length; k++) dScores[k] += 2 * Math.abs(gi.predScores[k] - g0.predScores[k]);
    }
  }
  const comps = f0.outputs!.components;
  const sComp = [bg * sBox, cg * sCls, dg * sDfl];
  return {
    loss: Float64Array.of(allowed(K, f0.loss[0], B * (sComp[0] + sComp[1] + sComp[2])) + dLoss[0]),
    components: Float64Array.from(comps, (v, k) => allowed(K, v, sComp[k]) + dComp[k]),
    predDist: g0 ? Float64Array.from(g0.predDist, (v, k) => allowed(K, v, sDist[k], up) + dDist[k]) : new Float64Array(0),
    predScores: g0 ? Float64Array.from(g0.predScores, (v, k) => allowed(K, v, sScores[k], up) + dScores[k]) : new Float64Array(0),
  };
}

/** The result with its named outputs, for a surface that returns them apart (the adapters). */
export type TalRes = Res;
