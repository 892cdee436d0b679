import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ciouU, ciouUK } from '../../../src/cpu/ciou-u';
import { talAssignCpu, yoloAssignment, yoloDetectionLossCpu, yoloLossWithAssignment } from '../../../src/cpu/tal';
import type { CpuForward, CpuInputs, Dims, ResolvedParams } from '../../../src/cpu/types';
import { rand } from '../../helpers/counting';
import { checkCentralDifferences } from '../../helpers/finite-differences';

/**
 * The float64 references of `tal_assign` and `yolo_detection_loss` (ops.md, "Task-aligned assignment
 * and the YOLOv8 loss"): every case of tal.json (read here, since the package's fixture reader does
 * not know `expected.outputs`), the analytic gradient against central differences with the
 * assignment held fixed, hand-made cases of the assignment's rules, and finite output at the edges.
 */

interface Tensor {
  dtype?: 'f32' | 'i32';
  shape: number[];
  data: number[];
}
interface Tol {
  atol: number;
  rtol: number;
  l2?: number;
}
interface TalCase {
  name: string;
  op: 'tal_assign' | 'yolo_detection_loss';
  params: ResolvedParams;
  inputs: Record<string, Tensor>;
  expected: { loss?: Tensor; grad?: Record<string, Tensor>; outputs: Record<string, Tensor> };
  tolerance: { loss?: Tol; grad?: Tol; outputs?: Record<string, Tol> };
}

const file = JSON.parse(readFileSync(new URL('../../fixtures/tal.json', import.meta.url), 'utf8')) as { format: string; cases: TalCase[] };
const CASES = file.cases;

function toInputs(c: TalCase): CpuInputs {
  const out: CpuInputs = {};
  for (const [name, t] of Object.entries(c.inputs)) {
    if (name === 'gradOutput') continue;
    out[name] = t.dtype === 'i32' ? Int32Array.from(t.data) : Float64Array.from(t.data);
  }
  return out;
}

function dimsOf(c: TalCase): Dims {
  const s = c.op === 'tal_assign' ? c.inputs.scores.shape : c.inputs.predScores.shape;
  const dims: Dims = { b: s[0], a: s[1], c: s[2], m: c.inputs.gtBoxes.shape[1] };
  if (c.op === 'yolo_detection_loss') dims.d = c.inputs.predDist.shape[2];
  return dims;
}

/** The fixtures' rule: element-wise `atol + rtol |want|`, and for n > 1 the L2 rule; undefined when it passes. */
function mismatch(got: ArrayLike<number>, want: Tensor, tol: Tol, what: string): string | undefined {
  const n = want.data.length;
  if (got.length !== n) return `${what}: length ${got.length}, want ${n}`;
  let d2 = 0;
  let w2 = 0;
  for (let i = 0; i < n; i++) {
    const g = got[i];
    const w = want.data[i];
    if (!(Math.abs(g - w) <= tol.atol + tol.rtol * Math.abs(w))) return `${what}[${i}]: got ${g}, want ${w}`;
    d2 += (g - w) ** 2;
    w2 += w * w;
  }
  if (n > 1) {
    const l2 = tol.l2 ?? 1e-3;
    if (!(Math.sqrt(d2) <= l2 * Math.sqrt(w2) + 1e-6 * Math.sqrt(n))) return `${what}: L2 error ${Math.sqrt(d2)} against |want| ${Math.sqrt(w2)}`;
  }
  return undefined;
}

function exact(got: ArrayLike<number> | undefined, want: Tensor, what: string): string | undefined {
  if (!got) return `${what}: missing`;
  if (got.length !== want.data.length) return `${what}: length ${got.length}, want ${want.data.length}`;
  for (let i = 0; i < got.length; i++) if (got[i] !== want.data[i]) return `${what}[${i}]: got ${got[i]}, want ${want.data[i]}`;
  return undefined;
}

const allFinite = (a: ArrayLike<number>) => Array.prototype.every.call(a, Number.isFinite as (x: unknown) => boolean);

