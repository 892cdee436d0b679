import reduceWgsl from '../../shaders/reduce.wgsl?raw';
import { DetlossError } from '../errors';
import { checkShape, hostInputs, type HostArray, type HostTensor } from '../ops/inputs';
import { getOp, OPS } from '../ops/registry';
import { snake, type GpuKernel, type OpDescriptor } from '../ops/types';
import { describeValue, resolve, resolveOptions, type InputInfo, type Resolved, type SharedOptions } from '../ops/validate';
import { checkFinite } from '../cpu/run';
import { choosePlan, MAX_REDUCE_PER, planChunks, reduceLevels, type Chunk, type LaunchPlan, type PlanLimits, type ReduceLevel } from './plan';
import { BufferPool, type PoolStats } from './pool';
import { packUniform, reflectShader, type BindingInfo, type ShaderInfo } from './reflect';
import { contractProblems } from './contract';

/** Workgroup size of every fused pass (the `WG` override). */
export const WG = 64;
const SLOT = 512; // bytes per uniform slot: `run` at +0, `params` at +256
const FLAG = { weight: 1, gradOutput: 2, gradOutputElementwise: 4, storeLoss: 8, grad: 16 } as const;
const STORAGE = 0x80; // GPUBufferUsage.STORAGE, spelled out so this module loads where the global is missing
const USAGE = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE, QUERY_RESOLVE: 0x200 } as const;
/** The staging part that carries a call's resolved timestamps. */
const TIMESTAMPS = '#timestamps';

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
}

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
}

/** What {@link Detloss.stats} reports. */
export interface DetlossStats extends PoolStats {
  pipelinesCompiled: number;
  pipelineCacheHits: number;
  /** Work done by the last call; `gpuMs` and `passes` with `timestamps: true` on a device that can time them. */
  lastCall?: { op: string; dispatches: number; submits: number; readbacks: number; gpuMs?: number; passes?: { name: string; gpuMs: number }[] };
  /** The launch plan of this context. */
  plan: LaunchPlan;
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

interface Tensor {
  buffer: GPUBuffer;
  bytes: number;
}

interface Kernel {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  info: ShaderInfo;
}

/** What a kernel key is compiled from. */
interface KernelSpec {
  id: string;
  code: string;
  entry: string;
  constants: Record<string, number>;
  label: string;
}

/** A readback buffer and the outputs copied into it (`name` undefined: the loss). */
interface Staging {
  buffer: GPUBuffer;
  bytes: number;
  parts: { name?: string; bytes: number; at: number }[];
}

/** One call's work as plain data: chunks, partials, reduction levels and the packed uniform bytes. */
interface CallPlan {
  chunks: Chunk[];
  perRow: Record<string, number>;
  totalPartials: number;
  /** The reduction tree's levels (none for reduction 'none'). */
  levels: ReduceLevel[];
  uniforms: ArrayBuffer;
  uniformBytes: number;
  /** Offset of the first reduction level's uniform slot (one slot per level after it). */
  redAt: number;
  /** Offset of the denominator tree's first slot, when the 'mean' denominator is summed on the GPU. */
  denomAt?: number;
}

/** The buffers of one call. */
interface CallBuffers {
  tensors: Record<string, Tensor | undefined>;
  out: { loss: Tensor; lossBytes: number; grads: Record<string, Tensor>; emptyGrads: string[] };
  partials?: GPUBuffer;
  /** The reduction levels' intermediate sums (levels write here and into `partials` in turn). */
  partials2?: GPUBuffer;
  uniforms: GPUBuffer;
  /** The GPU-summed 'mean' denominator's reciprocal (4 bytes), copied into the uniforms' scales. */
  denominator?: GPUBuffer;
  /** Timestamp queries of the call's passes, and where they are resolved. */
  timing?: { querySet: GPUQuerySet; resolve: GPUBuffer; passes: string[] };
}

/** Byte offset of a uniform member (the runtime copies GPU-computed values into some). */
function memberOffset(layout: ShaderInfo['uniforms'][string] | undefined, name: string): number {
  const m = layout?.members.find((x) => x.name === name);
  if (!m) throw new DetlossError('pipeline', `uniform ${layout?.name ?? '?'} has no member ${name}`);
  return m.offset;
}

function isGpuBuffer(x: unknown): x is GPUBuffer {
  return typeof x === 'object' && x !== null && typeof (x as GPUBuffer).mapAsync === 'function' && typeof (x as GPUBuffer).usage === 'number';
}
function isGpuTensor(x: unknown): x is GpuTensor {
  return isGpuBuffer(x) || (typeof x === 'object' && x !== null && isGpuBuffer((x as { buffer?: unknown }).buffer));
}

/**
 * A detloss context on one GPU device: runs any op of the catalogue, caches pipelines,
 * pools buffers. Create it with {@link createDetloss}.
 */
export class Detloss {
  readonly device: GPUDevice;
  readonly adapter: AdapterFacts;
  /** The limits the runtime plans with. */
  readonly limits: PlanLimits & { maxBufferSize: number };
  /** How this context launches its kernels (chosen from the adapter; see `createDetloss({ plan })`). */
  readonly plan: LaunchPlan;
  private readonly timestamps: boolean;
  private queries?: GPUQuerySet;
  private readonly pool: BufferPool;
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly layouts = new Map<string, GPUBindGroupLayout>();
  private readonly pipelines = new Map<string, Promise<Kernel>>();
  private readonly ready = new Map<string, Kernel>();
  private readonly specs = new Map<string, KernelSpec>();
  private readonly reduceKey: string;
  private readonly dummies = new Map<string, GPUBuffer>();
  private readonly checked = new Set<string>();
  private compiled = 0;
  private hits = 0;
  private last?: DetlossStats['lastCall'];
  private lostReason?: string;
  private readonly lostPromise: Promise<never>;
  private destroyed = false;

  constructor(device: GPUDevice, adapter: AdapterFacts, options: DetlossOptions = {}) {
    checkOptions(options);
    this.device = device;
    this.adapter = adapter;
    const dl = device.limits;
    const cap = (k: keyof NonNullable<DetlossOptions['limits']>) => Math.min(dl[k], options.limits?.[k] ?? Infinity);
    this.limits = {
      maxStorageBufferBindingSize: cap('maxStorageBufferBindingSize'),
      maxBufferSize: cap('maxBufferSize'),
      maxComputeWorkgroupsPerDimension: cap('maxComputeWorkgroupsPerDimension'),
      minStorageBufferOffsetAlignment: dl.minStorageBufferOffsetAlignment,
    };
    const { kind, ...fields } = typeof options.plan === 'object' ? options.plan : { kind: options.plan };
    this.plan = choosePlan(adapter, kind, { ...fields, maxThreads: options.maxThreads ?? fields.maxThreads, rowThreshold: options.rowThreshold ?? fields.rowThreshold });
    this.plan.maxThreads = Math.max(WG, this.plan.maxThreads);
    this.timestamps = !!options.timestamps && device.features.has('timestamp-query');
    this.pool = new BufferPool(device, this.limits.maxBufferSize);
    this.reduceKey = this.defineKernel('reduce', reduceWgsl, 'reduce_partials', { RWG: this.plan.reduceLanes }, 'reduce');
    this.lostPromise = device.lost.then((info) => {
      this.lostReason = `${info.reason ?? 'unknown'}${info.message ? `: ${info.message}` : ''}`;
      throw this.lostError();
    });
    this.lostPromise.catch(() => {});
  }

