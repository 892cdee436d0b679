/**
 * THE RULE of the NMS ops in the differential fuzzer: `nms`, `nms_onnx` and `nms_tfjs` (ops.md,
 * "Non-maximum suppression"). Their outputs are indices chosen by comparisons: an overlap against
 * iouThreshold (`>` for nms and nms_onnx, `>=` for nms_tfjs), a score against scoreThreshold,
 * and, in Soft-NMS, decayed scores against each other. The reference makes them in float64, a
 * kernel in float32, so where a compared number lies within float32 rounding of what it is compared
 * with, a correct kernel may decide the other way. So:
 *
 * 1. Every comparison the reference's walk makes is replayed beside an interval that holds both
 *    the reference's float64 number and every number a float32 kernel can compute for it (interval
 *    arithmetic on the kernel's own formula, shaders/nms*.wgsl):
 *    - the corners: the input itself where the kernel takes it as is or sorts it; `x - w * 0.5`,
 *      `x + w` (cxcywh, xywh, centre boxes) rounded once;
 *    - each `+ - *` correctly rounded: its result lies between the float32 numbers just outside
 *      the exact interval (rounding is monotone); each division 3 ULP further out (WGSL allows
 *      2.5); a result below the normal range may flush to 0; `min`, `max` exact;
 *    - IoU: `iw`, `ih` from the corners; where the upper end of either is <= 0 the overlap is 0
 *      exactly (the kernel's guard fails whatever it rounds), where the lower end is <= 0 it may
 *      be 0; a box with a non-finite coordinate has overlap 0 exactly on both sides; boxes whose
 *      float32 corners are the same bits (the same input row, or the same sorted corners) have
 *      IoU 1 exactly (ops.md: "Identical boxes"); a union that may be <= 0, or corners that may
 *      overflow float32, leave the overlap unknown;
 *    - DIoU: the centre distance and the enclosing diagonal (the constant 1e-7 as float32 and as
 *      float64) on the same corners, `IoU - rho2 / c2`;
 *    - the threshold as the kernel holds it (`fround(iouThreshold)`) and as the reference does.
 *    A comparison is CLEAR when the whole interval lies on one side of both thresholds, and
 *    AMBIGUOUS otherwise: an exact 0 against iouThreshold 0, an exact 1 against 1, are clear.
 *    A score is a candidate when it is not NaN and `score > scoreThreshold`, exactly: the kernels
 *    compare a float32 score with the largest float32 at most the threshold, which decides the same.
 *    - Soft-NMS (`nms_tfjs`, softNmsSigma > 0): the reference's lazy walk (pop the largest stale
 *      score, decay it by the boxes selected since it was last looked at, newest first, select it
 *      if its score did not change, else put it back) is followed with each score an interval: a
 *      decay multiplies it by `exp(decay * v * v)`, with `decay` between `-0.5 / sigma` and its
 *      float32 rounding, `v` the IoU's interval, WGSL's `exp` good to `3 + 2|x|` ULP (and
 *      flushing to 0), and the product rounded; a factor is exactly 1 where the IoU is exactly 0,
 *      and +Infinity never decays. The pop order (intervals apart, or exact equal scores, which
 *      only scores never decayed can be, and the lower index), a decayed score against
 *      scoreThreshold, and whether a score changed, are clear where the intervals say so.
 *
 * 2. A case whose every comparison is clear must give the reference's integer outputs EXACTLY
 *    (`keep`, `selected` rows, `selectedIndices`, and `count`), and each Soft-NMS score must lie
 *    in the interval of its box's score times the factors of the boxes selected before it (with
 *    sigma 0, or no overlap, that is the input score, and the score must be its very bits).
 *
 * 3. A case with an ambiguous comparison is held to what the walk gives for SOME resolution of its
 *    ambiguous comparisons, each resolved the way the kernel's output implies:
 *    - nms, nms_onnx (the decisions of pairs are independent): the kept indices of each group
 *      (a class of `nms`, a (batch, class) of `nms_onnx`, its rows contiguous and in group order)
 *      are candidates in candidate order, no kept box is CLEARLY overlapped past the threshold by
 *      a kept box before it, and every candidate that is not kept (before the group's limit is
 *      reached) is overlapped past the threshold, clearly or ambiguously, by a kept box before it,
 *      or is an ambiguous candidate; at most the limit are kept.
 *    - nms_tfjs: the selections are replayed in the kernel's order, every live candidate's current
 *      score an interval (decayed at each selection). The lazy walk selects by a key: the current
 *      score where the input score is >= 0 (decay only lowers it), the input score where that is
 *      negative (decay raises it; TF.js pops it at its stale score and selects it at once). A
 *      selected box must be live (not clearly dropped), no live box may clearly have a larger key
 *      (a box that only may be live and has one is thereby dropped), and its reported score must
 *      lie in its interval; after it, each live box is clearly dropped (IoU >= iouThreshold, or a
 *      score <= scoreThreshold), clearly kept, or may be either; when fewer than maxOutputSize
 *      boxes are selected, no box may be clearly live at the end.
 *
 * The reference's own output must pass 3, and its walk lie within its intervals (else the rule or
 * the reference is at fault: `nms-rule-replay-differs`). With a NaN or an infinity in an input,
 * the same rule holds: ops.md defines those (a NaN score is never a candidate, infinite scores are
 * ordered as numbers, a box with a non-finite coordinate overlaps nothing).
 */
