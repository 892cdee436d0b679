import type { OpDescriptor } from '../ops/types';
import { OPS, getOp } from '../ops/registry';
import { resolveOptions, type Resolved, type SharedOptions } from '../ops/validate';
import { DummyBuffers } from './bindings';
import { contextLimits, Liveness, type AdapterFacts } from './device';
import { executeCall } from './execute';
import { requireKernel } from './kernel-choice';
import { checkOptions, type DetlossOptions } from './options';
import { PipelineCache } from './pipelines';
import { choosePlan, type LaunchPlan } from './plan';
import { LateVerdicts } from './checks';
import { BufferPool } from './pool';
import { readBack, residentResult } from './readback';
import { Timestamps } from './timestamps';
import { WG, type AnyInput, type ContextLimits, type DetlossStats, type GpuTensor, type ResidentResult, type Runtime, type RunResult } from './types';

// The runtime's parts, by concern: options.ts and device.ts (options, device, adapter, limits),
// pipelines.ts and kernel-choice.ts (kernel keys and the pipeline cache), call-inputs.ts,
// call-plan.ts, call-buffers.ts and execute.ts (one call, up to its submit), encode.ts,
// bindings.ts and fused-slots.ts (passes, bind groups, uniform slots), readback.ts and
// timestamps.ts (results); types.ts holds the shared types and constants.
export { WG } from './types';
export type { AnyInput, DetlossStats, GpuTensor, ResidentResult, RunResult } from './types';
export type { DetlossOptions } from './options';
export { checkOptions } from './options';
export type { AdapterFacts } from './device';
export { openDevice, REQUESTED_LIMITS } from './device';

/**
 * A detloss context on one GPU device: runs any op of the catalogue, caches pipelines,
 * pools buffers. Create it with {@link createDetloss}.
 */
export class Detloss {
  readonly device: GPUDevice;
  readonly adapter: AdapterFacts;
  /** The limits the runtime plans with. */
  readonly limits: ContextLimits;
  /** How this context launches its kernels (chosen from the adapter; see `createDetloss({ plan })`). */
  readonly plan: LaunchPlan;
  private readonly rt: Runtime;

  constructor(device: GPUDevice, adapter: AdapterFacts, options: DetlossOptions = {}) {
    checkOptions(options);
    this.device = device;
    this.adapter = adapter;
    this.limits = contextLimits(device, options);
    const { kind, ...fields } = typeof options.plan === 'object' ? options.plan : { kind: options.plan };
    this.plan = choosePlan(adapter, kind, { ...fields, maxThreads: options.maxThreads ?? fields.maxThreads, rowThreshold: options.rowThreshold ?? fields.rowThreshold });
    this.plan.maxThreads = Math.max(WG, this.plan.maxThreads);
    this.rt = {
      device,
      adapter,
      limits: this.limits,
      plan: this.plan,
      timestamps: new Timestamps(device, !!options.timestamps && device.features.has('timestamp-query')),
      pool: new BufferPool(device, this.limits.maxBufferSize),
      kernels: new PipelineCache(device, this.plan),
      dummies: new DummyBuffers(device),
      liveness: new Liveness(device),
      late: new LateVerdicts(),
    };
  }

  /**
   * Runs an op's fused forward and backward pass on the GPU and reads loss and gradients back
   * (one submit, one readback). Inputs are typed arrays, `{ data, shape }`, or tensors already
   * on the device (`GPUBuffer` or `{ buffer, shape }`), which are not copied.
   *
   * Host arrays are taken when the call is made: the values are uploaded before `run` returns
   * its promise, so the caller may reuse or change them at once.
   *
   * @example
   * const r = await dl.run('smooth_l1', { pred, target }, { beta: 0.11, reduction: 'mean' });
   * r.loss[0]; r.grad.pred;
   */
  run<N extends import('../ops/op-types').OpName>(op: N, inputs: import('../ops/op-types').DeviceInputs<N, GpuTensor>, options?: import('../ops/op-types').OpOptions<N>): Promise<RunResult>;
  run<S extends string>(op: import('../ops/op-types').DynamicOpName<S> | OpDescriptor, inputs: Record<string, AnyInput | undefined>, options?: SharedOptions & Record<string, unknown>): Promise<RunResult>;
  async run(op: string | OpDescriptor, inputs: Record<string, AnyInput | undefined>, options: SharedOptions & Record<string, unknown> = {}): Promise<RunResult> {
    this.rt.late.throwFailure();
    return readBack(this.rt, await executeCall(this.rt, op, inputs, options, true));
  }