  private lostError() {
    return new DetlossError('device_lost', `the GPU device was lost (${this.lostReason}); create a new context with createDetloss()`);
  }

  private destroyedError() {
    return new DetlossError('destroyed', 'this detloss context was destroyed (destroy() was called); create a new one with createDetloss()');
  }

  private alive() {
    if (this.destroyed) throw this.destroyedError();
    if (this.lostReason !== undefined) throw this.lostError();
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
  async run(op: string | OpDescriptor, inputs: Record<string, AnyInput | undefined>, options: SharedOptions & Record<string, unknown> = {}): Promise<RunResult> {
    const x = await this.execute(op, inputs, options, true);
    const { desc, r, out, staging } = x;
    try {
      x.last.readbacks = staging.length;
      // Queue operations are ordered: the outputs may serve the next call while this one maps.
      x.release();
      x.releaseOutputs();
      this.alive();
      await Promise.all(staging.map((s) => this.map(s.buffer, desc.name)));
      const loss = new Float32Array(out.lossBytes / 4);
      const grad: Record<string, Float32Array> = {};
      for (const s of staging) {
        const range = s.buffer.getMappedRange(0, s.bytes);
        const all = new Float32Array(range);
        for (const part of s.parts) {
          const values = all.subarray(part.at / 4, (part.at + part.bytes) / 4);
          if (part.name === undefined) loss.set(values);
          else if (part.name === TIMESTAMPS) this.readTimestamps(x.last, x.timingPasses!, new DataView(range, part.at, part.bytes));
          else grad[part.name] = values.slice();
        }
        s.buffer.unmap();
      }
      for (const name of out.emptyGrads) grad[name] = new Float32Array(0);
      return { loss, shape: r.reduction === 'none' ? r.outShape : [], grad };
    } finally {
      x.release();
      x.releaseOutputs();
      for (const s of staging) this.pool.release(s.buffer);
    }
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
  async runResident(op: string | OpDescriptor, inputs: Record<string, AnyInput | undefined>, options: SharedOptions & Record<string, unknown> = {}): Promise<ResidentResult> {
    const x = await this.execute(op, inputs, options, false);
    x.release();
    try {
      // With timestamps, wait for them (the one map of a resident call).
      for (const s of x.staging) {
        this.alive();
        await this.map(s.buffer, x.desc.name);
        this.readTimestamps(x.last, x.timingPasses!, new DataView(s.buffer.getMappedRange(0, s.bytes)));
        s.buffer.unmap();
        x.last.readbacks++;
      }
      // The work is submitted; a context destroyed (or a device lost) meanwhile has no valid buffers to give.
      this.alive();
    } catch (e) {
      x.releaseOutputs();
      throw e;
    } finally {
      for (const s of x.staging) this.pool.release(s.buffer);
    }
    const grad: Record<string, GPUBuffer> = {};
    const gradBytes: Record<string, number> = {};
    for (const [name, t] of Object.entries(x.out.grads)) {
      grad[name] = t.buffer;
      gradBytes[name] = t.bytes;
    }
    let released = false;
    return {
      loss: x.out.loss.buffer,
      lossBytes: x.out.lossBytes,
      shape: x.r.reduction === 'none' ? x.r.outShape : [],
      grad,
      gradBytes,
      release: () => {
        if (released) return;
        released = true;
        x.releaseOutputs();
      },
    };
  }

  /**
   * Validates, uploads and submits one call. Everything up to the upload of host arrays runs
   * synchronously, before the returned promise exists, so inputs are taken at call time; when the
   * pipelines are already compiled the work is encoded and submitted synchronously too. Buffers
   * are created inside error scopes: a failed allocation is `gpu_out_of_memory` and leaves the
   * pool's books as they were. The result's `release` returns inputs and scratch buffers to the
   * pool; `releaseOutputs` the outputs.
   */
  private async execute(op: string | OpDescriptor, inputs: Record<string, AnyInput | undefined>, options: SharedOptions & Record<string, unknown>, readback: boolean) {
    this.alive();
    const desc = getOp(op);
    if (typeof inputs !== 'object' || inputs === null) throw new DetlossError('missing_input', `${desc.name}: inputs must be an object`, 'inputs');
    const host: Record<string, HostTensor> = {};
    const gpu: Record<string, GpuTensor> = {};
    for (const [name, v] of Object.entries(inputs)) {
      if (v === undefined || v === null) continue;
      if (isGpuTensor(v)) gpu[name] = v;
      else host[name] = v as HostTensor;
    }
    const onDevice = Object.keys(gpu).length > 0;
    const { data, info } = hostInputs(desc.name, host);
    for (const [name, t] of Object.entries(gpu)) info[name] = this.gpuInfo(desc, name, t);
    const r = resolve(desc, info, options, false);
    desc.validate?.(data, r.params, r.dims, r.given);
    if (r.check) {
      if (onDevice) throw new DetlossError('invalid_param', `${desc.name}: check: true needs host arrays; GPU buffers cannot be scanned without a readback`, 'check');
      checkFinite(desc, data);
    }
    const gk = this.requireKernel(desc);
    // A 'mean' whose denominator depends on data the host does not have: summed on the GPU first.
    const gpuDenominator = !!desc.meanDenominator && r.reduction === 'mean' && r.avgFactor === undefined && onDevice;
    if (gpuDenominator && !gk.denominator) {
      throw new DetlossError('invalid_param', `${desc.name}: reduction 'mean' with GPU-resident inputs needs avgFactor (its denominator depends on the data)`, 'avgFactor');
    }
    const reduced = r.reduction !== 'none';
    const kernelKey = this.kernelKey(desc, r);
    const denomKey = gpuDenominator ? this.kernelKey(desc, r, gk.denominator) : undefined;
    const kernelP = this.pipeline(kernelKey);
    const reduceP = reduced ? this.pipeline(this.reduceKey) : undefined;
    const denomP = denomKey ? this.pipeline(denomKey) : undefined;
    // A call that fails before awaiting them must not leave a rejected promise unhandled.
    kernelP.catch(() => {});
    reduceP?.catch(() => {});
    denomP?.catch(() => {});
    const scale = gpuDenominator ? 0 : this.meanScale(desc, r, data);
    const present = new Set(Object.keys(desc.inputs).filter((name) => (info[name]?.length ?? 0) > 0));
    const plan = this.planCall(desc, gk, r, scale, present, gpuDenominator);
    // Every size check before any allocation: a problem too large is refused with nothing done.
    const outs = this.outputSizes(desc, r);
    for (const [name, arr] of Object.entries(data)) if (arr) this.checkSize(desc, name, arr.byteLength);
    const timingPasses = this.timestamps ? [...(gpuDenominator ? ['denominator'] : []), 'fused', ...(reduced ? ['reduce'] : [])] : undefined;
    const timingBytes = (timingPasses?.length ?? 0) * 16;
    // The timestamps ride in the results' readback; the resident path reads them alone.
    const stagingPlan = readback ? this.stagingPlan(outs, timingBytes) : timingBytes ? [{ bytes: timingBytes, parts: [{ name: TIMESTAMPS, bytes: timingBytes, at: 0 }] }] : [];

    const fresh = new Set<GPUBuffer>();
    const scratch: GPUBuffer[] = [];
    const outputs: GPUBuffer[] = [];
    const acquire = (bytes: number, usage: number, label: string, list: GPUBuffer[]) => {
      const b = this.pool.acquire(bytes, usage, `detloss:${desc.name}:${label}`, fresh);
      list.push(b);
      return b;
    };
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      for (const b of scratch) this.pool.release(b);
    };
    let outputsReleased = false;
    const releaseOutputs = () => {
      if (outputsReleased) return;
      outputsReleased = true;
      outputs.forEach((b) => this.pool.release(b));
    };
    const discardAll = () => {
      released = true;
      outputsReleased = true;
      for (const b of [...scratch, ...outputs, ...staging.map((s) => s.buffer)]) {
        if (fresh.has(b)) this.pool.discard(b);
        else this.pool.release(b);
      }
    };

    const outUsage = readback ? USAGE.STORAGE | USAGE.COPY_SRC : USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST;
    const staging: Staging[] = [];
    let bufs: CallBuffers;
    let allocErrors: Promise<(GPUError | null)[]>;
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
    try {
      const out = {
        loss: { buffer: acquire(Math.max(outs.lossBytes, 4), outUsage, 'loss', outputs), bytes: outs.lossBytes },
        lossBytes: outs.lossBytes,
        grads: {} as Record<string, Tensor>,
        emptyGrads: outs.emptyGrads,
      };
      for (const [name, bytes] of Object.entries(outs.grads)) out.grads[name] = { buffer: acquire(bytes, outUsage, `grad.${name}`, outputs), bytes };
      // The resident path hands every gradient over as a buffer, an empty one too (0 bytes of it hold data).
      if (!readback) for (const name of outs.emptyGrads) out.grads[name] = { buffer: acquire(4, outUsage, `grad.${name}`, outputs), bytes: 0 };
      for (const s of stagingPlan) staging.push({ ...s, buffer: acquire(s.bytes, USAGE.MAP_READ | USAGE.COPY_DST, 'staging', []) });
      const tensors: Record<string, Tensor | undefined> = {};
      for (const [name, t] of Object.entries(gpu)) {
        tensors[name] = info[name]!.length ? { buffer: isGpuBuffer(t) ? t : t.buffer, bytes: info[name]!.length * 4 } : undefined;
      }
      for (const [name, arr] of Object.entries(data)) {
        if (!arr || arr.length === 0) continue;
        const buf = acquire(arr.byteLength, USAGE.STORAGE | USAGE.COPY_DST, name, scratch);
        this.upload(buf, arr);
        tensors[name] = { buffer: buf, bytes: arr.byteLength };
      }
      const partials = reduced ? acquire(Math.max(4, plan.totalPartials * 4), USAGE.STORAGE, 'partials', scratch) : undefined;
      const partials2 = plan.levels.length > 1 ? acquire(plan.levels[0].groups * 4, USAGE.STORAGE, 'partials2', scratch) : undefined;
      const uniforms = acquire(plan.uniformBytes, USAGE.UNIFORM | USAGE.COPY_DST, 'uniforms', scratch);
      const denominator = gpuDenominator ? acquire(4, USAGE.STORAGE | USAGE.COPY_SRC, 'denominator', scratch) : undefined;
      const timing = timingPasses && {
        querySet: this.querySet(),
        resolve: acquire(timingBytes, USAGE.QUERY_RESOLVE | USAGE.COPY_SRC, 'timestamps', scratch),
        passes: timingPasses,
      };
      bufs = { tensors, out, partials, partials2, uniforms, timing, denominator };
    } catch (e) {
      discardAll();
      throw e;
    } finally {
      allocErrors = Promise.all([this.device.popErrorScope(), this.device.popErrorScope()]);
    }

    try {
      // Warm pipelines: encode and submit now. Cold ones: once they compile.
      let k = this.ready.get(kernelKey);
      let rk = reduced ? this.ready.get(this.reduceKey) : undefined;
      let dk = denomKey ? this.ready.get(denomKey) : undefined;
      let submitted: Promise<NonNullable<Detloss['last']>> | undefined;
      if (k && (!reduced || rk) && (!denomKey || dk)) {
        submitted = this.encode(desc, k, rk, r, plan, bufs, staging, dk);
        submitted.catch(() => {}); // awaited below, unless the allocation failed first
      }
      const [validation, oom] = await allocErrors;
      if (oom || validation) {
        const bytes = [...outputs, ...scratch].reduce((a, b) => a + b.size, 0);
        if (oom) throw new DetlossError('gpu_out_of_memory', `${desc.name}: out of GPU memory allocating ${bytes} bytes for this call: ${oom.message}`);
        throw new DetlossError('gpu_validation', `${desc.name}: the GPU refused this call's buffers: ${validation!.message}`);
      }
      if (!submitted) {
        [k, rk, dk] = await Promise.all([kernelP, reduceP, denomP]);
        this.alive();
        submitted = this.encode(desc, k, rk, r, plan, bufs, staging, dk);
      }
      const last = await submitted;
      this.alive();
      return { desc, r, out: bufs.out, staging, release, releaseOutputs, last, timingPasses };
    } catch (e) {
      discardAll();
      throw e;
    }
  }

  /**
   * Compiles pipelines ahead of the first call, so a training loop does not stall on its first step.
   * Give op names (default parameters) or `{ op, options }` for non-default compile-time choices.
   *
   * @example
   * await dl.warmup(['smooth_l1', { op: 'iou_loss', options: { variant: 'ciou' } }]);
   */
  async warmup(ops?: (string | { op: string | OpDescriptor; options?: Record<string, unknown>; dims?: Record<string, number> })[]): Promise<void> {
    this.alive();
    const list = ops ?? Object.values(OPS).filter((d) => d.gpu).map((d) => d.name);
    await Promise.all(
      list.map(async (item) => {
        const { op, options } = typeof item === 'string' ? { op: item, options: {} } : { options: {}, ...item };
        const desc = getOp(op);
        this.requireKernel(desc);
        const o = resolveOptions(desc, options ?? {});
        const dims = typeof item === 'string' ? {} : item.dims ?? {};
        await this.pipeline(this.kernelKey(desc, { ...o, dims } as unknown as Resolved));
      }),
    );
    await this.pipeline(this.reduceKey);
  }

  /** Bytes the pool holds and uses, pipeline cache counters, and the last call's dispatches/submits/readbacks. */
  stats(): DetlossStats {
    const last = this.last && { ...this.last, passes: this.last.passes?.map((p) => ({ ...p })) };
    return { ...this.pool.stats(), pipelinesCompiled: this.compiled, pipelineCacheHits: this.hits, lastCall: last, plan: { ...this.plan } };
  }

  /** Frees pooled buffers that are not in use. */
  trim(): void {
    this.pool.trim();
  }

  /** Frees every buffer; the context cannot be used afterwards. The device is left alone. */
  destroy(): void {
    this.destroyed = true;
    this.pool.destroy();
    for (const b of this.dummies.values()) b.destroy();
    this.queries?.destroy();
    this.dummies.clear();
  }

  // ---- internals

  private requireKernel(desc: OpDescriptor) {
    if (!desc.gpu) throw new DetlossError('unknown_op', `${desc.name}: no GPU kernel yet (unsupported on the GPU); use cpu.run`, 'op');
    return desc.gpu;
  }

  private gpuInfo(desc: OpDescriptor, name: string, t: GpuTensor): InputInfo {
    const buffer = isGpuBuffer(t) ? t : t.buffer;
    const spec = Object.hasOwn(desc.inputs, name) ? desc.inputs[name] : undefined;
    const dtype = isGpuBuffer(t) ? spec?.dtype ?? 'f32' : t.dtype ?? spec?.dtype ?? 'f32';
    if (!(buffer.usage & STORAGE)) {
      throw new DetlossError('invalid_value', `${desc.name}: GPU buffer for ${name} needs STORAGE usage`, name);
    }
    if (isGpuBuffer(t)) return { length: Math.floor(buffer.size / 4), kind: dtype };
    checkShape(desc.name, name, t.shape);
    const length = t.shape.reduce((a, b) => a * b, 1);
    if (length * 4 > buffer.size) {
      throw new DetlossError('shape_mismatch', `${desc.name}: ${name} has shape [${t.shape.join(', ')}] but its buffer holds ${buffer.size} bytes`, name);
    }
    return { length, kind: dtype, shape: t.shape };
  }

  private checkSize(desc: OpDescriptor, name: string, bytes: number) {
    if (bytes > this.limits.maxBufferSize) {
      throw new DetlossError('too_large', `${desc.name}: ${name} takes ${bytes} bytes, more than the device's maxBufferSize (${this.limits.maxBufferSize})`, name);
    }
  }

  private meanScale(desc: OpDescriptor, r: Resolved, data: Record<string, ArrayLike<number> | undefined>): number {
    if (r.reduction !== 'mean') return 1;
    let denom = r.avgFactor;
    if (denom === undefined && desc.meanDenominator) {
      const f64: Record<string, Float64Array | Int32Array | undefined> = {};
      for (const [name, spec] of Object.entries(desc.inputs)) {
        const d = data[name];
        f64[name] = d === undefined ? undefined : spec.dtype === 'i32' ? (d as Int32Array) : Float64Array.from(d);
      }
      denom = desc.meanDenominator(f64, data.weight ? Float64Array.from(data.weight) : undefined, r.params, r.dims);
      const scale = denom === 0 ? 0 : 1 / denom;
      if (!Number.isFinite(Math.fround(scale))) {
        // The kernels scale by it in float32: say which data made it NaN or out of range.
        const suspects = ['weight', ...Object.entries(desc.inputs).filter(([, s]) => s.dtype === 'f32' && !s.grad).map(([k]) => k)].filter((k) => data[k]);
        const bad = suspects.find((k) => Array.prototype.some.call(data[k], (v: number) => !Number.isFinite(v))) ?? suspects[0] ?? 'weight';
        throw new DetlossError(
          'invalid_value',
          `${desc.name}: the 'mean' denominator computed from ${bad} is ${denom}, so 1/denominator is not a finite float32 (non-finite or tiny ${bad} values?); fix ${bad} or pass avgFactor`,
          bad,
        );
      }
      return scale;
    }
    denom ??= r.outCount;
    return denom === 0 ? 0 : 1 / denom;
  }

  /** The context's timestamp query set (two queries per pass); calls reuse it in queue order. */
  private querySet(): GPUQuerySet {
    this.queries ??= this.device.createQuerySet({ type: 'timestamp', count: 8, label: 'detloss:timestamps' });
    return this.queries;
  }

  /** Fills a call's `gpuMs` and `passes` from its resolved timestamps (nanoseconds, begin and end per pass). */
  private readTimestamps(last: NonNullable<Detloss['last']>, passes: string[], view: DataView): void {
    last.passes = passes.map((name, i) => {
      const begin = view.getBigUint64(16 * i, true);
      const end = view.getBigUint64(16 * i + 8, true);
      return { name, gpuMs: end > begin ? Number(end - begin) / 1e6 : 0 };
    });
    last.gpuMs = last.passes.reduce((a, p) => a + p.gpuMs, 0);
  }

  /** Output sizes, checked against the device's limits (nothing is allocated). */
  private outputSizes(desc: OpDescriptor, r: Resolved) {
    const lossBytes = r.reduction === 'none' ? r.outCount * 4 : 4;
    if (lossBytes > this.limits.maxBufferSize) {
      throw new DetlossError('too_large', `${desc.name}: the output takes ${lossBytes} bytes, more than the device's maxBufferSize (${this.limits.maxBufferSize})`, 'output');
    }
    if (r.outCount > 2 ** 31 - 1) throw new DetlossError('too_large', `${desc.name}: the output has ${r.outCount} elements, too many for one JavaScript typed array`, 'output');
    const grads: Record<string, number> = {};
    const emptyGrads: string[] = [];
    if (r.wantGrad) {
      for (const [name, spec] of Object.entries(desc.inputs)) {
        if (!spec.grad) continue;
        const count = spec.shape.reduce<number>((a, d) => a * (typeof d === 'number' ? d : r.dims[d]), 1);
        if (count === 0) {
          emptyGrads.push(name);
          continue;
        }
        this.checkSize(desc, `grad.${name}`, count * 4);
        grads[name] = count * 4;
      }
    }
    return { lossBytes, grads, emptyGrads };
  }

  /**
   * How the outputs are read back: one staging buffer for all of them (one `mapAsync`), unless
   * together they pass maxBufferSize; then as few buffers as fit it (each output fits one).
   */
  private stagingPlan(outs: ReturnType<Detloss['outputSizes']>, timingBytes: number): Omit<Staging, 'buffer'>[] {
    const parts: { name?: string; bytes: number }[] = [];
    // Timestamps first: 8-byte values at an offset that keeps them aligned.
    if (timingBytes) parts.push({ name: TIMESTAMPS, bytes: timingBytes });
    if (outs.lossBytes) parts.push({ bytes: outs.lossBytes });
    for (const [name, bytes] of Object.entries(outs.grads)) parts.push({ name, bytes });
    const plan: Omit<Staging, 'buffer'>[] = [];
    for (const p of parts) {
      let s = plan[plan.length - 1];
      if (!s || s.bytes + p.bytes > this.limits.maxBufferSize) {
        s = { bytes: 0, parts: [] };
        plan.push(s);
      }
      s.parts.push({ ...p, at: s.bytes });
      s.bytes += p.bytes;
    }
    return plan;
  }

  /** Writes a host array into a buffer now (writeBuffer copies at call time); shared memory is staged through a private copy. */
  private upload(buf: GPUBuffer, arr: HostArray): void {
    const shared = typeof SharedArrayBuffer !== 'undefined' && arr.buffer instanceof SharedArrayBuffer;
    if (!shared) {
      this.device.queue.writeBuffer(buf, 0, arr.buffer as ArrayBuffer, arr.byteOffset, arr.byteLength);
      return;
    }
    const step = Math.min(arr.byteLength, 1 << 22);
    const tmp = new Uint8Array(step);
    for (let at = 0; at < arr.byteLength; at += step) {
      const n = Math.min(step, arr.byteLength - at);
      tmp.set(new Uint8Array(arr.buffer, arr.byteOffset + at, n));
      this.device.queue.writeBuffer(buf, at, tmp.buffer, 0, n);
    }
  }

  /** The chunks, partials and packed uniforms of one call: plain data, no GPU work. */
  private planCall(desc: OpDescriptor, gk: GpuKernel, r: Resolved, scale: number, present: ReadonlySet<string>, gpuDenominator = false): CallPlan {
    const info = this.shaderInfo(desc, gk);
    const rows = r.dims[desc.rows] ?? 0;
    // Bytes per row of every tensor split along the rows.
    const perRow: Record<string, number> = {};
    for (const [name, spec] of Object.entries(desc.inputs)) {
      if (spec.shape[0] !== desc.rows) continue;
      perRow[name] = spec.shape.slice(1).reduce<number>((a, d) => a * (typeof d === 'number' ? d : r.dims[d]), 1) * 4;
    }
    const outRowBytes = r.outPerRow * 4;
    const rowBytes = [outRowBytes, ...Object.values(perRow)];
    const chunks = planChunks({
      rows,
      maxBytesPerRow: Math.max(4, ...rowBytes),
      rowBytes,
      outPerRow: r.outPerRow,
      wg: WG,
      maxThreads: this.plan.maxThreads,
      limits: this.limits,
      label: desc.name,
      threadsPerOutput: { thread: 1, workgroup: WG, subgroup: this.subgroupLanes() }[this.rowStrategy(gk, r)],
    });
    const reduced = r.reduction !== 'none';
    const totalPartials = chunks.reduce((a, c) => a + c.threads, 0);

    const levels = reduced ? reduceLevels(totalPartials, this.plan, this.limits.maxComputeWorkgroupsPerDimension) : [];
    // Uniforms: one slot per chunk, then one per reduction level (then the denominator's levels).
    const uniformBytes = (chunks.length + Math.max(1, levels.length) + (gpuDenominator ? levels.length : 0)) * SLOT;
    const uniforms = new ArrayBuffer(uniformBytes);
    const view = new DataView(uniforms);
    let flags = FLAG.grad * +r.wantGrad + FLAG.weight * +r.hasWeight + FLAG.gradOutput * +r.hasGradOutput;
    if (!reduced) flags |= FLAG.storeLoss;
    if (r.hasGradOutput && !reduced) flags |= FLAG.gradOutputElementwise;
    const paramValues: Record<string, number> = { ...r.dims, ...(gk.uniforms?.(r.params, r.dims) ?? {}) };
    for (const name of Object.keys(desc.inputs)) paramValues[`has_${snake(name)}`] = present.has(name) ? 1 : 0;
    const runLayout = info.uniforms.run;
    const paramsLayout = info.uniforms.params;
    chunks.forEach((c, i) => {
      if (runLayout) packUniform(runLayout, { n: c.outCount, threads: c.threads, flags, scale }, view, i * SLOT, desc.name);
      if (paramsLayout) packUniform(paramsLayout, paramValues, view, i * SLOT + 256, desc.name);
    });
    const redAt = chunks.length * SLOT;
    const red = reflectShader(reduceWgsl).uniforms.red;
    levels.forEach((l, i) => packUniform(red, { count: l.count, per: l.per, scale: i === levels.length - 1 ? scale : 1, invert: 0 }, view, redAt + i * SLOT, desc.name));
    // The denominator's tree has the same shape (the same partials); its last level writes 1/sum,
    // which is copied into every `scale` above (0 until then) before the passes that read it.
    const denomAt = gpuDenominator ? redAt + levels.length * SLOT : undefined;
    if (denomAt !== undefined) levels.forEach((l, i) => packUniform(red, { count: l.count, per: l.per, scale: 1, invert: +(i === levels.length - 1) }, view, denomAt + i * SLOT, desc.name));
    return { chunks, perRow, totalPartials, levels, uniforms, uniformBytes, redAt, denomAt };
  }

  /**
   * Encodes the fused pass (chunked), the reduction and the readback copies, and submits them
   * once; all synchronous. The promise says whether the GPU accepted the work.
   */
  private encode(
    desc: OpDescriptor,
    k: Kernel,
    reduceK: Kernel | undefined,
    r: Resolved,
    plan: CallPlan,
    bufs: CallBuffers,
    staging: Staging[],
    denomK?: Kernel,
  ): Promise<NonNullable<Detloss['last']>> {
    const { chunks } = plan;
    const { out, partials, uniforms, timing } = bufs;
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
    let dispatches = 0;
    let scopes: Promise<(GPUError | null)[]>;
    let last!: NonNullable<Detloss['last']>;
    // Each pass is timed when the context takes timestamps: its begin and end, at 2i and 2i + 1.
    const timestampWrites = (name: string): GPUComputePassTimestampWrites | undefined => {
      const i = timing?.passes.indexOf(name) ?? -1;
      return timing && i >= 0 ? { querySet: timing.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } : undefined;
    };
    // The chunked dispatches of one entry point of the op's module.
    const chunked = (pass: GPUComputePassEncoder, kernel: Kernel, label: string) => {
      pass.setPipeline(kernel.pipeline);
      for (const [i, c] of chunks.entries()) {
        const entries: GPUBindGroupEntry[] = kernel.info.bindings.map((b) => ({
          binding: b.binding,
          resource: this.bindingResource(desc, b, c, i, r, bufs.tensors, out, partials, uniforms, plan.perRow),
        }));
        pass.setBindGroup(0, this.device.createBindGroup({ label: `detloss:${desc.name}:${label}${i}`, layout: kernel.layout, entries }));
        pass.dispatchWorkgroups(c.grid[0], c.grid[1]);
        dispatches++;
      }
    };
    // The tree: level i reads the previous level's sums (the partials first) and writes its own;
    // the levels take turns between the two scratch buffers, and the last writes `into`.
    const tree = (pass: GPUComputePassEncoder, rk: Kernel, slots: number, into: GPUBuffer, label: string) => {
      pass.setPipeline(rk.pipeline);
      const ping = [partials!, bufs.partials2 ?? partials!];
      plan.levels.forEach((level, i) => {
        const src = ping[i % 2];
        const dst = i === plan.levels.length - 1 ? into : ping[(i + 1) % 2];
        const entries: GPUBindGroupEntry[] = [
          { binding: 0, resource: { buffer: uniforms, offset: slots + i * SLOT, size: rk.info.uniforms.red.size } },
          { binding: 1, resource: { buffer: src, offset: 0, size: Math.max(4, level.count * 4) } },
          { binding: 2, resource: { buffer: dst, offset: 0, size: Math.max(4, level.groups * 4) } },
        ];
        pass.setBindGroup(0, this.device.createBindGroup({ label: `detloss:${desc.name}:${label}${i}`, layout: rk.layout, entries }));
        pass.dispatchWorkgroups(level.grid[0], level.grid[1]);
        dispatches++;
      });
    };
    try {
      this.device.queue.writeBuffer(uniforms, 0, plan.uniforms);
      const enc = this.device.createCommandEncoder({ label: `detloss:${desc.name}` });
      if (denomK && reduceK && plan.denomAt !== undefined && bufs.denominator) {
        // The data-dependent 'mean' denominator first: summed like the loss, its reciprocal then
        // copied into the scale of every fused slot and of the loss's last tree level.
        const pass = enc.beginComputePass({ label: `detloss:${desc.name}:denominator`, timestampWrites: timestampWrites('denominator') });
        chunked(pass, denomK, 'denominator');
        tree(pass, reduceK, plan.denomAt, bufs.denominator, 'denominator-reduce');
        pass.end();
        const runScale = memberOffset(k.info.uniforms.run, 'scale');
        chunks.forEach((_, i) => enc.copyBufferToBuffer(bufs.denominator!, 0, uniforms, i * SLOT + runScale, 4));
        enc.copyBufferToBuffer(bufs.denominator, 0, uniforms, plan.redAt + (plan.levels.length - 1) * SLOT + memberOffset(reduceK.info.uniforms.red, 'scale'), 4);
      }
      let pass = enc.beginComputePass({ label: `detloss:${desc.name}:fused`, timestampWrites: timestampWrites('fused') });
      chunked(pass, k, 'chunk');
      if (reduceK) {
        pass.end();
        pass = enc.beginComputePass({ label: `detloss:${desc.name}:reduce`, timestampWrites: timestampWrites('reduce') });
        tree(pass, reduceK, plan.redAt, out.loss.buffer, 'reduce');
      }
      pass.end();
      if (timing) enc.resolveQuerySet(timing.querySet, 0, 2 * timing.passes.length, timing.resolve, 0);
      for (const s of staging) {
        for (const part of s.parts) {
          const src = part.name === undefined ? out.loss.buffer : part.name === TIMESTAMPS ? timing!.resolve : out.grads[part.name].buffer;
          enc.copyBufferToBuffer(src, 0, s.buffer, part.at, part.bytes);
        }
      }
      this.device.queue.submit([enc.finish()]);
      last = { op: desc.name, dispatches, submits: 1, readbacks: 0 };
      this.last = last;
    } finally {
      scopes = Promise.all([this.device.popErrorScope(), this.device.popErrorScope()]);
    }
    return scopes.then(([validation, oom]) => {
      if (oom) throw new DetlossError('gpu_out_of_memory', `${desc.name}: out of GPU memory: ${oom.message}`);
      if (validation) throw new DetlossError('gpu_validation', `${desc.name}: the GPU rejected the work: ${validation.message}`);
      return last;
    });
  }

  private bindingResource(
    desc: OpDescriptor,
    b: BindingInfo,
    c: Chunk,
    chunkIndex: number,
    r: Resolved,
    tensors: Record<string, Tensor | undefined>,
    out: CallBuffers['out'],
    partials: GPUBuffer | undefined,
    uniformBuf: GPUBuffer,
    perRow: Record<string, number>,
  ): GPUBufferBinding {
    const reduced = r.reduction !== 'none';
    const outRange = (buffer: GPUBuffer) => ({ buffer, offset: c.rowStart * r.outPerRow * 4, size: c.outCount * 4 });
    const rowRange = (t: Tensor, bytesPerRow: number) =>
      bytesPerRow === 0 ? this.dummy(b) : { buffer: t.buffer, offset: c.rowStart * bytesPerRow, size: c.rows * bytesPerRow };
    const whole = (t: Tensor) => ({ buffer: t.buffer, offset: 0, size: t.bytes });
    switch (b.name) {
      case 'run':
        return { buffer: uniformBuf, offset: chunkIndex * SLOT, size: b.minBindingSize };
      case 'params':
        return { buffer: uniformBuf, offset: chunkIndex * SLOT + 256, size: b.minBindingSize };
      case 'in_weight':
        return tensors.weight ? outRange(tensors.weight.buffer) : this.dummy(b);
      case 'in_grad_output':
        if (!tensors.gradOutput) return this.dummy(b);
        return reduced ? whole(tensors.gradOutput) : outRange(tensors.gradOutput.buffer);
      case 'out_loss':
        return reduced ? this.dummy(b) : outRange(out.loss.buffer);
      case 'partials':
        return partials ? { buffer: partials, offset: c.partialStart * 4, size: c.threads * 4 } : this.dummy(b);
    }
    const m = /^(in|out_grad)_(.+)$/.exec(b.name);
    const name = m && Object.keys(desc.inputs).find((k) => snake(k) === m[2]);
    if (!m || !name) throw new DetlossError('pipeline', `${desc.name}: shader binding ${b.name} matches no input of the op`);
    if (m[1] === 'in') {
      const t = tensors[name];
      if (!t) return this.dummy(b);
      return name in perRow ? rowRange(t, perRow[name]) : whole(t);
    }
    const g = out.grads[name];
    if (!g) return this.dummy(b);
    return rowRange(g, perRow[name]);
  }

  /** A small buffer bound where an optional input or an unused output is absent; one per binding slot, so writable ones never alias. */
  private dummy(b: BindingInfo): GPUBufferBinding {
    const key = `${b.binding}:${b.kind}`;
    let buf = this.dummies.get(key);
    if (!buf) {
      buf = this.device.createBuffer({ size: Math.max(256, b.minBindingSize), usage: USAGE.STORAGE, label: `detloss:dummy:${b.name}` });
      this.dummies.set(key, buf);
    }
    return { buffer: buf, offset: 0, size: Math.max(256, b.minBindingSize) };
  }

  private module(id: string, code: string): GPUShaderModule {
    let m = this.modules.get(id);
    if (!m) {
      m = this.device.createShaderModule({ label: `detloss:${id}`, code });
      this.modules.set(id, m);
    }
    return m;
  }

  private layout(id: string, info: ShaderInfo): GPUBindGroupLayout {
    let l = this.layouts.get(id);
    if (!l) {
      l = this.device.createBindGroupLayout({
        label: `detloss:${id}`,
        entries: info.bindings.map((b) => ({
          binding: b.binding,
          visibility: 0x4 /* GPUShaderStage.COMPUTE */,
          buffer: {
            type: b.kind === 'uniform' ? 'uniform' : b.kind === 'read' ? 'read-only-storage' : 'storage',
            minBindingSize: b.minBindingSize,
          },
        })),
      });
      this.layouts.set(id, l);
    }
    return l;
  }

  /** What a kernel is compiled from; its key is `shader:entry:overrides`, never a size. */
  private kernelKey(desc: OpDescriptor, r: Resolved, entry?: string): string {
    const gk = this.requireKernel(desc);
    if (!this.checked.has(desc.name)) {
      let problems: string[];
      try {
        this.shaderInfo(desc, gk);
        problems = contractProblems(desc);
      } catch (e) {
        if (e instanceof DetlossError) throw e;
        throw new DetlossError('pipeline', `${desc.name}: its shader could not be read: ${(e as Error).message}`);
      }
      if (problems.length) throw new DetlossError('pipeline', `${desc.name}: descriptor and shader disagree: ${problems.join('; ')}`);
      this.checked.add(desc.name);
    }
    const constants = { WG, ...(gk.overrides?.(r.params, r.dims) ?? {}) };
    if (entry) return this.defineKernel(gk.shaderId, gk.shader, entry, constants, desc.name);
    const how = this.rowStrategy(gk, r);
    if (how === 'subgroup') return this.defineKernel(gk.rows!.subgroup!.shaderId, gk.rows!.subgroup!.shader, gk.rows!.entry, constants, desc.name);
    return this.defineKernel(gk.shaderId, gk.shader, how === 'thread' ? gk.entry : gk.rows!.entry, constants, desc.name);
  }

  /** Reflects an op's shader; a shader wgsl_reflect cannot parse is a `pipeline` error. */
  private shaderInfo(desc: OpDescriptor, gk: GpuKernel): ShaderInfo {
    try {
      return reflectShader(gk.shader);
    } catch (e) {
      throw new DetlossError('pipeline', `${desc.name}: its WGSL could not be parsed: ${(e as Error).message}`);
    }
  }

  /** Who computes a row in this call: a thread (every op's `entry`), or a workgroup or subgroup per long row. */
  private rowStrategy(gk: GpuKernel, r: Resolved): 'thread' | 'workgroup' | 'subgroup' {
    if (!gk.rows || !r.dims || Object.keys(r.dims).length === 0) return 'thread';
    if (gk.rows.length(r.dims) < this.plan.rowThreshold) return 'thread';
    return this.plan.rowLanes === 'subgroup' && gk.rows.subgroup && this.device.features.has('subgroups') ? 'subgroup' : 'workgroup';
  }

  /** The most lanes a subgroup may have here (the planner's threads per row under the subgroup strategy). */
  private subgroupLanes(): number {
    const max = this.adapter.subgroupMaxSize;
    return max !== undefined && max > 0 && max <= WG ? max : 32;
  }

  private defineKernel(id: string, code: string, entry: string, constants: Record<string, number>, label: string): string {
    const key = `${id}:${entry}:${Object.entries(constants).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join(',')}`;
    if (!this.specs.has(key)) this.specs.set(key, { id, code, entry, constants, label });
    return key;
  }

  /**
   * The pipeline of a kernel key, compiled once with `createComputePipelineAsync` (the promise is
   * cached; a compiled kernel is also kept in `ready`, so warm calls need no await).
   */
  private pipeline(key: string): Promise<Kernel> {
    const hit = this.pipelines.get(key);
    if (hit) {
      this.hits++;
      return hit;
    }
    const { id, code, entry, constants, label } = this.specs.get(key)!;
    this.compiled++;
    const p = (async () => {
      let info: ShaderInfo;
      try {
        info = reflectShader(code);
      } catch (e) {
        throw new DetlossError('pipeline', `${label}: its WGSL could not be parsed: ${(e as Error).message}`);
      }
      // Module and layouts are created inside a validation scope popped at once (scopes are a
      // stack shared by every call on the device); the pipeline's own errors reject its promise.
      this.device.pushErrorScope('validation');
      let pending: Promise<GPUComputePipeline> | undefined;
      let layout: GPUBindGroupLayout | undefined;
      let module: GPUShaderModule | undefined;
      let thrown: unknown;
      try {
        layout = this.layout(id, info);
        module = this.module(id, code);
        pending = this.device.createComputePipelineAsync({
          label: `detloss:${key}`,
          layout: this.device.createPipelineLayout({ label: `detloss:${id}`, bindGroupLayouts: [layout] }),
          compute: { module, entryPoint: entry, constants },
        });
        pending.catch(() => {});
      } catch (e) {
        thrown = e;
      }
      const scoped = await this.device.popErrorScope();
      let pipeline: GPUComputePipeline | undefined;
      let failure: unknown = thrown ?? scoped;
      if (!failure) {
        try {
          pipeline = await pending!;
        } catch (e) {
          failure = e;
        }
      }
      if (failure || !pipeline) {
        const messages = (await module?.getCompilationInfo?.().catch(() => undefined))?.messages?.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join('; ');
        throw new DetlossError('pipeline', `${label}: pipeline ${key} failed to compile: ${(failure as Error)?.message ?? 'unknown error'}${messages ? ` (${messages})` : ''}`);
      }
      const kernel = { pipeline, layout: layout!, info };
      this.ready.set(key, kernel);
      return kernel;
    })();
    this.pipelines.set(key, p);
    p.catch(() => {
      this.pipelines.delete(key);
      // A module that failed to compile is not reused: the next try compiles it anew.
      this.modules.delete(id);
    });
    return p;
  }

  private async map(staging: GPUBuffer, op: string): Promise<void> {
    try {
      await Promise.race([staging.mapAsync(0x1 /* GPUMapMode.READ */), this.lostPromise]);
    } catch (e) {
      if (this.destroyed) throw this.destroyedError();
      if (e instanceof DetlossError) throw e;
      if (this.lostReason !== undefined) throw this.lostError();
      throw new DetlossError('gpu_validation', `${op}: reading the result back failed: ${(e as Error).message}`);
    }
  }
}

/** `plan`: a kind, or an object of plan fields (its kind optional). */
function checkPlanOption(plan: unknown, bad: (name: string, what: string, v: unknown) => never) {
  if (plan === undefined || plan === 'software' || plan === 'hardware') return;
  if (typeof plan !== 'object' || plan === null) bad('plan', "'software', 'hardware' or an object of plan fields", plan);
  const p = plan as Record<string, unknown>;
  const int = (k: string, lo: number, hi: number) => {
    const v = p[k];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi)) bad(`plan.${k}`, `an integer from ${lo} to ${hi}`, v);
  };
  for (const k of Object.keys(p)) {
    if (!['kind', 'maxThreads', 'reduceLanes', 'reducePer', 'rowThreshold', 'rowLanes'].includes(k)) throw new DetlossError('unknown_param', `createDetloss: unknown plan field plan.${k}`, `plan.${k}`);
  }
  if (p.kind !== undefined && p.kind !== 'software' && p.kind !== 'hardware') bad('plan.kind', "'software' or 'hardware'", p.kind);
  if (p.rowLanes !== undefined && p.rowLanes !== 'workgroup' && p.rowLanes !== 'subgroup') bad('plan.rowLanes', "'workgroup' or 'subgroup'", p.rowLanes);
  int('maxThreads', 1, 2 ** 31);
  int('reducePer', 0, MAX_REDUCE_PER);
  int('reduceLanes', 1, 256);
  if (p.reduceLanes !== undefined && ((p.reduceLanes as number) & ((p.reduceLanes as number) - 1)) !== 0) bad('plan.reduceLanes', 'a power of two up to 256', p.reduceLanes);
  const rt = p.rowThreshold;
  if (rt !== undefined && (typeof rt !== 'number' || Number.isNaN(rt) || rt < 0)) bad('plan.rowThreshold', 'a number >= 0', rt);
}

