import { DetlossError } from '../errors';
import { getOp } from '../ops/registry';
import type { OpDescriptor } from '../ops/types';
import type { SharedOptions } from '../ops/validate';
import type { CallBuffers } from './call-buffers';
import { verdictOf, type CallStatus } from './checks';
import type { Detloss } from './context';
import { runtimeOf } from './context';
import { encode } from './encode';
import { allocateCall, prepareCall } from './execute';
import { submitProgramSync } from './program';
import type { GpuTensor } from './types';

/** Outputs of a synchronous resident call: pooled buffers the caller holds until `release()`. */
export interface SyncResidentResult {
  loss: GPUBuffer;
  lossBytes: number;
  /** The `'none'` output's shape (`[]` when reduced; a program op's own loss shape, `[2]` for rank_sort). */
  shape: number[];
  grad: Record<string, GPUBuffer>;
  gradBytes: Record<string, number>;
  /** Returns outputs and scratch to the pool (once). Safe as soon as the work that reads them is submitted. */
  release(): void;
  /** Resolves when the GPU accepted the call's kernels, buffers and work; rejects with `pipeline`, `gpu_out_of_memory` or `gpu_validation`. */
  settled: Promise<void>;
  /**
   * With `guard`: the call's status words (src/runtime/checks.ts), word 0 set to 1 once its work
   * ran, then the value checks of its inputs. The caller copies the outputs through the guard
   * (shaders/guard.wgsl) and reads the words back for the checks' verdict. Released with the rest.
   */
  status?: CallStatus;
}

/**
 * `runResident` for callers that must have the work submitted before they return: the losses
 * of framework adapters (TF.js calls them inside `optimizer.minimize(() => ...)`). Inputs must
 * all be on the device. Validation, allocation, a kernel not compiled yet (compiled with the
 * synchronous `createComputePipeline`), encoding and the submit all happen now; argument errors
 * throw at once, as in `runResident`, and the GPU's verdict arrives in `settled`. An op whose
 * kernel is a program of passes (the ranking losses) runs through `submitProgramSync`.
 */
export function runResidentSync(dl: Detloss, op: string | OpDescriptor, inputs: Record<string, GpuTensor | undefined>, options: SharedOptions & Record<string, unknown>, guard = false): SyncResidentResult {
  const rt = runtimeOf(dl);
  const own = getOp(op);
  if (own.gpu?.program) {
    const c = submitProgramSync(rt, own, inputs, options, guard);
    return result(c.out, c.shape, c.release, c.releaseOutputs, c.settled, c.status);
  }
  const p = prepareCall(rt, op, inputs, options, false, undefined, guard);
  const { desc, r, plan, keys } = p;
  if (Object.values(p.data).some((d) => d !== undefined)) throw new DetlossError('invalid_value', `${desc.name}: a synchronous call takes GPU tensors only`, 'inputs');
  if (p.timingPasses) throw new DetlossError('invalid_param', `${desc.name}: a context with timestamps cannot run calls synchronously`, 'timestamps');
  const compiles: Promise<string | undefined>[] = [];
  const kernels = {
    fused: rt.kernels.pipelineSync(keys.fused, compiles),
    reduce: keys.reduce ? rt.kernels.pipelineSync(keys.reduce, compiles) : undefined,
    denominator: keys.denominator ? rt.kernels.pipelineSync(keys.denominator, compiles) : undefined,
    aux: keys.aux ? rt.kernels.pipelineSync(keys.aux, compiles) : undefined,
    check: keys.check ? rt.kernels.pipelineSync(keys.check, compiles) : undefined,
  };
  const { a, bufs, allocErrors } = allocateCall(rt, p, false);
  let submitted: Promise<unknown>;
  try {
    submitted = encode(rt, desc, kernels, r, plan, bufs, []);
  } catch (e) {
    a.discardAll();
    throw e;
  }
  // Every verdict is awaited before one is chosen: a pipeline that failed to compile, or a buffer
  // the device could not make, also makes the work invalid, and the cause is what the caller needs.
  const settled = Promise.all([allocErrors, Promise.all(compiles), verdictOf(submitted)]).then(([[validation, oom], compiled, work]) => {
    const bad = compiled.find((m) => m !== undefined);
    if (bad) throw new DetlossError('pipeline', bad);
    if (oom) throw new DetlossError('gpu_out_of_memory', `${desc.name}: out of GPU memory allocating this call's buffers: ${oom.message}`);
    if (validation) throw new DetlossError('gpu_validation', `${desc.name}: the GPU refused this call's buffers: ${validation.message}`);
    if (work) throw work;
  });
  settled.catch(() => {});
  return result(bufs.out, r.reduction === 'none' ? r.outShape : [], a.release, a.releaseOutputs, settled, bufs.status);
}

/** A submitted call's outputs as the caller gets them. */
function result(out: CallBuffers['out'], shape: number[], release: () => void, releaseOutputs: () => void, settled: Promise<void>, status?: CallStatus): SyncResidentResult {
  const grad: Record<string, GPUBuffer> = {};
  const gradBytes: Record<string, number> = {};
  for (const [name, t] of Object.entries(out.grads)) {
    grad[name] = t.buffer;
    gradBytes[name] = t.bytes;
  }
  return {
    loss: out.loss.buffer,
    lossBytes: out.lossBytes,
    shape,
    grad,
    gradBytes,
    release: () => {
      release();
      releaseOutputs();
    },
    settled,
    status,
  };
}