describe('tal.json against the CPU reference', () => {
  it('has the 31 cases of both ops', () => {
    expect(file.format).toBe('detloss-fixture/1');
    expect(CASES.length).toBe(31);
    expect(CASES.filter((c) => c.op === 'tal_assign').length).toBe(18);
    expect(CASES.filter((c) => c.op === 'yolo_detection_loss').length).toBe(13);
  });

  it.each(CASES.filter((c) => c.op === 'tal_assign').map((c) => [c.name, c] as const))('%s', (_, c) => {
    const f = talAssignCpu(toInputs(c), c.params, dimsOf(c));
    expect(f.loss.length).toBe(0);
    expect(f.reduced).toEqual({ loss: new Float64Array(0), shape: [0] });
    expect(f.backward(new Float64Array(0))).toEqual({});
    const outs = f.outputs!;
    expect(Object.keys(outs).sort()).toEqual(Object.keys(c.expected.outputs).sort());
    const problems: string[] = [];
    for (const [name, want] of Object.entries(c.expected.outputs)) {
      const got = outs[name];
      if (want.dtype === 'i32') {
        expect(got, name).toBeInstanceOf(Int32Array);
        const p = exact(got, want, name);
        if (p) problems.push(p);
      } else {
        expect(got, name).toBeInstanceOf(Float64Array);
        const p = mismatch(got, want, c.tolerance.outputs![name], name);
        if (p) problems.push(p);
      }
    }
    expect(problems).toEqual([]);
  });

  it.each(CASES.filter((c) => c.op === 'yolo_detection_loss').map((c) => [c.name, c] as const))('%s', (_, c) => {
    const f = yoloDetectionLossCpu(toInputs(c), c.params, dimsOf(c));
    const up = c.inputs.gradOutput ? c.inputs.gradOutput.data[0] : 1;
    const problems: string[] = [];
    const push = (p: string | undefined) => p && problems.push(p);
    expect(f.reduced!.shape).toEqual([]);
    expect(f.reduced!.loss.length).toBe(1);
    expect(f.loss[0]).toBe(f.reduced!.loss[0]);
    push(mismatch(f.loss, c.expected.loss!, c.tolerance.loss!, 'loss'));
    push(mismatch(f.outputs!.components, c.expected.outputs.components, c.tolerance.outputs!.components, 'components'));
    const g = f.backward(Float64Array.of(up));
    expect(Object.keys(g).sort()).toEqual(Object.keys(c.expected.grad!).sort());
    for (const [name, want] of Object.entries(c.expected.grad!)) push(mismatch(g[name], want, c.tolerance.grad!, `grad.${name}`));
    expect(problems).toEqual([]);
  });

  it('the loss is B times the sum of the components, and the components are more than zeros', () => {
    for (const c of CASES.filter((x) => x.op === 'yolo_detection_loss')) {
      const f = yoloDetectionLossCpu(toInputs(c), c.params, dimsOf(c));
      const [box, cls, dfl] = f.outputs!.components;
      expect(f.loss[0]).toBeCloseTo(dimsOf(c).b * (box + cls + dfl), 12);
      expect(cls).toBeGreaterThan(0);
    }
  });
});

/** Anchors of a `size` px image at strides 8, 16, 32 in grid units (cell centres), with their strides. */
function grid(size: number): { anchors: Float64Array; strides: Float64Array } {
  const xy: number[] = [];
  const st: number[] = [];
  for (const s of [8, 16, 32]) {
    const n = size / s;
    for (let y = 0; y < n; y++)
      for (let x = 0; x < n; x++) {
        xy.push(x + 0.5, y + 0.5);
        st.push(s);
      }
  }
  return { anchors: Float64Array.from(xy), strides: Float64Array.from(st) };
}

const LOSS_PARAMS: ResolvedParams = { topk: 10, alpha: 0.5, beta: 6, boxGain: 7.5, clsGain: 0.5, dflGain: 1.5 };

