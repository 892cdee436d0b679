import nmsTfjsWgsl from '../../shaders/nms-tfjs.wgsl?raw';
import nmsWgsl from '../../shaders/nms.wgsl?raw';
import { nmsCpu, nmsOnnxCpu, nmsTfjsCpu } from '../cpu/nms';
import { defineOp, fail, oneOf, type Dims, type GpuKernel, type OpDescriptor, type ParamSpec, type ResolvedParams } from './types';

// docs/ops.md, "Non-maximum suppression": three ops of one overlap and one candidate order, each
// equal to its reference (torchvision, onnxruntime, tfjs-core). No gradient, no reduction; the
// outputs are indices whose number depends on the data (`OutputSpec.capacity`).

/** A threshold in [0, 1]: required, or with a default. */
const threshold = (def?: number): ParamSpec => ({ kind: 'number', ...(def === undefined ? { required: true } : { default: def }), min: 0, max: 1 });
/** A score threshold: any number but NaN, infinities included; absent unless given, or a default. */
const scoreThreshold = (def?: number): ParamSpec => ({ kind: 'number', infinite: true, ...(def === undefined ? {} : { default: def }) });

type Data = Record<string, Float32Array | Int32Array | Float64Array | undefined>;

/** `reduction`, `weight`, `avgFactor` are refused by `reductions: []`; `weight` here, by name. */
function noWeight(op: string, inputs: Data) {
  if (inputs.weight !== undefined) fail('invalid_param', `${op}: takes no weight (its outputs are indices)`, 'weight');
}

/** The lanes of a workgroup (the runtime's WG, as every program's passes are dispatched with). */
const WG_LANES = 64;
/** Words of a row of decision bits: one bit per place. */
const words = (d: Dims) => Math.ceil(d.n / 32);

/** `nms`'s scratch in words (shaders/nms.wgsl): the order, the removed places, the decision bits. */
export function nmsLayout(d: Dims): { off_order: number; off_removed: number; off_mask: number; words: number } {
  const w = words(d);
  return { off_order: 0, off_removed: d.n, off_mask: d.n + w, words: d.n + w + d.n * w };
}

const FORMATS = ['xyxy', 'cxcywh', 'xywh'];
/** The passes' module: it binds only what they use (no loss, weight or gradOutput). */
const NMS_MODULE = { shader: nmsWgsl, shaderId: 'nms' };

const nmsKernel: GpuKernel = {
  shader: nmsWgsl,
  shaderId: 'nms',
  entry: 'nms_rank',
  uniforms: (p: ResolvedParams, d: Dims) => {
    const thr = p.scoreThreshold as number | undefined;
    const { words: _, ...offsets } = nmsLayout(d);
    return {
      words: words(d),
      iou_threshold: p.iouThreshold as number,
      format: FORMATS.indexOf(p.format as string),
      diou: p.variant === 'diou' ? 1 : 0,
      // -Infinity is a threshold (it drops -Infinity scores); +Infinity passes no score.
      score_mode: thr === undefined ? 0 : thr === Infinity ? 2 : thr === -Infinity ? 3 : 1,
      score_threshold: thr !== undefined && Number.isFinite(thr) ? thr : 0,
      ...offsets,
    };
  },
  program: {
    passes: [
      { entry: 'nms_rank', threads: (d) => d.n, module: NMS_MODULE },
      { entry: 'nms_mask', threads: (d) => d.n * words(d), module: NMS_MODULE },
      { entry: 'nms_scan', threads: () => WG_LANES, module: NMS_MODULE },
    ],
    lossShape: [0],
    scratch: (d: Dims) => ({ words: Math.max(nmsLayout(d).words, 1), threads: 0 }),
  },
};

const TFJS_MODULE = { shader: nmsTfjsWgsl, shaderId: 'nms-tfjs' };