  /**
   * Like {@link run}, but leaves loss and gradients on the device: no readback. For apps whose
   * tensors live on the GPU. Call `release()` on the result when done with its buffers. A
   * gradient of an empty input is a buffer with `gradBytes` 0, as `run` returns an empty array.
   *
   * @example
   * const r = await dl.runResident('l1', { pred: predBuf, target: targetBuf }, { reduction: 'sum' });
   * encoder.copyBufferToBuffer(r.grad.pred, 0, myGradBuffer, 0, n * 4);
   * r.release();
   */
  runResident<N extends import('../ops/op-types').OpName>(op: N, inputs: import('../ops/op-types').DeviceInputs<N, GpuTensor>, options?: import('../ops/op-types').OpOptions<N>): Promise<ResidentResult>;
  runResident<S extends string>(op: import('../ops/op-types').DynamicOpName<S> | OpDescriptor, inputs: Record<string, AnyInput | undefined>, options?: SharedOptions & Record<string, unknown>): Promise<ResidentResult>;
  async runResident(op: string | OpDescriptor, inputs: Record<string, AnyInput | undefined>, options: SharedOptions & Record<string, unknown> = {}): Promise<ResidentResult> {
    this.rt.late.throwFailure();
    return residentResult(this.rt, await executeCall(this.rt, op, inputs, options, false));
  }

  /**
   * Waits for the checks of every resident call made so far and throws the first failure among
   * them that no call has thrown yet. A resident call checks the labels and targets it takes as
   * GPU buffers (and, with `check: true`, that its float inputs are finite) on the GPU, without
   * waiting for the answer: the elements a bad value reaches hold NaN, and the refusal
   * (`invalid_value`, naming the input and the first bad index) is thrown by the context's next
   * call, or here.
   *
   * @example
   * const r = await dl.runResident('cross_entropy', { logits, labels: labelBuffer });
   * await dl.flush(); // throws if a label was not a class
   */
  async flush(): Promise<void> {
    await this.rt.late.flush();
  }

  /**
   * Compiles pipelines ahead of the first call, so a training loop does not stall on its first step.
   * Give op names (default parameters) or `{ op, options }` for non-default compile-time choices.
   *
   * @example
   * await dl.warmup(['smooth_l1', { op: 'iou_loss', options: { variant: 'ciou' } }]);
   */
  async warmup(ops?: (string | { op: string | OpDescriptor; options?: Record<string, unknown>; dims?: Record<string, number> })[]): Promise<void> {
    this.rt.liveness.check();
    const { kernels } = this.rt;
    const list = ops ?? Object.values(OPS).filter((d) => d.gpu).map((d) => d.name);
    await Promise.all(
      list.map(async (item) => {
        const { op, options } = typeof item === 'string' ? { op: item, options: {} } : { options: {}, ...item };
        const desc = getOp(op);
        requireKernel(desc);
        const o = resolveOptions(desc, options ?? {});
        const dims = typeof item === 'string' ? {} : item.dims ?? {};
        const r = { ...o, dims } as unknown as Resolved;
        await kernels.pipeline(kernels.kernelKey(desc, r));
        // An aux number (Wise-IoU's batch mean) has its own entry point.
        if (desc.gpu?.aux?.when(r.params)) await kernels.pipeline(kernels.kernelKey(desc, r, desc.gpu.aux.entry));
        // A program op (the ranking losses) runs every pass's entry point.
        for (const pass of desc.gpu?.program?.passes ?? []) await kernels.pipeline(kernels.kernelKey(desc, r, pass.entry));
        // The output's size picks scalar or vec4 at run time: without it, both are warmed.
        if (desc.gpu?.vec4 && this.plan.vectorWidth === 4) await kernels.pipeline(kernels.kernelKey(desc, { ...r, outCount: 0 }));
      }),
    );
    await kernels.pipeline(kernels.reduceKey);
  }

  /** Bytes the pool holds and uses, pipeline cache counters, and the last call's dispatches/submits/readbacks. */
  stats(): DetlossStats {
    const { pool, kernels, last: l } = this.rt;
    const last = l && { ...l, passes: l.passes?.map((p) => ({ ...p })) };
    return { ...pool.stats(), pipelinesCompiled: kernels.compiled, pipelineCacheHits: kernels.hits, lastCall: last, plan: { ...this.plan } };
  }

  /** Frees pooled buffers that are not in use. */
  trim(): void {
    this.rt.pool.trim();
  }

  /** Frees every buffer; the context cannot be used afterwards. The device is left alone. */
  destroy(): void {
    this.rt.liveness.destroyed = true;
    this.rt.pool.destroy();
    this.rt.dummies.destroy();
    this.rt.timestamps.destroy();
  }
}

/**
 * The runtime parts of a context, which the class keeps private: for this package's own
 * synchronous path (src/runtime/execute-sync.ts). Not exported from the package.
 */
export function runtimeOf(dl: Detloss): Runtime {
  return dl['rt'];
}
