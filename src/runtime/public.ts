// The types a user of detloss can name: results, stats, options, launch plans, adapter facts,
// tensors, and the shader reflection types. Types only: this file imports nothing of the runtime,
// and every room of it may import this file.
import type { HostTensor } from '../ops/inputs';
import type { PlanChoice, PlanRecord } from './tune-types';

export type { CandidateTime, PlanChoice, PlanRecord, RowStrategy, TunedPlan, TuneOp, TuneOptions, TuneProgress } from './tune-types';

/** A tensor that already lives on the device. */
export type GpuTensor = GPUBuffer | { buffer: GPUBuffer; shape: number[]; dtype?: 'f32' | 'i32' };
/** An input: a typed array, `{ data, shape }`, or (for `runResident`) a GPU tensor. */
export type AnyInput = HostTensor | GpuTensor;

/** The result of {@link Detloss.run}. */
export interface RunResult {
  /** Length 1 for `'mean'`/`'sum'`, the `'none'` shape otherwise. */
  loss: Float32Array;
  /** Shape of `loss` (`[]` when reduced). */
  shape: number[];
  /** `grad.<input>` for each prediction input, same length as it. Empty with `grad: false`. */
  grad: Record<string, Float32Array>;
  /**
   * Numbers the op reports beside its loss, where it has any: `iou_loss` with variant `'wiou'`
   * gives `aux.batchIouMean`, the batch's mean of `1 - iou` (unweighted, 0 for no boxes), which
   * the caller folds into the running `iouMean` (see `WiseIoU`).
   */
  aux?: Record<string, number>;
  /**
   * The named outputs of an op that has them, flat and row-major: `tal_assign`'s `labels`,
   * `foreground` and `gtIndex` (Int32Array) and `boxes` and `targetScores` (Float32Array);
   * `yolo_detection_loss`'s `components` (`[box, cls, dfl]`). Their shapes are in `outputShapes`.
   * An op whose only results are these (`tal_assign`) returns an empty `loss` of shape `[0]`.
   */
  outputs?: Record<string, Float32Array | Int32Array>;
  /** The shape of each of `outputs`. */
  outputShapes?: Record<string, number[]>;
}

/** The result of {@link Detloss.runResident}: buffers on the device, owned by the caller until `release()`. */
export interface ResidentResult {
  loss: GPUBuffer;
  /** Bytes of `loss` that hold the result (the buffer may be larger). */
  lossBytes: number;
  shape: number[];
  grad: Record<string, GPUBuffer>;
  /** Bytes of each `grad` buffer that hold the gradient (0 for an empty input; the buffer may be larger). */
  gradBytes: Record<string, number>;
  /** Returns the buffers to the context's pool; do not use them afterwards. */
  release(): void;
  /** As {@link RunResult.aux}, each number in a buffer of its own (4 bytes, f32), released with the rest. */
  aux?: Record<string, GPUBuffer>;
  /** As {@link RunResult.outputs}, each in a buffer of its own (f32 or i32 elements), released with the rest. */
  outputs?: Record<string, GPUBuffer>;
  /** Bytes of each `outputs` buffer that hold the output (0 for an empty one; the buffer may be larger). */
  outputBytes?: Record<string, number>;
  /** The shape and element type of each of `outputs`. */
  outputShapes?: Record<string, number[]>;
  outputDtypes?: Record<string, 'f32' | 'i32'>;
}

/** What {@link Detloss.stats} reports. */
export interface DetlossStats extends PoolStats {
  pipelinesCompiled: number;
  pipelineCacheHits: number;
  /**
   * Work done by the last call. `kernel` names the fused pass's module variant and entry point
   * (`'regression+vec4:main'`, `'ce+subgroup:main_rows'`...). `gpuMs` and `passes` come with
   * `timestamps: true` on a device that can time them.
   */
  lastCall?: {
    op: string;
    kernel: string;
    dispatches: number;
    submits: number;
    readbacks: number;
    gpuMs?: number;
    passes?: { name: string; gpuMs: number }[];
    /** The tuned plan the call ran (`'<family> <size>'`, as `plan.tuned` lists it); absent: the context's plan. */
    tunedPlan?: string;
  };
  /**
   * The launch plan of this context, the tuned plans it holds for some op families and size
   * classes (from `tune()` or `createDetloss({ plans })`, each with the candidates' times), and
   * warnings about plan records it ignored.
   */
  plan: LaunchPlan & { tuned: PlanChoice[]; warnings: string[] };
}

/** One call's record, as `stats().lastCall` reports it. */
export type LastCall = NonNullable<DetlossStats['lastCall']>;

/** Bytes held by the pool. */
export interface PoolStats {
  /** Bytes of every buffer the pool has created and not destroyed. */
  bytesAllocated: number;
  /** Bytes of buffers handed out and not yet released. */
  bytesInUse: number;
  /** Buffers created over the pool's life. */
  buffersCreated: number;
}

/** The limits of one binding and one dispatch that a call's chunks are planned with. */
export interface PlanLimits {
  maxStorageBufferBindingSize: number;
  maxComputeWorkgroupsPerDimension: number;
  minStorageBufferOffsetAlignment: number;
}

/** The limits a context plans with. */
export type ContextLimits = PlanLimits & { maxBufferSize: number };

