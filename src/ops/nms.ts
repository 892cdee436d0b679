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
export const WG_LANES = 64;
/** The most workgroups nms_size puts in one dimension of nms_mask's grid (WebGPU's default limit). */
const MAX_GROUPS = 65535;
/** Boxes per tile of nms_tile (shaders/nms.wgsl's TILE). */
export const NMS_TILE = 256;
/** Words of a row of decision bits: one bit per place. */
const wordsOf = (places: number) => Math.ceil(places / 32);

/**
 * The sizes of one hard-NMS call (shaders/nms.wgsl): `groups` of `n` boxes, `kc` places of each
 * group's candidate order (n, or the YOLO post-process's max_nms), at most `limit` kept per group
 * in `cap` slots. `decode` sizes the YOLO post-process's decoded boxes (`anchors` per image) and
 * scores, with a best class per box unless `multi`.
 */
export interface HardSizes {
  groups: number;
  n: number;
  kc: number;
  limit: number;
  cap: number;
  decode?: { anchors: number; multi: boolean };
}

/** Hard NMS's groups and limits for `nms` (one group) and `nms_onnx` (a (batch, class) pair each). */
function hardSizes(onnx: boolean, p: ResolvedParams, d: Dims): HardSizes {
  if (!onnx) return { groups: 1, n: d.n, kc: d.n, limit: d.n, cap: d.n };
  const limit = Math.min(p.maxOutputBoxesPerClass as number, d.n);
  return { groups: d.b * d.c, n: d.n, kc: d.n, limit, cap: limit };
}

/** The scratch's layout in words (shaders/nms.wgsl), its size, and the uniforms that say it. */
export function nmsLayout(s: HardSizes): { uniforms: Record<string, number>; words: number } {
  const tiles = Math.ceil(s.n / NMS_TILE);
  const w = wordsOf(s.kc);
  const g = s.groups;
  const sizes: [string, number][] = [
    // nms_size's indirect grid for nms_mask and kmax (the runtime copies the first bytes).
    ['args', 4],
    ['off_tsort', g * s.n],
    ['off_tcount', g * tiles],
    ['off_order', g * s.kc],
    ['off_sbox', g * s.kc * 4],
    ['off_scls', g * s.kc],
    ['off_removed', g * w],
    ['off_mask', g * s.kc * w],
    ['off_sel', g * s.cap],
    ['off_gcount', g],
    ['off_box', s.decode ? g * s.decode.anchors * 4 : 0],
    ['off_score', s.decode ? g * s.n : 0],
    ['off_class', s.decode && !s.decode.multi ? g * s.n : 0],
  ];
  const uniforms: Record<string, number> = { max_groups: MAX_GROUPS, n: s.n, groups: g, kc: s.kc, limit: s.limit, cap: s.cap, words: w, tiles, anchors: s.decode?.anchors ?? 1, multi: s.decode?.multi ? 1 : 0, agnostic: 0 };
  let at = 0;
  for (const [name, size] of sizes) {
    if (name !== 'args') uniforms[name] = at;
    at += size;
  }
  return { uniforms, words: Math.max(at, 1) };
}

/** A WGSL module of hard NMS: nms-common.wgsl, nms.wgsl, and the file that says where boxes come from. */
export const nmsModule = (id: string, io: string) => ({ shader: [nmsCommonWgsl, nmsWgsl, io].join('\n'), shaderId: id });

/**
 * Hard NMS's passes (shaders/nms.wgsl) over the module, sized by `sizes`: sort the candidates (a
 * tile each, then each candidate's place), the decision bits, the scan, the gather.
 */
