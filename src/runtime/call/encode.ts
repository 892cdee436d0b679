import { DetlossError } from '../../errors';
import type { OpDescriptor } from '../../ops/types';
import type { Resolved } from '../../ops/validate';
import { SLOT } from '../compile/abi';
import type { Kernel } from '../compile/pipelines';
import { inErrorScopes, scopeError } from '../device/scope';
import { timestampWrites } from '../device/timestamps';
import { PART, type Staging } from '../memory/staging';
import type { LastCall, ShaderInfo } from '../public';
import { bindingResource } from './bindings';
import { encodeChecks } from './checks';
import type { CallPlan } from './plan';
import type { CallBuffers, Runtime } from './runtime';

/** Byte offset of a uniform member (the runtime copies GPU-computed values into some). */
function memberOffset(layout: ShaderInfo['uniforms'][string] | undefined, name: string): number {
  const m = layout?.members.find((x) => x.name === name);
  if (!m) throw new DetlossError('pipeline', `uniform ${layout?.name ?? '?'} has no member ${name}`);
  return m.offset;
}

/** The kernels of one call: the fused pass, and the reduction and denominator passes where it has them. */
export interface CallKernels {
  fused: Kernel;
  reduce?: Kernel;
  denominator?: Kernel;
  /** The aux number's entry point (GpuKernel.aux). */
  aux?: Kernel;
  /** The check pass (./checks.ts), when the call checks GPU-resident values. */
  check?: Kernel;
}

/**
 * Encodes the fused pass (chunked), the reduction and the readback copies, and submits them
 * once; all synchronous, and the call's record is `rt.last` from the submit on. The promise says
 * whether the GPU accepted the work.
 */
export function encode(rt: Runtime, desc: OpDescriptor, kernels: CallKernels, r: Resolved, plan: CallPlan, bufs: CallBuffers, staging: Staging[]): Promise<LastCall> {
  const { fused: k, reduce: reduceK, denominator: denomK, aux: auxK } = kernels;
  const { device } = rt;
  const { chunks } = plan;
  const { out, partials, uniforms, timing } = bufs;
  let dispatches = 0;
  // The chunked dispatches of one entry point of the op's module.
  const chunked = (pass: GPUComputePassEncoder, kernel: Kernel, label: string) => {
    pass.setPipeline(kernel.pipeline);
    for (const [i, c] of chunks.entries()) {
      const entries: GPUBindGroupEntry[] = kernel.info.bindings.map((b) => ({
        binding: b.binding,
        resource: bindingResource(desc, b, c, i, r, bufs, plan.perRow, rt.dummies),
      }));
      pass.setBindGroup(0, device.createBindGroup({ label: `detloss:${desc.name}:${label}${i}`, layout: kernel.layout, entries }));
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
      pass.setBindGroup(0, device.createBindGroup({ label: `detloss:${desc.name}:${label}${i}`, layout: rk.layout, entries }));
      pass.dispatchWorkgroups(level.grid[0], level.grid[1]);
      dispatches++;
    });
  };
  const { value: last, caught } = inErrorScopes(device, (): LastCall => {
    device.queue.writeBuffer(uniforms, 0, plan.uniforms);
    const enc = device.createCommandEncoder({ label: `detloss:${desc.name}` });
    if (bufs.status) dispatches += encodeChecks(device, enc, kernels.check, bufs.status, bufs.tensors, rt.limits.maxStorageBufferBindingSize, rt.limits.maxComputeWorkgroupsPerDimension, desc.name);
    if (denomK && reduceK && plan.denomAt !== undefined && bufs.denominator) {
      // The data-dependent 'mean' denominator first: summed like the loss, its reciprocal then
      // copied into the scale of every fused slot (each loss is scaled before it is added).
      const pass = enc.beginComputePass({ label: `detloss:${desc.name}:denominator`, timestampWrites: timestampWrites(timing, 'denominator') });
      chunked(pass, denomK, 'denominator');
      tree(pass, reduceK, plan.denomAt, bufs.denominator, 'denominator-reduce');
      pass.end();
      const runScale = memberOffset(k.info.uniforms.run, 'scale');
      chunks.forEach((_, i) => enc.copyBufferToBuffer(bufs.denominator!, 0, uniforms, i * SLOT + runScale, 4));
    }
    let pass = enc.beginComputePass({ label: `detloss:${desc.name}:fused`, timestampWrites: timestampWrites(timing, 'fused') });
    chunked(pass, k, 'chunk');
    if (reduceK && r.reduction !== 'none') {
      pass.end();
      pass = enc.beginComputePass({ label: `detloss:${desc.name}:reduce`, timestampWrites: timestampWrites(timing, 'reduce') });
      tree(pass, reduceK, plan.redAt, out.loss.buffer, 'reduce');
    }
    // The aux number (Wise-IoU's batch mean) in the same pass, once the loss's partials are added:
    // its entry sums per thread into the same partials, the same tree adds them.
    if (auxK && reduceK && plan.auxAt !== undefined && out.aux) {
      chunked(pass, auxK, 'aux');
      tree(pass, reduceK, plan.auxAt, out.aux.buffer, 'aux-reduce');
    }
    pass.end();
    // Last in the command buffer: a buffer the device refused anywhere above runs none of it.
    if (bufs.status?.marker) enc.copyBufferToBuffer(rt.dummies.one(), 0, bufs.status.buffer, 0, 4);
    if (bufs.status?.staging) enc.copyBufferToBuffer(bufs.status.buffer, 0, bufs.status.staging, 0, bufs.status.bytes);
    if (timing) enc.resolveQuerySet(timing.querySet, 0, 2 * timing.passes.length, timing.resolve, 0);
    for (const s of staging) {
      for (const part of s.parts) {
        const src = part.name === undefined ? out.loss.buffer : part.name === PART.timestamps ? timing!.resolve : part.name === PART.aux ? out.aux!.buffer : part.name === PART.status ? bufs.status!.buffer : out.grads[part.name].buffer;
        enc.copyBufferToBuffer(src, 0, s.buffer, part.at, part.bytes);
      }
    }
    device.queue.submit([enc.finish()]);
    rt.last = { op: desc.name, kernel: k.name, dispatches, submits: 1, readbacks: 0, ...(plan.tuned ? { tunedPlan: plan.tuned } : {}) };
    return rt.last;
  });
  return caught.then((errors) => {
    const refused = scopeError(desc.name, errors, 'work');
    if (refused) throw refused;
    return last;
  });
}
