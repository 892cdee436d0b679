import { DetlossError } from '../../errors';
import type { Dims, GpuKernel, OpDescriptor } from '../../ops/types';
import type { Resolved, SharedOptions } from '../../ops/validate';
import { USAGE } from '../device/constants';
import { inErrorScopes, type ScopeErrors } from '../device/scope';
import { CallAllocation, acquireCallIo, type CallOutputs, type Tensor } from '../memory/allocation';
import { stagingPlan, type OutputSizes, type Staging } from '../memory/staging';
import { SLOT } from '../compile/abi';
import type { AnyInput } from '../public';
import { acquireStatus, planChecks } from './checks';
import { readInputs, type CallInputs } from './inputs';
import { checkSize } from './plan';
import type { Runtime } from './runtime';
import type { CallStatus, ValueCheck } from './status';

// Runs an op whose kernel is a program of passes (GpuKernel.program; the ranking losses) in place
// of the fused pass and the reduction tree: the same pool, error scopes and SubmittedCall, so
// `run` and `runResident` read its outputs as any other call's. The steps (prepare, allocate,
// encode) are synchronous; `executeProgram` awaits compiled pipelines between them, and
// `submitProgramSync` (framework adapters) compiles them synchronously instead.

export type Program = NonNullable<GpuKernel['program']>;
type Pass = Program['passes'][number];

/** The most workgroups in one dimension of a direct dispatch (the WebGPU default limit). */
export const MAX_GROUPS = 65535;

/** Workgroups for `threads` threads of WG lanes, as [x, y] within the per-dimension limit. */
export function groups(threads: number, wg: number, max: number): [number, number] {
  const g = Math.ceil(threads / wg);
  return g <= max ? [g, g === 0 ? 0 : 1] : [max, Math.ceil(g / max)];
}

/** A program call, validated and sized: plain data, no GPU work yet. */
export interface PreparedProgram {
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
  /** The value checks of GPU-resident inputs (./checks.ts) and the "work ran" marker. */
  checks: ValueCheck[];
  marker: boolean;
  /** A resident call: its checks' words are read after it resolved. */
  late: boolean;
}

/** A program call's buffers. */
export interface ProgramBuffers {
  uniforms: GPUBuffer;
  work: GPUBuffer;
  indirect?: GPUBuffer;
  tensors: Record<string, Tensor | undefined>;
  out: CallOutputs;
  staging: Staging[];
  status?: CallStatus;
}

/**
 * Validates and sizes a call of a program op; argument errors throw here, before any GPU work.
 * Program ops reduce themselves: reduction 'mean' only (their descriptor's `reductions`), and no
 * `weight` or `avgFactor`. `onKeys` runs as soon as the kernel keys are known (the async path
 * starts compiling there).
 */
export function prepareProgram(
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
  const why = desc.reductions?.length === 0 ? 'it is not reduced by the caller' : 'the loss is already a mean over the positives';
  if (r.hasWeight) throw new DetlossError('invalid_param', `${desc.name}: takes no weight (${why})`, 'weight');
  if (r.avgFactor !== undefined) throw new DetlossError('invalid_param', `${desc.name}: takes no avgFactor (${why})`, 'avgFactor');

  // A software adapter runs the program's software passes where it has them.
  const all = rt.plan.kind === 'software' && prog.software ? prog.software.passes : prog.passes;
  const passes = all.filter((p) => r.wantGrad || !p.gradOnly);
  // The check pass's kernel, when there is one, is the last key (it is encoded first).
  const keys = [...passes.map((p) => kernels.kernelKey(desc, r, p.entry, p.module)), ...(checks.length ? [kernels.checkKey] : [])];
  onKeys?.(keys);

  // Sizes, every one checked before any allocation.
  const dims: Dims = r.dims;
  const lossBytes = 4 * prog.lossShape.reduce((a, b) => a * b, 1);
  const outs: OutputSizes = { lossBytes, grads: {}, emptyGrads: [], named: {} };
  for (const [name, spec] of Object.entries(desc.outputs ?? {})) outs.named![name] = { bytes: 4 * r.outputShapes[name].reduce((a, b) => a * b, 1), dtype: spec.dtype };
  if (r.wantGrad) {
    for (const [name, spec] of Object.entries(desc.inputs)) {
      if (!spec.grad) continue;
      const bytes = (info[name]?.length ?? 0) * 4;
      if (bytes === 0) outs.emptyGrads.push(name);
      else outs.grads[name] = bytes;
    }
  }
  const host: Record<string, ArrayLike<number> | undefined> = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, v]));
  const scratch = prog.scratch(dims, host, r.params);
  // A program binds each buffer whole (no chunks): each must fit one binding as well as one buffer.
  const fits = (name: string, bytes: number) => {
    checkSize(limits, desc, name, bytes);
    if (bytes > limits.maxStorageBufferBindingSize) {
      throw new DetlossError('too_large', `${desc.name}: ${name} takes ${bytes} bytes, more than one binding holds here (maxStorageBufferBindingSize ${limits.maxStorageBufferBindingSize})`, name === 'scratch' ? Object.keys(desc.inputs)[0] : name);
    }
  };
  fits('scratch', scratch.words * 4);
  for (const [name, bytes] of Object.entries(outs.grads)) fits(`grad.${name}`, bytes);
  for (const [name, o] of Object.entries(outs.named!)) fits(name, o.bytes);
  for (const [name, i] of Object.entries(info)) if (i) fits(name, i.length * 4);
  const indirectBytes = Math.max(0, ...passes.map((p) => (p.indirect === undefined ? 0 : p.indirect + 12)));
  return { desc, gk, prog, r, data, info, gpu, passes, keys, dims, outs, scratch, indirectBytes, checks, marker: how.guard, late: !how.readback && !how.guard };
}

/**
 * Allocates a prepared program call's buffers and uploads its host arrays, synchronously, inside
 * out-of-memory and validation error scopes whose verdict is `allocErrors` (as allocateCall).
 */
export function allocateProgram(rt: Runtime, p: PreparedProgram, readback: boolean): { a: CallAllocation; bufs: ProgramBuffers; allocErrors: Promise<ScopeErrors> } {
  const { device, limits } = rt;
  const { desc, outs, data, info, gpu, scratch, indirectBytes } = p;
  const a = new CallAllocation(rt.pool, desc.name);
  const { scratch: scratchList, staging } = a;
  try {
    const { value: bufs, caught: allocErrors } = inErrorScopes(device, (): ProgramBuffers => {
      const statusBytes = p.checks.length ? 4 * (1 + p.checks.length) : 0;
      const { out, tensors } = acquireCallIo(device, a, outs, readback ? stagingPlan(limits, outs, 0, statusBytes) : [], readback, { data, info, gpu });
      const work = a.acquire(Math.max(4, scratch.words * 4), USAGE.STORAGE | USAGE.COPY_SRC, 'scratch', scratchList);
      const indirect = indirectBytes ? a.acquire(indirectBytes, USAGE.INDIRECT | USAGE.COPY_DST, 'indirect', scratchList) : undefined;
      const uniforms = a.acquire(SLOT, USAGE.UNIFORM | USAGE.COPY_DST, 'uniforms', scratchList);
      const status = acquireStatus(rt, a, p.checks, p.marker, p.late);
      return { uniforms, work, indirect, tensors, out, staging, status };
    });
    return { a, bufs, allocErrors };
  } catch (e) {
    a.discardAll();
    throw e;
  }
}