export function hardPasses(module: { shader: string; shaderId: string }, sizes: (d: Dims, p: ResolvedParams) => HardSizes) {
  const tiles = (s: HardSizes) => Math.ceil(s.n / NMS_TILE);
  return [
    { entry: 'nms_tile', threads: (d: Dims, p: ResolvedParams) => ((s) => s.groups * tiles(s) * WG_LANES)(sizes(d, p)), module },
    { entry: 'nms_place', threads: (d: Dims, p: ResolvedParams) => ((s) => s.groups * s.n)(sizes(d, p)), module },
    // nms_mask over the places the candidates fill (nms_size writes its grid), not all kc.
    { entry: 'nms_size', threads: () => WG_LANES, module },
    { entry: 'nms_mask', indirect: 0, module },
    { entry: 'nms_scan', threads: (d: Dims, p: ResolvedParams) => sizes(d, p).groups * WG_LANES, module },
    { entry: 'nms_gather', threads: (d: Dims, p: ResolvedParams) => ((s) => Math.max(s.groups * s.cap, 1))(sizes(d, p)), module },
  ];
}

/**
 * The passes on a software adapter: the sort, then nms_walk in place of the decision bits and the
 * scan (the kept places' rows only, one workgroup per group), then the gather. Same results.
 */
export function softwarePasses(module: { shader: string; shaderId: string }, sizes: (d: Dims, p: ResolvedParams) => HardSizes) {
  const [tile, place, , , , gather] = hardPasses(module, sizes);
  return [tile, place, { entry: 'nms_walk', threads: (d: Dims, p: ResolvedParams) => sizes(d, p).groups * WG_LANES, module }, gather];
}

/**
 * The largest float32 at most `x`. A float32 score `s` has `s > x` exactly when `s > f32Below(x)`
 * (no float32 lies between it and `x`), so the kernels compare with it and match the references'
 * float64 `score > scoreThreshold` for a threshold float32 cannot hold (0.3).
 */
export function f32Below(x: number): number {
  const f = Math.fround(x);
  if (f <= x || Number.isNaN(f)) return f;
  const v = new Float32Array([f]);
  const u = new Uint32Array(v.buffer);
  if (f === 0) return -(2 ** -149);
  u[0] += f > 0 ? -1 : 1;
  return v[0];
}

/** The uniforms of a score threshold: absent, a number, or an infinity (which a uniform cannot hold). */
export function scoreMode(thr: number | undefined): { score_mode: number; score_threshold: number } {
  // -Infinity (or a threshold below every finite float32) drops only -Infinity scores; +Infinity passes none.
  const below = thr === undefined ? undefined : f32Below(thr);
  return {
    score_mode: below === undefined ? 0 : thr === Infinity ? 2 : below === -Infinity ? 3 : 1,
    score_threshold: below !== undefined && Number.isFinite(below) ? below : 0,
  };
}

const FORMATS = ['xyxy', 'cxcywh', 'xywh'];

function hardKernel(onnx: boolean): GpuKernel {
  const NMS_MODULE = onnx ? nmsModule('nms-onnx', nmsOnnxGatherWgsl) : nmsModule('nms', nmsGatherWgsl);
  const sizes = (d: Dims, p: ResolvedParams) => hardSizes(onnx, p, d);
  return {
    shader: NMS_MODULE.shader,
    shaderId: NMS_MODULE.shaderId,
    entry: 'nms_tile',
    uniforms: (p: ResolvedParams, d: Dims) => ({
      ...nmsLayout(sizes(d, p)).uniforms,
      c: onnx ? d.c : 1,
      center: onnx ? (p.centerPointBox as number) : 0,
      // nms_onnx has no classes input (the runtime sets has_classes for nms).
      ...(onnx ? { has_classes: 0 } : {}),
      iou_threshold: p.iouThreshold as number,
      format: onnx ? 0 : FORMATS.indexOf(p.format as string),
      diou: p.variant === 'diou' ? 1 : 0,
      ...scoreMode(p.scoreThreshold as number | undefined),
    }),
    program: {
      passes: hardPasses(NMS_MODULE, sizes),
      software: { passes: softwarePasses(NMS_MODULE, sizes) },
      lossShape: [0],
      scratch: (d: Dims, _host, p: ResolvedParams) => ({ words: nmsLayout(sizes(d, p)).words, threads: 0 }),
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
      score_mode: f32Below(thr) === -Infinity ? 2 : 1,
      score_threshold: Number.isFinite(f32Below(thr)) ? f32Below(thr) : 0,
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
