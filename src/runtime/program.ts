import { DetlossError } from '../errors';
import { snake, type Dims, type GpuKernel, type OpDescriptor } from '../ops/types';
import type { Resolved, SharedOptions } from '../ops/validate';
import { CallAllocation, acquireCallIo } from './call-buffers';
import { readInputs, type CallInputs } from './call-inputs';
import { STATUS, acquireStatus, encodeChecks, lateVerdict, planChecks, verdictOf, type CallStatus, type ValueCheck } from './checks';
import { checkSize, type OutputSizes } from './call-plan';
import type { SubmittedCall } from './execute';
import { FLAG, PARAMS_AT, SLOT } from './fused-slots';
import type { Kernel } from './pipelines';
import { stagingPlan } from './readback';
import { packUniform } from './reflect';
import { USAGE, WG, type AnyInput, type LastCall, type Runtime, type Tensor } from './types';

// Runs an op whose kernel is a program of passes (GpuKernel.program; the ranking losses) in place
// of the fused pass and the reduction tree: the same pool, error scopes and SubmittedCall, so
// `run` and `runResident` read its outputs as any other call's. The steps (prepare, allocate,
// encode) are synchronous; `executeProgram` awaits compiled pipelines between them, and
// `submitProgramSync` (framework adapters) compiles them synchronously instead.

type Program = NonNullable<GpuKernel['program']>;
type Pass = Program['passes'][number];

/** GPUBufferUsage.INDIRECT. */
const INDIRECT = 0x100;
/** The most workgroups in one dimension of a direct dispatch (the WebGPU default limit). */
const MAX_GROUPS = 65535;

/** Workgroups for `threads` threads of WG lanes, as [x, y] within the per-dimension limit. */
function groups(threads: number, wg: number, max: number): [number, number] {
  const g = Math.ceil(threads / wg);
  return g <= max ? [g, g === 0 ? 0 : 1] : [max, Math.ceil(g / max)];
}

/** A program call, validated and sized: plain data, no GPU work yet. */
interface PreparedProgram {
  desc: OpDescriptor;
  gk: GpuKernel;
  prog: Program;
  r: Resolved;
  data: CallInputs['data'];
  info: CallInputs['info'];
  gpu: CallInputs['gpu'];
  /** The passes this call runs (the gradient-only ones dropped with `grad: false`), and their kernel keys. */
  passes: readonly Pass[];
  keys: string[];
  dims: Dims;
  outs: OutputSizes;
  scratch: { words: number; threads: number };
  indirectBytes: number;
  /** The value checks of GPU-resident inputs (src/runtime/checks.ts) and the "work ran" marker. */
  checks: ValueCheck[];
  marker: boolean;
  /** A resident call: its checks' words are read after it resolved. */
  late: boolean;
}

/** A program call's buffers. */
interface ProgramBuffers {
  uniforms: GPUBuffer;
  work: GPUBuffer;
  indirect?: GPUBuffer;
  tensors: Record<string, Tensor | undefined>;
  out: SubmittedCall['out'];
  staging: SubmittedCall['staging'];
  status?: CallStatus;
}

/**
 * Validates and sizes a call of a program op; argument errors throw here, before any GPU work.
 * Program ops reduce themselves: reduction 'mean' only (their descriptor's `reductions`), and no
 * `weight` or `avgFactor`. `onKeys` runs as soon as the kernel keys are known (the async path
 * starts compiling there).
 */
