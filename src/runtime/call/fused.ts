import { DetlossError } from '../../errors';
import { getOp } from '../../ops/registry';
import type { GpuKernel, OpDescriptor } from '../../ops/types';
import type { Resolved, SharedOptions } from '../../ops/validate';
import { requireKernel } from '../compile/kernel-choice';
import type { Kernel } from '../compile/pipelines';
import { USAGE } from '../device/constants';
import { inErrorScopes, scopeError, type ScopeErrors } from '../device/scope';
import { CallAllocation, acquireCallIo } from '../memory/allocation';
import { PART, stagingPlan, type OutputSizes, type Staging } from '../memory/staging';
import type { AnyInput, LastCall } from '../public';
import { acquireStatus, lateVerdict, planChecks } from './checks';
import { encode, type CallKernels } from './encode';
import { readInputs } from './inputs';
import { callSize, checkSize, launchFor, meanScale, outputSizes, planCall, tunableOptions, type CallPlan } from './plan';
import type { CallBuffers, Runtime, SubmittedCall } from './runtime';
import type { ValueCheck } from './status';

// The fused path: an op's fused forward-and-backward pass over chunks of rows, then the
// reduction tree, in one command buffer.

/** One call, validated and planned: plain data, no GPU work yet. */
export interface PreparedCall {
  /** The value checks of its GPU-resident inputs, and whether word 0 marks that the work ran. */
  checks: ValueCheck[];
  marker: boolean;
  desc: OpDescriptor;
  r: Resolved;
  gk: GpuKernel;
  reduced: boolean;
  gpuDenominator: boolean;
  /** Kernel keys of the fused pass, the reduction, the GPU 'mean' denominator and the aux number. */
  keys: { fused: string; reduce?: string; denominator?: string; aux?: string; check?: string };
  plan: CallPlan;
  outs: OutputSizes;
  data: ReturnType<typeof readInputs>['data'];
  info: ReturnType<typeof readInputs>['info'];
  gpu: ReturnType<typeof readInputs>['gpu'];
  timingPasses?: string[];
  timingBytes: number;
  stagingParts: Omit<Staging, 'buffer'>[];
}

/**
 * Validates and plans a call (argument errors throw here, before any GPU work). `onKeys` runs as
 * soon as the kernel keys are known, before the planning: the async path starts compiling there.
 * The values of GPU-resident inputs are checked on the GPU: read back with the results (`readback`),
 * left to the caller's guarded copy (`guard`, which also marks that the work ran), or read later
 * (a resident call: LateVerdicts, ./status.ts).
 */
export function prepareCall(
  rt: Runtime,
  op: string | OpDescriptor,
  inputs: Record<string, AnyInput | undefined>,
  options: SharedOptions & Record<string, unknown>,
  readback: boolean,
  onKeys?: (keys: PreparedCall['keys']) => void,
  guard = false,
): PreparedCall {
  rt.liveness.check();
  const { kernels, limits } = rt;
  const desc = getOp(op);
  const { data, info, gpu, onDevice, r } = readInputs(desc, inputs, options);
  const checks = planChecks(desc, r, gpu, info);
  const gk = requireKernel(desc);
  // A 'mean' whose denominator depends on data the host does not have: summed on the GPU first.
  const gpuDenominator = !!desc.meanDenominator && r.reduction === 'mean' && r.avgFactor === undefined && onDevice;
  if (gpuDenominator && !gk.denominator) {
    throw new DetlossError('invalid_param', `${desc.name}: reduction 'mean' with GPU-resident inputs needs avgFactor (its denominator depends on the data)`, 'avgFactor');
  }
  const reduced = r.reduction !== 'none';
  const aux = gk.aux?.when(r.params) ? gk.aux : undefined;
  // The call's size class, once: it picks a tuned plan, and the usage log (what tune() takes by default) files the call by it.
  const size = callSize(gk, r);
  const launch = launchFor(rt, gk, r, size);
  rt.usage?.note(gk.shaderId, desc.name, tunableOptions(desc, options), r.dims, { key: size.key, count: r.outCount });
  const keys = {
    fused: kernels.kernelKey(desc, r, undefined, undefined, launch.plan),
    reduce: reduced || aux ? kernels.reduceKeyFor(launch.plan.reduceLanes) : undefined,
    denominator: gpuDenominator ? kernels.kernelKey(desc, r, gk.denominator, undefined, launch.plan) : undefined,
    aux: aux ? kernels.kernelKey(desc, r, aux.entry, undefined, launch.plan) : undefined,
    check: checks.length ? kernels.checkKey : undefined,
  };
  onKeys?.(keys);
  const scale = gpuDenominator ? 0 : meanScale(desc, r, data);
  const present = new Set(Object.keys(desc.inputs).filter((name) => (info[name]?.length ?? 0) > 0));
  const plan = planCall(rt, launch.plan, desc, gk, r, scale, present, gpuDenominator, !!aux);
  if (launch.tuned) plan.tuned = launch.tuned;
  // Every size check before any allocation: a problem too large is refused with nothing done.
  const outs = outputSizes(limits, desc, r);
  for (const [name, arr] of Object.entries(data)) if (arr) checkSize(limits, desc, name, arr.byteLength);
  const timingPasses = rt.timestamps.passes(gpuDenominator, reduced);
  const timingBytes = (timingPasses?.length ?? 0) * 16;
  // The timestamps ride in the results' readback; the resident path reads them alone.
  const statusBytes = checks.length ? 4 * (1 + checks.length) : 0;
  const stagingParts = readback ? stagingPlan(limits, outs, timingBytes, statusBytes) : timingBytes ? [{ bytes: timingBytes, parts: [{ name: PART.timestamps, bytes: timingBytes, at: 0 }] }] : [];
  return { desc, r, gk, reduced, gpuDenominator, keys, plan, outs, data, info, gpu, timingPasses, timingBytes, stagingParts, checks, marker: guard };
}

