import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nms, nmsCpu, nmsOnnx, nmsOnnxCpu, nmsTfjs, nmsTfjsCpu, overlapIou, sortedCorners } from '../../../src/cpu/nms';
import type { CpuInputs, ResolvedParams } from '../../../src/cpu/types';
import { cpu } from '../../../src/cpu';
import { caseInputs, caseOptions, compareCase, parseFixtures, type FixtureCase } from '../../../src/fixtures';

/**
 * The float64 references of `nms`, `nms_onnx` and `nms_tfjs` (ops.md, "Non-maximum suppression"):
 * every case of nms.json, indices exactly and Soft-NMS scores within their tolerance, and hand-made
 * cases of the rules where the three semantics differ.
 */

const CASES = parseFixtures(readFileSync(new URL('../../fixtures/nms.json', import.meta.url), 'utf8'), 'nms.json');

function widen(c: FixtureCase): { inputs: CpuInputs; shapes: Record<string, number[]> } {
  const inputs: CpuInputs = {};
  const shapes: Record<string, number[]> = {};
  for (const [k, t] of Object.entries(caseInputs(c))) {
    inputs[k] = t.data instanceof Int32Array ? t.data : Float64Array.from(t.data);
    shapes[k] = t.shape;
  }
  return { inputs, shapes };
}

function runCase(c: FixtureCase) {
  const { inputs, shapes } = widen(c);
  const p = c.params as ResolvedParams;
  if (c.op === 'nms') return nmsCpu(inputs, p);
  if (c.op === 'nms_onnx') {
    const [b, n] = shapes.boxes;
    return nmsOnnxCpu(inputs, p, { b, n, c: shapes.scores[1] });
  }
  return nmsTfjsCpu(inputs, p);
}

/** The outputs' shapes: `selected` is [k, 3], the others [k]. */
const shapeOf = (name: string, v: ArrayLike<number>) => (name === 'selected' ? [v.length / 3, 3] : [v.length]);

describe('the NMS references against nms.json', () => {
  it('has the three ops', () => {
    expect(new Set(CASES.map((c) => c.op))).toEqual(new Set(['nms', 'nms_onnx', 'nms_tfjs']));
  });

  it.each(CASES.map((c) => [c.name, c] as const))('%s', (_, c) => {
    const r = runCase(c);
    const outputs = r.outputs!;
    const outputShapes = Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, shapeOf(k, v)]));
    const cmp = compareCase(c, { loss: [], grad: {}, outputs, outputShapes });
    expect(cmp.detail ?? 'ok').toBe('ok');
    expect(cmp.mismatches).toBe(0);
  });

  it('a planted change of one index fails the comparison', () => {
    const c = CASES.find((k) => k.op === 'nms' && (k.expected.outputs!.keep.data.length ?? 0) > 10)!;
    const keep = Int32Array.from(runCase(c).outputs!.keep);
    [keep[3], keep[4]] = [keep[4], keep[3]];
    expect(compareCase(c, { loss: [], grad: {}, outputs: { keep }, outputShapes: { keep: [keep.length] } }).pass).toBe(false);
  });
});

