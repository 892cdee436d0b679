import boxesWgsl from '../../shaders/boxes.wgsl?raw';
import commonWgsl from '../../shaders/common.wgsl?raw';
import rotatedCommonWgsl from '../../shaders/rotated-common.wgsl?raw';
import talWgsl from '../../shaders/tal.wgsl?raw';
import talAssignWgsl from '../../shaders/tal-assign.wgsl?raw';
import talAnchorWgsl from '../../shaders/tal-anchor.wgsl?raw';
import talPairRowsWgsl from '../../shaders/tal-pair-rows.wgsl?raw';
import talPairsWgsl from '../../shaders/tal-pairs.wgsl?raw';
import talRowsWgsl from '../../shaders/tal-rows.wgsl?raw';
import talScoresWgsl from '../../shaders/tal-scores.wgsl?raw';
import yoloAnchorWgsl from '../../shaders/yolo-anchor.wgsl?raw';
import yoloDecodeWgsl from '../../shaders/yolo-decode.wgsl?raw';
import yoloDflWgsl from '../../shaders/yolo-dfl.wgsl?raw';
import yoloLossWgsl from '../../shaders/yolo-loss.wgsl?raw';
import yoloPairsWgsl from '../../shaders/yolo-pairs.wgsl?raw';
import yoloSumWgsl from '../../shaders/yolo-sum.wgsl?raw';
import { talAssignCpu, yoloDetectionLossCpu } from '../cpu/tal';
import { defineOp, fail, num, type Dims, type GpuKernel, type OpDescriptor, type PassModule, type ResolvedParams } from './types';

// The task-aligned assigner and the YOLOv8 loss (ops.md, "Task-aligned assignment and the YOLOv8
// loss"): programs of passes (shaders/tal.wgsl lists them), each pass in a module that binds only
// what it reads and writes. Fixed shapes: no readback inside a call, no allocation that depends on
// the data.

/** A pass module: common.wgsl, boxes.wgsl (CIoU's aspect term), tal.wgsl and the pass's own files. */
const module = (id: string, ...files: string[]): PassModule => ({ shader: [commonWgsl, boxesWgsl, talWgsl, ...files].join('\n'), shaderId: `tal-${id}` });
// tal_pairs reads rotated-common.wgsl's ProbIoU when the program is the rotated assigner (ROTATED).
const PAIRS = module('pairs', rotatedCommonWgsl, talPairsWgsl, talPairRowsWgsl);
const ROWS = module('rows', talAssignWgsl, talRowsWgsl);
const ANCHOR = module('anchor', talAssignWgsl, talAnchorWgsl);
const SCORES = module('scores', talAssignWgsl, talScoresWgsl);
const YOLO_DECODE = module('yolo-decode', yoloDflWgsl, yoloDecodeWgsl);
const YOLO_PAIRS = module('yolo-pairs', yoloPairsWgsl, talPairRowsWgsl);
const YOLO_ANCHOR = module('yolo-anchor', talAssignWgsl, yoloAnchorWgsl);
const YOLO_LOSS = module('yolo-loss', yoloDflWgsl, yoloLossWgsl);
const YOLO_SUM = module('yolo-sum', yoloSumWgsl);

/** The lanes of a workgroup (the runtime's WG, as every op's passes are dispatched with). */
const WG_LANES = 64;
const anchors = (d: Dims) => d.b * d.a;
/** One workgroup per gt row. */
const rowGroups = (d: Dims) => d.b * d.m * WG_LANES;
const oneGroup = () => WG_LANES;

/** The scratch's layout in words (shaders/tal.wgsl): where each array starts, and the total. */
export function talLayout(d: Dims): Record<string, number> & { words: number } {
  const ba = d.b * d.a;
  const bma = d.b * d.m * d.a;
  const sizes: [string, number][] = [
    ['off_dec', 4 * ba],
    ['off_anch', 3 * d.a],
    ['off_ov', bma],
    ['off_met', bma],
    ['off_gmax', 2 * d.b * d.m],
    ['off_anc', ba],
    ['off_alab', ba],
    ['off_abox', 4 * ba],
    ['off_ts', ba],
    ['off_part', 3 * ba],
    ['off_tot', 4],
  ];
  const out: Record<string, number> = {};
  let at = 0;
  for (const [name, words] of sizes) {
    out[name] = at;
    at += words;
  }
  return Object.assign(out, { words: at });
}