/**
 * Allocates a prepared call's buffers and uploads its host arrays, synchronously, inside
 * out-of-memory and validation error scopes whose verdict is `allocErrors`.
 */
export function allocateCall(rt: Runtime, p: PreparedCall, readback: boolean): { a: CallAllocation; bufs: CallBuffers; allocErrors: Promise<ScopeErrors> } {
  const { device } = rt;
  const { desc, outs, plan, data, info, gpu, timingPasses, timingBytes } = p;
  const a = new CallAllocation(rt.pool, desc.name);
  const { scratch } = a;
  try {
    const { value: bufs, caught: allocErrors } = inErrorScopes(device, (): CallBuffers => {
      const { out, tensors } = acquireCallIo(device, a, outs, p.stagingParts, readback, { data, info, gpu });
      const partials = plan.levels.length ? a.acquire(Math.max(4, plan.totalPartials * 4), USAGE.STORAGE, 'partials', scratch) : undefined;
      const partials2 = plan.levels.length > 1 ? a.acquire(plan.levels[0].groups * 4, USAGE.STORAGE, 'partials2', scratch) : undefined;
      const uniforms = a.acquire(plan.uniformBytes, USAGE.UNIFORM | USAGE.COPY_DST, 'uniforms', scratch);
      const denominator = p.gpuDenominator ? a.acquire(4, USAGE.STORAGE | USAGE.COPY_SRC, 'denominator', scratch) : undefined;
      // A resident call reads its checks' words later (readback reads them with the results, the guard's caller itself).
      const status = acquireStatus(rt, a, p.checks, p.marker, !readback && !p.marker);
      const timing = timingPasses && {
        querySet: rt.timestamps.querySet(),
        resolve: a.acquire(timingBytes, USAGE.QUERY_RESOLVE | USAGE.COPY_SRC, 'timestamps', scratch),
        passes: timingPasses,
      };
      return { tensors, out, partials, partials2, uniforms, timing, denominator, status };
    });
    return { a, bufs, allocErrors };
  } catch (e) {
    a.discardAll();
    throw e;
  }
}

/**
 * Validates, uploads and submits one call. Everything up to the upload of host arrays runs
 * synchronously, before the returned promise exists, so inputs are taken at call time; when the
 * pipelines are already compiled the work is encoded and submitted synchronously too. Buffers
 * are created inside error scopes: a failed allocation is `gpu_out_of_memory` and leaves the
 * pool's books as they were.
 */
export async function executeCall(rt: Runtime, op: string | OpDescriptor, inputs: Record<string, AnyInput | undefined>, options: SharedOptions & Record<string, unknown>, readback: boolean): Promise<SubmittedCall> {
  const { kernels } = rt;
  let pending: (Promise<Kernel> | undefined)[] | undefined;
  const p = prepareCall(rt, op, inputs, options, readback, (keys) => {
    pending = [keys.fused, keys.reduce, keys.denominator, keys.aux, keys.check].map((k) => (k ? kernels.pipeline(k) : undefined));
    // A call that fails before awaiting them must not leave a rejected promise unhandled.
    for (const k of pending) k?.catch(() => {});
  });
  const { desc, r, plan, keys } = p;
  const { a, bufs, allocErrors } = allocateCall(rt, p, readback);
  const { staging } = a;

  try {
    // Warm pipelines: encode and submit now. Cold ones: once they compile.
    const ready = (): CallKernels | undefined => {
      const fused = kernels.compiledKernel(keys.fused);
      const reduce = keys.reduce ? kernels.compiledKernel(keys.reduce) : undefined;
      const denominator = keys.denominator ? kernels.compiledKernel(keys.denominator) : undefined;
      const aux = keys.aux ? kernels.compiledKernel(keys.aux) : undefined;
      const check = keys.check ? kernels.compiledKernel(keys.check) : undefined;
      return fused && (!keys.reduce || reduce) && (!keys.denominator || denominator) && (!keys.aux || aux) && (!keys.check || check) ? { fused, reduce, denominator, aux, check } : undefined;
    };
    const warm = ready();
    let submitted: Promise<LastCall> | undefined;
    if (warm) {
      submitted = encode(rt, desc, warm, r, plan, bufs, staging);
      submitted.catch(() => {}); // awaited below, unless the allocation failed first
    }
    const refused = scopeError(desc.name, await allocErrors, { buffers: a.bytes() });
    if (refused) throw refused;
    if (!submitted) {
      const [fused, reduce, denominator, aux, check] = await Promise.all(pending!);
      rt.liveness.check();
      submitted = encode(rt, desc, { fused: fused!, reduce, denominator, aux, check }, r, plan, bufs, staging);
    }
    const last = await submitted;
    rt.liveness.check();
    lateVerdict(rt, desc, bufs.status, a);
    return { desc, r, out: bufs.out, staging, release: a.release, releaseOutputs: a.releaseOutputs, last, timingPasses: p.timingPasses, checks: p.checks };
  } catch (e) {
    a.discardAll();
    throw e;
  }
}