import { candidateOrder, overlapDiou, overlapIou, sortedCorners, torchCorners } from '../../src/cpu/nms';
import { OPS } from '../../src/ops/registry';
import { resolveOptions } from '../../src/ops/validate';
import type { FuzzCase } from './cases';
import { U, dataOf } from './tolerance';

export const NMS_OPS = new Set(['nms', 'nms_onnx', 'nms_tfjs']);

type Res = { loss: ArrayLike<number>; shape: number[]; grad: Record<string, ArrayLike<number>>; outputs?: Record<string, ArrayLike<number>> };
type Verdict = { key: string; message: string } | null;

// ---- interval arithmetic of float32 ----------------------------------------------------------

/** An interval [lo, hi] of reals. */
export type Iv = readonly [number, number];
const FLT_MAX = 3.4028234663852886e38;
/** Below the normal range a float32 result may flush to 0. */
const NORMAL = 2 ** -126;
const ANY: Iv = [-Infinity, Infinity];
const ZERO: Iv = [0, 0];
const ONE: Iv = [1, 1];

const F32 = new Float32Array(1);
const I32 = new Int32Array(F32.buffer);
/** The next float32 number above float32 number x. */
function nextUp32(x: number): number {
  if (Number.isNaN(x) || x === Infinity) return x;
  if (x === 0) return 2 ** -149;
  F32[0] = x;
  I32[0] += x > 0 ? 1 : -1;
  return F32[0];
}
const nextDown32 = (x: number) => -nextUp32(-x);
/** The least float32 number >= x, the greatest <= x. */
const up32 = (x: number) => (Number.isNaN(x) ? x : Math.fround(x) >= x ? Math.fround(x) : nextUp32(Math.fround(x)));
const down32 = (x: number) => -up32(-x);
const is32 = (x: number) => Math.fround(x) === x;

/**
 * The float32 results of an operation whose exact results lie in [lo, hi] (computed in float64):
 * rounding is monotone, so a correctly rounded result lies between the float32 numbers just
 * outside; `ulps` more on each side for an operation good to that many ULP (WGSL's division: 2.5).
 * Where the float64 ends may be inexact (an operand that is no float32 number) they move out by
 * 2^-50 first. A result below the normal range may flush to 0.
 */
function round32(lo: number, hi: number, exact: boolean, ulps = 0): Iv {
  if (Number.isNaN(lo) || Number.isNaN(hi)) return ANY;
  if (!exact) {
    lo -= Math.abs(lo) * 2 ** -50;
    hi += Math.abs(hi) * 2 ** -50;
  }
  let l = down32(lo);
  let h = up32(hi);
  for (let k = 0; k < ulps; k++) {
    l = nextDown32(l);
    h = nextUp32(h);
  }
  if (l > 0 && l < NORMAL) l = 0;
  if (h < 0 && h > -NORMAL) h = 0;
  return [l, h];
}
const f32ends = (...xs: Iv[]) => xs.every((x) => is32(x[0]) && is32(x[1]));
const pt = (x: number): Iv => [x, x];
const add = (a: Iv, b: Iv): Iv => round32(a[0] + b[0], a[1] + b[1], f32ends(a, b));
const sub = (a: Iv, b: Iv): Iv => round32(a[0] - b[1], a[1] - b[0], f32ends(a, b));
const imin = (a: Iv, b: Iv): Iv => [Math.min(a[0], b[0]), Math.min(a[1], b[1])];
const imax = (a: Iv, b: Iv): Iv => [Math.max(a[0], b[0]), Math.max(a[1], b[1])];
function mul(a: Iv, b: Iv): Iv {
  const p = [a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1]];
  if (p.some(Number.isNaN)) return ANY;
  // (a product of two float32 numbers is exact in float64)
  return round32(Math.min(...p), Math.max(...p), f32ends(a, b));
}
function div(a: Iv, b: Iv): Iv {
  if (!(b[0] > 0)) return ANY;
  const q = [a[0] / b[0], a[0] / b[1], a[1] / b[0], a[1] / b[1]];
  if (q.some(Number.isNaN)) return ANY;
  return round32(Math.min(...q), Math.max(...q), false, 3);
}
function sq(a: Iv): Iv {
  if (a[0] >= 0) return mul(a, a);
  if (a[1] <= 0) return mul([-a[1], -a[0]], [-a[1], -a[0]]);
  const m = Math.max(-a[0], a[1]);
  return round32(0, m * m, is32(m));
}
/** A product by a power of 2 (exact but for a flush). */
const scaled = (a: Iv, k: number): Iv => round32(a[0] * k, a[1] * k, f32ends(a));
/** The interval with `x` in it too (a NaN, which no interval can hold, makes it unknown). */
const hull = (a: Iv, x: number): Iv => (Number.isNaN(x) ? ANY : [Math.min(a[0], x), Math.max(a[1], x)]);
const isPoint = (a: Iv) => a[0] === a[1];