/**
 * The program of `tal_assign` (op 0), `yolo_detection_loss` (op 1), or with `rotated` the rotated
 * assigner's (`rotated_tal_assign`: tal_assign's passes, five-column boxes, override ROTATED).
 */
export function talKernel(op: 0 | 1, rotated = false): GpuKernel {
  const passes =
    op === 0
      ? [
          { entry: 'tal_pairs', threads: anchors, module: PAIRS },
          { entry: 'tal_topk', threads: rowGroups, module: ROWS },
          { entry: 'tal_anchor', threads: anchors, module: ANCHOR },
          { entry: 'tal_gtmax', threads: rowGroups, module: ROWS },
          { entry: 'tal_scores', threads: anchors, module: SCORES },
        ]
      : [
          { entry: 'yolo_decode', threads: anchors, module: YOLO_DECODE },
          { entry: 'yolo_pairs', threads: anchors, module: YOLO_PAIRS },
          { entry: 'tal_topk', threads: rowGroups, module: ROWS },
          { entry: 'yolo_anchor', threads: anchors, module: YOLO_ANCHOR },
          { entry: 'tal_gtmax', threads: rowGroups, module: ROWS },
          { entry: 'yolo_ts', threads: anchors, module: ROWS },
          { entry: 'yolo_tss', threads: oneGroup, module: ROWS },
          { entry: 'yolo_loss', threads: anchors, module: YOLO_LOSS },
          { entry: 'yolo_sum', threads: oneGroup, module: YOLO_SUM },
        ];
  return {
    shader: passes[0].module.shader,
    shaderId: passes[0].module.shaderId,
    entry: passes[0].entry,
    overrides: () => ({ OP: op, ROTATED: rotated ? 1 : 0 }),
    uniforms: (p: ResolvedParams, d: Dims) => {
      const { words: _, ...offsets } = talLayout(d);
      return {
        d: d.d ?? 0,
        topk: p.topk as number,
        alpha: p.alpha as number,
        beta: p.beta as number,
        eps: op === 0 ? (p.eps as number) : 1e-9,
        box_gain: (p.boxGain as number | undefined) ?? 0,
        cls_gain: (p.clsGain as number | undefined) ?? 0,
        dfl_gain: (p.dflGain as number | undefined) ?? 0,
        ...offsets,
      };
    },
    program: {
      passes,
      lossShape: op === 0 ? [0] : [],
      scratch: (d: Dims) => ({ words: talLayout(d).words, threads: 0 }),
    },
  };
}

type Data = Record<string, Float32Array | Int32Array | Float64Array | undefined>;

/**
 * The refusals both ops share (ops.md, "Refusals"): no weight; labels that name a class, padding
 * rows included; a mask of 0 and 1; strides finite and > 0; topk at most A when there are gt rows;
 * scores in [0, 1] when the caller asks for checking.
 */
export function validateTal(op: string, inputs: Data, p: ResolvedParams, d: Dims, check: boolean) {
  if (inputs.weight !== undefined) fail('invalid_param', `${op}: takes no weight (it is not reduced by the caller)`, 'weight');
  const scoresName = op === 'yolo_detection_loss' ? 'predScores' : 'scores';
  if (d.c < 1) fail('shape_mismatch', `${op}: ${scoresName} has no classes (C = 0); it needs C >= 1`, scoresName);
  if (op === 'yolo_detection_loss' && (d.d % 4 !== 0 || d.d < 8)) {
    fail('shape_mismatch', `${op}: predDist's last dimension must be 4R with R >= 2 bins per side, got ${d.d}`, 'predDist');
  }
  if (d.m > 0 && (p.topk as number) > d.a) fail('invalid_param', `${op}: topk must be at most A = ${d.a} (the anchors) when there are gt rows, got ${p.topk}`, 'topk');
  const labels = inputs.gtLabels;
  if (labels) {
    for (let i = 0; i < labels.length; i++) {
      if (!(labels[i] >= 0 && labels[i] < d.c)) fail('invalid_value', `${op}: gtLabels[${i}] = ${labels[i]} is not a class in 0..${d.c - 1} (padding rows too: background anchors copy row 0's label)`, 'gtLabels');
    }
  }
  const mask = inputs.gtMask;
  if (mask) {
    for (let i = 0; i < mask.length; i++) if (mask[i] !== 0 && mask[i] !== 1) fail('invalid_value', `${op}: gtMask[${i}] = ${mask[i]}; it must be 1 (a real gt) or 0 (padding)`, 'gtMask');
  }
  const strides = inputs.strides;
  if (strides) {
    for (let i = 0; i < strides.length; i++) if (!(Number.isFinite(strides[i]) && strides[i] > 0)) fail('invalid_value', `${op}: strides[${i}] = ${strides[i]}; a stride is a finite number of pixels > 0`, 'strides');
  }
  const scores = inputs.scores;
  if (check && scores) {
    for (let i = 0; i < scores.length; i++) if (!(scores[i] >= 0 && scores[i] <= 1)) fail('invalid_value', `${op}: scores[${i}] = ${scores[i]} is not a probability in [0, 1]`, 'scores');
  }
}

