/**
 * The fuzzer's rule of the NMS ops (test/fuzz/nms.ts) with no GPU: on cases pinned by hand, the
 * reference passes, a wrong answer fails where every comparison is clear, and where one lies within
 * float32 rounding of its threshold the other valid answer passes but an invalid one still fails;
 * then planted defects (implementations of the three ops with one thing wrong, run on the fuzzer's
 * own cases) are flagged in a high share of the cases they change, and the reference itself passes
 * all of them.
 */
import { describe, expect, it } from 'vitest';
import { overlapDiou, overlapIou, sortedCorners, torchCorners } from '../../src/cpu/nms';
import { OPS } from '../../src/ops/registry';
import { resolveOptions } from '../../src/ops/validate';
import { generateCase, type FuzzCase, type FuzzInput } from './cases';
import { nmsAmbiguity } from './nms';
import { checkCase, referenceResult, type Surface } from './runner';
import { dataOf } from './tolerance';

type Res = Awaited<ReturnType<Surface['run']>>;
const surface = (res: Res): Surface => ({ name: 'pinned', run: async () => res });
const caseOf = (op: string, inputs: Record<string, FuzzInput>, options: Record<string, unknown>): FuzzCase => ({ op, seed: 0, index: 0, inputs, options, rows: 'default', dims: {}, tags: [] });
const INDEX: Record<string, string> = { nms: 'keep', nms_onnx: 'selected', nms_tfjs: 'selectedIndices' };

/** The reference's result with its selections replaced (count to match; nms_tfjs's scores given or the input's). */
function withSelection(c: FuzzCase, ref: Res, sel: number[], scores?: number[]): Res {
  const idx = INDEX[c.op];
  const rows = c.op === 'nms_onnx' ? sel.length / 3 : sel.length;
  const outputs: Record<string, ArrayLike<number>> = { ...ref.outputs, [idx]: Int32Array.from(sel), count: Int32Array.of(rows) };
  if (c.op === 'nms_tfjs') outputs.selectedScores = Float32Array.from(scores ?? sel.map((i) => dataOf(c.inputs.scores)![i]));
  return { ...ref, outputs };
}
const verdict = (c: FuzzCase, res: Res) => checkCase(surface(res), c);

describe('nms: clear cases are held exactly', () => {
  // box 1 on box 0 (IoU 0.81), box 2 apart
  const c = caseOf('nms', { boxes: Float32Array.of(0, 0, 10, 10, 1, 1, 10, 10, 20, 20, 30, 30), scores: Float32Array.of(0.9, 0.8, 0.7) }, { iouThreshold: 0.5 });
  const ref = referenceResult(c);
  it('the reference passes, and no comparison is ambiguous', async () => {
    expect(Array.from(ref.outputs!.keep)).toEqual([0, 2]);
    expect(nmsAmbiguity(c).why).toBeNull();
    expect(await verdict(c, ref)).toBeNull();
  });
  it('a suppressed box kept, a kept one dropped, the order reversed, a count that is not the rows: each fails', async () => {
    for (const sel of [[0, 1, 2], [0], [2, 0], [0, 2, 2]]) expect((await verdict(c, withSelection(c, ref, sel)))?.key, String(sel)).toMatch(/mismatch outputs.keep/);
    const badCount = { ...ref, outputs: { ...ref.outputs, count: Int32Array.of(3) } };
    expect((await verdict(c, badCount))?.key).toMatch(/count-differs-from-rows/);
  });
  it('exact 0 and exact 1 overlaps are exact: touching boxes at threshold 0, identical boxes at threshold 1', async () => {
    const touch = caseOf('nms', { boxes: Float32Array.of(0, 0, 1, 1, 1, 0, 2, 1), scores: Float32Array.of(0.9, 0.8) }, { iouThreshold: 0 });
    expect(nmsAmbiguity(touch).why).toBeNull();
    expect(await verdict(touch, withSelection(touch, referenceResult(touch), [0]))).not.toBeNull();
    const same = caseOf('nms', { boxes: Float32Array.of(0.1, 0.2, 1.3, 1.7, 0.1, 0.2, 1.3, 1.7), scores: Float32Array.of(0.9, 0.8) }, { iouThreshold: 1, format: 'cxcywh' });
    expect(Array.from(referenceResult(same).outputs!.keep)).toEqual([0, 1]);
    expect(nmsAmbiguity(same).why).toBeNull();
    expect(await verdict(same, withSelection(same, referenceResult(same), [0]))).not.toBeNull();
  });
});