// ---- the boxes as each op's kernel forms its corners ------------------------------------------

/** The boxes of one batch: the reference's float64 corners, intervals of the kernel's float32 ones. */
interface BoxModel {
  n: number;
  /** As the reference forms them (torchCorners / sortedCorners). */
  cpu: Float64Array;
  /** Per box and corner: the interval of the kernel's float32 corner (lo at 8i + 2k, hi at 8i + 2k + 1). */
  iv: Float64Array;
  /** All four input coordinates finite (else the overlap is 0 on both sides). */
  finite: Uint8Array;
  /** A float32 corner may overflow: the overlap is unknown. */
  unsure: Uint8Array;
  /** Equal keys: the same float32 corners bit for bit (IoU exactly 1 where positive). */
  key: string[];
}

/**
 * `layout`: 'xyxy' | 'cxcywh' | 'xywh' (nms: corners not sorted), 'sorted' (nms_onnx with
 * centerPointBox 0, nms_tfjs: min and max of each pair), 'center' (nms_onnx's [xc, yc, w, h]).
 */
function boxModel(boxes: ArrayLike<number>, n: number, layout: string, offset = 0): BoxModel {
  const cpu = layout === 'sorted' ? sortedCorners(boxes, n, false, offset) : layout === 'center' ? sortedCorners(boxes, n, true, offset) : torchCorners(Array.from({ length: 4 * n }, (_, k) => boxes[offset + k]), n, layout);
  const iv = new Float64Array(8 * n);
  const finite = new Uint8Array(n);
  const unsure = new Uint8Array(n);
  const key: string[] = [];
  const computed = layout === 'cxcywh' || layout === 'xywh' || layout === 'center';
  for (let i = 0; i < n; i++) {
    const row = [0, 1, 2, 3].map((k) => boxes[offset + 4 * i + k]);
    finite[i] = row.every(Number.isFinite) ? 1 : 0;
    for (let k = 0; k < 4; k++) {
      const v = cpu[4 * i + k];
      // a corner formed in float32 (one rounding of x - w/2, x + w/2 or x + w), or taken as is
      // (the reference's float64 corner is the exact one, or within 2^-53 of it: round32 covers both)
      const [lo, hi] = computed && !(layout === 'xywh' && k < 2) ? round32(v, v, true) : [v, v];
      iv[8 * i + 2 * k] = lo;
      iv[8 * i + 2 * k + 1] = hi;
      if (finite[i] && Math.max(Math.abs(lo), Math.abs(hi)) >= FLT_MAX * (1 - 4 * U)) unsure[i] = 1;
    }
    key.push(computed ? `row ${row.join(',')}` : `corners ${Array.from(cpu.subarray(4 * i, 4 * i + 4)).join(',')}`);
  }
  return { n, cpu, iv, finite, unsure, key };
}

const corner = (m: BoxModel, i: number, k: number): Iv => [m.iv[8 * i + 2 * k], m.iv[8 * i + 2 * k + 1]];