/** A random YOLO case on a 64 px image: B images, C classes, R bins, M gt rows (row `pad` a padding row, if given). */
function randomYolo(seed: number, B: number, C: number, R: number, M: number, pad?: number): { inputs: CpuInputs; dims: Dims } {
  const { anchors, strides } = grid(64);
  const A = strides.length;
  const predDist = Float64Array.from(rand(B * A * 4 * R, seed, -2, 2));
  const predScores = Float64Array.from(rand(B * A * C, seed + 1, -3, 3));
  const corner = rand(B * M * 2, seed + 2, 0, 34);
  const size = rand(B * M * 2, seed + 3, 14, 30);
  const gtBoxes = new Float64Array(B * M * 4);
  for (let i = 0; i < B * M; i++) {
    gtBoxes[4 * i] = corner[2 * i];
    gtBoxes[4 * i + 1] = corner[2 * i + 1];
    gtBoxes[4 * i + 2] = Math.min(corner[2 * i] + size[2 * i], 64);
    gtBoxes[4 * i + 3] = Math.min(corner[2 * i + 1] + size[2 * i + 1], 64);
  }
  const gtLabels = Int32Array.from({ length: B * M }, (_, i) => (i * 7 + seed) % C);
  const gtMask = Int32Array.from({ length: B * M }, (_, i) => (i % M === pad ? 0 : 1));
  return { inputs: { predDist, predScores, anchors, strides, gtLabels, gtBoxes, gtMask }, dims: { b: B, a: A, c: C, m: M, d: 4 * R } };
}

describe('yolo_detection_loss: the analytic gradient is the central difference (assignment and CIoU k fixed)', () => {
  const SEEDS: [number, number | undefined][] = [
    [11, undefined],
    [23, 1],
    [37, 0],
  ];
  it.each(SEEDS)('seed %i, padding row %s', (seed, pad) => {
    const { inputs, dims } = randomYolo(seed, 2, 3, 8, 3, pad);
    const assignment = yoloAssignment(inputs, LOSS_PARAMS, dims);
    // the case has foreground anchors with weight, so the box and DFL terms are exercised
    const fg = assignment.foreground.reduce((s, x) => s + x, 0);
    expect(fg).toBeGreaterThan(10);
    const f = yoloLossWithAssignment(inputs, assignment, LOSS_PARAMS, dims);
    expect(f.outputs!.components[0]).toBeGreaterThan(0);
    expect(f.outputs!.components[2]).toBeGreaterThan(0);
    // the full op is this function on its own assignment
    expect(yoloDetectionLossCpu(inputs, LOSS_PARAMS, dims).loss[0]).toBe(f.loss[0]);
    const up = -0.75;
    const g = f.backward(Float64Array.of(up));
    const g1 = f.backward(Float64Array.of(1));
    for (const name of ['predDist', 'predScores']) {
      for (let i = 0; i < g[name].length; i++) expect(g[name][i]).toBeCloseTo(up * g1[name][i], 14);
      const x = inputs[name] as Float64Array;
      // the assignment and CIoU's k are constants of the gradient: hold both at their values here
      const objective = () => up * yoloLossWithAssignment(inputs, assignment, LOSS_PARAMS, dims, { ciouK: f.ciouK }).loss[0];
      let bad = 0;
      let worst = '';
      const checked = checkCentralDifferences(x, objective, (i, central) => {
        if (!(Math.abs(g[name][i] - central) <= 1e-5 * Math.abs(central) + 1e-7)) {
          bad++;
          worst ||= `${name}[${i}]: analytic ${g[name][i]}, central ${central}`;
        }
      });
      expect(worst).toBe('');
      expect(bad).toBe(0);
      expect(checked, name).toBeGreaterThan(0.95 * x.length);
    }
  });
});

