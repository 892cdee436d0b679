import { rotatedTalAssignCpu } from '../cpu/rotated-tal';
import { talAssignOp, talKernel, validateTal } from './tal';
import { defineOp } from './types';

// The rotated task-aligned assigner (docs/losses.md, "Rotated task-aligned assignment"):
// ultralytics' RotatedTaskAlignedAssigner, TaskAlignedAssigner with boxes (cx, cy, w, h, theta),
// the rotated in-box test and ProbIoU. Not an op of the contract: a helper program that runs
// tal_assign's passes with the override ROTATED (shaders/tal-pairs.wgsl, tal-anchor.wgsl), with
// the float64 reference src/cpu/rotated-tal.ts.

/**
 * `rotated_tal_assign`: `tal_assign`'s inputs, params and outputs with five-column boxes
 * (`predBoxes` [b, a, 5], `gtBoxes` [b, m, 5], `boxes` [b, a, 5]); no gradient.
 */
export const rotatedTalAssignOp = defineOp({
  name: 'rotated_tal_assign',
  family: 'tal',
  inputs: {
    scores: { dtype: 'f32', shape: ['b', 'a', 'c'] },
    predBoxes: { dtype: 'f32', shape: ['b', 'a', 5] },
    anchors: { dtype: 'f32', shape: ['a', 2] },
    gtLabels: { dtype: 'i32', shape: ['b', 'm'] },
    gtBoxes: { dtype: 'f32', shape: ['b', 'm', 5] },
    gtMask: { dtype: 'i32', shape: ['b', 'm'] },
  },
  bindOrder: ['scores', 'gtBoxes'],
  params: talAssignOp.params,
  rows: 'b',
  output: [0],
  outputs: {
    labels: { dtype: 'i32', shape: ['b', 'a'] },
    boxes: { dtype: 'f32', shape: ['b', 'a', 5] },
    targetScores: { dtype: 'f32', shape: ['b', 'a', 'c'] },
    foreground: { dtype: 'i32', shape: ['b', 'a'] },
    gtIndex: { dtype: 'i32', shape: ['b', 'a'] },
  },
  reductions: [],
  validate: (inputs, p, d, _given, check) => validateTal('rotated_tal_assign', inputs, p, d, check === true),
  cpu: rotatedTalAssignCpu,
  gpu: talKernel(0, true),
});

/** Options of the rotated assigner: `tal_assign`'s params and their defaults. */
export interface RotatedTalOptions {
  /** Anchors each real gt selects at most (10). */
  topk?: number;
  /** The score's exponent in the metric (0.5). */
  alpha?: number;
  /** The overlap's exponent in the metric (6). */
  beta?: number;
  /** Added to a gt's largest metric in the target score's denominator (1e-9). */
  eps?: number;
  /** Check that every score lies in [0, 1] (a scan of `scores`; off by default). */
  check?: boolean;
}
