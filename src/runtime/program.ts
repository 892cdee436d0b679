import { DetlossError } from '../errors';
import { snake, type Dims, type GpuKernel, type OpDescriptor } from '../ops/types';
import type { SharedOptions } from '../ops/validate';
import { CallAllocation, upload } from './call-buffers';
import { isGpuBuffer, readInputs } from './call-inputs';
import { checkSize, type OutputSizes } from './call-plan';
import type { SubmittedCall } from './execute';
import { FLAG, PARAMS_AT, SLOT } from './fused-slots';
import type { Kernel } from './pipelines';
import { stagingPlan } from './readback';
import { packUniform } from './reflect';
import { USAGE, WG, type AnyInput, type LastCall, type Runtime, type Tensor } from './types';

// Runs an op whose kernel is a program of passes (GpuKernel.program; the ranking losses) in place
// of the fused pass and the reduction tree: the same pool, error scopes and SubmittedCall, so
// `run` and `runResident` read its outputs as any other call's.

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

/**
 * Validates, uploads and submits a call of a program op; argument errors throw before any GPU
 * work. Program ops reduce themselves: reduction 'mean' only (their descriptor's `reductions`),
 * and no `weight` or `avgFactor`.
 */
export async function executeProgram(rt: Runtime, desc: OpDescriptor, inputs: Record<string, AnyInput | undefined>, options: SharedOptions & Record<string, unknown>, readback: boolean): Promise<SubmittedCall> {
  rt.liveness.check();
  const { device, kernels, limits } = rt;
  const gk = desc.gpu!;
  const prog = gk.program!;
  const { data, info, gpu, r } = readInputs(desc, inputs, options);
  if (r.hasWeight) throw new DetlossError('invalid_param', `${desc.name}: takes no weight (the loss is already a mean over the positives)`, 'weight');
  if (r.avgFactor !== undefined) throw new DetlossError('invalid_param', `${desc.name}: takes no avgFactor (the loss is already a mean over the positives)`, 'avgFactor');

  const passes = prog.passes.filter((p) => r.wantGrad || !p.gradOnly);
  const keys = passes.map((p) => kernels.kernelKey(desc, r, p.entry));
  const pending = keys.map((k) => kernels.pipeline(k));
  for (const k of pending) k.catch(() => {});

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

  // Buffers, inside error scopes (as allocateCall).
  const a = new CallAllocation(rt.pool, desc.name);
  const { scratch: scratchList, outputs, staging } = a;
  const outUsage = readback ? USAGE.STORAGE | USAGE.COPY_SRC : USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST;
  let allocErrors: Promise<(GPUError | null)[]>;
  const tensors: Record<string, Tensor | undefined> = {};
  let out!: SubmittedCall['out'];
  let work!: GPUBuffer;
  let indirect: GPUBuffer | undefined;
  let uniforms!: GPUBuffer;
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  try {
    out = { loss: { buffer: a.acquire(Math.max(lossBytes, 4), outUsage, 'loss', outputs), bytes: lossBytes }, lossBytes, grads: {}, emptyGrads: outs.emptyGrads };
    for (const [name, bytes] of Object.entries(outs.grads)) out.grads[name] = { buffer: a.acquire(bytes, outUsage, `grad.${name}`, outputs), bytes };
    if (!readback) for (const name of outs.emptyGrads) out.grads[name] = { buffer: a.acquire(4, outUsage, `grad.${name}`, outputs), bytes: 0 };
    if (readback) for (const s of stagingPlan(limits, outs, 0)) staging.push({ ...s, buffer: a.acquire(s.bytes, USAGE.MAP_READ | USAGE.COPY_DST, 'staging', []) });
    for (const [name, t] of Object.entries(gpu)) {
      tensors[name] = info[name]!.length ? { buffer: isGpuBuffer(t) ? t : t.buffer, bytes: info[name]!.length * 4 } : undefined;
    }
    for (const [name, arr] of Object.entries(data)) {
      if (!arr || arr.length === 0) continue;
      const buf = a.acquire(arr.byteLength, USAGE.STORAGE | USAGE.COPY_DST, name, scratchList);
      upload(device, buf, arr);
      tensors[name] = { buffer: buf, bytes: arr.byteLength };
    }
    work = a.acquire(Math.max(4, scratch.words * 4), USAGE.STORAGE | USAGE.COPY_SRC, 'scratch', scratchList);
    if (indirectBytes) indirect = a.acquire(indirectBytes, INDIRECT | USAGE.COPY_DST, 'indirect', scratchList);
    uniforms = a.acquire(SLOT, USAGE.UNIFORM | USAGE.COPY_DST, 'uniforms', scratchList);
  } catch (e) {
    a.discardAll();
    throw e;
  } finally {
    allocErrors = Promise.all([device.popErrorScope(), device.popErrorScope()]);
  }

  const encodeAll = (ks: Kernel[]): Promise<LastCall> => {
    const info0 = ks[0].info;
    const bytes = new ArrayBuffer(SLOT);
    const view = new DataView(bytes);
    const flags = FLAG.grad * +r.wantGrad + FLAG.gradOutput * +r.hasGradOutput;
    packUniform(info0.uniforms.run, { n: dims.n ?? 0, threads: scratch.threads, flags, scale: 1 }, view, 0, desc.name);
    if (info0.uniforms.params) packUniform(info0.uniforms.params, { ...dims, ...(gk.uniforms?.(r.params, dims) ?? {}) }, view, PARAMS_AT, desc.name);
    return encodeProgram(rt, desc, passes, ks, { bytes, uniforms, work, indirect, indirectBytes, tensors, out, staging, dims });
  };

  try {
    const ready = keys.map((k) => kernels.compiledKernel(k));
    let submitted: Promise<LastCall> | undefined;
    if (ready.every((k) => k)) {
      submitted = encodeAll(ready as Kernel[]);
      submitted.catch(() => {});
    }
    const [validation, oom] = await allocErrors;
    if (oom || validation) {
      const total = [...outputs, ...scratchList].reduce((sum, b) => sum + b.size, 0);
      if (oom) throw new DetlossError('gpu_out_of_memory', `${desc.name}: out of GPU memory allocating ${total} bytes for this call: ${oom.message}`);
      throw new DetlossError('gpu_validation', `${desc.name}: the GPU refused this call's buffers: ${validation!.message}`);
    }
    if (!submitted) {
      const ks = await Promise.all(pending);
      rt.liveness.check();
      submitted = encodeAll(ks);
    }
    const last = await submitted;
    rt.liveness.check();
    const shape = [...prog.lossShape];
    return { desc, r, out, staging, release: a.release, releaseOutputs: a.releaseOutputs, last, shape };
  } catch (e) {
    a.discardAll();
    throw e;
  }
}