describe('nms: an overlap within float32 rounding of the threshold', () => {
  // IoU exactly 0.5 (2 / 4) against iouThreshold 0.5: a float32 division may land either side
  const c = caseOf('nms', { boxes: Float32Array.of(0, 0, 2, 2, 0, 0, 2, 1, 5, 5, 6, 6), scores: Float32Array.of(0.9, 0.8, 0.7) }, { iouThreshold: 0.5 });
  const ref = referenceResult(c);
  it('is ambiguous; keeping box 1 (the reference) and suppressing it both pass', async () => {
    expect(Array.from(ref.outputs!.keep)).toEqual([0, 1, 2]);
    expect(nmsAmbiguity(c).why).toMatch(/overlap of boxes 0 and 1/);
    expect(await verdict(c, ref)).toBeNull();
    expect(await verdict(c, withSelection(c, ref, [0, 2]))).toBeNull();
  });
  it('but box 0 dropped, box 2 dropped, or the order changed still fails', async () => {
    for (const sel of [[1, 2], [0, 1], [0], [0, 2, 1]]) expect((await verdict(c, withSelection(c, ref, sel)))?.key, String(sel)).toMatch(/rule outputs.keep/);
  });
  it('a scoreThreshold that is no float32 number: `score > threshold` is decided exactly, so fround(0.3) > 0.3 is in', async () => {
    const s = caseOf('nms', { boxes: Float32Array.of(0, 0, 1, 1, 5, 5, 6, 6), scores: Float32Array.of(0.9, Math.fround(0.3)) }, { iouThreshold: 0.5, scoreThreshold: 0.3 });
    const r = referenceResult(s);
    expect(Array.from(r.outputs!.keep)).toEqual([0, 1]);
    expect(await verdict(s, r)).toBeNull();
    expect(await verdict(s, withSelection(s, r, [0]))).not.toBeNull();
    expect(await verdict(s, withSelection(s, r, [1]))).not.toBeNull();
  });
});

describe('nms_onnx: groups and the limit', () => {
  const boxes = { data: Float32Array.of(0, 0, 1, 1, 5, 5, 6, 6, 0, 0, 1, 1), shape: [1, 3, 4] };
  const scores = { data: Float32Array.of(0.9, 0.8, 0.7, 0.1, 0.2, 0.3), shape: [1, 2, 3] };
  const c = caseOf('nms_onnx', { boxes, scores }, { maxOutputBoxesPerClass: 1n, iouThreshold: 0.5 });
  const ref = referenceResult(c);
  it('one box per class; a second row of a class, or the classes out of order, fails', async () => {
    expect(Array.from(ref.outputs!.selected)).toEqual([0, 0, 0, 0, 1, 2]);
    expect(await verdict(c, ref)).toBeNull();
    expect(await verdict(c, withSelection(c, ref, [0, 0, 0, 0, 0, 1, 0, 1, 2]))).not.toBeNull();
    expect(await verdict(c, withSelection(c, ref, [0, 1, 2, 0, 0, 0]))).not.toBeNull();
    expect(await verdict(c, withSelection(c, ref, [0, 0, 0]))).not.toBeNull();
  });
});