/** The interval of the kernel's IoU of boxes i and j (box_iou in nms-common.wgsl), the reference's value in it. */
export function iouInterval(m: BoxModel, i: number, j: number): Iv {
  if (!m.finite[i] || !m.finite[j]) return ZERO;
  if (m.unsure[i] || m.unsure[j]) return ANY;
  const [ax, ay, az, aw] = [0, 1, 2, 3].map((k) => corner(m, i, k));
  const [bx, by, bz, bw] = [0, 1, 2, 3].map((k) => corner(m, j, k));
  const iw = sub(imin(az, bz), imax(ax, bx));
  const ih = sub(imin(aw, bw), imax(ay, by));
  // the guard `iw > 0 && ih > 0` fails whatever float32 rounds: exactly 0
  if (iw[1] <= 0 || ih[1] <= 0) return hull(ZERO, overlapIou(m.cpu, i, j));
  const sure = iw[0] > 0 && ih[0] > 0;
  if (sure && m.key[i] === m.key[j]) return hull(ONE, overlapIou(m.cpu, i, j));
  const inter = mul([Math.max(iw[0], 0), iw[1]], [Math.max(ih[0], 0), ih[1]]);
  const union = sub(add(mul(sub(az, ax), sub(aw, ay)), mul(sub(bz, bx), sub(bw, by))), inter);
  let v = div(inter, union);
  if (!sure) v = hull(v, 0);
  return hull(v, overlapIou(m.cpu, i, j));
}

const EPS32 = Math.fround(1e-7);

/** The interval of the kernel's DIoU (nms.wgsl `overlap`): IoU - rho2 / c2 on the same corners. */
export function diouInterval(m: BoxModel, i: number, j: number): Iv {
  if (!m.finite[i] || !m.finite[j]) return ZERO;
  const iou = iouInterval(m, i, j);
  if (iou === ANY) return ANY;
  const [ax, ay, az, aw] = [0, 1, 2, 3].map((k) => corner(m, i, k));
  const [bx, by, bz, bw] = [0, 1, 2, 3].map((k) => corner(m, j, k));
  // a.x + a.z - b.x - b.z, left to right
  const dx = sub(sub(add(ax, az), bx), bz);
  const dy = sub(sub(add(ay, aw), by), bw);
  const rho2 = scaled(add(sq(dx), sq(dy)), 0.25);
  const cw = imax(sub(imax(az, bz), imin(ax, bx)), ZERO);
  const ch = imax(sub(imax(aw, bw), imin(ay, by)), ZERO);
  const c2 = add(add(sq(cw), sq(ch)), [Math.min(1e-7, EPS32), Math.max(1e-7, EPS32)]);
  return hull(sub(iou, div(rho2, c2)), overlapDiou(m.cpu, i, j));
}

/** 'T' (clearly past the threshold), 'F' (clearly not), 'A' (float32 may decide either way). */
export type Decision = 'T' | 'F' | 'A';

/** `v > t` (`ge`: `v >= t`) for every v in the interval, against both the threshold and its float32 rounding. */
export function decide(v: Iv, t: number, ge: boolean): Decision {
  const t32 = Math.fround(t);
  const [lo, hi] = [Math.min(t, t32), Math.max(t, t32)];
  if (ge ? v[0] >= hi : v[0] > hi) return 'T';
  if (ge ? v[1] < lo : v[1] <= lo) return 'F';
  return 'A';
}

/** Whether score s is a candidate (`> thr`); the kernels decide it exactly (f32Below), so never ambiguous. */
function membership(s: number, thr: number | undefined): { cpu: boolean; ambiguous: boolean } {
  if (Number.isNaN(s)) return { cpu: false, ambiguous: false };
  if (thr === undefined) return { cpu: true, ambiguous: false };
  return { cpu: s > thr, ambiguous: false };
}

// ---- hard NMS: nms, nms_onnx --------------------------------------------------------------------

/** One group of hard NMS: its boxes, candidates in order, and its pair decisions (cached). */
interface HardGroup {
  name: string;
  /** Candidates of the reference or of a float32 threshold, in candidate order. */
  order: number[];
  /** Candidates on which the two thresholds disagree. */
  ambiguousMember: Set<number>;
  /** Kept at most. */
  limit: number;
  /** The decision of candidate i (earlier) against j: null when they never meet (another class). */
  decision(i: number, j: number): Decision | null;
}

