import nmsYoloWgsl from '../../shaders/yolo-nms.wgsl?raw';
import { yoloNmsCpu } from '../cpu/yolo-nms';
import { hardPasses, nmsLayout, nmsModule, scoreMode, softwarePasses, type HardSizes } from './nms';
import { defineOp, fail, flag, type Dims, type GpuKernel, type ResolvedParams } from './types';

// The YOLO post-process (docs/losses.md, "YOLO post-process"): ultralytics' non_max_suppression on
// an exported detector's output [b, 4 + C, A], built on `nms`'s passes (shaders/nms.wgsl) after a
// decode pass (shaders/yolo-nms.wgsl). Not an op of the contract: a helper program that the core,
// TF.js and ORT wrappers run, with the float64 reference src/cpu/yolo-nms.ts.

const MODULE = nmsModule('yolo-nms', nmsYoloWgsl);

/** Per image: boxes (A, or A x C with multiLabel), places (at most maxNms), kept (at most maxDet). */
function sizes(d: Dims, p: ResolvedParams): HardSizes {
  const C = Math.max(d.f - 4, 0);
  const multi = p.multiLabel === true;
  const n = multi ? d.n * C : d.n;
  const kc = Math.min(n, p.maxNms as number);
  const limit = Math.min(kc, p.maxDet as number);
  return { groups: d.b, n, kc, limit, cap: limit, decode: { anchors: d.n, multi } };
}

const kernel: GpuKernel = {
  shader: MODULE.shader,
  shaderId: MODULE.shaderId,
  entry: 'yolo_decode',
  uniforms: (p: ResolvedParams, d: Dims) => ({
    ...nmsLayout(sizes(d, p)).uniforms,
    c: Math.max(d.f - 4, 0),
    agnostic: p.agnostic === true ? 1 : 0,
    center: 0,
    has_classes: 0,
    iou_threshold: p.iouThreshold as number,
    format: 0,
    diou: 0,
    ...scoreMode(p.confThreshold as number),
  }),
  program: {
    passes: [{ entry: 'yolo_decode', threads: (d: Dims) => d.b * d.n, module: MODULE }, ...hardPasses(MODULE, sizes)],
    software: { passes: [{ entry: 'yolo_decode', threads: (d: Dims) => d.b * d.n, module: MODULE }, ...softwarePasses(MODULE, sizes)] },
    lossShape: [0],
    scratch: (d: Dims, _host, p: ResolvedParams) => ({ words: nmsLayout(sizes(d, p)).words, threads: 0 }),
  },
};

const rows = (d: Dims, p: ResolvedParams) => sizes(d, p).groups * sizes(d, p).cap;

/**
 * `yolo_nms`: the YOLO post-process of an exported ultralytics detector's output [b, 4 + C, A]
 * (YOLOv8/11: [1, 84, 8400]): decode, best class or every class above `confThreshold`
 * (`multiLabel`), class-aware NMS (`agnostic`: one class), at most `maxDet` per image. Outputs the
 * detections image by image, each in decreasing score: `boxes` [k, 4] corners, `scores` [k],
 * `classes` [k], `batchIndex` [k], and their `count`.
 */
export const yoloNmsOp = defineOp({
  name: 'yolo_nms',
  family: 'nms',
  inputs: { output: { dtype: 'f32', shape: ['b', 'f', 'n'] } },
  bindOrder: ['output'],
  params: {
    confThreshold: { kind: 'number', default: 0.25, min: 0, max: 1 },
    iouThreshold: { kind: 'number', default: 0.45, min: 0, max: 1 },
    maxDet: { kind: 'limit', default: 300 },
    maxNms: { kind: 'limit', default: 30000 },
    multiLabel: flag(false),
    agnostic: flag(false),
  },
  rows: 'b',
  output: [0],
  outputs: {
    boxes: { dtype: 'f32', shape: ['k', 4], capacity: rows, count: 'count' },
    scores: { dtype: 'f32', shape: ['k'], capacity: rows, count: 'count' },
    classes: { dtype: 'i32', shape: ['k'], capacity: rows, count: 'count' },
    batchIndex: { dtype: 'i32', shape: ['k'], capacity: rows, count: 'count' },
    count: { dtype: 'i32', shape: [1] },
  },
  reductions: [],
  validate: (inputs, _p, d) => {
    if (inputs.weight !== undefined) fail('invalid_param', 'yolo_nms: takes no weight (its outputs are detections)', 'weight');
    if (d.f < 5) fail('shape_mismatch', `yolo_nms: output must be [b, 4 + C, A] with at least one class; got ${d.f} rows per anchor`, 'output');
  },
  cpu: yoloNmsCpu,
  gpu: kernel,
});

/** Options of the YOLO post-process (ultralytics' `non_max_suppression`'s names and defaults). */
export interface YoloNmsOptions {
  /** Keep `score > confThreshold` (0.25). */
  confThreshold?: number;
  /** Suppress `IoU > iouThreshold` within a class (0.45). */
  iouThreshold?: number;
  /** Detections per image at most (300). */
  maxDet?: number | bigint;
  /** Candidates per image at most, the highest scores (30000). */
  maxNms?: number | bigint;
  /** Every class above the threshold, not only the best (false). */
  multiLabel?: boolean;
  /** NMS across classes (false). */
  agnostic?: boolean;
}

/** The detections of every image, image by image, each image's in decreasing score. */
export interface YoloDetections {
  /** Corners `[x1, y1, x2, y2]` per detection, [count, 4] flat, in the output's pixels. */
  boxes: Float32Array;
  scores: Float32Array;
  classes: Int32Array;
  /** The image of each detection. */
  batchIndex: Int32Array;
  count: number;
}

/** A run's named outputs (host arrays, cut to the count) as {@link YoloDetections}. */
export function detectionsOf(r: { outputs?: Record<string, Float32Array | Int32Array> }): YoloDetections {
  const o = r.outputs!;
  // The GPU's arrays as they are; the CPU reference's float64 ones rounded to float32.
  const f32 = (a: Float32Array | Int32Array) => (a instanceof Float32Array ? a : Float32Array.from(a));
  return { boxes: f32(o.boxes), scores: f32(o.scores), classes: Int32Array.from(o.classes), batchIndex: Int32Array.from(o.batchIndex), count: o.scores.length };
}