describe('ciou_u', () => {
  it('is symmetric, matches the formula on a worked pair, and its gradient is the central difference', () => {
    expect(ciouU([0, 0, 2, 2], [1, 1, 3, 3])).toBeCloseTo(1 / 7 - 2 / 18, 6);
    const p = Float64Array.of(1, 2, 5, 4.5);
    const t = Float64Array.of(2, 1, 6, 7);
    expect(ciouU(p, t)).toBe(ciouU(t, p));
    const g = new Float64Array(4);
    ciouU(p, t, g, 0);
    // the gradient holds k constant: so does the objective
    const k0 = ciouUK(p, t);
    expect(k0).toBeGreaterThan(0);
    expect(ciouU(p, t, undefined, 0, k0)).toBe(ciouU(p, t));
    const checked = checkCentralDifferences(p, () => ciouU(p, t, undefined, 0, k0), (i, central) =>
      expect(Math.abs(g[i] - central), `d/dp[${i}]`).toBeLessThan(1e-7 * (1 + Math.abs(central))),
    );
    expect(checked).toBe(4);
  });

  it('at h = 0 (y2 - y1 = -e) takes A = pi/2 sign(w): finite, and the limit from h > 0', () => {
    const t = [0, 0, 3, 2];
    const p0 = [0.5, 1e-7, 2.5, 0]; // h = 0 - 1e-7 + 1e-7 = 0 exactly
    expect(p0[3] - p0[1] + 1e-7).toBe(0);
    const g = new Float64Array(4);
    const v0 = ciouU(p0, t, g);
    expect(Number.isFinite(v0)).toBe(true);
    expect(allFinite(g)).toBe(true);
    const near = ciouU([0.5, 1e-7, 2.5, 1e-12], t);
    expect(Math.abs(v0 - near)).toBeLessThan(1e-6);
    // and not the limit from h < 0 (atan(w/h) -> -pi/2), where v differs
    const below = ciouU([0.5, 1e-7, 2.5, -1e-12], t);
    expect(Math.abs(v0 - below)).toBeGreaterThan(1e-2);
  });
});

/** A small hand-made assignment: one row of A anchors at y = 0.5, x = 0.5, 1.5, ... (stride-1 units). */
function row(A: number, C: number, gts: { box: number[]; label: number; real?: boolean }[], preds: number[][], score = 0.8) {
  const anchors = Float64Array.from({ length: 2 * A }, (_, i) => (i % 2 === 0 ? (i >> 1) + 0.5 : 0.5));
  const scores = new Float64Array(A * C).fill(score);
  const predBoxes = Float64Array.from(preds.flat());
  return {
    inputs: {
      scores,
      predBoxes,
      anchors,
      gtLabels: Int32Array.from(gts, (g) => g.label),
      gtBoxes: Float64Array.from(gts.flatMap((g) => g.box)),
      gtMask: Int32Array.from(gts, (g) => (g.real === false ? 0 : 1)),
    } as CpuInputs,
    dims: { b: 1, a: A, c: C, m: gts.length },
  };
}

const assign = (r: { inputs: CpuInputs; dims: Dims }, topk: number, extra: Partial<Record<'alpha' | 'beta' | 'eps', number>> = {}) =>
  talAssignCpu(r.inputs, { topk, alpha: 0.5, beta: 6, eps: 1e-9, ...extra }, r.dims).outputs as Record<string, Float64Array | Int32Array>;