function hardGroups(c: FuzzCase, p: Record<string, unknown>): HardGroup[] {
  const boxes = dataOf(c.inputs.boxes)!;
  const scores = dataOf(c.inputs.scores)!;
  const thr = p.scoreThreshold as number | undefined;
  const iouThr = p.iouThreshold as number;
  const groupOf = (name: string, m: BoxModel, at: number, overlap: (m: BoxModel, i: number, j: number) => Iv, classes: ArrayLike<number> | undefined, limit: number): HardGroup => {
    const amb = new Set<number>();
    const order = candidateOrder(scores, m.n, (i) => {
      const k = membership(scores[at + i], thr);
      if (k.ambiguous) amb.add(i);
      return k.cpu || k.ambiguous;
    }, at);
    const cache = new Map<number, Decision>();
    return {
      name,
      order,
      ambiguousMember: amb,
      limit,
      decision(i, j) {
        if (classes && classes[i] !== classes[j]) return null;
        const k = i * m.n + j;
        let d = cache.get(k);
        if (d === undefined) cache.set(k, (d = decide(overlap(m, i, j), iouThr, false)));
        return d;
      },
    };
  };
  if (c.op === 'nms') {
    const n = scores.length;
    const m = boxModel(boxes, n, (p.format as string) ?? 'xyxy');
    const classes = dataOf(c.inputs.classes);
    return [groupOf('all boxes', m, 0, p.variant === 'diou' ? diouInterval : iouInterval, classes, n)];
  }
  // nms_onnx: scores [b, c, n]
  const shape = (c.inputs.scores as { shape: number[] }).shape;
  const [B, C, n] = shape;
  const limit = Math.min(p.maxOutputBoxesPerClass as number, n);
  const out: HardGroup[] = [];
  for (let b = 0; b < B; b++) {
    const m = boxModel(boxes, n, p.centerPointBox === 1 ? 'center' : 'sorted', 4 * n * b);
    for (let k = 0; k < C; k++) out.push(groupOf(`batch ${b} class ${k}`, m, (b * C + k) * n, iouInterval, undefined, limit));
  }
  return out;
}

/** The reference's walk of a group (ops.md's steps), and the first ambiguous comparison it makes. */
function hardAmbiguity(c: FuzzCase, g: HardGroup): string | null {
  for (const i of g.ambiguousMember) return `${g.name}: box ${i}'s score is within float32 rounding of scoreThreshold`;
  if (c.op === 'nms') {
    const removed = new Set<number>();
    for (let k = 0; k < g.order.length; k++) {
      const i = g.order[k];
      if (removed.has(i)) continue;
      for (let l = k + 1; l < g.order.length; l++) {
        const j = g.order[l];
        if (removed.has(j)) continue;
        const d = g.decision(i, j);
        if (d === 'A') return `${g.name}: the overlap of boxes ${i} and ${j} is within float32 rounding of iouThreshold`;
        if (d === 'T') removed.add(j);
      }
    }
    return null;
  }
  const selected: number[] = [];
  for (const j of g.order) {
    if (selected.length >= g.limit) break;
    let kept = true;
    for (const s of selected) {
      const d = g.decision(s, j);
      if (d === 'A') return `${g.name}: the overlap of boxes ${s} and ${j} is within float32 rounding of iouThreshold`;
      if (d === 'T') {
        kept = false;
        break;
      }
    }
    if (kept) selected.push(j);
  }
  return null;
}

/** Rule 3 for one group of hard NMS: the kept list `K` is the walk's for some resolution of the ambiguous comparisons. */
function hardBreach(g: HardGroup, K: readonly number[]): string | null {
  if (K.length > g.limit) return `${g.name}: ${K.length} kept, past the limit ${g.limit}`;
  const kept: number[] = [];
  let p = 0;
  for (const j of g.order) {
    if (p === K.length && K.length >= g.limit) break;
    if (p < K.length && K[p] === j) {
      const by = kept.find((i) => g.decision(i, j) === 'T');
      if (by !== undefined) return `${g.name}: box ${j} kept, but kept box ${by} before it clearly overlaps it past iouThreshold`;
      kept.push(j);
      p++;
      continue;
    }
    if (g.ambiguousMember.has(j)) continue;
    if (!kept.some((i) => { const d = g.decision(i, j); return d === 'T' || d === 'A'; })) {
      return `${g.name}: box ${j} (a candidate) not kept, but no box kept before it overlaps it past iouThreshold, even within float32 rounding${p < K.length ? ` (box ${K[p]} kept next)` : ''}`;
    }
  }
  if (p < K.length) return `${g.name}: kept box ${K[p]} (place ${p}) is not a candidate, or is out of candidate order, or kept twice`;
  return null;
}

// ---- nms_tfjs ---------------------------------------------------------------------------------

const DEAD = 0;
const LIVE = 1;
/** Live or dropped, as float32 may decide. */
const MAYBE = 2;
const SELECTED = 3;