function prepareProgram(
  rt: Runtime,
  desc: OpDescriptor,
  inputs: Record<string, AnyInput | undefined>,
  options: SharedOptions & Record<string, unknown>,
  how: { readback: boolean; guard: boolean },
  onKeys?: (keys: string[]) => void,
): PreparedProgram {
  rt.liveness.check();
  const { kernels, limits } = rt;
  const gk = desc.gpu!;
  const prog = gk.program!;
  const { data, info, gpu, r } = readInputs(desc, inputs, options);
  const checks = planChecks(desc, r, gpu, info);
  if (r.hasWeight) throw new DetlossError('invalid_param', `${desc.name}: takes no weight (the loss is already a mean over the positives)`, 'weight');
  if (r.avgFactor !== undefined) throw new DetlossError('invalid_param', `${desc.name}: takes no avgFactor (the loss is already a mean over the positives)`, 'avgFactor');

  const passes = prog.passes.filter((p) => r.wantGrad || !p.gradOnly);
  // The check pass's kernel, when there is one, is the last key (it is encoded first).
  const keys = [...passes.map((p) => kernels.kernelKey(desc, r, p.entry)), ...(checks.length ? [kernels.checkKey] : [])];
  onKeys?.(keys);

  // Sizes, every one checked before any allocation.
  const dims: Dims = r.dims;
  const lossBytes = 4 * prog.lossShape.reduce((a, b) => a * b, 1);
  const outs: OutputSizes = { lossBytes, grads: {}, emptyGrads: [] };
  if (r.wantGrad) {
    for (const [name, spec] of Object.entries(desc.inputs)) {
      if (!spec.grad) continue;
      const bytes = (info[name]?.length ?? 0) * 4;
      if (bytes === 0) outs.emptyGrads.push(name);
      else outs.grads[name] = bytes;
    }
  }
  const host: Record<string, ArrayLike<number> | undefined> = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, v]));
  const scratch = prog.scratch(dims, host);
  // A program binds each buffer whole (no chunks): each must fit one binding as well as one buffer.
  const fits = (name: string, bytes: number) => {
    checkSize(limits, desc, name, bytes);
    if (bytes > limits.maxStorageBufferBindingSize) {
      throw new DetlossError('too_large', `${desc.name}: ${name} takes ${bytes} bytes, more than one binding holds here (maxStorageBufferBindingSize ${limits.maxStorageBufferBindingSize})`, name === 'scratch' ? 'logits' : name);
    }
  };
  fits('scratch', scratch.words * 4);
  for (const [name, bytes] of Object.entries(outs.grads)) fits(`grad.${name}`, bytes);
  for (const [name, i] of Object.entries(info)) if (i) fits(name, i.length * 4);
  const indirectBytes = Math.max(0, ...passes.map((p) => (p.indirect === undefined ? 0 : p.indirect + 12)));
  return { desc, gk, prog, r, data, info, gpu, passes, keys, dims, outs, scratch, indirectBytes, checks, marker: how.guard, late: !how.readback && !how.guard };
}

/**
 * Allocates a prepared program call's buffers and uploads its host arrays, synchronously, inside
 * out-of-memory and validation error scopes whose verdict is `allocErrors` (as allocateCall).
 */
function allocateProgram(rt: Runtime, p: PreparedProgram, readback: boolean): { a: CallAllocation; bufs: ProgramBuffers; allocErrors: Promise<(GPUError | null)[]> } {
  const { device, limits } = rt;
  const { desc, outs, data, info, gpu, scratch, indirectBytes } = p;
  const a = new CallAllocation(rt.pool, desc.name);
  const { scratch: scratchList, staging } = a;
  let bufs: ProgramBuffers;
  let allocErrors: Promise<(GPUError | null)[]>;
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  try {
    const statusBytes = p.checks.length ? 4 * (1 + p.checks.length) : 0;
    const { out, tensors } = acquireCallIo(device, a, outs, readback ? stagingPlan(limits, outs, 0, statusBytes) : [], readback, { data, info, gpu });
    const work = a.acquire(Math.max(4, scratch.words * 4), USAGE.STORAGE | USAGE.COPY_SRC, 'scratch', scratchList);
    const indirect = indirectBytes ? a.acquire(indirectBytes, INDIRECT | USAGE.COPY_DST, 'indirect', scratchList) : undefined;
    const uniforms = a.acquire(SLOT, USAGE.UNIFORM | USAGE.COPY_DST, 'uniforms', scratchList);
    const status = acquireStatus(rt, a, p.checks, p.marker, p.late);
    bufs = { uniforms, work, indirect, tensors, out, staging, status };
  } catch (e) {
    a.discardAll();
    throw e;
  } finally {
    allocErrors = Promise.all([device.popErrorScope(), device.popErrorScope()]);
  }
  return { a, bufs, allocErrors };
}

/** Packs the call's uniforms and encodes and submits its passes; the promise is the GPU's verdict on that work. */
function submitProgram(rt: Runtime, p: PreparedProgram, bufs: ProgramBuffers, ks: Kernel[]): Promise<LastCall> {
  const { desc, gk, r, dims, scratch } = p;
  const info0 = ks[0].info;
  const bytes = new ArrayBuffer(SLOT);
  const view = new DataView(bytes);
  const flags = FLAG.grad * +r.wantGrad + FLAG.gradOutput * +r.hasGradOutput;
  packUniform(info0.uniforms.run, { n: dims.n ?? 0, threads: scratch.threads, flags, scale: 1 }, view, 0, desc.name);
  if (info0.uniforms.params) packUniform(info0.uniforms.params, { ...dims, ...(gk.uniforms?.(r.params, dims) ?? {}) }, view, PARAMS_AT, desc.name);
  return encodeProgram(rt, p, ks, bufs, bytes);
}

/** The buffers' verdict as an error (or none). */
function allocationError(desc: OpDescriptor, [validation, oom]: (GPUError | null)[], bytes: () => number): DetlossError | undefined {
  if (oom) return new DetlossError('gpu_out_of_memory', `${desc.name}: out of GPU memory allocating ${bytes()} bytes for this call: ${oom.message}`);
  if (validation) return new DetlossError('gpu_validation', `${desc.name}: the GPU refused this call's buffers: ${validation.message}`);
  return undefined;
}

