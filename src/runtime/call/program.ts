import { DetlossError } from '../../errors';
import { snake, type OpDescriptor } from '../../ops/types';
import type { SharedOptions } from '../../ops/validate';
import { FLAG, PARAMS_AT, SLOT } from '../compile/abi';
import type { Kernel } from '../compile/pipelines';
import { packUniform } from '../compile/reflect';
import { WG } from '../device/constants';
import { inErrorScopes, scopeError } from '../device/scope';
import { readTimestamps } from '../device/timestamps';
import type { Tensor } from '../memory/allocation';
import { PART, partOutput } from '../memory/staging';
import type { AnyInput, LastCall } from '../public';
import { encodeChecks, lateVerdict } from './checks';
import { MAX_GROUPS, allocateProgram, groups, prepareProgram, type PreparedProgram, type ProgramBuffers } from './program-prepare';
import type { Runtime, SubmittedCall, SyncCall } from './runtime';
import { syncVerdict } from './status';

// The program path: an op whose kernel is a program of passes (the ranking losses), prepared and
// allocated in ./program-prepare.ts, encoded and submitted here.

/** Packs the call's uniforms and encodes and submits its passes; the promise is the GPU's verdict on that work. */
function submitProgram(rt: Runtime, p: PreparedProgram, bufs: ProgramBuffers, ks: Kernel[]): Promise<LastCall> {
  const { desc, gk, r, dims, scratch } = p;
  const info0 = ks[0].info;
  const bytes = new ArrayBuffer(SLOT);
  const view = new DataView(bytes);
  const flags = FLAG.grad * +r.wantGrad + FLAG.gradOutput * +r.hasGradOutput;
  packUniform(info0.uniforms.run, { n: dims.n ?? 0, threads: scratch.threads, flags, scale: 1 }, view, 0, desc.name);
  // has_<input>: whether an optional input was given (absent ones are bound to a dummy).
  const has = Object.fromEntries(Object.keys(desc.inputs).map((k) => [`has_${snake(k)}`, p.info[k] === undefined ? 0 : 1]));
  if (info0.uniforms.params) packUniform(info0.uniforms.params, { ...dims, ...has, ...(gk.uniforms?.(r.params, dims) ?? {}) }, view, PARAMS_AT, desc.name);
  return encodeProgram(rt, p, ks, bufs, bytes);
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
    const bad = scopeError(desc.name, await allocErrors, { buffers: a.bytes() });
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

/**
 * `executeProgram` for callers that must have the work submitted before they return (framework
 * adapters). Inputs must all be GPU tensors. Validation, allocation, kernels not compiled yet
 * (`PipelineCache.pipelineSync`), encoding and the submit all happen now: argument errors throw
 * at once, the GPU's verdict arrives in `settled`.
 */
export function submitProgramSync(rt: Runtime, desc: OpDescriptor, inputs: Record<string, AnyInput | undefined>, options: SharedOptions & Record<string, unknown>, guard = false): SyncCall {
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
  const settled = syncVerdict(desc.name, checks, allocErrors, a.bytes, submitted);
  return { out: bufs.out, outputShapes: p.r.outputShapes, shape: [...p.prog.lossShape], release: a.release, releaseOutputs: a.releaseOutputs, settled, status: bufs.status };
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
    else if (x.name.startsWith('out_') && !x.name.startsWith('out_grad_')) {
      const name = Object.keys(b.out.named).find((g) => `out_${snake(g)}` === x.name);
      resource = name ? whole(b.out.named[name]) : undefined;
    }
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
  let pendingTimes: { resolve: GPUBuffer; read: GPUBuffer } | undefined;
  const { value: last, caught } = inErrorScopes(device, (): LastCall => {
    device.queue.writeBuffer(b.uniforms, 0, uniformBytes);
    const enc = device.createCommandEncoder({ label: `detloss:${desc.name}` });
    let pass: GPUComputePassEncoder | undefined;
    let copied = false;
    let dispatches = 0;
    const max = Math.min(MAX_GROUPS, rt.limits.maxComputeWorkgroupsPerDimension ?? MAX_GROUPS);
    // With timestamps, each pass runs in a compute pass of its own that writes its begin and end.
    const timed = rt.timestamps.enabled ? { querySet: rt.timestamps.programQuerySet(2 * passes.length) } : undefined;
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
      if (timed) {
        pass?.end();
        pass = enc.beginComputePass({ label: `detloss:${desc.name}:${step.entry}`, timestampWrites: { querySet: timed.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
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
        const [x, y] = groups(step.threads!(dims, p.r.params), WG, max);
        if (x > 0) {
          pass.dispatchWorkgroups(x, y);
          dispatches++;
        }
      }
    });
    pass?.end();
    let times: { resolve: GPUBuffer; read: GPUBuffer } | undefined;
    if (timed) {
      const bytes = 16 * passes.length;
      times = {
        resolve: device.createBuffer({ size: bytes, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC, label: 'detloss:program-timestamps' }),
        read: device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'detloss:program-timestamps-read' }),
      };
      enc.resolveQuerySet(timed.querySet, 0, 2 * passes.length, times.resolve, 0);
      enc.copyBufferToBuffer(times.resolve, 0, times.read, 0, bytes);
    }
    // Last in the command buffer: a buffer the device refused anywhere above runs none of it.
    if (b.status?.marker) enc.copyBufferToBuffer(rt.dummies.one(), 0, b.status.buffer, 0, 4);
    if (b.status?.staging) enc.copyBufferToBuffer(b.status.buffer, 0, b.status.staging, 0, b.status.bytes);
    for (const s of b.staging) {
      for (const part of s.parts) {
        const named = partOutput(part.name);
        const src = part.name === undefined ? b.out.loss.buffer : part.name === PART.status ? b.status!.buffer : named !== undefined ? b.out.named[named].buffer : b.out.grads[part.name].buffer;
        enc.copyBufferToBuffer(src, 0, s.buffer, part.at, part.bytes);
      }
    }
    device.queue.submit([enc.finish()]);
    rt.last = { op: desc.name, kernel: `${ks[0].name.split(':')[0]}:program`, dispatches, submits: 1, readbacks: 0 };
    if (times) pendingTimes = times;
    return rt.last;
  });
  return caught.then(async (errors) => {
    const refused = scopeError(desc.name, errors, 'work');
    if (refused) throw refused;
    // The passes' GPU times (a context made with `timestamps: true`), read before the call resolves.
    const t = pendingTimes;
    if (t) {
      try {
        await t.read.mapAsync(GPUMapMode.READ);
        readTimestamps(last, passes.map((s) => s.entry), new DataView(t.read.getMappedRange()));
      } finally {
        t.resolve.destroy();
        t.read.destroy();
      }
    }
    return last;
  });
}