/** `nms_tfjs` in one workgroup (shaders/nms-tfjs.wgsl): the current scores in the scratch. */
const nmsTfjsKernel: GpuKernel = {
  shader: nmsTfjsWgsl,
  shaderId: 'nms-tfjs',
  entry: 'nms_soft',
  uniforms: (p: ResolvedParams, d: Dims) => {
    const thr = p.scoreThreshold as number;
    const sigma = p.softNmsSigma as number;
    return {
      // A +Infinity threshold passes no score: nothing to select.
      limit: thr === Infinity ? 0 : Math.min(p.maxOutputSize as number, d.n),
      iou_threshold: p.iouThreshold as number,
      decay: sigma > 0 ? -0.5 / sigma : 0,
      // -Infinity (the default, which a uniform cannot hold) drops only -Infinity scores.
      score_mode: thr === -Infinity ? 2 : 1,
      score_threshold: Number.isFinite(thr) ? thr : 0,
      off_cur: 0,
    };
  },
  program: {
    passes: [{ entry: 'nms_soft', threads: () => WG_LANES, module: TFJS_MODULE }],
    lossShape: [0],
    scratch: (d: Dims) => ({ words: Math.max(d.n, 1), threads: 0 }),
  },
};

/** `nms`: torchvision's `nms` and `batched_nms`, with `scoreThreshold` and DIoU-NMS. */
export const nmsOp = defineOp({
  name: 'nms',
  family: 'nms',
  inputs: {
    boxes: { dtype: 'f32', shape: ['n', 4] },
    scores: { dtype: 'f32', shape: ['n'] },
    classes: { dtype: 'i32', shape: ['n'], optional: true },
  },
  bindOrder: ['scores'],
  params: {
    iouThreshold: threshold(),
    format: oneOf(['xyxy', 'cxcywh', 'xywh'], 'xyxy'),
    variant: oneOf(['iou', 'diou'], 'iou'),
    scoreThreshold: scoreThreshold(),
  },
  rows: 'n',
  output: [0],
  outputs: { keep: { dtype: 'i32', shape: ['k'], capacity: (d) => d.n, count: 'count' }, count: { dtype: 'i32', shape: [1] } },
  reductions: [],
  validate: (inputs) => noWeight('nms', inputs),
  cpu: nmsCpu,
  gpu: nmsKernel,
});

/** `nms_onnx`: ONNX `NonMaxSuppression` as onnxruntime's CPU kernel runs it. */
export const nmsOnnxOp = defineOp({
  name: 'nms_onnx',
  family: 'nms',
  inputs: {
    boxes: { dtype: 'f32', shape: ['b', 'n', 4] },
    scores: { dtype: 'f32', shape: ['b', 'c', 'n'] },
  },
  bindOrder: ['boxes'],
  params: {
    maxOutputBoxesPerClass: { kind: 'limit', default: 0 },
    iouThreshold: threshold(0),
    scoreThreshold: scoreThreshold(),
    centerPointBox: { kind: 'number', default: 0, integer: true, min: 0, max: 1 },
  },
  rows: 'b',
  output: [0],
  outputs: {
    selected: { dtype: 'i32', shape: ['k', 3], capacity: (d, p) => d.b * d.c * Math.min(p.maxOutputBoxesPerClass as number, d.n), count: 'count' },
    count: { dtype: 'i32', shape: [1] },
  },
  reductions: [],
  validate: (inputs) => noWeight('nms_onnx', inputs),
  cpu: nmsOnnxCpu,
});

/** `nms_tfjs`: `tf.image.nonMaxSuppressionWithScore`, Soft-NMS included. */
export const nmsTfjsOp = defineOp({
  name: 'nms_tfjs',
  family: 'nms',
  inputs: {
    boxes: { dtype: 'f32', shape: ['n', 4] },
    scores: { dtype: 'f32', shape: ['n'] },
  },
  bindOrder: ['scores'],
  params: {
    maxOutputSize: { kind: 'limit', required: true },
    iouThreshold: threshold(0.5),
    scoreThreshold: scoreThreshold(-Infinity),
    softNmsSigma: { kind: 'number', default: 0, min: 0, max: 1 },
  },
  rows: 'n',
  output: [0],
  outputs: {
    selectedIndices: { dtype: 'i32', shape: ['k'], capacity: (d, p) => Math.min(p.maxOutputSize as number, d.n), count: 'count' },
    selectedScores: { dtype: 'f32', shape: ['k'], capacity: (d, p) => Math.min(p.maxOutputSize as number, d.n), count: 'count' },
    count: { dtype: 'i32', shape: [1] },
  },
  reductions: [],
  validate: (inputs) => noWeight('nms_tfjs', inputs),
  cpu: nmsTfjsCpu,
  gpu: nmsTfjsKernel,
});

/** nms, nms_onnx and nms_tfjs. */
export const NMS_OPS: OpDescriptor[] = [nmsOp, nmsOnnxOp, nmsTfjsOp];
