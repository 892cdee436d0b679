import type { OpDescriptor } from '../ops/types';
import { OPS } from '../ops/registry';
import type { SharedOptions } from '../ops/validate';
import { runCall, runCallResident, runCallSync } from './call/entry';
import { copyThroughGuard, type GuardedCopy } from './call/guard';
import { readBuffer } from './call/results';
import type { Runtime, SyncCall } from './call/runtime';
import { LateVerdicts } from './call/status';
import { PipelineCache } from './compile/pipelines';
import { WG } from './device/constants';
import { choosePlan } from './device/launch-plan';
import { Liveness } from './device/liveness';
import { contextLimits, deviceFacts, openDevice } from './device/open';
import { checkOptions, checkPlanFits } from './device/options';
import { checkPlanRecords } from './device/plan-record';
import { warmKernels, type WarmItem } from './call/warm';
import { Timestamps } from './device/timestamps';
import { PlanBook, UsageLog } from './device/plan-book';
import { DummyBuffers } from './memory/dummies';
import { tunePlans } from './tune/tuner';
import { VERSION } from '../version';
import { BufferPool } from './memory/pool';
import type { AdapterFacts, AnyInput, ContextLimits, DetlossOptions, DetlossStats, GpuTensor, LaunchPlan, PlanRecord, ResidentResult, RunResult, TuneOptions } from './public';

// The context on top of the runtime's rooms: public.ts (the types users name) <- device/ (adapter,
// limits, options, launch plans, timestamps, error scopes) <- memory/ (the buffer pool, dummy
// buffers, a call's allocation and staging) and compile/ (the fused shaders' ABI, reflection, the
// contract check, kernel choice, the pipeline cache) <- call/ (one call: inputs, plan, bindings,
// encoding, the fused and program paths, results; call/entry.ts picks the path) <- this file.