describe('nms_tfjs: Soft-NMS scores and order', () => {
  // box 1 on box 0 at IoU 0.9, box 2 apart; sigma 0.5
  const boxes = Float32Array.of(0, 0, 10, 10, 0, 0, 10, 9, 20, 20, 30, 30);
  const c = caseOf('nms_tfjs', { boxes, scores: Float32Array.of(0.9, 0.5, 0.3) }, { maxOutputSize: 3, iouThreshold: 1, softNmsSigma: 0.5 });
  const ref = referenceResult(c);
  it('the reference passes; a decayed score one float32 step off passes, 1e-5 off fails, the input score fails', async () => {
    expect(await verdict(c, ref)).toBeNull();
    const s = Array.from(ref.outputs!.selectedScores);
    const step = Math.fround(s[2] * (1 + 2 ** -23));
    expect(await verdict(c, withSelection(c, ref, [0, 2, 1], [s[0], s[1], step]))).toBeNull();
    expect((await verdict(c, withSelection(c, ref, [0, 2, 1], [s[0], s[1], s[2] * (1 + 1e-5)])))?.key).toMatch(/selectedScores/);
    expect((await verdict(c, withSelection(c, ref, [0, 2, 1], [s[0], s[1], 0.5])))?.key).toMatch(/selectedScores/);
  });
  it('hard NMS reports the input scores bit for bit', async () => {
    const h = caseOf('nms_tfjs', { boxes, scores: Float32Array.of(0.9, 0.5, 0.3) }, { maxOutputSize: 3, iouThreshold: 0.95 });
    const r = referenceResult(h);
    expect(await verdict(h, r)).toBeNull();
    const s = Array.from(r.outputs!.selectedScores);
    expect(await verdict(h, withSelection(h, r, Array.from(r.outputs!.selectedIndices), [s[0], Math.fround(s[1] * (1 + 2 ** -23)), s[2]]))).not.toBeNull();
  });
  it('negative scores: TF.js pops a decayed one at its stale score; selecting it by its risen score fails', async () => {
    const n = caseOf('nms_tfjs', { boxes, scores: Float32Array.of(-0.1, -0.5, -0.3) }, { maxOutputSize: 3, iouThreshold: 1, softNmsSigma: 0.5 });
    const r = referenceResult(n);
    expect(Array.from(r.outputs!.selectedIndices)).toEqual([0, 2, 1]);
    expect(await verdict(n, r)).toBeNull();
    const s = Array.from(r.outputs!.selectedScores);
    expect((await verdict(n, withSelection(n, r, [0, 1, 2], [s[0], s[2], s[1]])))?.key).toMatch(/mismatch outputs.selectedIndices/);
  });
});

// ---- planted defects -----------------------------------------------------------------------------

/** What an implementation gets wrong (one at a time). */
interface Defect {
  /** nms, nms_onnx: `>=` for `>`; nms_tfjs: `>` for `>=`. */
  flipCompare?: boolean;
  /** Equal scores: higher index first. */
  tieHigh?: boolean;
  /** -0 below +0 (a score key that does not fold -0). */
  negZeroLow?: boolean;
  /** NaN scores are candidates, first (torchvision's sort). */
  nanFirst?: boolean;
  /** `score >= scoreThreshold`. */
  scoreGe?: boolean;
  /** The limit off by one. */
  limit?: number;
  /** nms: classes ignored. */
  noClasses?: boolean;
  /** nms_tfjs: Bodla's exp(-v^2 / sigma). */
  bodla?: boolean;
  /** nms_tfjs: selects the largest decayed score (decays applied at once), as the kernel did before 2811e46. */
  eager?: boolean;
}

/** The candidate order with a defect's ordering faults. */
function order(scores: ArrayLike<number>, n: number, pass: (s: number) => boolean, d: Defect, offset = 0): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = scores[offset + i];
    if (Number.isNaN(s) ? d.nanFirst : pass(s)) out.push(i);
  }
  const key = (i: number) => {
    const s = scores[offset + i];
    if (Number.isNaN(s)) return Infinity;
    return d.negZeroLow && Object.is(s, -0) ? -Number.MIN_VALUE : s;
  };
  return out.sort((i, j) => (key(j) > key(i) ? 1 : key(j) < key(i) ? -1 : d.tieHigh ? j - i : i - j));
}

