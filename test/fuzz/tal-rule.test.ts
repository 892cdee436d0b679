/**
 * The fuzzer's tie and tolerance rule of the assigner ops (test/fuzz/tal.ts) on cases pinned by
 * hand, with no GPU: the reference itself, rounded to float32, passes; wrong answers do not, in an
 * image whose decisions are clear (integers exactly, boxes bit for bit, target scores in their
 * interval, the YOLO loss within its tolerance); where a decision lies within float32 rounding of
 * a tie, another valid assignment passes but a broken invariant still fails.
 */
import { describe, expect, it } from 'vitest';
import { GOOD, TAL } from '../helpers/misuse-cases';
import type { FuzzCase, FuzzInput } from './cases';
import { checkCase, referenceResult, type Surface } from './runner';
import { talDecisions } from './tal';

type Res = Awaited<ReturnType<Surface['run']>>;

const surface = (res: Res): Surface => ({ name: 'pinned', run: async () => res });
const caseOf = (op: string, inputs: Record<string, FuzzInput>, options: Record<string, unknown>, dims: Record<string, number>): FuzzCase => ({ op, seed: 0, index: 0, inputs, options, rows: 'default', dims, tags: [] });
const DIMS = { b: 1, a: TAL.a, c: TAL.c, m: TAL.m };
const talCase = (inputs = GOOD.tal_assign().inputs, options: Record<string, unknown> = { topk: 4 }) => caseOf('tal_assign', inputs, options, DIMS);
const yoloCase = () => caseOf('yolo_detection_loss', GOOD.yolo_detection_loss().inputs, { topk: 4 }, { ...DIMS, r: 4 });

/** The reference's result with output `name` changed by `f` (a copy). */
function withOutput(res: Res, name: string, f: (a: Float32Array | Int32Array) => void): Res {
  const o = res.outputs![name];
  const copy = o instanceof Int32Array ? Int32Array.from(o) : Float32Array.from(o);
  f(copy);
  return { ...res, outputs: { ...res.outputs, [name]: copy } };
}
const fgAnchors = (res: Res) => Array.from(res.outputs!.foreground).flatMap((v, i) => (v ? [i] : []));
const bgAnchors = (res: Res) => Array.from(res.outputs!.foreground).flatMap((v, i) => (v ? [] : [i]));

describe('tal_assign, an image whose decisions are all clear', () => {
  const c = talCase();
  const ref = referenceResult(c);
  it('has no tie, and the reference passes', async () => {
    expect(talDecisions(c).ties).toEqual(['']);
    expect(await checkCase(surface(ref), c)).toBeNull();
  });
  it('a foreground anchor made background (its gtIndex, label and box row 0), or a background one foreground, fails', async () => {
    const a = fgAnchors(ref).find((i) => ref.outputs!.gtIndex[i] === 0)!;
    const dropped = withOutput(withOutput(ref, 'foreground', (x) => (x[a] = 0)), 'targetScores', (x) => x.fill(0, a * TAL.c, (a + 1) * TAL.c));
    expect((await checkCase(surface(dropped), c))?.key).toMatch(/mismatch outputs.foreground/);
    const b = bgAnchors(ref)[0];
    expect(await checkCase(surface(withOutput(ref, 'foreground', (x) => (x[b] = 1))), c)).not.toBeNull();
  });
  it('another gt for a foreground anchor (label and box of that row) fails', async () => {
    const a = fgAnchors(ref).find((i) => ref.outputs!.gtIndex[i] === 0)!;
    const g = talCase().inputs;
    const boxes = (g.gtBoxes as { data: Float32Array }).data;
    let res = withOutput(ref, 'gtIndex', (x) => (x[a] = 1));
    res = withOutput(res, 'labels', (x) => (x[a] = 2));
    res = withOutput(res, 'boxes', (x) => x.set(boxes.subarray(4, 8), 4 * a));
    res = withOutput(res, 'targetScores', (x) => {
      x.fill(0, a * TAL.c, (a + 1) * TAL.c);
      x[a * TAL.c + 2] = 0.1;
    });
    expect((await checkCase(surface(res), c))?.key).toMatch(/mismatch outputs.(labels|gtIndex)/);
  });
  it('a box one float32 step off, or a target score 0.5% off, fails; one 1e-6 off passes', async () => {
    const a = fgAnchors(ref)[0];
    const l = ref.outputs!.labels[a];
    expect((await checkCase(surface(withOutput(ref, 'boxes', (x) => (x[4 * a] = Math.fround(x[4 * a] * (1 + 2 ** -23))))), c))?.key).toMatch(/invariant outputs|boxes/);
    expect((await checkCase(surface(withOutput(ref, 'targetScores', (x) => (x[a * TAL.c + l] *= 1.005))), c))?.key).toMatch(/targetScores/);
    expect(await checkCase(surface(withOutput(ref, 'targetScores', (x) => (x[a * TAL.c + l] *= 1 + 1e-6))), c)).toBeNull();
  });
  it('a target score at a background anchor, or in another class, breaks an invariant', async () => {
    const b = bgAnchors(ref)[0];
    expect((await checkCase(surface(withOutput(ref, 'targetScores', (x) => (x[b * TAL.c] = 0.1))), c))?.key).toMatch(/invariant/);
    const a = fgAnchors(ref)[0];
    const other = (ref.outputs!.labels[a] + 1) % TAL.c;
    expect((await checkCase(surface(withOutput(ref, 'targetScores', (x) => (x[a * TAL.c + other] = 0.1))), c))?.key).toMatch(/invariant/);
  });
  it('no gt rows (M = 0): every label C; a label 0 fails', async () => {
    const g = GOOD.tal_assign().inputs;
    const empty = caseOf('tal_assign', { ...g, gtLabels: { data: new Int32Array(0), shape: [1, 0] }, gtBoxes: { data: new Float32Array(0), shape: [1, 0, 4] }, gtMask: { data: new Int32Array(0), shape: [1, 0] } }, { topk: 13 }, { ...DIMS, m: 0 });
    const r = referenceResult(empty);
    expect(Array.from(r.outputs!.labels)).toEqual(new Array(TAL.a).fill(TAL.c));
    expect(await checkCase(surface(r), empty)).toBeNull();
    expect(await checkCase(surface(withOutput(r, 'labels', (x) => (x[3] = 0))), empty)).not.toBeNull();
  });
});