const LIMIT_NAMES = ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupsPerDimension'] as const;

/**
 * Checks the options of {@link createDetloss} before any device is requested; a bad one is a
 * `DetlossError('invalid_param')` naming it.
 */
export function checkOptions(options: unknown): asserts options is DetlossOptions {
  const bad = (name: string, what: string, v: unknown): never => {
    throw new DetlossError('invalid_param', `createDetloss: ${name} must be ${what}, got ${describeValue(v)}`, name);
  };
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null) bad('options', 'an object', options);
  const o = options as Record<string, unknown>;
  const known = ['device', 'gpu', 'limits', 'maxThreads', 'rowThreshold', 'plan', 'timestamps'];
  for (const k of Object.keys(o)) {
    if (!known.includes(k)) throw new DetlossError('unknown_param', `createDetloss: unknown option "${k}" (known: ${known.join(', ')})`, k);
  }
  const mt = o.maxThreads;
  if (mt !== undefined && (typeof mt !== 'number' || !Number.isInteger(mt) || mt < 1 || mt > 2 ** 31)) bad('maxThreads', `an integer from 1 to ${2 ** 31}`, mt);
  checkPlanOption(o.plan, bad);
  if (o.timestamps !== undefined && typeof o.timestamps !== 'boolean') bad('timestamps', 'true or false', o.timestamps);
  const rt = o.rowThreshold;
  if (rt !== undefined && (typeof rt !== 'number' || Number.isNaN(rt) || rt < 0)) bad('rowThreshold', 'a number >= 0 (Infinity: always a thread per row)', rt);
  if (o.limits !== undefined) {
    if (typeof o.limits !== 'object' || o.limits === null) bad('limits', 'an object', o.limits);
    for (const [k, v] of Object.entries(o.limits as Record<string, unknown>)) {
      if (!(LIMIT_NAMES as readonly string[]).includes(k)) {
        throw new DetlossError('unknown_param', `createDetloss: unknown limit limits.${k} (known: ${LIMIT_NAMES.join(', ')})`, `limits.${k}`);
      }
      if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 1)) bad(`limits.${k}`, 'a positive integer', v);
    }
  }
  const dev = o.device as { createBuffer?: unknown; queue?: unknown } | undefined;
  if (dev !== undefined && (typeof dev !== 'object' || dev === null || typeof dev.createBuffer !== 'function' || !dev.queue)) bad('device', 'a GPUDevice', dev);
  const gpu = o.gpu as { requestAdapter?: unknown } | undefined;
  if (gpu !== undefined && (typeof gpu !== 'object' || gpu === null || typeof gpu.requestAdapter !== 'function')) bad('gpu', 'a GPU (navigator.gpu, or create([]) from the webgpu package)', gpu);
}