/** An implementation of `c`'s op with defect `d` (float64), as its outputs. */
function implement(c: FuzzCase, d: Defect): Record<string, ArrayLike<number>> {
  const p = resolveOptions(OPS[c.op], c.options).params;
  const boxes = dataOf(c.inputs.boxes)!;
  const scores = dataOf(c.inputs.scores)!;
  const thr = p.scoreThreshold as number | undefined;
  const pass = (s: number) => thr === undefined || (d.scoreGe ? s >= thr : s > thr);
  const t = p.iouThreshold as number;
  const over = (v: number) => (c.op === 'nms_tfjs' ? (d.flipCompare ? v > t : v >= t) : d.flipCompare ? v >= t : v > t);
  if (c.op === 'nms') {
    const n = scores.length;
    const corners = torchCorners(boxes, n, (p.format as string) ?? 'xyxy');
    const overlap = p.variant === 'diou' ? overlapDiou : overlapIou;
    const classes = d.noClasses ? undefined : dataOf(c.inputs.classes);
    const o = order(scores, n, pass, d);
    const removed = new Set<number>();
    const keep: number[] = [];
    for (let k = 0; k < o.length; k++) {
      if (removed.has(o[k])) continue;
      keep.push(o[k]);
      for (let l = k + 1; l < o.length; l++) if ((!classes || classes[o[l]] === classes[o[k]]) && over(overlap(corners, o[k], o[l]))) removed.add(o[l]);
    }
    return { keep: Int32Array.from(keep), count: Int32Array.of(keep.length) };
  }
  if (c.op === 'nms_onnx') {
    const [B, C, n] = (c.inputs.scores as { shape: number[] }).shape;
    const m = Math.max(0, Math.min(p.maxOutputBoxesPerClass as number, n) + (d.limit ?? 0));
    const rows: number[] = [];
    for (let b = 0; b < B; b++) {
      const corners = sortedCorners(boxes, n, p.centerPointBox === 1, 4 * n * b);
      for (let k = 0; k < C; k++) {
        const sel: number[] = [];
        for (const j of order(scores, n, pass, d, (b * C + k) * n)) {
          if (sel.length >= m) break;
          if (sel.every((s) => !over(overlapIou(corners, s, j)))) {
            sel.push(j);
            rows.push(b, k, j);
          }
        }
      }
    }
    return { selected: Int32Array.from(rows), count: Int32Array.of(rows.length / 3) };
  }
  // nms_tfjs, decayed at once (the selections are the lazy walk's for scores >= 0, src/cpu/nms.ts's
  // walk otherwise: an `eager` defect ranks negative scores by their decayed values too)
  const n = scores.length;
  const corners = sortedCorners(boxes, n);
  const sigma = p.softNmsSigma as number;
  const m = Math.max(0, Math.min(p.maxOutputSize as number, n) + (d.limit ?? 0));
  const sthr = (p.scoreThreshold as number) ?? -Infinity;
  const live = new Map<number, number>();
  for (const i of order(scores, n, (s) => (d.scoreGe ? s >= sthr : s > sthr), d)) live.set(i, scores[i]);
  const rank = (i: number) => (!d.eager && scores[i] < 0 ? scores[i] : live.get(i)!);
  const sel: number[] = [];
  const out: number[] = [];
  while (sel.length < m && live.size) {
    let best = -1;
    for (const i of live.keys()) {
      if (best < 0) best = i;
      else {
        const [a, b] = [rank(i), rank(best)];
        const ka = d.negZeroLow && Object.is(a, -0) ? -Number.MIN_VALUE : a;
        const kb = d.negZeroLow && Object.is(b, -0) ? -Number.MIN_VALUE : b;
        if (ka > kb || (ka === kb && (d.tieHigh ? i > best : i < best))) best = i;
      }
    }
    sel.push(best);
    out.push(live.get(best)!);
    live.delete(best);
    for (const [j, s] of live) {
      const v = overlapIou(corners, best, j);
      if (over(v)) {
        live.delete(j);
        continue;
      }
      const f = sigma > 0 && v !== 0 && s !== Infinity ? Math.exp((d.bodla ? -1 / sigma : -0.5 / sigma) * v * v) : 1;
      const s2 = s * f;
      if (!(s2 > sthr)) live.delete(j);
      else live.set(j, s2);
    }
  }
  return { selectedIndices: Int32Array.from(sel), selectedScores: Float32Array.from(out), count: Int32Array.of(sel.length) };
}