export const gtInputs = {
  gtLabels: { dtype: 'i32', shape: ['b', 'm'] },
  gtBoxes: { dtype: 'f32', shape: ['b', 'm', 4] },
  gtMask: { dtype: 'i32', shape: ['b', 'm'] },
} as const;

/** `tal_assign`: ultralytics' TaskAlignedAssigner; five outputs, no gradient. */
export const talAssignOp = defineOp({
  name: 'tal_assign',
  family: 'tal',
  inputs: {
    scores: { dtype: 'f32', shape: ['b', 'a', 'c'] },
    predBoxes: { dtype: 'f32', shape: ['b', 'a', 4] },
    anchors: { dtype: 'f32', shape: ['a', 2] },
    ...gtInputs,
  },
  bindOrder: ['scores', 'gtBoxes'],
  params: { topk: num(10, { min: 1, integer: true }), alpha: num(0.5, { min: 0 }), beta: num(6.0, { min: 0, minExclusive: true }), eps: num(1e-9, { min: 0, minExclusive: true }) },
  rows: 'b',
  output: [0],
  outputs: {
    labels: { dtype: 'i32', shape: ['b', 'a'] },
    boxes: { dtype: 'f32', shape: ['b', 'a', 4] },
    targetScores: { dtype: 'f32', shape: ['b', 'a', 'c'] },
    foreground: { dtype: 'i32', shape: ['b', 'a'] },
    gtIndex: { dtype: 'i32', shape: ['b', 'a'] },
  },
  reductions: [],
  validate: (inputs, p, d, _given, check) => validateTal('tal_assign', inputs, p, d, check === true),
  cpu: talAssignCpu,
  gpu: talKernel(0),
});

/** `yolo_detection_loss`: ultralytics' v8DetectionLoss for a DFL head, its components and gradients. */
export const yoloDetectionLossOp = defineOp({
  name: 'yolo_detection_loss',
  family: 'tal',
  inputs: {
    predDist: { dtype: 'f32', shape: ['b', 'a', 'd'], grad: true },
    predScores: { dtype: 'f32', shape: ['b', 'a', 'c'], grad: true },
    anchors: { dtype: 'f32', shape: ['a', 2] },
    strides: { dtype: 'f32', shape: ['a'] },
    ...gtInputs,
  },
  bindOrder: ['predScores', 'gtBoxes'],
  params: {
    topk: num(10, { min: 1, integer: true }),
    alpha: num(0.5, { min: 0 }),
    beta: num(6.0, { min: 0, minExclusive: true }),
    boxGain: num(7.5),
    clsGain: num(0.5),
    dflGain: num(1.5),
  },
  rows: 'b',
  output: [],
  outputs: { components: { dtype: 'f32', shape: [3] } },
  reductions: [],
  validate: (inputs, p, d) => validateTal('yolo_detection_loss', inputs, p, d, false),
  cpu: yoloDetectionLossCpu,
  gpu: talKernel(1),
});

/** tal_assign and yolo_detection_loss. */
export const TAL_OPS: OpDescriptor[] = [talAssignOp, yoloDetectionLossOp];