describe('tal_assign, a top-k boundary within rounding of a tie', () => {
  // gt 0 holds anchors 0, 1, 4, 5 and 8 (the 16-stride anchor at (8, 8)); give them one and the
  // same predicted box about gt 0 and the same scores: five equal metrics, topk 4
  const g = GOOD.tal_assign().inputs;
  const boxes = Float32Array.from((g.predBoxes as { data: Float32Array }).data);
  const scores = Float32Array.from((g.scores as { data: Float32Array }).data);
  for (const a of [0, 1, 4, 5, 8]) {
    boxes.set([2, 2, 14, 14], 4 * a);
    scores.set([0.3, 0.6, 0.2], 3 * a);
  }
  const c = talCase({ ...g, predBoxes: { data: boxes, shape: [1, TAL.a, 4] }, scores: { data: scores, shape: [1, TAL.a, 3] } });
  const ref = referenceResult(c);
  it('is a tie; the reference passes, and so does the other choice of the fourth anchor', async () => {
    expect(talDecisions(c).ties[0]).toMatch(/^top-k: gt 0/);
    expect(await checkCase(surface(ref), c)).toBeNull();
    // the reference takes the lowest indices (0, 1, 4, 5); float32 might as well take 8 for 5
    expect([0, 1, 4, 5, 8].map((a) => ref.outputs!.foreground[a])).toEqual([1, 1, 1, 1, 0]);
    let other = withOutput(ref, 'foreground', (x) => {
      x[5] = 0;
      x[8] = 1;
    });
    other = withOutput(other, 'targetScores', (x) => {
      x[8 * TAL.c + 1] = x[5 * TAL.c + 1];
      x[5 * TAL.c + 1] = 0;
    });
    other = withOutput(other, 'labels', (x) => {
      x[8] = 1;
      x[5] = 1;
    });
    other = withOutput(other, 'boxes', (x) => x.set(x.subarray(0, 4), 32));
    expect(await checkCase(surface(other), c)).toBeNull();
  });
  it('but a broken invariant still fails there: a gtIndex out of range, five foreground anchors of one gt with topk 4', async () => {
    expect((await checkCase(surface(withOutput(ref, 'gtIndex', (x) => (x[0] = TAL.m))), c))?.key).toMatch(/invariant/);
    const five = withOutput(ref, 'foreground', (x) => [0, 1, 4, 5, 8].forEach((a) => (x[a] = 1)));
    const fiveAll = withOutput(five, 'foreground', (x) => {
      // (gt 1's anchors dropped, so the count per real gt is what breaks)
      for (let a = 0; a < TAL.a; a++) if (![0, 1, 4, 5, 8].includes(a)) x[a] = 0;
    });
    const r = await checkCase(surface(withOutput(fiveAll, 'targetScores', (x) => x.fill(0))), c);
    expect(r).not.toBeNull();
  });
});