/**
 * How a context launches its kernels on one adapter, chosen once in {@link choosePlan}:
 * `stats().plan` reports it. Software adapters (SwiftShader: the "GPU" is the CPU's cores, and
 * a workgroup barrier costs about 15 times a plain instruction) want few threads and no barrier
 * in the hot loop; hardware wants hundreds of thousands of threads in flight and a parallel tree
 * for the partial sums.
 */
export interface LaunchPlan {
  /** What the plan was made for: a software fallback adapter, or hardware. */
  kind: 'software' | 'hardware';
  /** Most threads of one fused pass (each walks its elements in a grid-stride loop). */
  maxThreads: number;
  /** Lanes of a reduction workgroup (a power of two). */
  reduceLanes: number;
  /**
   * Partials each lane adds per level of the reduction tree; 0: as many as one workgroup needs
   * to take every partial in one level (the software plan: one small dispatch, capped below).
   */
  reducePer: number;
  /** Rows at least this long run a workgroup or a subgroup per row (`rowLanes`); shorter ones a thread per row. */
  rowThreshold: number;
  /**
   * Who shares a long row: a `'workgroup'` (lanes reduce through workgroup memory and barriers) or
   * a `'subgroup'` (subgroup operations, no barrier; where the device has the `subgroups` feature
   * and the op a subgroup kernel, else a workgroup).
   */
  rowLanes: 'workgroup' | 'subgroup';
  /**
   * Output elements an element-wise thread loads and stores per loop step: 4 takes the ops' vec4
   * kernels (16-byte loads and stores) where every chunk holds a multiple of four elements.
   */
  vectorWidth: 1 | 4;
  /** Lanes of a workgroup of the fused passes (a power of two from 32 to 256; the `WG` override). */
  workgroupSize: number;
}

/** Facts about the adapter the context runs on. */
export interface AdapterFacts {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
  /** The adapter's largest subgroup, where it says (the subgroup-per-row kernels plan with it). */
  subgroupMaxSize?: number;
}

/** Options of {@link createDetloss}. */
export interface DetlossOptions {
  /** Use this device instead of requesting one. */
  device?: GPUDevice;
  /** The WebGPU entry point (default `navigator.gpu`); in Node, `create([])` from the `webgpu` package. */
  gpu?: GPU;
  /**
   * Lower the limits the runtime plans with (never above the device's). Tests use this to exercise
   * chunking and grid folding without gigabytes of data.
   */
  limits?: Partial<Pick<GPUSupportedLimits, 'maxStorageBufferBindingSize' | 'maxBufferSize' | 'maxComputeWorkgroupsPerDimension'>>;
  /**
   * The launch plan (see `stats().plan`): `'software'` or `'hardware'` forces that plan (the tests run
   * the hardware plan on SwiftShader this way); by default a fallback adapter gets the software plan.
   */
  plan?: LaunchPlan['kind'] | (Partial<LaunchPlan> & { kind?: LaunchPlan['kind'] });
  /** Most threads in one fused pass, and so most partials to reduce (default: the plan's, 16384 or 262144). */
  maxThreads?: number;
  /**
   * Time every pass of a call on the GPU with timestamp queries, when the device has
   * 'timestamp-query' (`stats().lastCall.gpuMs` and `.passes`). The timestamps travel in the same
   * readback as the results; `runResident` then waits for them with one extra map.
   */
  timestamps?: boolean;
  /**
   * Row ops with rows at least this long run a workgroup per row (lanes split the row, reduce in
   * workgroup memory); shorter rows run a thread per row. Default 512: workgroup barriers are
   * costly on SwiftShader (see the benchmark). `Infinity` forces a thread per row, 0 a workgroup.
   */
  rowThreshold?: number;
  /**
   * Tuned plans (what `tune()` returned, kept by the caller): one record, or several (for several
   * adapters). Records of another adapter or another detloss version are ignored, with a warning
   * in `stats().plan.warnings`; a malformed one is refused by name.
   */
  plans?: PlanRecord | readonly PlanRecord[];
}

/** One `@binding` of a shader, as the runtime binds it. */
export interface BindingInfo {
  name: string;
  group: number;
  binding: number;
  kind: 'uniform' | 'read' | 'read_write';
  /** Bytes of a struct, or the element stride of a runtime-sized array. */
  minBindingSize: number;
  /** Element type of an array binding (`f32`, `i32`, `vec4`...). */
  element?: string;
}

export interface UniformMember {
  name: string;
  offset: number;
  type: 'f32' | 'u32' | 'i32';
}

export interface UniformLayout {
  name: string;
  binding: number;
  size: number;
  members: UniformMember[];
}

/**
 * What the runtime needs from a WGSL module. For the built-in shaders it is read with
 * `wgsl_reflect` when the package is built (`layouts.generated.ts`), not at run time.
 */
export interface ShaderInfo {
  bindings: BindingInfo[];
  uniforms: Record<string, UniformLayout>;
  entries: string[];
  overrides: string[];
}

/** Reads a WGSL module's {@link ShaderInfo}; `reflectWgsl` in `./reflect-wgsl` is the one detloss provides. */
export type ShaderReflector = (code: string) => ShaderInfo;