/** The runtime parts of each context, kept out of the class's public shape. */
const runtimes = new WeakMap<Detloss, Runtime>();

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

  constructor(device: GPUDevice, adapter: AdapterFacts, options: DetlossOptions = {}) {
    checkOptions(options);
    this.device = device;
    this.adapter = adapter;
    this.limits = contextLimits(device, options);
    const { kind, ...fields } = typeof options.plan === 'object' ? options.plan : { kind: options.plan };
    this.plan = choosePlan(adapter, kind, { ...fields, maxThreads: options.maxThreads ?? fields.maxThreads, rowThreshold: options.rowThreshold ?? fields.rowThreshold });
    this.plan.maxThreads = Math.max(WG, this.plan.maxThreads);
    checkPlanFits(this.plan, device);
    const book = new PlanBook(this.plan, adapter, VERSION, options.plans);
    const rt: Runtime = {
      device,
      adapter,
      limits: this.limits,
      plan: this.plan,
      timestamps: new Timestamps(device, !!options.timestamps && device.features.has('timestamp-query')),
      pool: new BufferPool(device, this.limits.maxBufferSize),
      kernels: new PipelineCache(device, this.plan, adapter),
      dummies: new DummyBuffers(device),
      liveness: new Liveness(device),
      late: new LateVerdicts(),
      book,
      usage: new UsageLog(),
    };
    runtimes.set(this, rt);
  }

  private get rt(): Runtime {
    return runtimes.get(this)!;
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
    return runCall(this.rt, op, inputs, options);
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
    return runCallResident(this.rt, op, inputs, options);
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
  async warmup(ops?: WarmItem[]): Promise<void> {
    this.rt.liveness.check();
    await warmKernels(this.rt, ops ?? Object.values(OPS).filter((d) => d.gpu).map((d) => d.name));
  }

  /**
   * Times candidate launch plans for the ops and sizes named (default: those this context has
   * warmed up or run) and keeps the fastest per op family and size class; later calls of those
   * run it. Resolves with a record to keep (`createDetloss({ plans })` loads it). Calls made
   * meanwhile run as usual, on the plans held before.
   *
   * @example
   * const record = await dl.tune({ ops: ['smooth_l1', { op: 'cross_entropy', dims: { c: 80 } }], sizes: [1e6] });
   * localStorage.setItem('detloss-plans', JSON.stringify(record));
   */
  async tune(options: TuneOptions = {}): Promise<PlanRecord> {
    this.rt.liveness.check();
    this.rt.late.throwFailure();
    return tunePlans(this.rt, options);
  }

  /**
   * Loads tuned plans (what `tune()` returned) into this context, as `createDetloss({ plans })`
   * does: records for another adapter or version are ignored with a warning in `stats().plan`.
   */
  usePlans(plans: PlanRecord | readonly PlanRecord[]): void {
    checkPlanRecords(plans);
    this.rt.book!.load(plans);
  }

  /** Bytes the pool holds and uses, pipeline cache counters, and the last call's dispatches/submits/readbacks. */
  stats(): DetlossStats {
    const { pool, kernels, last: l, book } = this.rt;
    const last = l && { ...l, passes: l.passes?.map((p) => ({ ...p })) };
    const plan = { ...this.plan, tuned: book!.choices().map((c) => structuredClone(c)), warnings: [...book!.warnings] };
    return { ...pool.stats(), pipelinesCompiled: kernels.compiled, pipelineCacheHits: kernels.hits, lastCall: last, plan };
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


// For this package's entry points and framework adapters (detloss/tfjs, detloss/ort), not exported
// by the package: what they need of a context, so that no code outside the runtime reaches into its rooms.

/** A context on a new device from `navigator.gpu` or `options.gpu`, or on `options.device` (see `createDetloss`). */
export async function openContext<C extends Detloss>(make: new (device: GPUDevice, adapter: AdapterFacts, options: DetlossOptions) => C, options: DetlossOptions = {}): Promise<C> {
  const { device, adapter } = await openDevice(options);
  return new make(device, adapter, options);
}

/** A context on a device the caller already has (a framework's), its adapter facts read from the device. */
export function contextOn<C extends Detloss>(make: new (device: GPUDevice, adapter: AdapterFacts, options: DetlossOptions) => C, device: GPUDevice, options: DetlossOptions = {}): C {
  checkContextOptions(device, options);
  return new make(device, deviceFacts(device), { ...options, device });
}

/** Checks the options of a context on `device` as {@link contextOn} would, making nothing. */
export function checkContextOptions(device: GPUDevice, options: DetlossOptions): void {
  checkOptions({ ...options, device });
}

/** Whether `destroy()` was called on the context. */
export function isDestroyed(dl: Detloss): boolean {
  return runtimes.get(dl)!.liveness.destroyed;
}

/** Submits a call before returning: GPU tensors in, pooled buffers out, the GPU's verdict in `settled` (see call/entry.ts). */
export function runSync(dl: Detloss, op: string | OpDescriptor, inputs: Record<string, GpuTensor | undefined>, options: SharedOptions & Record<string, unknown>, guard = false): SyncCall {
  return runCallSync(runtimes.get(dl)!, op, inputs, options, guard);
}

/** Copies a guarded synchronous call's outputs into the caller's buffers (see call/guard.ts). */
export function guardedCopies(dl: Detloss, desc: OpDescriptor, call: SyncCall, copies: readonly GuardedCopy[], into: string): { compiled: Promise<void>; copied: Promise<void> } {
  return copyThroughGuard(runtimes.get(dl)!, desc, call, copies, into);
}

/** Waits for every verdict the context's resident calls owe, without throwing the failure (`flush()` throws it). */
export function verdictsSettled(dl: Detloss): Promise<void> {
  return runtimes.get(dl)!.late.settled();
}

/** Reads `bytes` of a buffer the context handed over back to the host. */
export function readOutput(dl: Detloss, buffer: GPUBuffer, bytes: number, label: string): Promise<Float32Array> {
  return readBuffer(runtimes.get(dl)!, buffer, bytes, label);
}

export { LateVerdicts };
export type { GuardedCopy, SyncCall };
