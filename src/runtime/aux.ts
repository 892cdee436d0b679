import type { OpDescriptor } from '../ops/types';
import type { SubmittedCall } from './execute';
import { executeCall } from './execute';
import type { AnyInput, LastCall, Runtime } from './types';

/** One of a call's aux numbers (`OpDescriptor.aux`), submitted as a call of its own. */
export interface AuxCall {
  name: string;
  call: SubmittedCall;
}

/**
 * Submits the second calls that compute a call's aux numbers (Wise-IoU's batch mean of `1 - iou`),
 * on the same inputs, right behind it. Nothing for an op or params without any.
 */
export async function submitAux(rt: Runtime, main: SubmittedCall, inputs: Record<string, AnyInput | undefined>, readback: boolean): Promise<AuxCall[]> {
  const wanted = (main.desc as OpDescriptor).aux?.(main.r.params);
  if (!wanted) return [];
  const out: AuxCall[] = [];
  try {
    for (const [name, spec] of Object.entries(wanted)) {
      const own = Object.fromEntries(spec.inputs.map((k) => [k, inputs[k]]));
      out.push({ name, call: await executeCall(rt, spec.op, own, { ...spec.params, reduction: 'mean', grad: false }, readback) });
    }
  } catch (e) {
    for (const a of out) {
      a.call.release();
      a.call.releaseOutputs();
      for (const s of a.call.staging) rt.pool.release(s.buffer);
    }
    throw e;
  } finally {
    // stats().lastCall stays the call the caller made.
    rt.last = main.last;
  }
  return out;
}

/** Folds the aux calls' work into the main call's record, once their results are in. */
export function mergeAuxRecord(main: LastCall, aux: AuxCall[]): void {
  for (const { name, call } of aux) {
    const a = call.last;
    main.dispatches += a.dispatches;
    main.submits += a.submits;
    main.readbacks += a.readbacks;
    if (main.gpuMs !== undefined && a.gpuMs !== undefined) main.gpuMs += a.gpuMs;
    if (main.passes && a.passes) main.passes.push(...a.passes.map((p) => ({ ...p, name: `${name}:${p.name}` })));
  }
}