describe('where the three semantics differ', () => {
  // Two identical boxes and a disjoint one, scores decreasing.
  const boxes = [0, 0, 10, 10, 0, 0, 10, 10, 20, 20, 30, 30];
  const scores = [0.9, 0.8, 0.7];

  it('identical boxes: IoU exactly 1, suppressed by > 0.5, kept at threshold 1 except by TF.js (>=)', () => {
    expect(overlapIou(sortedCorners(boxes, 3), 0, 1)).toBe(1);
    expect(Array.from(nms(boxes, scores, undefined, { iouThreshold: 0.5 }))).toEqual([0, 2]);
    expect(Array.from(nms(boxes, scores, undefined, { iouThreshold: 1 }))).toEqual([0, 1, 2]);
    expect(Array.from(nmsOnnx(boxes, [0.9, 0.8, 0.7], { b: 1, c: 1, n: 3 }, { maxOutputBoxesPerClass: 10, iouThreshold: 1 }))).toEqual([0, 0, 0, 0, 0, 1, 0, 0, 2]);
    expect(Array.from(nmsTfjs(boxes, scores, { maxOutputSize: 10, iouThreshold: 1 }).selectedIndices)).toEqual([0, 2]);
  });

  it('TF.js at iouThreshold 0 selects one box, even among disjoint ones; the others keep disjoint boxes', () => {
    expect(Array.from(nmsTfjs(boxes, scores, { maxOutputSize: 10, iouThreshold: 0 }).selectedIndices)).toEqual([0]);
    expect(Array.from(nms(boxes, scores, undefined, { iouThreshold: 0 }))).toEqual([0, 2]);
  });

  it('NaN scores are never candidates; +Inf sorts first and -Inf last; equal scores lower index first', () => {
    const far = [0, 0, 1, 1, 10, 10, 11, 11, 20, 20, 21, 21, 30, 30, 31, 31];
    expect(Array.from(nms(far, [NaN, -Infinity, 0.5, Infinity], undefined, { iouThreshold: 0.5 }))).toEqual([3, 2, 1]);
    expect(Array.from(nms(far, [0.5, 0.5, 0.7, 0.5], undefined, { iouThreshold: 0.5 }))).toEqual([2, 0, 1, 3]);
    expect(Array.from(nmsTfjs(far, [0.5, 0.5, 0.7, 0.5], { maxOutputSize: 4 }).selectedIndices)).toEqual([2, 0, 1, 3]);
  });

  it('a box with a non-finite coordinate overlaps nothing', () => {
    const b = [0, 0, 10, 10, 0, 0, NaN, 10, 0, 0, Infinity, 10];
    expect(Array.from(nms(b, [0.9, 0.8, 0.7], undefined, { iouThreshold: 0.1 }))).toEqual([0, 1, 2]);
    expect(Array.from(nms(b, [0.9, 0.8, 0.7], undefined, { iouThreshold: 0.1, variant: 'diou' }))).toEqual([0, 1, 2]);
  });

  it('classes: boxes interact only within a class, and keep stays in score order over all classes', () => {
    expect(Array.from(nms(boxes, scores, [0, 1, 0], { iouThreshold: 0.5 }))).toEqual([0, 1, 2]);
    expect(Array.from(nms(boxes, scores, [0, 0, 1], { iouThreshold: 0.5 }))).toEqual([0, 2]);
    // Coordinates far below -1, where batched_nms's shift would let classes suppress each other.
    const neg = [-1000, -1000, 0, 0, -1000, -1000, 0, 0];
    expect(Array.from(nms(neg, [0.9, 0.8], [0, 1], { iouThreshold: 0.5 }))).toEqual([0, 1]);
  });

  it('scoreThreshold keeps score > threshold, returning indices into the full arrays', () => {
    const far = [0, 0, 1, 1, 10, 10, 11, 11, 20, 20, 21, 21];
    expect(Array.from(nms(far, [0.25, 0.3, 0.2], undefined, { iouThreshold: 0.5, scoreThreshold: 0.25 }))).toEqual([1]);
    expect(Array.from(nmsOnnx(far, [0.25, 0.3, 0.2], { b: 1, c: 1, n: 3 }, { maxOutputBoxesPerClass: 5, iouThreshold: 0.5, scoreThreshold: 0.25 }))).toEqual([0, 0, 1]);
  });

  it('ONNX: maxOutputBoxesPerClass as a bigint, negative, 0 and int64 max', () => {
    const far = [0, 0, 1, 1, 10, 10, 11, 11, 20, 20, 21, 21];
    const run = (m: number | bigint) => Array.from(nmsOnnx(far, [0.9, 0.8, 0.7], { b: 1, c: 1, n: 3 }, { maxOutputBoxesPerClass: m, iouThreshold: 0.5 })).length / 3;
    expect([run(0), run(-4), run(-4n), run(2), run(2n), run(9223372036854775807n), run(2 ** 63)]).toEqual([0, 0, 0, 2, 2, 3, 3]);
  });

  it('Soft-NMS decays a neighbour once per selected box and reports the decayed score', () => {
    // Box 1 overlaps box 0 with IoU 0.25 (half its width): sigma 0.5 gives exp(-0.0625).
    const b = [0, 0, 10, 10, 0, 6, 10, 16];
    const r = nmsTfjs(b, [0.9, 0.8], { maxOutputSize: 2, iouThreshold: 1, softNmsSigma: 0.5 });
    const v = overlapIou(sortedCorners(b, 2), 0, 1);
    expect(Array.from(r.selectedIndices)).toEqual([0, 1]);
    expect(r.selectedScores[0]).toBe(0.9);
    expect(r.selectedScores[1]).toBe(0.8 * Math.exp((-0.5 / 0.5) * v * v));
  });
});

