import { probiouValue } from './rotated';
import { assignWith, talCpuWith, type TalAssignment, type TalGeometry, type TalParams, type TalSizes } from './tal';

/**
 * Float64 reference of `rotated_tal_assign`, ultralytics' RotatedTaskAlignedAssigner
 * (docs/losses.md, "Rotated task-aligned assignment"): TaskAlignedAssigner's steps
 * (src/cpu/tal.ts, `assignWith`) with boxes of five columns (cx, cy, w, h, theta in radians), the
 * candidate test of an anchor centre inside the rotated gt box and ProbIoU for the overlap.
 */

/** The `eps` of ProbIoU as the assigner calls it (ultralytics' `probiou` default). */
export const ROTATED_OVERLAP_EPS = 1e-7;

/**
 * Whether point (px, py) lies inside the rotated box (cx, cy, w, h, theta) at g[o ..], as
 * ultralytics' `RotatedTaskAlignedAssigner.select_candidates_in_gts`: the corners of
 * `xywhr2xyxyxyxy` (v1 = (w/2) (cos, sin), v2 = (h/2) (-sin, cos); a = c + v1 + v2,
 * b = c + v1 - v2, d = c - v1 + v2), then `0 <= ap.ab <= |ab|^2` and `0 <= ap.ad <= |ad|^2`, the
 * edges included. The angle is read as given (torch's cos and sin, no reduction).
 */
export function inRotatedBox(g: ArrayLike<number>, o: number, px: number, py: number): boolean {
  const cx = g[o], cy = g[o + 1], w = g[o + 2], h = g[o + 3], t = g[o + 4];
  const c = Math.cos(t), s = Math.sin(t);
  const v1x = (w / 2) * c, v1y = (w / 2) * s;
  const v2x = (-h / 2) * s, v2y = (h / 2) * c;
  const ax = cx + v1x + v2x, ay = cy + v1y + v2y;
  const bx = cx + v1x - v2x, by = cy + v1y - v2y;
  const dx = cx - v1x + v2x, dy = cy - v1y + v2y;
  const abx = bx - ax, aby = by - ay;
  const adx = dx - ax, ady = dy - ay;
  const apx = px - ax, apy = py - ay;
  const nab = abx * abx + aby * aby;
  const nad = adx * adx + ady * ady;
  const pab = apx * abx + apy * aby;
  const pad = apx * adx + apy * ady;
  return pab >= 0 && pab <= nab && pad >= 0 && pad <= nad;
}

/** RotatedTaskAlignedAssigner's geometry: five columns, the rotated in-box test, `probiou(gt, pred)`. */
export const ROTATED: TalGeometry = {
  cols: 5,
  inside: inRotatedBox,
  overlap: (g, go, p, po) => probiouValue(g, go, p, po, ROTATED_OVERLAP_EPS),
};

/**
 * RotatedTaskAlignedAssigner in float64: `gtBoxes` [B, M, 5] and `predBoxes` [B, A, 5] as
 * (cx, cy, w, h, theta); the outputs as `talAssign`'s, `boxes` [B, A, 5].
 */
export function rotatedTalAssign(
  scores: ArrayLike<number>,
  predBoxes: ArrayLike<number>,
  anchors: ArrayLike<number>,
  gtLabels: ArrayLike<number>,
  gtBoxes: ArrayLike<number>,
  gtMask: ArrayLike<number>,
  sizes: TalSizes,
  params: TalParams,
): TalAssignment {
  return assignWith(ROTATED, scores, predBoxes, anchors, gtLabels, gtBoxes, gtMask, sizes, params);
}

/**
 * The CPU reference of `rotated_tal_assign`: no loss, no gradient, the five outputs.
 *
 * @example
 * const f = rotatedTalAssignCpu({ scores, predBoxes, anchors, gtLabels, gtBoxes, gtMask }, { topk: 10, alpha: 0.5, beta: 6, eps: 1e-9 }, { b, a, c, m });
 * f.outputs!.boxes; // Float64Array [B*A*5]
 */
export const rotatedTalAssignCpu = talCpuWith(ROTATED);