/** What every nms_tfjs replay needs: the params as the op resolves them, the boxes, the decay. */
function tfjsModel(c: FuzzCase) {
  const p = resolveOptions(OPS.nms_tfjs, c.options).params;
  const scores = dataOf(c.inputs.scores)!;
  const n = scores.length;
  const thr = p.scoreThreshold as number;
  const sigma = p.softNmsSigma as number;
  const scale = sigma > 0 ? -0.5 / sigma : 0;
  const decay: Iv = [Math.min(scale, Math.fround(scale)), Math.max(scale, Math.fround(scale))];
  /**
   * The factor `exp(decay * v * v)` for an overlap interval v, or null where it is exactly 1 on
   * both sides (sigma 0, an exact 0 overlap): WGSL's exp is good to 3 + 2|x| ULP and may flush,
   * and where v may be 0 in float32 the kernel skips the product.
   */
  const factor = (v: Iv): Iv | null => {
    if (scale === 0 || (v[0] === 0 && v[1] === 0)) return null;
    const x = mul(mul(decay, v), v);
    // (an ULP of y is at most 2^-23 |y|; below the normal range exp may flush to 0)
    const ulps = (3 + 2 * Math.max(Math.abs(x[0]), Math.abs(x[1]))) * 2 * U;
    const lo = Math.exp(x[0]) * (1 - ulps);
    const f: Iv = [lo < NORMAL ? 0 : lo, Math.exp(x[1]) * (1 + ulps) + 2 ** -149];
    return v[0] <= 0 ? hull(f, 1) : f;
  };
  /** A score interval times a factor; +Infinity never decays. */
  const decayed = (s: Iv, f: Iv | null): Iv => (f === null || (s[0] === Infinity && s[1] === Infinity) ? s : mul(s, f));
  return {
    n,
    scores,
    m: boxModel(dataOf(c.inputs.boxes)!, n, 'sorted'),
    limit: Math.min(p.maxOutputSize as number, n),
    thr,
    tLo: Math.min(thr, Math.fround(thr)),
    tHi: Math.max(thr, Math.fround(thr)),
    iouThr: p.iouThreshold as number,
    scale,
    factor,
    decayed,
  };
}

/** Whether `a` clearly ranks above `b` (intervals apart, or the same exact score and a lower index). */
function ranksAbove(a: Iv, ia: number, b: Iv, ib: number): boolean {
  return a[0] > b[1] || (isPoint(a) && isPoint(b) && a[0] === b[0] && ia < ib);
}

/**
 * The reference's own walk of nms_tfjs (tfjs-core's nonMaxSuppressionImpl_, as src/cpu/nms.ts
 * makes it: pop the largest stale score, decay it by the boxes selected since it was last looked
 * at, newest first, dropping it at IoU >= iouThreshold or once its score is <= scoreThreshold;
 * select it if its score did not change, else put it back), following the reference's float64
 * choices, beside the intervals of rule 1. Returns the comparisons on the way that float32 may
 * decide otherwise (the pop order, an overlap, a score against the threshold, whether a score
 * changed), and a breach where the reference's choice lies outside its own intervals.
 */
export function tfjsClassify(c: FuzzCase): { ambiguous: string[]; breach: string | null } {
  const t = tfjsModel(c);
  const { m, scores } = t;
  type Cand = { s: number; iv: Iv; from: number };
  const live = new Map<number, Cand>();
  const ambiguous: string[] = [];
  const note = (why: string) => {
    if (ambiguous.length < 8) ambiguous.push(why);
  };
  for (let i = 0; i < t.n; i++) {
    const k = membership(scores[i], t.thr);
    if (k.ambiguous) note(`box ${i}'s score is within float32 rounding of scoreThreshold`);
    if (k.cpu) live.set(i, { s: scores[i], iv: pt(scores[i]), from: 0 });
  }
  const selected: number[] = [];
  while (selected.length < t.limit && live.size > 0) {
    let best = -1;
    for (const [i, q] of live) if (best < 0 || q.s > live.get(best)!.s || (q.s === live.get(best)!.s && i < best)) best = i;
    const cand = live.get(best)!;
    for (const [j, q] of live) if (j !== best && !ranksAbove(cand.iv, best, q.iv, j)) note(`pop ${selected.length}: boxes ${best} and ${j} rank within float32 rounding of each other`);
    live.delete(best);
    const s0 = cand.s;
    const iv0 = cand.iv;
    let drop = false;
    for (let k = selected.length - 1; k >= cand.from; k--) {
      const v = iouInterval(m, best, selected[k]);
      const v64 = overlapIou(m.cpu, best, selected[k]);
      if (!(v64 >= v[0] && v64 <= v[1])) return { ambiguous, breach: `the reference's IoU of boxes ${best} and ${selected[k]}, ${v64}, lies outside its interval [${v[0]}, ${v[1]}]` };
      if (decide(v, t.iouThr, true) === 'A') note(`the overlap of boxes ${best} and ${selected[k]} is within float32 rounding of iouThreshold`);
      if (v64 >= t.iouThr) {
        drop = true;
        break;
      }
      if (v64 !== 0 && t.scale !== 0) cand.s *= Math.exp(t.scale * v64 * v64);
      cand.iv = t.decayed(cand.iv, t.factor(v));
      if (!(cand.s >= cand.iv[0] && cand.s <= cand.iv[1])) return { ambiguous, breach: `the reference's decayed score of box ${best}, ${cand.s}, lies outside its interval [${cand.iv[0]}, ${cand.iv[1]}]` };
      if (!(cand.iv[1] <= t.tLo) && !(cand.iv[0] > t.tHi)) note(`box ${best}'s decayed score [${cand.iv[0]}, ${cand.iv[1]}] is within float32 rounding of scoreThreshold`);
      if (cand.s <= t.thr) break;
    }
    if (drop) continue;
    cand.from = selected.length;
    const same = cand.iv[0] === iv0[0] && cand.iv[1] === iv0[1];
    if (cand.s === s0) {
      if (!same) note(`box ${best}'s score may have changed in float32 (it did not in float64)`);
      selected.push(best);
    } else {
      if (cand.iv[0] <= s0 && s0 <= cand.iv[1]) note(`box ${best}'s score may be unchanged in float32 (it changed in float64)`);
      if (cand.s > t.thr) live.set(best, cand);
    }
  }
  return { ambiguous, breach: null };
}