/**
 * Validates, uploads and submits a call of a program op; argument errors throw before any GPU
 * work. Warm pipelines are encoded and submitted synchronously; cold ones once they compile.
 */
export async function executeProgram(rt: Runtime, desc: OpDescriptor, inputs: Record<string, AnyInput | undefined>, options: SharedOptions & Record<string, unknown>, readback: boolean): Promise<SubmittedCall> {
  const { kernels } = rt;
  let pending: Promise<Kernel>[] = [];
  const p = prepareProgram(rt, desc, inputs, options, { readback, guard: false }, (keys) => {
    pending = keys.map((k) => kernels.pipeline(k));
    for (const k of pending) k.catch(() => {});
  });
  const { a, bufs, allocErrors } = allocateProgram(rt, p, readback);
  try {
    const ready = p.keys.map((k) => kernels.compiledKernel(k));
    let submitted: Promise<LastCall> | undefined;
    if (ready.every((k) => k)) {
      submitted = submitProgram(rt, p, bufs, ready as Kernel[]);
      submitted.catch(() => {});
    }
    const bad = allocationError(desc, await allocErrors, () => [...a.outputs, ...a.scratch].reduce((sum, b) => sum + b.size, 0));
    if (bad) throw bad;
    if (!submitted) {
      const ks = await Promise.all(pending);
      rt.liveness.check();
      submitted = submitProgram(rt, p, bufs, ks);
    }
    const last = await submitted;
    rt.liveness.check();
    lateVerdict(rt, desc, bufs.status, a);
    return { desc, r: p.r, out: bufs.out, staging: bufs.staging, release: a.release, releaseOutputs: a.releaseOutputs, last, shape: [...p.prog.lossShape], checks: p.checks };
  } catch (e) {
    a.discardAll();
    throw e;
  }
}

/** A program call submitted synchronously (src/runtime/execute-sync.ts). */
export interface SyncProgramCall {
  out: SubmittedCall['out'];
  /** The loss's shape: the program's `lossShape` (`[]` for ap_loss, `[2]` for rank_sort). */
  shape: number[];
  release: () => void;
  releaseOutputs: () => void;
  /** Resolves when the GPU accepted the kernels, buffers and work; rejects with `pipeline`, `gpu_out_of_memory` or `gpu_validation`. */
  settled: Promise<void>;
  /** The status words (with `guard`): the value checks of GPU-resident inputs and the "work ran" marker. */
  status?: CallStatus;
}

/**
 * `executeProgram` for callers that must have the work submitted before they return (framework
 * adapters). Inputs must all be GPU tensors. Validation, allocation, kernels not compiled yet
 * (`PipelineCache.pipelineSync`), encoding and the submit all happen now: argument errors throw
 * at once, the GPU's verdict arrives in `settled`.
 */
export function submitProgramSync(rt: Runtime, desc: OpDescriptor, inputs: Record<string, AnyInput | undefined>, options: SharedOptions & Record<string, unknown>, guard = false): SyncProgramCall {
  const p = prepareProgram(rt, desc, inputs, options, { readback: false, guard });
  if (Object.values(p.data).some((d) => d !== undefined)) throw new DetlossError('invalid_value', `${desc.name}: a synchronous call takes GPU tensors only`, 'inputs');
  const checks: Promise<string | undefined>[] = [];
  const ks = p.keys.map((k) => rt.kernels.pipelineSync(k, checks));
  const { a, bufs, allocErrors } = allocateProgram(rt, p, false);
  let submitted: Promise<LastCall>;
  try {
    submitted = submitProgram(rt, p, bufs, ks);
  } catch (e) {
    a.discardAll();
    throw e;
  }
  // Every verdict before one is chosen: the cause (a pipeline, an allocation) before the invalid work it made.
  const settled = Promise.all([allocErrors, Promise.all(checks), verdictOf(submitted)]).then(([errors, compiled, work]) => {
    const failed = compiled.find((m) => m !== undefined);
    if (failed) throw new DetlossError('pipeline', failed);
    const bad = allocationError(desc, errors, () => [...a.outputs, ...a.scratch].reduce((sum, b) => sum + b.size, 0));
    if (bad) throw bad;
    if (work) throw work;
  });
  settled.catch(() => {});
  return { out: bufs.out, shape: [...p.prog.lossShape], release: a.release, releaseOutputs: a.releaseOutputs, settled, status: bufs.status };
}