describe('tal_assign: the rules of the definition', () => {
  // anchors 0..4 at x = 0.5 .. 4.5; the gt [0, 0, 3, 1] contains anchors 0, 1, 2
  const near = (x: number) => [x - 0.5, 0, x + 0.5, 1];
  const far = [10, 10, 11, 11];

  it('fewer than topk positive metrics: metric-0 anchors of lowest index fill the places; a candidate among them is foreground with score 0', () => {
    const r = row(5, 2, [{ box: [0, 0, 3, 1], label: 1 }], [near(0.5), far, near(2.5), near(3.5), near(4.5)]);
    const k2 = assign(r, 2);
    expect(Array.from(k2.foreground)).toEqual([1, 0, 1, 0, 0]);
    const k3 = assign(r, 3);
    expect(Array.from(k3.foreground)).toEqual([1, 1, 1, 0, 0]);
    expect(k3.targetScores[1 * 2 + 1]).toBe(0);
    expect(k3.targetScores[0 * 2 + 1]).toBeGreaterThan(0);
    // the best anchor of the gt gets the gt's best overlap
    // the best anchor of the gt gets maxOv * maxMetric / (maxMetric + eps)
    const o = Math.max(ciouU([0, 0, 3, 1], near(0.5)), ciouU([0, 0, 3, 1], near(2.5)));
    const best = Math.sqrt(0.8) * o ** 6;
    expect(Math.max(k3.targetScores[1], k3.targetScores[5])).toBeCloseTo((best * o) / (best + 1e-9), 12);
    // topk 5: places 4 and 5 go to anchors 3 and 4, metric 0 and not candidates: not foreground
    expect(Array.from(assign(r, 5).foreground)).toEqual([1, 1, 1, 0, 0]);
  });

  it('equal metrics rank the lower anchor index first', () => {
    // scores 0: every metric is 0; topk 1 picks anchor 0 of the gt [1, 0, 4, 1] -> anchor 1 (x = 1.5)
    const r = row(5, 1, [{ box: [1, 0, 4, 1], label: 0 }], [near(0.5), near(1.5), near(2.5), near(3.5), near(4.5)], 0);
    // anchor 0 is not a candidate: the top 1 is anchor 0, so nothing is selected
    expect(Array.from(assign(r, 1).foreground)).toEqual([0, 0, 0, 0, 0]);
    expect(Array.from(assign(r, 2).foreground)).toEqual([0, 1, 0, 0, 0]);
    expect(Array.from(assign(r, 3).foreground)).toEqual([0, 1, 1, 0, 0]);
  });

  it('a centre on an edge is outside; the 1e-9 margin is fixed, not eps', () => {
    // gt [0.5, 0, 2.5, 1]: anchor 0 (x 0.5) and anchor 2 (x 2.5) sit on its edges
    const r = row(4, 1, [{ box: [0.5, 0, 2.5, 1], label: 0 }], [near(0.5), near(1.5), near(2.5), near(3.5)]);
    expect(Array.from(assign(r, 4).foreground)).toEqual([0, 1, 0, 0]);
    const r2 = row(4, 1, [{ box: [0.5 - 2 ** -12, 0, 2.5 + 2 ** -12, 1], label: 0 }], [near(0.5), near(1.5), near(2.5), near(3.5)]);
    expect(Array.from(assign(r2, 4).foreground)).toEqual([1, 1, 1, 0]);
    expect(Array.from(assign(r2, 4, { eps: 1e-3 }).foreground)).toEqual([1, 1, 1, 0]);
  });

  it('a multi-gt anchor goes to the larger overlap, equal overlaps to the lower row', () => {
    // rows 1 and 2 are the same gt; row 0 padding; anchor 1 selected by both -> row 1
    const gt = { box: [0, 0, 3, 1], label: 1 };
    const r = row(4, 2, [{ box: [5, 5, 6, 6], label: 0, real: false }, gt, { ...gt }], [near(0.5), near(1.5), near(2.5), far]);
    const out = assign(r, 3);
    expect(Array.from(out.foreground)).toEqual([1, 1, 1, 0]);
    expect(Array.from(out.gtIndex)).toEqual([1, 1, 1, 0]);
    // a better-fitting second gt wins the anchors where its overlap is larger
    const r2 = row(4, 2, [gt, { box: [1, 0, 3, 1], label: 0 }], [near(0.5), [1, 0, 2, 1], [2, 0, 3, 1], far]);
    const o2 = assign(r2, 3);
    expect(Array.from(o2.gtIndex.slice(0, 3))).toEqual([0, 1, 1]);
    expect(Array.from(o2.labels.slice(0, 3))).toEqual([1, 0, 0]);
  });

  it('a multi-gt anchor whose overlaps are all 0 goes to row 0, even a padding row', () => {
    const gt = { box: [0, 0, 3, 1], label: 1 };
    const r = row(3, 3, [{ box: [7, 8, 9, 10], label: 2, real: false }, gt, { box: [0, 0, 2, 1], label: 0 }], [far, far, far]);
    const out = assign(r, 1);
    // all metrics 0: each real gt's top 1 is anchor 0, a candidate of both
    expect(Array.from(out.foreground)).toEqual([1, 0, 0]);
    expect(out.gtIndex[0]).toBe(0);
    expect(out.labels[0]).toBe(2);
    expect(Array.from(out.boxes.slice(0, 4))).toEqual([7, 8, 9, 10]);
    expect(Array.from(out.targetScores)).toEqual(new Array(9).fill(0));
  });

  it('background anchors copy row 0, even when it is padding', () => {
    const r = row(4, 3, [{ box: [1, 2, 3, 4], label: 2, real: false }, { box: [0, 0, 2, 1], label: 0 }], [near(0.5), near(1.5), near(2.5), near(3.5)]);
    const out = assign(r, 2);
    expect(Array.from(out.foreground)).toEqual([1, 1, 0, 0]);
    expect(Array.from(out.gtIndex)).toEqual([1, 1, 0, 0]);
    expect(Array.from(out.labels)).toEqual([0, 0, 2, 2]);
    expect(Array.from(out.boxes.slice(8))).toEqual([1, 2, 3, 4, 1, 2, 3, 4]);
    expect(Array.from(out.targetScores.slice(6))).toEqual([0, 0, 0, 0, 0, 0]);
  });
});

