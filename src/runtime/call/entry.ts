import { getOp } from '../../ops/registry';
import type { OpDescriptor } from '../../ops/types';
import type { SharedOptions } from '../../ops/validate';
import type { AnyInput, GpuTensor, ResidentResult, RunResult } from '../public';
import { executeCall } from './fused';
import { executeProgram, submitProgramSync } from './program';
import { readBack, residentResult } from './results';
import type { Runtime, SyncCall } from './runtime';
import { submitFusedSync } from './sync';

// The one way into a call: picks the fused path or the program path (an op whose kernel is a
// program of passes), and async with its results read back or handed over, or synchronous.

type Options = SharedOptions & Record<string, unknown>;

/** Runs a call and reads its loss and gradients back (`Detloss.run`). */
export async function runCall(rt: Runtime, op: string | OpDescriptor, inputs: Record<string, AnyInput | undefined>, options: Options): Promise<RunResult> {
  return readBack(rt, await submitCall(rt, op, inputs, options, true));
}

/** Runs a call and hands its outputs over as buffers (`Detloss.runResident`). */
export async function runCallResident(rt: Runtime, op: string | OpDescriptor, inputs: Record<string, AnyInput | undefined>, options: Options): Promise<ResidentResult> {
  return residentResult(rt, await submitCall(rt, op, inputs, options, false));
}

function submitCall(rt: Runtime, op: string | OpDescriptor, inputs: Record<string, AnyInput | undefined>, options: Options, readback: boolean) {
  const desc = getOp(op);
  return desc.gpu?.program ? executeProgram(rt, desc, inputs, options, readback) : executeCall(rt, desc, inputs, options, readback);
}

/**
 * Submits a call before returning (framework adapters): GPU tensors in, pooled buffers out, the
 * GPU's verdict in `settled`. With `guard`, the call also checks its inputs' values and marks that
 * its work ran, for the caller's guarded copy.
 */
export function runCallSync(rt: Runtime, op: string | OpDescriptor, inputs: Record<string, GpuTensor | undefined>, options: Options, guard = false): SyncCall {
  const desc = getOp(op);
  return desc.gpu?.program ? submitProgramSync(rt, desc, inputs, options, guard) : submitFusedSync(rt, desc, inputs, options, guard);
}