describe('cpu.run: the three ops by name, with their refusals', () => {
  it('every nms.json case through cpu.run: outputs and their data-dependent shapes', () => {
    for (const c of CASES) {
      const r = cpu.run(c.op as never, caseInputs(c) as never, caseOptions(c) as never);
      const cmp = compareCase(c, { loss: [], grad: {}, outputs: r.outputs, outputShapes: r.outputShapes });
      expect(cmp.detail ?? 'ok', c.name).toBe('ok');
      for (const [k, t] of Object.entries(c.expected.outputs!)) expect(r.outputShapes![k], `${c.name} ${k}`).toEqual(t.shape);
      expect(Array.from(r.loss)).toEqual([]);
    }
  });

  const boxes = new Float32Array([0, 0, 10, 10, 1, 1, 10, 10]);
  const scores = new Float32Array([0.9, 0.8]);
  const refused = (op: string, inputs: Record<string, unknown>, options: Record<string, unknown>) => {
    try {
      cpu.run(op as never, inputs as never, options as never);
      return 'accepted';
    } catch (e) {
      return `${(e as { code: string }).code} ${(e as { argument: string }).argument}`;
    }
  };

  it('refuses what the contract refuses, naming the argument', () => {
    expect(refused('nms', { boxes, scores }, {})).toBe('invalid_param iouThreshold');
    expect(refused('nms', { boxes, scores }, { iouThreshold: NaN })).toBe('invalid_param iouThreshold');
    expect(refused('nms', { boxes, scores }, { iouThreshold: 1.5 })).toBe('invalid_param iouThreshold');
    expect(refused('nms', { boxes, scores }, { iouThreshold: 0.5, scoreThreshold: NaN })).toBe('invalid_param scoreThreshold');
    expect(refused('nms', { boxes, scores }, { iouThreshold: 0.5, variant: 'giou' })).toBe('invalid_param variant');
    expect(refused('nms', { boxes, scores }, { iouThreshold: 0.5, reduction: 'none' })).toBe('invalid_param reduction');
    expect(refused('nms', { boxes, scores, weight: new Float32Array(0) }, { iouThreshold: 0.5 })).toBe('invalid_param weight');
    expect(refused('nms', { boxes, scores: new Float32Array(3) }, { iouThreshold: 0.5 })).toMatch(/^shape_mismatch (boxes|scores)$/);
    expect(refused('nms', { boxes, scores, classes: new Int32Array(3) }, { iouThreshold: 0.5 })).toBe('shape_mismatch classes');
    expect(refused('nms_tfjs', { boxes, scores }, {})).toBe('invalid_param maxOutputSize');
    expect(refused('nms_tfjs', { boxes, scores }, { maxOutputSize: 2.5 })).toBe('invalid_param maxOutputSize');
    expect(refused('nms_tfjs', { boxes, scores }, { maxOutputSize: 5, softNmsSigma: 2 })).toBe('invalid_param softNmsSigma');
    expect(refused('nms_onnx', { boxes: new Float32Array(8), scores: new Float32Array(2) }, { maxOutputBoxesPerClass: NaN })).toBe('invalid_param maxOutputBoxesPerClass');
    expect(refused('nms_onnx', { boxes: new Float32Array(8), scores: new Float32Array(2) }, { centerPointBox: 2 })).toBe('invalid_param centerPointBox');
  });

  it('accepts ±Infinity score thresholds, a bigint limit, and n = 0', () => {
    expect(Array.from(cpu.run('nms', { boxes, scores }, { iouThreshold: 0.5, scoreThreshold: -Infinity }).outputs!.keep)).toEqual([0]);
    expect(Array.from(cpu.run('nms', { boxes, scores }, { iouThreshold: 0.5, scoreThreshold: Infinity }).outputs!.keep)).toEqual([]);
    const onnx = cpu.run('nms_onnx', { boxes: { data: new Float32Array(8), shape: [1, 2, 4] }, scores: { data: scores, shape: [1, 1, 2] } }, { maxOutputBoxesPerClass: 9223372036854775807n });
    expect(onnx.outputShapes!.selected).toEqual([2, 3]);
    const none = cpu.run('nms_tfjs', { boxes: new Float32Array(0), scores: new Float32Array(0) }, { maxOutputSize: 10 });
    expect(none.outputShapes).toEqual({ selectedIndices: [0], selectedScores: [0], count: [1] });
    expect(Array.from(none.outputs!.count)).toEqual([0]);
  });
});
