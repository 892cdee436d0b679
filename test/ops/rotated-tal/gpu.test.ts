import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DetlossContext } from '../../../src/api';
import { cpu } from '../../../src/cpu';
import { rotatedTalAssignOp } from '../../../src/ops/rotated-tal';
import { kernelVariants } from '../../../src/runtime/compile/contract';
import { reflectShader } from '../../../src/runtime/compile/reflect';
import { nodeContext } from '../../helpers/node-gpu';
import { drawCase, replay, type DrawOptions, type Drawn } from './draw';

// rotated_tal_assign on Node's WebGPU (Dawn over SwiftShader) against the float64 reference, on
// drawn cases that the tie rule of ./draw.ts finds clear of float32 rounding (integer outputs
// exactly, boxes bit for bit, target scores inside their float32 interval), and on edge cases:
// no gt rows, padding rows (row 0 among them), thin boxes, angles far outside [-pi, pi].

let dl: DetlossContext;
beforeAll(async () => {
  dl = await nodeContext();
});
afterAll(() => dl?.destroy());

const run = (ctx: DetlossContext, d: Drawn) => {
  const i = d.inputs;
  return ctx.rotatedTalAssign(i.scores, i.predBoxes, i.anchors, i.gtLabels, i.gtBoxes, i.gtMask, { topk: d.params.topk, alpha: d.params.alpha, beta: d.params.beta });
};

/** Compares a GPU result with the reference on a clear case; returns the first difference, or ''. */
async function differs(ctx: DetlossContext, d: Drawn): Promise<string> {
  const rep = replay(d);
  if (rep.tie) return `not a clear case: ${rep.tie}`;
  const got = await run(ctx, d);
  const i = d.inputs;
  const want = cpu.rotatedTalAssign(i.scores, i.predBoxes, i.anchors, i.gtLabels, i.gtBoxes, i.gtMask, { topk: d.params.topk, alpha: d.params.alpha, beta: d.params.beta });
  const g = got.outputs!, w = want.outputs!;
  const { b: B, a: A, c: C } = d.dims;
  expect(got.outputShapes?.boxes).toEqual([B, A, 5]);
  for (const k of ['labels', 'foreground', 'gtIndex']) {
    if (!(g[k] instanceof Int32Array)) return `${k} is not an Int32Array`;
    for (let n = 0; n < B * A; n++) if (g[k][n] !== w[k][n]) return `${k}[${n}]: GPU ${g[k][n]}, reference ${w[k][n]}`;
  }
  for (let n = 0; n < B * A * 5; n++) if (!Object.is(g.boxes[n], Math.fround(w.boxes[n]))) return `boxes[${n}]: GPU ${g.boxes[n]}, reference ${w.boxes[n]}`;
  for (let n = 0; n < B * A; n++) {
    for (let c = 0; c < C; c++) {
      const v = g.targetScores[n * C + c];
      const inClass = w.foreground[n] === 1 && c === w.labels[n];
      if (!inClass) {
        if (v !== 0 || w.targetScores[n * C + c] !== 0) return `targetScores[${n}, ${c}]: GPU ${v}, reference ${w.targetScores[n * C + c]}, want 0`;
      } else if (!(v >= rep.tsLo[n] && v <= rep.tsHi[n])) {
        return `targetScores[${n}, ${c}]: GPU ${v} outside [${rep.tsLo[n]}, ${rep.tsHi[n]}] (reference ${w.targetScores[n * C + c]})`;
      }
    }
  }
  return '';
}

/** The first `want` clear cases of a variant among seeds from `seed0`, and what they exercise. */
function clearCases(o: DrawOptions, seed0: number, want: number): { cases: Drawn[]; foreground: number; conflicts: number } {
  const cases: Drawn[] = [];
  let foreground = 0, conflicts = 0;
  for (let seed = seed0; seed < seed0 + 40 && cases.length < want; seed++) {
    const d = drawCase(seed, o);
    const r = replay(d);
    if (r.tie) continue;
    cases.push(d);
    foreground += r.foreground;
    conflicts += r.conflicts;
  }
  return { cases, foreground, conflicts };
}

const BASE: DrawOptions = { b: 2, m: 8, real: 6, c: 4, size: 64, strides: [4, 8], topk: 10 };

