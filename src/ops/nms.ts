import nmsTfjsWgsl from '../../shaders/nms-tfjs.wgsl?raw';
import nmsCommonWgsl from '../../shaders/nms-common.wgsl?raw';
import nmsGatherWgsl from '../../shaders/nms-gather.wgsl?raw';
import nmsOnnxGatherWgsl from '../../shaders/nms-onnx-gather.wgsl?raw';
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

/** Hard NMS's groups and limits: one group for `nms`, a (batch, class) pair for `nms_onnx`. */
function hardGroups(onnx: boolean, p: ResolvedParams, d: Dims): { groups: number; limit: number; cap: number } {
  if (!onnx) return { groups: 1, limit: d.n, cap: d.n };
  const limit = Math.min(p.maxOutputBoxesPerClass as number, d.n);
  return { groups: d.b * d.c, limit, cap: limit };
}

/** The scratch in words (shaders/nms.wgsl): order, removed places, decision bits, kept boxes, counts. */
export function nmsLayout(d: Dims, g: { groups: number; cap: number }): { off_order: number; off_removed: number; off_mask: number; off_sel: number; off_gcount: number; words: number } {
  const w = words(d);
  const sizes: [string, number][] = [
    ['off_order', g.groups * d.n],
    ['off_removed', g.groups * w],
    ['off_mask', g.groups * d.n * w],
    ['off_sel', g.groups * g.cap],
    ['off_gcount', g.groups],
  ];
  const out: Record<string, number> = {};
  let at = 0;
  for (const [name, size] of sizes) {
    out[name] = at;
    at += size;
  }
  return Object.assign(out as { off_order: number; off_removed: number; off_mask: number; off_sel: number; off_gcount: number }, { words: at });
}

const FORMATS = ['xyxy', 'cxcywh', 'xywh'];

function hardKernel(onnx: boolean): GpuKernel {
  const module = (id: string, gather: string) => ({ shader: [nmsCommonWgsl, nmsWgsl, gather].join('\n'), shaderId: id });
  const NMS_MODULE = onnx ? module('nms-onnx', nmsOnnxGatherWgsl) : module('nms', nmsGatherWgsl);
  // The params a call resolves to; `nms_onnx` has no format, variant or classes.
  const sizes = (p: ResolvedParams, d: Dims) => hardGroups(onnx, p, d);
  return {
    shader: NMS_MODULE.shader,
    shaderId: NMS_MODULE.shaderId,
    entry: 'nms_rank',
    uniforms: (p: ResolvedParams, d: Dims) => {
      const thr = p.scoreThreshold as number | undefined;
      const g = sizes(p, d);
      const { words: _, ...offsets } = nmsLayout(d, g);
      return {
        words: words(d),
        groups: g.groups,
        c: onnx ? d.c : 1,
        onnx: onnx ? 1 : 0,
        limit: g.limit,
        cap: g.cap,
        center: onnx ? (p.centerPointBox as number) : 0,
        // nms_onnx has no classes input (the runtime sets has_classes for nms).
        ...(onnx ? { has_classes: 0 } : {}),
        iou_threshold: p.iouThreshold as number,
        format: onnx ? 0 : FORMATS.indexOf(p.format as string),
        diou: p.variant === 'diou' ? 1 : 0,
        // -Infinity (which a uniform cannot hold) drops only -Infinity scores; +Infinity passes none.
        score_mode: thr === undefined ? 0 : thr === Infinity ? 2 : thr === -Infinity ? 3 : 1,
        score_threshold: thr !== undefined && Number.isFinite(thr) ? thr : 0,
        ...offsets,
      };
    },
    program: {
      passes: [
        { entry: 'nms_rank', threads: (d) => (onnx ? d.b * d.c : 1) * d.n, module: NMS_MODULE },
        { entry: 'nms_mask', threads: (d) => (onnx ? d.b * d.c : 1) * d.n * words(d), module: NMS_MODULE },
        { entry: 'nms_scan', threads: (d) => (onnx ? d.b * d.c : 1) * WG_LANES, module: NMS_MODULE },
        // The slots of every group: sized from the params, which threads() cannot see: the most
        // any call of these dims can have (a limit past n is n).
        { entry: 'nms_gather', threads: (d) => Math.max((onnx ? d.b * d.c : 1) * d.n, 1), module: NMS_MODULE },
      ],
      lossShape: [0],
      scratch: (d: Dims, _host, p: ResolvedParams) => ({ words: Math.max(nmsLayout(d, sizes(p, d)).words, 1), threads: 0 }),
    },
  };
}

const TFJS_MODULE = { shader: `${nmsCommonWgsl}\n${nmsTfjsWgsl}`, shaderId: 'nms-tfjs' };

/** `nms_tfjs` in one workgroup (shaders/nms-tfjs.wgsl): the current scores in the scratch. */
const nmsTfjsKernel: GpuKernel = {
  shader: TFJS_MODULE.shader,
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
  gpu: hardKernel(false),
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
  gpu: hardKernel(true),
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