/**
 * Rule 3 for nms_tfjs: the selections replayed in the output's order, every live candidate's
 * current score an interval. TF.js's lazy walk (tfjsClassify) selects what the largest of these
 * keys selects: a candidate's current score where its score is >= 0 (decay only lowers it, and a
 * stale score, never below the current one, is refreshed before it is selected), and its input
 * score where that is negative (decay raises it: popped at its stale score, it rises and is
 * selected at once); equal keys, lower index first. See the rule at the top of this file.
 */
function tfjsReplay(c: FuzzCase, sel: ArrayLike<number>, reported: ArrayLike<number>): string | null {
  const t = tfjsModel(c);
  const { n, m, scores } = t;
  const status = new Uint8Array(n);
  const iv: Iv[] = [];
  for (let i = 0; i < n; i++) {
    const k = membership(scores[i], t.thr);
    status[i] = k.ambiguous ? MAYBE : k.cpu ? LIVE : DEAD;
    iv.push(pt(scores[i]));
  }
  const live = (i: number) => status[i] === LIVE || status[i] === MAYBE;
  const key = (i: number): Iv => (scores[i] < 0 ? pt(scores[i]) : iv[i]);
  for (let k = 0; k < sel.length; k++) {
    const c0 = sel[k];
    if (!(Number.isInteger(c0) && c0 >= 0 && c0 < n)) return `selection ${k}: index ${c0} is no box`;
    if (k >= t.limit) return `${sel.length} selected, past maxOutputSize's ${t.limit}`;
    if (!live(c0)) return `selection ${k}: box ${c0} is no live candidate there (never one, clearly dropped, or selected before)`;
    for (let j = 0; j < n; j++) {
      if (j === c0 || !live(j) || !ranksAbove(key(j), j, key(c0), c0)) continue;
      if (status[j] === LIVE) return `selection ${k}: box ${c0} (key in [${key(c0)[0]}, ${key(c0)[1]}]) selected, but live box ${j} (key in [${key(j)[0]}, ${key(j)[1]}]) clearly ranks above it`;
      // it may have been dropped, and must have been
      status[j] = DEAD;
    }
    const bad = scoreBreach(k, c0, iv[c0], reported[k]);
    if (bad) return bad;
    status[c0] = SELECTED;
    for (let j = 0; j < n; j++) {
      if (!live(j)) continue;
      const v = iouInterval(m, c0, j);
      const d = decide(v, t.iouThr, true);
      if (d === 'T') {
        status[j] = DEAD;
        continue;
      }
      if (d === 'A') status[j] = MAYBE;
      // decayed, if it survives; dropped once its score is <= scoreThreshold
      const f = t.factor(v);
      if (f === null) continue;
      iv[j] = t.decayed(iv[j], f);
      if (iv[j][1] <= t.tLo) status[j] = DEAD;
      else if (!(iv[j][0] > t.tHi)) status[j] = MAYBE;
    }
  }
  if (sel.length < t.limit) {
    for (let j = 0; j < n; j++) if (status[j] === LIVE) return `selection stopped after ${sel.length} of at most ${t.limit}, but box ${j} is clearly still a live candidate`;
  }
  return null;
}

/** A reported score against its interval: the input score's very bits where nothing decayed it. */
function scoreBreach(k: number, box: number, iv: Iv, r: number): string | null {
  if (isPoint(iv) ? Object.is(iv[0], r) : r >= iv[0] && r <= iv[1]) return null;
  return `selectedScores[${k}] (box ${box}) is ${r}, ${isPoint(iv) ? `not its score ${iv[0]}` : `outside its interval [${iv[0]}, ${iv[1]}]`}`;
}

// ---- the check ----------------------------------------------------------------------------------

