import { describe, expect, it } from 'vitest';
import { probiouValue } from '../../../src/cpu/rotated';
import { inRotatedBox, rotatedTalAssign, ROTATED_OVERLAP_EPS } from '../../../src/cpu/rotated-tal';
import { AXIS_ALIGNED, type TalParams } from '../../../src/cpu/tal';
import { rand } from '../../helpers/counting';

/**
 * The float64 reference of the rotated task-aligned assigner (ultralytics'
 * RotatedTaskAlignedAssigner; docs/losses.md, "Rotated task-aligned assignment"): the in-box test
 * on its own (xywhr2xyxyxyxy's corners, edges included, any angle), then small cases whose labels,
 * rows and foreground are worked out by hand below, each decision explained where it is made.
 */

const HALF_PI = Math.PI / 2;
const P: TalParams = { topk: 2, alpha: 0.5, beta: 6, eps: 1e-9 };
const box = (...v: number[]) => v;

describe('the rotated in-box test (select_candidates_in_gts)', () => {
  it('an axis-aligned 4 x 2 box at the origin: corners and edges are inside, a hair beyond is not', () => {
    const g = box(0, 0, 4, 2, 0);
    // a = c + v1 + v2 = (2, 1), b = (2, -1), d = (-2, 1); the fourth corner (-2, -1) sits at
    // ap.ab = |ab|^2 and ap.ad = |ad|^2 exactly.
    for (const [x, y] of [[2, 1], [2, -1], [-2, 1], [-2, -1], [0, 1], [2, 0], [0, 0], [-1.5, 0.5]]) expect(inRotatedBox(g, 0, x, y), `(${x}, ${y})`).toBe(true);
    for (const [x, y] of [[2.001, 0], [0, 1.001], [-2.001, 0], [0, -1.001], [3, 3]]) expect(inRotatedBox(g, 0, x, y), `(${x}, ${y})`).toBe(false);
  });

  it('theta turns the box about its centre: at pi/2 the width lies along y, at pi/4 it is a diamond', () => {
    const upright = box(10, 10, 8, 2, HALF_PI);
    expect(inRotatedBox(upright, 0, 10, 13.5)).toBe(true);
    expect(inRotatedBox(upright, 0, 13.5, 10)).toBe(false);
    // a 6 x 6 square at pi/4: inside iff |dx| + |dy| <= 3 sqrt 2 (4.24...)
    const diamond = box(20, 10, 6, 6, Math.PI / 4);
    expect(inRotatedBox(diamond, 0, 24, 10)).toBe(true); // outside the unrotated square (x <= 23)
    expect(inRotatedBox(diamond, 0, 22.5, 12.5)).toBe(false); // inside the unrotated square
  });

  it('angles far outside [-pi, pi] (theta + k pi, k up to 41) and negative ones give the same verdicts off the edges', () => {
    const pts = rand(400, 5, -6, 6);
    const boxes = rand(5 * 30, 6, 0.5, 5);
    for (let n = 0; n < 30; n++) {
      const t = (boxes[5 * n + 4] - 2.75) * 1.2;
      const base = box(0.3, -0.2, boxes[5 * n + 2], boxes[5 * n + 3], t);
      for (const k of [-41, -3, -1, 1, 2, 40]) {
        const turned = box(0.3, -0.2, base[2], base[3], t + k * Math.PI);
        for (let p = 0; p < 200; p++) {
          const [x, y] = [pts[2 * p], pts[2 * p + 1]];
          if (edgeDistance(base, x, y) < 1e-6) continue;
          expect(inRotatedBox(turned, 0, x, y), `box ${n} turned by ${k} pi, point (${x}, ${y})`).toBe(inRotatedBox(base, 0, x, y));
        }
      }
    }
  });

  it('at theta = 0 it is the axis-aligned test of the same box as xyxy, wherever the point is not on an edge (there the rotated test is inclusive, the axis-aligned one strict)', () => {
    const pts = rand(2000, 7, -8, 8);
    const sides = rand(40, 8, 0.2, 9);
    let inside = 0;
    for (let n = 0; n < 20; n++) {
      const g = box(0.5, -1, sides[2 * n], sides[2 * n + 1], 0);
      const xyxy = [g[0] - g[2] / 2, g[1] - g[3] / 2, g[0] + g[2] / 2, g[1] + g[3] / 2];
      for (let p = 0; p < 1000; p++) {
        const [x, y] = [pts[2 * p], pts[2 * p + 1]];
        const r = inRotatedBox(g, 0, x, y);
        expect(r, `box ${n} point ${p}`).toBe(AXIS_ALIGNED.inside(xyxy, 0, x, y));
        inside += r ? 1 : 0;
      }
      // on an edge: in for the rotated test, out for the axis-aligned one
      expect(inRotatedBox(g, 0, xyxy[2], g[1])).toBe(true);
      expect(AXIS_ALIGNED.inside(xyxy, 0, xyxy[2], g[1])).toBe(false);
    }
    expect(inside).toBeGreaterThan(500);
  });

  it('a thin box (width 1e-3) holds the points on its axis and none beside it; a NaN box holds nothing', () => {
    const thin = box(5, 5, 10, 1e-3, 0.7);
    const [c, s] = [Math.cos(0.7), Math.sin(0.7)];
    for (const u of [-4.9, -1, 0, 3, 4.9]) expect(inRotatedBox(thin, 0, 5 + u * c, 5 + u * s), `on the axis at ${u}`).toBe(true);
    for (const v of [-0.01, 0.01]) expect(inRotatedBox(thin, 0, 5 - v * s, 5 + v * c), `beside at ${v}`).toBe(false);
    expect(inRotatedBox(box(5, 5, NaN, 2, 0), 0, 5, 5)).toBe(false);
  });
});