describe('edge cases give finite output', () => {
  const finiteForward = (f: CpuForward) => {
    for (const [name, o] of Object.entries(f.outputs ?? {})) expect(allFinite(o), name).toBe(true);
    expect(allFinite(f.loss)).toBe(true);
  };
  const finiteGrads = (g: Record<string, Float64Array>) => {
    for (const [name, x] of Object.entries(g)) expect(allFinite(x), name).toBe(true);
  };

  it('M = 0: labels C, zeros, and a loss of classification only', () => {
    const { inputs, dims } = randomYolo(5, 2, 3, 8, 0);
    expect((inputs.gtBoxes as Float64Array).length).toBe(0);
    const f = yoloDetectionLossCpu(inputs, LOSS_PARAMS, dims);
    finiteForward(f);
    const [box, cls, dfl] = f.outputs!.components;
    expect([box, dfl]).toEqual([0, 0]);
    const x = inputs.predScores as Float64Array;
    let bce = 0;
    for (const v of x) bce += Math.log1p(Math.exp(v));
    expect(cls).toBeCloseTo(0.5 * bce, 9);
    const g = f.backward(Float64Array.of(1));
    finiteGrads(g);
    expect(g.predDist.every((v) => v === 0)).toBe(true);
    const a = yoloAssignment(inputs, LOSS_PARAMS, dims);
    expect(a.labels.every((l) => l === 3)).toBe(true);
    expect(a.foreground.every((l) => l === 0)).toBe(true);
    expect(a.boxes.every((l) => l === 0)).toBe(true);
  });

  it('all padding: no foreground, labels and boxes from row 0, the loss of classification only', () => {
    const { inputs, dims } = randomYolo(6, 2, 3, 8, 3);
    (inputs.gtMask as Int32Array).fill(0);
    const a = yoloAssignment(inputs, LOSS_PARAMS, dims);
    expect(a.foreground.every((v) => v === 0)).toBe(true);
    const gtl = inputs.gtLabels as Int32Array;
    for (let b = 0; b < 2; b++) for (let i = 0; i < dims.a; i++) expect(a.labels[b * dims.a + i]).toBe(gtl[b * 3]);
    const f = yoloDetectionLossCpu(inputs, LOSS_PARAMS, dims);
    finiteForward(f);
    expect(f.outputs!.components[0]).toBe(0);
    expect(f.outputs!.components[2]).toBe(0);
    finiteGrads(f.backward(Float64Array.of(1)));
  });

  it('a gt smaller than a stride gets no anchor', () => {
    const { inputs, dims } = randomYolo(7, 1, 3, 8, 2);
    // between the stride-8 centres 4 and 12 (and the coarser ones): contains no anchor centre
    (inputs.gtBoxes as Float64Array).set([5, 5, 11, 11], 0);
    const a = yoloAssignment(inputs, LOSS_PARAMS, dims);
    expect(a.foreground.some((v, i) => v === 1 && a.gtIndex[i] === 0)).toBe(false);
    expect(a.foreground.some((v, i) => v === 1 && a.gtIndex[i] === 1)).toBe(true);
    const f = yoloDetectionLossCpu(inputs, LOSS_PARAMS, dims);
    finiteForward(f);
    finiteGrads(f.backward(Float64Array.of(1)));
  });

  it('zero-width and zero-size predicted boxes (one-hot bin 0)', () => {
    const { inputs, dims } = randomYolo(8, 1, 3, 8, 2);
    const pd = inputs.predDist as Float64Array;
    // every side's distance exactly 0: P = (ax, ay, ax, ay), width 0
    for (let s = 0; s < pd.length / 8; s++) for (let i = 0; i < 8; i++) pd[s * 8 + i] = i === 0 ? 800 : 0;
    const f = yoloDetectionLossCpu(inputs, LOSS_PARAMS, dims);
    finiteForward(f);
    finiteGrads(f.backward(Float64Array.of(1)));
    // tal_assign on zero-width pred boxes directly
    const A = dims.a;
    const predBoxes = new Float64Array(A * 4);
    const { anchors, strides } = grid(64);
    for (let a = 0; a < A; a++) predBoxes.set([anchors[2 * a] * strides[a], anchors[2 * a + 1] * strides[a] - 3, anchors[2 * a] * strides[a], anchors[2 * a + 1] * strides[a] + 3], 4 * a);
    const anchorsPx = Float64Array.from(anchors, (v, i) => v * strides[i >> 1]);
    const t = talAssignCpu({ scores: new Float64Array(A * 3).fill(0.5), predBoxes, anchors: anchorsPx, gtLabels: inputs.gtLabels, gtBoxes: inputs.gtBoxes, gtMask: inputs.gtMask }, { topk: 10, alpha: 0.5, beta: 6, eps: 1e-9 }, { b: 1, a: A, c: 3, m: 2 });
    finiteForward(t);
  });

  it('h = 0 boxes (y2 - y1 = -e) in the assignment and in the loss', () => {
    const { anchors, strides } = grid(64);
    const A = strides.length;
    const anchorsPx = Float64Array.from(anchors, (v, i) => v * strides[i >> 1]);
    const predBoxes = new Float64Array(A * 4);
    for (let a = 0; a < A; a++) predBoxes.set([anchorsPx[2 * a] - 4, 1e-7, anchorsPx[2 * a] + 4, 0], 4 * a);
    const gtBoxes = Float64Array.of(0, 0, 40, 40);
    const t = talAssignCpu({ scores: new Float64Array(A).fill(0.5), predBoxes, anchors: anchorsPx, gtLabels: Int32Array.of(0), gtBoxes, gtMask: Int32Array.of(1) }, { topk: 10, alpha: 0.5, beta: 6, eps: 1e-9 }, { b: 1, a: A, c: 1, m: 1 });
    finiteForward(t);
    // every overlap is 0 (the pred boxes lie at y = 0, outside the gt), so every metric is 0 and the
    // top 10 are anchors 0..9; the candidates among them (centres x < 40 on the rows y = 4 and 12)
    // are foreground, with target score 0
    const fg = Array.from(t.outputs!.foreground.keys()).filter((a) => t.outputs!.foreground[a] === 1);
    expect(fg).toEqual([0, 1, 2, 3, 4, 8, 9]);
    expect(t.outputs!.targetScores.every((v) => v === 0)).toBe(true);
    // the loss with a target box of h = 0 in grid units at stride 8: y1 = 8e-7, y2 = 0
    const { inputs, dims } = randomYolo(9, 1, 1, 8, 1);
    const a = yoloAssignment(inputs, LOSS_PARAMS, dims);
    const fgAt = a.foreground.indexOf(1);
    expect(fgAt).toBeGreaterThanOrEqual(0);
    const s = strides[fgAt];
    a.boxes.set([a.boxes[4 * fgAt], 1e-7 * s, a.boxes[4 * fgAt + 2], 0], 4 * fgAt);
    const f = yoloLossWithAssignment(inputs, a, LOSS_PARAMS, dims);
    finiteForward(f);
    finiteGrads(f.backward(Float64Array.of(1)));
  });
});