/** The limits a context's device is requested with, at the adapter's own values. */
export const REQUESTED_LIMITS: readonly (keyof GPUSupportedLimits)[] = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupStorageSize',
];

/**
 * The device a context runs on: the given one, or a new one from `navigator.gpu` (or `options.gpu`)
 * with the adapter's own limits. Throws `DetlossError('no_webgpu')` saying what is missing.
 */
export async function openDevice(options: DetlossOptions = {}): Promise<{ device: GPUDevice; adapter: AdapterFacts }> {
  checkOptions(options);
  if (options.device) {
    const info = (options.device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
    return { device: options.device, adapter: adapterFacts(info, false) };
  }
  const gpu = options.gpu ?? (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu) {
    throw new DetlossError(
      'no_webgpu',
      'WebGPU is not available: navigator.gpu is missing. Use a WebGPU browser on a secure page (https or http://localhost; ' +
        'on Linux Chromium needs --enable-unsafe-webgpu), or in Node pass { gpu: create([]) } from the `webgpu` package.',
    );
  }
  const adapter = await gpu.requestAdapter();
  if (!adapter) {
    throw new DetlossError(
      'no_webgpu',
      'WebGPU is present but no GPU adapter was found. On a headless Linux machine without a GPU, Chromium provides a software ' +
        'adapter (SwiftShader) with --enable-unsafe-webgpu; check chrome://gpu for why WebGPU is disabled.',
    );
  }
  const requiredLimits: Record<string, number> = {};
  for (const k of REQUESTED_LIMITS) requiredLimits[k] = adapter.limits[k] as number;
  // Timestamps only when asked for: some browsers expose them only behind a flag, and they cost a query set.
  const requiredFeatures: GPUFeatureName[] = options.timestamps && adapter.features.has('timestamp-query') ? ['timestamp-query'] : [];
  // Subgroups cost nothing to ask for; the subgroup-per-row kernels need them.
  if (adapter.features.has('subgroups')) requiredFeatures.push('subgroups' as GPUFeatureName);
  const device = await adapter.requestDevice({ label: 'detloss', requiredLimits, requiredFeatures });
  const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
  const fallback = (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter ?? (info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter ?? false;
  return { device, adapter: adapterFacts(info, fallback) };
}

function adapterFacts(info: GPUAdapterInfo | undefined, fallback: boolean): AdapterFacts {
  return {
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    device: info?.device ?? '',
    description: info?.description ?? '',
    isFallbackAdapter: fallback || ((info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter ?? false),
    subgroupMaxSize: (info as { subgroupMaxSize?: number } | undefined)?.subgroupMaxSize,
  };
}