/** The distance from (x, y) to the nearest edge line of rotated box g (for skipping points within rounding of one). */
function edgeDistance(g: number[], x: number, y: number): number {
  const [c, s] = [Math.cos(g[4]), Math.sin(g[4])];
  const dx = x - g[0], dy = y - g[1];
  const u = dx * c + dy * s, v = -dx * s + dy * c;
  return Math.min(Math.abs(Math.abs(u) - Math.abs(g[2]) / 2), Math.abs(Math.abs(v) - Math.abs(g[3]) / 2));
}

describe('RotatedTaskAlignedAssigner in float64, worked by hand', () => {
  // Five anchors, shared by both images.
  const anchors = Float64Array.of(10, 13, 11, 7, 24, 10, 22.5, 12.5, 10.5, 10.5);
  const A = 5, C = 3;
  const ov = (g: number[], p: number[]) => Math.max(probiouValue(g, 0, p, 0, ROTATED_OVERLAP_EPS), 0);

  it('image 0: the rotated test picks the candidates, topk per gt, a padding row selects nothing', () => {
    // gt 0: 8 x 4 turned upright (theta = pi/2 + 6 pi): x in [8, 12], y in [6, 14]: anchors 0 (10, 13),
    //   1 (11, 7) and 4 (10.5, 10.5). gt 1: a 6 x 6 diamond at (20, 10): anchor 2 (24, 10) only (anchor 3
    //   at (22.5, 12.5) lies in the unrotated square, not in the diamond). gt 2: padding, a huge box
    //   with class 0 that must take nothing.
    const gts = [box(10, 10, 8, 4, HALF_PI + 6 * Math.PI), box(20, 10, 6, 6, Math.PI / 4), box(0, 0, 1000, 1000, 0)];
    const preds = [box(10, 12, 8, 4, HALF_PI), box(10, 10, 8, 4, HALF_PI), box(20, 10, 6, 6, Math.PI / 4), box(22, 12, 6, 6, 0), box(40, 40, 2, 2, 0)];
    // class scores per anchor (classes 0, 1, 2)
    const scores = [0.1, 0.1, 0.9, 0.1, 0.1, 0.3, 0.1, 0.6, 0.1, 0.9, 0.9, 0.9, 0.2, 0.2, 0.8];
    const r = rotatedTalAssign(Float64Array.from(scores), Float64Array.from(preds.flat()), anchors, Int32Array.of(2, 1, 0), Float64Array.from(gts.flat()), Int32Array.of(1, 1, 0), { b: 1, a: A, c: C, m: 3 }, P);
    // gt 0's metrics (class 2): anchor 1's prediction is gt 0 itself (ov about 1), anchor 0's is
    // shifted 2 along the long side (ov about 0.70), anchor 4's is far away (ov 0, metric 0). topk 2
    // takes anchors 1 and 0. gt 1 (class 1): anchor 2 (ov about 1), and its second place goes to the
    // lowest-index metric-0 anchor, 0, which is not its candidate: nothing more.
    const m0 = [0.9 ** 0.5 * ov(gts[0], preds[0]) ** 6, 0.3 ** 0.5 * ov(gts[0], preds[1]) ** 6];
    expect(ov(gts[0], preds[0])).toBeGreaterThan(0.6);
    expect(ov(gts[0], preds[4])).toBe(0);
    expect(Array.from(r.foreground)).toEqual([1, 1, 1, 0, 0]);
    expect(Array.from(r.gtIndex)).toEqual([0, 0, 1, 0, 0]);
    // background anchors copy row 0's label and box
    expect(Array.from(r.labels)).toEqual([2, 2, 1, 2, 2]);
    for (let a = 0; a < A; a++) expect(Array.from(r.boxes.subarray(5 * a, 5 * a + 5))).toEqual(gts[r.gtIndex[a]]);
    // target scores: metric * (gt's largest overlap) / (gt's largest metric + eps), in the gt's class
    const maxOv0 = ov(gts[0], preds[1]);
    expect(m0[1]).toBeGreaterThan(m0[0]);
    expect(r.targetScores[0 * C + 2]).toBeCloseTo((m0[0] * maxOv0) / (m0[1] + P.eps), 12);
    expect(r.targetScores[1 * C + 2]).toBeCloseTo((m0[1] * maxOv0) / (m0[1] + P.eps), 12);
    // gt 1's one anchor: its metric is its gt's largest, so the score is ov * m / (m + eps)
    const m1 = 0.6 ** 0.5 * ov(gts[1], preds[2]) ** 6;
    expect(r.targetScores[2 * C + 1]).toBeCloseTo((m1 * ov(gts[1], preds[2])) / (m1 + P.eps), 12);
    const nonzero = Array.from(r.targetScores, (v, i) => (v !== 0 ? i : -1)).filter((i) => i >= 0);
    expect(nonzero).toEqual([0 * C + 2, 1 * C + 2, 2 * C + 1]);

    // topk 1: gt 0 keeps its best metric only. Anchor 0 has the higher score (0.9 against 0.3) but
    // anchor 1 the better box, and ov^6 decides: anchor 1.
    const r1 = rotatedTalAssign(Float64Array.from(scores), Float64Array.from(preds.flat()), anchors, Int32Array.of(2, 1, 0), Float64Array.from(gts.flat()), Int32Array.of(1, 1, 0), { b: 1, a: A, c: C, m: 3 }, { ...P, topk: 1 });
    expect(Array.from(r1.foreground)).toEqual([0, 1, 1, 0, 0]);
    expect(Array.from(r1.gtIndex)).toEqual([0, 0, 1, 0, 0]);
  });

  it('image 1: an anchor two gts select goes to the larger overlap, and a zero-metric candidate in the top k is selected', () => {
    // gt 0 (class 0): 8 x 4 lying flat, x in [6, 14], y in [8, 12]: candidates anchor 4 (10.5, 10.5)
    // only. gt 1 (class 2): the same box upright: anchors 0, 1 and 4.
    const gts = [box(10, 10, 8, 4, 0), box(10, 10, 8, 4, HALF_PI)];
    // anchor 4 predicts nearly gt 1 (turned 0.05 rad): its overlap with gt 1 beats the one with gt 0.
    // anchor 1 predicts a box far away: overlap 0, metric 0. anchor 0 a box near gt 1's top.
    const preds = [box(10, 13, 4, 4, 0), box(60, 60, 2, 2, 0), box(0, 0, 1, 1, 0), box(0, 0, 1, 1, 0), box(10.5, 10.5, 8, 4, HALF_PI + 0.05)];
    const scores = new Float64Array(A * C).fill(0.5);
    const run = (topk: number) =>
      rotatedTalAssign(scores, Float64Array.from(preds.flat()), anchors, Int32Array.of(0, 2), Float64Array.from(gts.flat()), Int32Array.of(1, 1), { b: 1, a: A, c: C, m: 2 }, { ...P, topk });
    expect(ov(gts[1], preds[4])).toBeGreaterThan(ov(gts[0], preds[4]));
    expect(ov(gts[0], preds[4])).toBeGreaterThan(0);
    expect(ov(gts[1], preds[1])).toBe(0);
    // topk 2: gt 0 takes anchor 4 (its one positive metric) and anchor 0 (lowest index of metric 0,
    // not its candidate). gt 1 takes anchor 4 and anchor 0 (positive metrics; anchor 1's is 0).
    // Anchor 4, selected twice, goes to the argmax of its overlaps: gt 1.
    const r = run(2);
    expect(Array.from(r.foreground)).toEqual([1, 0, 0, 0, 1]);
    expect(Array.from(r.gtIndex)).toEqual([1, 0, 0, 0, 1]);
    expect(Array.from(r.labels)).toEqual([2, 0, 0, 0, 2]);
    // topk 3: gt 1's third place goes to the metric-0 anchor of lowest index, anchor 1, which is
    // its candidate (inside the upright box): ultralytics selects it, with target score 0.
    const r3 = run(3);
    expect(Array.from(r3.foreground)).toEqual([1, 1, 0, 0, 1]);
    expect(Array.from(r3.gtIndex)).toEqual([1, 1, 0, 0, 1]);
    expect(r3.targetScores[1 * C + 2]).toBe(0);
  });

  it('no gt rows (M = 0): every anchor label C, five zero columns, background; a batch of two images keeps them apart', () => {
    const r = rotatedTalAssign(new Float64Array(2 * A * C).fill(0.5), new Float64Array(2 * A * 5).fill(1), anchors, new Int32Array(0), new Float64Array(0), new Int32Array(0), { b: 2, a: A, c: C, m: 0 }, P);
    expect(Array.from(r.labels)).toEqual(new Array(2 * A).fill(C));
    expect(r.boxes.length).toBe(2 * A * 5);
    expect(r.boxes.every((v) => v === 0)).toBe(true);
    expect(r.foreground.every((v) => v === 0)).toBe(true);
    // two images: image 1's gt is image 0's moved away from every anchor: image 0 only has foreground
    const g = [box(10, 10, 8, 4, HALF_PI), box(100, 100, 8, 4, HALF_PI)];
    const preds = new Float64Array(2 * A * 5);
    for (let a = 0; a < 2 * A; a++) preds.set(g[0], 5 * a);
    const two = rotatedTalAssign(new Float64Array(2 * A * C).fill(0.5), preds, anchors, Int32Array.of(1, 1), Float64Array.from(g.flat()), Int32Array.of(1, 1), { b: 2, a: A, c: C, m: 1 }, { ...P, topk: 5 });
    expect(Array.from(two.foreground)).toEqual([1, 1, 0, 0, 1, 0, 0, 0, 0, 0]);
  });
});