/** The bindings of a program pass, by the names of the fused contract (absent ones get the dummies). */
function bindings(rt: Runtime, k: Kernel, b: ProgramBuffers): GPUBindGroupEntry[] {
  const whole = (t: Tensor | undefined) => (t && t.bytes > 0 ? { buffer: t.buffer, offset: 0, size: Math.ceil(t.bytes / 4) * 4 } : undefined);
  return k.info.bindings.map((x) => {
    let resource: GPUBufferBinding | undefined;
    if (x.name === 'run') resource = { buffer: b.uniforms, offset: 0, size: k.info.uniforms.run.size };
    else if (x.name === 'params') resource = { buffer: b.uniforms, offset: PARAMS_AT, size: k.info.uniforms.params.size };
    else if (x.name === 'partials') resource = { buffer: b.work, offset: 0, size: b.work.size };
    else if (x.name === 'out_loss') resource = whole(b.out.loss);
    else if (x.name.startsWith('out_grad_')) {
      const name = Object.keys(b.out.grads).find((g) => `out_grad_${snake(g)}` === x.name);
      resource = name ? whole(b.out.grads[name]) : undefined;
    } else if (x.name.startsWith('in_')) {
      const name = Object.keys(b.tensors).find((g) => `in_${snake(g)}` === x.name);
      resource = name ? whole(b.tensors[name]) : undefined;
    }
    return { binding: x.binding, resource: resource ?? rt.dummies.get(x) };
  });
}

/** Encodes the passes (and the readback copies) in one command buffer and submits it. */
function encodeProgram(rt: Runtime, p: PreparedProgram, ks: Kernel[], b: ProgramBuffers, uniformBytes: ArrayBuffer): Promise<LastCall> {
  const { device } = rt;
  const { desc, passes, dims, indirectBytes } = p;
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let scopes: Promise<(GPUError | null)[]>;
  let last!: LastCall;
  try {
    device.queue.writeBuffer(b.uniforms, 0, uniformBytes);
    const enc = device.createCommandEncoder({ label: `detloss:${desc.name}` });
    let pass: GPUComputePassEncoder | undefined;
    let copied = false;
    let dispatches = 0;
    const max = Math.min(MAX_GROUPS, rt.limits.maxComputeWorkgroupsPerDimension ?? MAX_GROUPS);
    // The check pass's kernel is the last key when the call checks values (prepareProgram).
    if (b.status) dispatches += encodeChecks(device, enc, p.checks.length ? ks[ks.length - 1] : undefined, b.status, b.tensors, rt.limits.maxStorageBufferBindingSize, max, desc.name);
    passes.forEach((step, i) => {
      const k = ks[i];
      if (step.indirect !== undefined && !copied) {
        // The indirect grids were written by earlier passes: set them aside for the dispatches.
        pass?.end();
        pass = undefined;
        enc.copyBufferToBuffer(b.work, 0, b.indirect!, 0, indirectBytes);
        copied = true;
      }
      pass ??= enc.beginComputePass({ label: `detloss:${desc.name}:program` });
      pass.setPipeline(k.pipeline);
      pass.setBindGroup(0, device.createBindGroup({ label: `detloss:${desc.name}:${step.entry}`, layout: k.layout, entries: bindings(rt, k, b) }));
      if (step.indirect !== undefined) {
        // With no element the header was never written: nothing to dispatch.
        if ((dims.n ?? 0) > 0) {
          pass.dispatchWorkgroupsIndirect(b.indirect!, step.indirect);
          dispatches++;
        }
      } else {
        const [x, y] = groups(step.threads!(dims), WG, max);
        if (x > 0) {
          pass.dispatchWorkgroups(x, y);
          dispatches++;
        }
      }
    });
    pass?.end();
    // Last in the command buffer: a buffer the device refused anywhere above runs none of it.
    if (b.status?.marker) enc.copyBufferToBuffer(rt.dummies.one(), 0, b.status.buffer, 0, 4);
    if (b.status?.staging) enc.copyBufferToBuffer(b.status.buffer, 0, b.status.staging, 0, b.status.bytes);
    for (const s of b.staging) {
      for (const part of s.parts) {
        const src = part.name === undefined ? b.out.loss.buffer : part.name === STATUS ? b.status!.buffer : b.out.grads[part.name].buffer;
        enc.copyBufferToBuffer(src, 0, s.buffer, part.at, part.bytes);
      }
    }
    device.queue.submit([enc.finish()]);
    last = { op: desc.name, kernel: `${ks[0].name.split(':')[0]}:program`, dispatches, submits: 1, readbacks: 0 };
    rt.last = last;
  } finally {
    scopes = Promise.all([device.popErrorScope(), device.popErrorScope()]);
  }
  return scopes.then(([validation, oom]) => {
    if (oom) throw new DetlossError('gpu_out_of_memory', `${desc.name}: out of GPU memory: ${oom.message}`);
    if (validation) throw new DetlossError('gpu_validation', `${desc.name}: the GPU rejected the work: ${validation.message}`);
    return last;
  });
}
