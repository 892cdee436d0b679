import type { OpDescriptor } from '../../ops/types';
import type { Resolved } from '../../ops/validate';
import type { PipelineCache } from '../compile/pipelines';
import type { Liveness } from '../device/liveness';
import type { PlanBook, UsageLog } from '../device/plan-book';
import type { CallTiming, Timestamps } from '../device/timestamps';
import type { CallOutputs, Tensor } from '../memory/allocation';
import type { DummyBuffers } from '../memory/dummies';
import type { BufferPool } from '../memory/pool';
import type { Staging } from '../memory/staging';
import type { LastCall, LaunchPlan } from '../public';
import type { PlanContext } from './plan';
import type { CallStatus, LateVerdicts, ValueCheck } from './status';

// The aggregates of a call: what a context's parts look like to the code that runs a call, a
// call's buffers, and a call the GPU accepted. Types only, above everything they gather.

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
  /** The tuned plans by op family and size class. */
  readonly book?: PlanBook;
  /** The ops and sizes the context's calls used (what `tune()` takes by default). */
  readonly usage?: UsageLog;
  /** A plan every fused call of this runtime runs (the tuner's candidate, on its own copy of the runtime). */
  readonly force?: LaunchPlan;
}

/** The buffers of one call of the fused path. */
export interface CallBuffers {
  tensors: Record<string, Tensor | undefined>;
  out: CallOutputs;
  partials?: GPUBuffer;
  /** The reduction levels' intermediate sums (levels write here and into `partials` in turn). */
  partials2?: GPUBuffer;
  uniforms: GPUBuffer;
  /** The GPU-summed 'mean' denominator's reciprocal (4 bytes), copied into the uniforms' scales. */
  denominator?: GPUBuffer;
  /** Timestamp queries of the call's passes, and where they are resolved. */
  timing?: CallTiming;
  /** The status words: the value checks of GPU-resident inputs, and the "work ran" marker. */
  status?: CallStatus;
}

/** A call whose work the GPU accepted; its outputs are still to be read or handed over. */
export interface SubmittedCall {
  desc: OpDescriptor;
  r: Resolved;
  out: CallOutputs;
  staging: Staging[];
  /** Returns inputs and scratch buffers to the pool (once). */
  release: () => void;
  /** Returns the outputs to the pool (once). */
  releaseOutputs: () => void;
  last: LastCall;
  timingPasses?: string[];
  /** The output's shape when the call sets it (a program op's reduced output), else as `r` says. */
  shape?: number[];
  /** The value checks whose status words come back in the staging (`run` refuses the call on a failed one). */
  checks?: ValueCheck[];
}

/** A call submitted synchronously (framework adapters): its outputs, and the GPU's verdict still to come. */
export interface SyncCall {
  out: CallOutputs;
  /** The shape of each named output (`out.named`). */
  outputShapes: Record<string, number[]>;
  /** The loss's shape: `[]` when reduced, the 'none' shape, or a program op's own (`[2]` for rank_sort). */
  shape: number[];
  release: () => void;
  releaseOutputs: () => void;
  /** Resolves when the GPU accepted the kernels, buffers and work; rejects with `pipeline`, `gpu_out_of_memory` or `gpu_validation`. */
  settled: Promise<void>;
  /** The status words (with `guard`): the value checks of GPU-resident inputs and the "work ran" marker. */
  status?: CallStatus;
}