describe('tal_assign, two gts within rounding of the same overlap of an anchor they both select', () => {
  // gt 1 nearly a copy of gt 0 (2^-20 wider): anchors inside both go to the first largest overlap
  const g = GOOD.tal_assign().inputs;
  const gtBoxes = Float32Array.of(1, 1, 15, 15, 1, 1, 15 + 2 ** -20, 15, 3, 3, 9, 9);
  const c = talCase({ ...g, gtBoxes: { data: gtBoxes, shape: [1, TAL.m, 4] } });
  it('is a tie of the argmax (or of the top k), and the reference passes', async () => {
    expect(talDecisions(c).ties[0]).toMatch(/^(argmax|top-k)/);
    expect(await checkCase(surface(referenceResult(c)), c)).toBeNull();
  });
  it('with the same gt twice (the same bits: the same overlap on both sides) it is clear: the first row wins', async () => {
    const same = talCase({ ...g, gtBoxes: { data: Float32Array.of(1, 1, 15, 15, 1, 1, 15, 15, 3, 3, 9, 9), shape: [1, TAL.m, 4] } });
    expect(talDecisions(same).ties).toEqual(['']);
    const ref = referenceResult(same);
    const shared = fgAnchors(ref).find((a) => ref.outputs!.gtIndex[a] === 0)!;
    expect(await checkCase(surface(ref), same)).toBeNull();
    expect(await checkCase(surface(withOutput(withOutput(ref, 'gtIndex', (x) => (x[shared] = 1)), 'labels', (x) => (x[shared] = 2))), same)).not.toBeNull();
  });
});

describe('tal_assign with a NaN in its inputs (unchecked): unspecified numbers, indices in range', () => {
  const g = GOOD.tal_assign().inputs;
  const scores = Float32Array.from((g.scores as { data: Float32Array }).data);
  scores[0] = NaN;
  const c = talCase({ ...g, scores: { data: scores, shape: [1, TAL.a, 3] } });
  const ref = referenceResult(c);
  it('another valid assignment passes; a gtIndex out of range or a foreground of 2 fails', async () => {
    const other = withOutput(withOutput(withOutput(ref, 'foreground', (x) => x.fill(0)), 'gtIndex', (x) => x.fill(0)), 'targetScores', (x) => x.fill(0));
    const fixed = withOutput(withOutput(other, 'labels', (x) => x.fill(1)), 'boxes', (x) => {
      for (let a = 0; a < TAL.a; a++) x.set([1, 1, 15, 15], 4 * a);
    });
    expect(await checkCase(surface(fixed), c)).toBeNull();
    expect((await checkCase(surface(withOutput(ref, 'gtIndex', (x) => (x[2] = -1))), c))?.key).toMatch(/non-finite-rule/);
    expect((await checkCase(surface(withOutput(ref, 'foreground', (x) => (x[2] = 2))), c))?.key).toMatch(/non-finite-rule/);
  });
});

describe('yolo_detection_loss, an assignment with no tie', () => {
  const c = yoloCase();
  const ref = referenceResult(c);
  it('the reference passes', async () => {
    expect(talDecisions(c).ties).toEqual(['']);
    expect(await checkCase(surface(ref), c)).toBeNull();
  });
  it('a loss and components 0.1% off, a gradient element negated, zeros for a gradient, fail', async () => {
    const scale = (a: ArrayLike<number>, s: number) => Float32Array.from(a, (v) => v * s);
    const off = { ...ref, loss: scale(ref.loss, 1.001), outputs: { components: scale(ref.outputs!.components, 1.001) } };
    expect((await checkCase(surface(off), c))?.key).toMatch(/mismatch (loss|outputs.components)/);
    const pd = ref.grad.predDist as Float32Array;
    const big = pd.reduce((m, v, i) => (Math.abs(v) > Math.abs(pd[m]) ? i : m), 0);
    expect((await checkCase(surface({ ...ref, grad: { ...ref.grad, predDist: Float32Array.from(pd, (v, i) => (i === big ? -v : v)) } }), c))?.key).toMatch(/grad.predDist/);
    expect((await checkCase(surface({ ...ref, grad: { ...ref.grad, predScores: new Float32Array(ref.grad.predScores.length) } }), c))?.key).toMatch(/grad.predScores/);
  });
  it('a loss that is not B times the sum of its components breaks an invariant', async () => {
    const r = await checkCase(surface({ ...ref, loss: Float32Array.of(ref.loss[0] * 1.01) }), c);
    expect(r?.key).toMatch(/invariant loss/);
  });
});
