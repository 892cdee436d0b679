import { DetlossError } from '../../errors';
import type { GpuKernel, OpDescriptor } from '../../ops/types';
import type { Resolved } from '../../ops/validate';
import type { AdapterFacts, LaunchPlan, RowStrategy, ShaderInfo } from '../public';
import { kernelVariants } from './contract';
import { reflectShader } from './reflect';

// Which of an op's kernels a call runs, and how its rows are split among threads.

/** An op's GPU kernel; an op without one is an `unknown_op` error. */
export function requireKernel(desc: OpDescriptor): GpuKernel {
  if (!desc.gpu) throw new DetlossError('unknown_op', `${desc.name}: no GPU kernel yet (unsupported on the GPU); use cpu.run`, 'op');
  return desc.gpu;
}

/** An op's shader layout (the generated table, or a reflector the user enabled); none is a `pipeline` error. */
export function shaderInfo(desc: OpDescriptor, gk: GpuKernel): ShaderInfo {
  try {
    return reflectShader(gk.shader);
  } catch (e) {
    throw new DetlossError('pipeline', `${desc.name}: ${e instanceof DetlossError ? '' : 'its WGSL could not be parsed: '}${(e as Error).message}`);
  }
}

/** Who computes a row in this call: a thread (every op's `entry`), or a workgroup or subgroup per long row. */
export function rowStrategy(plan: LaunchPlan, device: GPUDevice, adapter: AdapterFacts, gk: GpuKernel, r: Resolved): RowStrategy {
  if (!gk.rows || !r.dims || Object.keys(r.dims).length === 0) return 'thread';
  if (gk.rows.length(r.dims) < plan.rowThreshold) return 'thread';
  return plan.rowLanes === 'subgroup' && gk.rows.subgroup && device.features.has('subgroups') && subgroupsFit(adapter, plan.workgroupSize) ? 'subgroup' : 'workgroup';
}

/**
 * Whether a workgroup of `wg` lanes holds whole subgroups: at least the adapter's largest
 * subgroup, or 64 lanes where the adapter does not say (a subgroup per row reads the row with
 * every lane of its subgroup).
 */
export function subgroupsFit(adapter: AdapterFacts, wg: number): boolean {
  const max = adapter.subgroupMaxSize;
  return wg >= (max !== undefined && max > 0 ? max : 64);
}

/**
 * Whether this call runs the op's vec4 kernel: the plan asks for it, the op has one, and the
 * output is a multiple of four elements (chunk boundaries are 256-byte aligned, so then every
 * chunk is too).
 */
export function useVec4(plan: LaunchPlan, gk: GpuKernel, r: Resolved): boolean {
  return plan.vectorWidth === 4 && gk.vec4 !== undefined && r.outCount % 4 === 0;
}

/** The most lanes a subgroup may have here (the planner's threads per row under the subgroup strategy). */
export function subgroupLanes(adapter: AdapterFacts, wg: number): number {
  const max = adapter.subgroupMaxSize;
  return max !== undefined && max > 0 && max <= wg ? max : 32;
}

/**
 * Whether this call runs the op's narrow module (`GpuKernel.narrow`): it gives none of the inputs
 * that module leaves out (a warm-up, which has no inputs, warms the narrow one).
 */
export function useNarrow(gk: GpuKernel, r: Pick<Resolved, 'present'>): boolean {
  return gk.narrow !== undefined && gk.narrow.without.every((name) => !r.present?.has(name));
}

/**
 * Refuses (`too_large`, naming the device) a kernel that binds more storage buffers than `limit`:
 * every module a call may run counts (a program's binds parts); a call that runs the narrow module
 * (`GpuKernel.narrow`) counts that one alone.
 */
export function checkStorageFit(desc: OpDescriptor, gk: GpuKernel, narrow: boolean, limit: number): void {
  const count = (i: ShaderInfo) => i.bindings.filter((b) => b.kind !== 'uniform').length;
  const modules = narrow ? [reflectShader(gk.narrow!.shader)] : [shaderInfo(desc, gk), ...kernelVariants(gk).slice(1).filter((v) => v.variant !== 'narrow').map((v) => reflectShader(v.shader))];
  const storage = Math.max(...modules.map(count));
  if (storage <= limit) return;
  const which = gk.narrow ? ` with ${gk.narrow.without.join(' or ')}` : '';
  throw new DetlossError(
    'too_large',
    `${desc.name}: its kernel${which} binds ${storage} storage buffers, more than this device allows per shader stage (maxStorageBuffersPerShaderStage ${limit}). ` +
      "A device requested with the adapter's own limits allows it (createDetloss requests them); a device made with the default limits, as TF.js's WebGPU backend makes it, does not.",
    'device',
  );
}