const INDEX_OUTPUT: Record<string, string> = { nms: 'keep', nms_onnx: 'selected', nms_tfjs: 'selectedIndices' };

/**
 * Why a case is judged by rule 3 (the first ambiguous comparison of the reference's walk), or null
 * (rule 2); `breach` where the reference's own walk leaves its intervals (a fault of the rule).
 */
export function nmsAmbiguity(c: FuzzCase): { why: string | null; breach: string | null } {
  if (c.op === 'nms_tfjs') {
    const k = tfjsClassify(c);
    return { why: k.ambiguous[0] ?? null, breach: k.breach };
  }
  const p = resolveOptions(OPS[c.op], c.options).params;
  for (const g of hardGroups(c, p)) {
    const why = hardAmbiguity(c, g);
    if (why) return { why, breach: null };
  }
  return { why: null, breach: null };
}

/** Rule 3: the first breach of what any valid greedy result satisfies, or null. */
export function nmsBreach(c: FuzzCase, out: Record<string, ArrayLike<number>>): string | null {
  if (c.op === 'nms_tfjs') return tfjsReplay(c, out.selectedIndices, out.selectedScores);
  const p = resolveOptions(OPS[c.op], c.options).params;
  const groups = hardGroups(c, p);
  if (c.op === 'nms') return hardBreach(groups[0], Array.from(out.keep));
  // nms_onnx: rows (batch, class, box), contiguous per group, groups in order
  const C = (c.inputs.scores as { shape: number[] }).shape[1];
  const rows = out.selected;
  const per: number[][] = groups.map(() => []);
  let last = -1;
  for (let r = 0; r < rows.length / 3; r++) {
    const [b, k, i] = [rows[3 * r], rows[3 * r + 1], rows[3 * r + 2]];
    const g = b * C + k;
    if (!(Number.isInteger(b) && Number.isInteger(k) && b >= 0 && k >= 0 && k < C && g < groups.length)) return `row ${r}: (${b}, ${k}, ${i}) names no batch and class`;
    if (g < last) return `row ${r}: (${b}, ${k}, ${i}) after a row of a later group`;
    last = g;
    per[g].push(i);
  }
  for (let g = 0; g < groups.length; g++) {
    const breach = hardBreach(groups[g], per[g]);
    if (breach) return breach;
  }
  return null;
}

/**
 * Holds a surface's result of an NMS case to the rule at the top of this file: `g` the surface's,
 * `r` the reference's (`cpu.run`), of the same (empty) loss.
 */
export function checkNms(c: FuzzCase, where: string, g: Res, r: Res): Verdict {
  const names = Object.keys(OPS[c.op].outputs ?? {}).sort();
  const have = Object.keys(g.outputs ?? {}).sort();
  if (names.join() !== have.join()) return { key: `${where} outputs-differ`, message: `outputs [${have}], want [${names}]` };
  const out = g.outputs!;
  const idx = INDEX_OUTPUT[c.op];
  const width = c.op === 'nms_onnx' ? 3 : 1;
  const rows = out[idx].length / width;
  if (out.count.length !== 1 || out.count[0] !== rows) return { key: `${where} count-differs-from-rows`, message: `count [${Array.from(out.count)}] for ${out[idx].length / width} rows of ${idx}` };
  if (c.op === 'nms_tfjs' && out.selectedScores.length !== rows) return { key: `${where} output-length-differs`, message: `selectedScores has ${out.selectedScores.length} values for ${rows} indices` };
  // the rule must hold the reference itself: else it (or the reference) is at fault
  const { why, breach: walk } = nmsAmbiguity(c);
  const refBreach = walk ?? nmsBreach(c, r.outputs!);
  if (refBreach) return { key: `${where} nms-rule-replay-differs`, message: `the reference's own result breaks the rule: ${refBreach}` };
  if (!why) {
    const a = Array.from(out[idx]);
    const b = Array.from(r.outputs![idx]);
    if (a.join() !== b.join()) return { key: `${where} mismatch outputs.${idx}`, message: `${idx} [${a.slice(0, 40)}${a.length > 40 ? ', ...' : ''}] (${rows}), CPU [${b.slice(0, 40)}${b.length > 40 ? ', ...' : ''}] (${b.length / width}); no comparison within float32 rounding of its threshold` };
  }
  const breach = nmsBreach(c, out);
  if (breach) {
    const sub = c.op === 'nms_tfjs' && /^selectedScores/.test(breach) ? 'selectedScores' : idx;
    return { key: `${where} ${why ? 'rule' : 'mismatch'} outputs.${sub}`, message: `${breach}${why ? ` (judged by what any valid greedy result satisfies: ${why})` : ''}` };
  }
  return null;
}