const DEFECTS: { name: string; ops: string[]; d: Defect; floor: number }[] = [
  // (a flipped comparison changes a result only where an overlap equals the threshold; the rule
  // flags it where that equality is exact in any arithmetic, an overlap of exactly 0 or 1, and must
  // let it pass where float32 may decide it either way, as for an IoU of 2/4 on a grid at 0.5)
  { name: 'the comparison with iouThreshold flipped (> for >=, >= for >)', ops: ['nms', 'nms_onnx', 'nms_tfjs'], d: { flipCompare: true }, floor: 0.7 },
  { name: 'equal scores, higher index first', ops: ['nms', 'nms_onnx', 'nms_tfjs'], d: { tieHigh: true }, floor: 0.95 },
  { name: '-0 ranked below +0', ops: ['nms', 'nms_onnx', 'nms_tfjs'], d: { negZeroLow: true }, floor: 0.95 },
  { name: 'NaN scores as candidates, first', ops: ['nms', 'nms_onnx', 'nms_tfjs'], d: { nanFirst: true }, floor: 0.95 },
  { name: 'score >= scoreThreshold', ops: ['nms', 'nms_onnx', 'nms_tfjs'], d: { scoreGe: true }, floor: 0.95 },
  { name: 'the limit one more', ops: ['nms_onnx', 'nms_tfjs'], d: { limit: 1 }, floor: 0.95 },
  { name: 'the limit one less', ops: ['nms_onnx', 'nms_tfjs'], d: { limit: -1 }, floor: 0.95 },
  { name: 'classes ignored', ops: ['nms'], d: { noClasses: true }, floor: 0.95 },
  { name: "Bodla's exp(-v^2 / sigma)", ops: ['nms_tfjs'], d: { bodla: true }, floor: 0.95 },
  { name: 'negative scores ranked by their decayed values', ops: ['nms_tfjs'], d: { eager: true }, floor: 0.9 },
];

const differs = (a: Record<string, ArrayLike<number>>, b: Record<string, ArrayLike<number>>) =>
  Object.keys(b).some((k) => a[k].length !== b[k].length || Array.from(b[k]).some((v, i) => !(Math.abs(a[k][i] - v) <= 1e-9 * Math.abs(v)) && !Object.is(a[k][i], v)));

describe('planted defects in the NMS ops are flagged', () => {
  /** The fuzzer's own cases of each op (seed 31), NaN and infinities included, invalid ones left out. */
  const CASES = 800;
  const cases = (op: string) => {
    const out: FuzzCase[] = [];
    for (let i = 0; out.length < CASES; i++) {
      const c = generateCase(31, i, { op });
      try {
        referenceResult(c);
      } catch {
        continue;
      }
      out.push(c);
    }
    return out;
  };
  const drawn = Object.fromEntries(['nms', 'nms_onnx', 'nms_tfjs'].map((op) => [op, cases(op)]));

  it.each(['nms', 'nms_onnx', 'nms_tfjs'])('%s: the reference itself passes every case, and so does the defect-free implementation (equal to it where nothing is ambiguous)', async (op) => {
    for (const c of drawn[op]) {
      const ref = referenceResult(c);
      expect(await verdict(c, ref), `case ${c.index}`).toBeNull();
      const mine = implement(c, {});
      // (it decays eagerly, in another order than the reference's lazy walk: float64 may then
      // break a tie of decayed scores the other way, where the rule sees an ambiguity)
      if (!nmsAmbiguity(c).why) expect(differs(mine, ref.outputs!), `case ${c.index}: the test's implementation`).toBe(false);
      expect(await verdict(c, { ...ref, outputs: mine }), `case ${c.index}: the test's implementation`).toBeNull();
    }
  });

  it.each(DEFECTS.map((x) => [x.name, x] as const))('%s', async (_name, { ops, d, floor }) => {
    const lines: string[] = [];
    for (const op of ops) {
      let changed = 0;
      let flagged = 0;
      const missed: number[] = [];
      for (const c of drawn[op]) {
        const ref = referenceResult(c);
        const got = implement(c, d);
        // the cases the defect changes: against the same implementation without it
        if (!differs(got, implement(c, {}))) continue;
        changed++;
        if (await verdict(c, { ...ref, outputs: got })) flagged++;
        else missed.push(c.index);
      }
      lines.push(`${op}: ${flagged}/${changed} of the cases it changes flagged${missed.length ? ` (missed: cases ${missed.slice(0, 6).join(', ')})` : ''}`);
      // a defect must show in enough of the fuzzer's cases to be measured, and be flagged in most
      expect(changed, `${op}: cases the defect changes`).toBeGreaterThanOrEqual(8);
      expect(flagged / changed, `${op}: share flagged`).toBeGreaterThanOrEqual(floor);
    }
    console.log(`${_name}: ${lines.join('; ')}`);
  });
});
