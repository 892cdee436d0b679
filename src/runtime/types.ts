import type { HostTensor } from '../ops/inputs';
import type { DummyBuffers } from './bindings';
import type { LateVerdicts } from './checks';
import type { PlanContext } from './call-plan';
import type { Liveness } from './device';
import type { PipelineCache } from './pipelines';
import type { LaunchPlan, PlanLimits } from './plan';
import type { BufferPool, PoolStats } from './pool';
import type { Timestamps } from './timestamps';

/** Workgroup size of every fused pass (the `WG` override). */
export const WG = 64;
/** GPUBufferUsage.STORAGE, spelled out so these modules load where the global is missing. */
export const STORAGE = 0x80;
/** The GPUBufferUsage flags the runtime uses. */
export const USAGE = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE, QUERY_RESOLVE: 0x200 } as const;
/** The staging part that carries a call's resolved timestamps. */
export const TIMESTAMPS = '#timestamps';
/** The staging part that carries the call's aux number (GpuKernel.aux). */
export const AUX = '#aux';

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
  lastCall?: { op: string; kernel: string; dispatches: number; submits: number; readbacks: number; gpuMs?: number; passes?: { name: string; gpuMs: number }[] };
  /** The launch plan of this context. */
  plan: LaunchPlan;
}

/** One call's record, as `stats().lastCall` reports it. */
export type LastCall = NonNullable<DetlossStats['lastCall']>;

/** The limits a context plans with. */
export type ContextLimits = PlanLimits & { maxBufferSize: number };

/** A buffer holding a tensor, and the bytes of it that do. */
export interface Tensor {
  buffer: GPUBuffer;
  bytes: number;
}

/** A context's parts, as the functions that run a call see them. */
export interface Runtime extends PlanContext {
  readonly pool: BufferPool;
  readonly kernels: PipelineCache;
  readonly dummies: DummyBuffers;
  readonly liveness: Liveness;
  readonly timestamps: Timestamps;
  /** The verdicts resident calls still owe (value checks read back later). */
  readonly late: LateVerdicts;
  /** The last call's record (`stats().lastCall`), set when its work is submitted. */
  last?: LastCall;
}