describe('rotated_tal_assign on the GPU: drawn cases clear of float32 ties, against the float64 reference', () => {
  it.each([
    ['angles in [-pi, pi]', {}, 100],
    ['angles in [-60, 60]', { farAngles: true }, 200],
    ['thin gts and predictions (short side 0.05 to 1.5 px)', { thin: true }, 300],
    ['topk 13, alpha 1 (TaskAlignedAssigner\'s own defaults), one class', { topk: 13, alpha: 1, c: 1 }, 400],
  ] as const)('%s', async (_what, extra, seed0) => {
    const { cases, foreground, conflicts } = clearCases({ ...BASE, ...extra }, seed0, 3);
    expect(cases.length, 'clear cases found in 40 draws').toBe(3);
    // the cases exercise the assignment: anchors are won, and some by the argmax of overlaps
    expect(foreground).toBeGreaterThan(60);
    if (!('thin' in extra)) expect(conflicts).toBeGreaterThan(0);
    for (const d of cases) expect(await differs(dl, d)).toBe('');
  });

  it('padding rows anywhere, row 0 included: nothing is selected by them, and background anchors copy row 0 as the reference does', async () => {
    // one real gt in row 2 of 4; rows 0, 1 and 3 padding with boxes over every anchor
    let d: Drawn | undefined;
    for (let seed = 500; seed < 540 && !d; seed++) {
      const x = drawCase(seed, { ...BASE, b: 1, m: 4, real: 4 });
      x.inputs.gtMask.data.set([0, 0, 1, 0]);
      for (const j of [0, 1, 3]) x.inputs.gtBoxes.data.set([32, 32, 200, 200, 0.3], 5 * j);
      if (!replay(x).tie) d = x;
    }
    expect(d, 'a clear case').toBeDefined();
    expect(await differs(dl, d!)).toBe('');
    const r = await run(dl, d!);
    const fg = Array.from(r.outputs!.foreground);
    for (let a = 0; a < fg.length; a++) expect(r.outputs!.gtIndex[a], `anchor ${a}`).toBe(fg[a] === 1 ? 2 : 0);
    const won = fg.reduce((s, v) => s + v, 0);
    expect(won).toBeGreaterThan(0);
    expect(won).toBeLessThanOrEqual(10);
  });

  it('no gt rows (M = 0): every anchor label C, five zero columns, background, on the GPU as on the reference', async () => {
    const d = drawCase(7, { ...BASE, m: 0, real: 0 });
    const r = await run(dl, d);
    const { b: B, a: A, c: C } = d.dims;
    expect(Array.from(r.outputs!.labels)).toEqual(new Array(B * A).fill(C));
    expect(r.outputs!.boxes.length).toBe(B * A * 5);
    expect(Array.from(r.outputs!.boxes).every((v) => v === 0)).toBe(true);
    expect(Array.from(r.outputs!.foreground).every((v) => v === 0)).toBe(true);
    expect(Array.from(r.outputs!.targetScores).every((v) => v === 0)).toBe(true);
    expect(await differs(dl, d)).toBe('');
  });

  it('the hand-worked cases of reference.test.ts: a zero-metric candidate filling a top-k place, a gt two selectors share', async () => {
    // anchors and boxes of reference.test.ts's image 1, run at topk 3 (gt 1's third place is anchor 1,
    // a candidate with metric exactly 0)
    const anchors = Float32Array.of(10, 13, 11, 7, 24, 10, 22.5, 12.5, 10.5, 10.5);
    const H = Math.PI / 2;
    const preds = [10, 13, 4, 4, 0, 60, 60, 2, 2, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 10.5, 10.5, 8, 4, H + 0.05];
    const d: Drawn = {
      inputs: {
        scores: { data: new Float32Array(15).fill(0.5), shape: [1, 5, 3] },
        predBoxes: { data: Float32Array.from(preds), shape: [1, 5, 5] },
        anchors: { data: anchors, shape: [5, 2] },
        gtLabels: { data: Int32Array.of(0, 2), shape: [1, 2] },
        gtBoxes: { data: Float32Array.of(10, 10, 8, 4, 0, 10, 10, 8, 4, H), shape: [1, 2, 5] },
        gtMask: { data: Int32Array.of(1, 1), shape: [1, 2] },
      },
      dims: { b: 1, a: 5, c: 3, m: 2 },
      params: { topk: 3, alpha: 0.5, beta: 6, eps: 1e-9 },
    };
    expect(replay(d).zeroSelected).toBe(1);
    expect(await differs(dl, d)).toBe('');
    const r = await run(dl, d);
    expect(Array.from(r.outputs!.foreground)).toEqual([1, 1, 0, 0, 1]);
    expect(Array.from(r.outputs!.gtIndex)).toEqual([1, 1, 0, 0, 1]);
  });

  it("a prediction equal to its gt: ProbIoU's bd clamps at eps = 1e-7, so the overlap is 1 - sqrt(1 - exp(-1e-7) + 1e-7) on both sides", async () => {
    const box = Float32Array.of(20.5, 11.25, 12, 3, 2.5);
    const inputs = {
      scores: { data: Float32Array.of(0.64), shape: [1, 1, 1] },
      predBoxes: { data: box, shape: [1, 1, 5] },
      anchors: { data: Float32Array.of(20, 12), shape: [1, 2] },
      gtLabels: { data: Int32Array.of(0), shape: [1, 1] },
      gtBoxes: { data: box, shape: [1, 1, 5] },
      gtMask: { data: Int32Array.of(1), shape: [1, 1] },
    };
    const ov = 1 - Math.sqrt(-Math.expm1(-1e-7) + 1e-7);
    const m = Math.sqrt(0.64) * ov ** 6;
    const want = (m * ov) / (m + 1e-9);
    const c = cpu.rotatedTalAssign(inputs.scores, inputs.predBoxes, inputs.anchors, inputs.gtLabels, inputs.gtBoxes, inputs.gtMask, { topk: 1 });
    expect(Math.abs(c.outputs!.targetScores[0] - want)).toBeLessThan(1e-12);
    const g = await dl.rotatedTalAssign(inputs.scores, inputs.predBoxes, inputs.anchors, inputs.gtLabels, inputs.gtBoxes, inputs.gtMask, { topk: 1 });
    expect(Array.from(g.outputs!.foreground)).toEqual([1]);
    // float32: about 1e-7 of rounding on a value near 1; an eps of 1e-6 would move it by 6e-4
    expect(Math.abs(g.outputs!.targetScores[0] - want)).toBeLessThan(1e-6);
  });

  it('tal_assign and the rotated assigner share passes and scratch layout: alternating on one context, each gives its own reference', async () => {
    const { cases } = clearCases(BASE, 700, 1);
    const axis = {
      scores: { data: Float32Array.of(0.8, 0.3), shape: [1, 2, 1] },
      predBoxes: { data: Float32Array.of(2, 2, 10, 10, 4, 4, 9, 12), shape: [1, 2, 4] },
      anchors: { data: Float32Array.of(6, 6, 7, 9), shape: [2, 2] },
      gtLabels: { data: Int32Array.of(0), shape: [1, 1] },
      gtBoxes: { data: Float32Array.of(1, 1, 12, 12), shape: [1, 1, 4] },
      gtMask: { data: Int32Array.of(1), shape: [1, 1] },
    };
    const want = cpu.run('tal_assign', axis, { topk: 1 }).outputs!;
    for (let k = 0; k < 2; k++) {
      expect(await differs(dl, cases[0])).toBe('');
      const got = (await dl.run('tal_assign', axis, { topk: 1 })).outputs!;
      expect(got.boxes.length).toBe(8);
      for (const name of ['labels', 'foreground', 'gtIndex']) expect(Array.from(got[name]), name).toEqual(Array.from(want[name]));
      Array.from(got.targetScores).forEach((v, n) => expect(Math.abs(v - want.targetScores[n])).toBeLessThanOrEqual(1e-6 + 1e-4 * Math.abs(want.targetScores[n])));
    }
    expect(Array.from(want.foreground)).toEqual([1, 0]);
  });

  it('under the hardware launch plan too', async () => {
    const ctx = await nodeContext({ plan: 'hardware' });
    const { cases } = clearCases(BASE, 600, 1);
    expect(cases.length).toBe(1);
    expect(await differs(ctx, cases[0])).toBe('');
    ctx.destroy();
  });

  it("every module binds at most 8 storage buffers (WebGPU's default maxStorageBuffersPerShaderStage)", () => {
    const variants = kernelVariants(rotatedTalAssignOp.gpu!);
    expect(variants.length).toBeGreaterThan(3);
    for (const v of variants) expect(reflectShader(v.shader).bindings.filter((b) => b.kind !== 'uniform').length, v.shaderId).toBeLessThanOrEqual(8);
  });
});