interface ProgramBuffers {
  bytes: ArrayBuffer;
  uniforms: GPUBuffer;
  work: GPUBuffer;
  indirect?: GPUBuffer;
  indirectBytes: number;
  tensors: Record<string, Tensor | undefined>;
  out: SubmittedCall['out'];
  staging: SubmittedCall['staging'];
  dims: Dims;
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
function encodeProgram(rt: Runtime, desc: OpDescriptor, passes: readonly Pass[], ks: Kernel[], b: ProgramBuffers): Promise<LastCall> {
  const { device } = rt;
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let scopes: Promise<(GPUError | null)[]>;
  let last!: LastCall;
  try {
    device.queue.writeBuffer(b.uniforms, 0, b.bytes);
    const enc = device.createCommandEncoder({ label: `detloss:${desc.name}` });
    let pass: GPUComputePassEncoder | undefined;
    let copied = false;
    let dispatches = 0;
    const max = Math.min(MAX_GROUPS, rt.limits.maxComputeWorkgroupsPerDimension ?? MAX_GROUPS);
    passes.forEach((p, i) => {
      const k = ks[i];
      if (p.indirect !== undefined && !copied) {
        // The indirect grids were written by earlier passes: set them aside for the dispatches.
        pass?.end();
        pass = undefined;
        enc.copyBufferToBuffer(b.work, 0, b.indirect!, 0, b.indirectBytes);
        copied = true;
      }
      pass ??= enc.beginComputePass({ label: `detloss:${desc.name}:program` });
      pass.setPipeline(k.pipeline);
      pass.setBindGroup(0, device.createBindGroup({ label: `detloss:${desc.name}:${p.entry}`, layout: k.layout, entries: bindings(rt, k, b) }));
      if (p.indirect !== undefined) {
        // With no element the header was never written: nothing to dispatch.
        if ((b.dims.n ?? 0) > 0) {
          pass.dispatchWorkgroupsIndirect(b.indirect!, p.indirect);
          dispatches++;
        }
      } else {
        const [x, y] = groups(p.threads!(b.dims), WG, max);
        if (x > 0) {
          pass.dispatchWorkgroups(x, y);
          dispatches++;
        }
      }
    });
    pass?.end();
    for (const s of b.staging) {
      for (const part of s.parts) enc.copyBufferToBuffer(part.name === undefined ? b.out.loss.buffer : b.out.grads[part.name].buffer, 0, s.buffer, part.at, part.bytes);
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
