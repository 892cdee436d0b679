import { DetlossError } from '../errors';
import type { OutputSizes } from './call-plan';
import type { Liveness } from './device';
import type { SubmittedCall } from './execute';
import { STATUS, checkFailure } from './checks';
import { readTimestamps } from './timestamps';
import { AUX, TIMESTAMPS, type ContextLimits, type ResidentResult, type Runtime, type RunResult } from './types';

/** A readback buffer and the outputs copied into it (`name` undefined: the loss). */
export interface Staging {
  buffer: GPUBuffer;
  bytes: number;
  parts: { name?: string; bytes: number; at: number }[];
}

/**
 * How the outputs are read back: one staging buffer for all of them (one `mapAsync`), unless
 * together they pass maxBufferSize; then as few buffers as fit it (each output fits one).
 */
export function stagingPlan(limits: ContextLimits, outs: OutputSizes, timingBytes: number, statusBytes = 0): Omit<Staging, 'buffer'>[] {
  const parts: { name?: string; bytes: number }[] = [];
  // Timestamps first: 8-byte values at an offset that keeps them aligned.
  if (timingBytes) parts.push({ name: TIMESTAMPS, bytes: timingBytes });
  if (statusBytes) parts.push({ name: STATUS, bytes: statusBytes });
  if (outs.lossBytes) parts.push({ bytes: outs.lossBytes });
  for (const [name, bytes] of Object.entries(outs.grads)) parts.push({ name, bytes });
  if (outs.aux) parts.push({ name: AUX, bytes: 4 });
  const plan: Omit<Staging, 'buffer'>[] = [];
  for (const p of parts) {
    let s = plan[plan.length - 1];
    if (!s || s.bytes + p.bytes > limits.maxBufferSize) {
      s = { bytes: 0, parts: [] };
      plan.push(s);
    }
    s.parts.push({ ...p, at: s.bytes });
    s.bytes += p.bytes;
  }
  return plan;
}

/** Maps a staging buffer for reading; a lost device or a destroyed context says so rather than hang or blame the GPU. */
async function mapStaging(liveness: Liveness, staging: GPUBuffer, op: string): Promise<void> {
  try {
    await Promise.race([staging.mapAsync(0x1 /* GPUMapMode.READ */), liveness.lost]);
  } catch (e) {
    if (liveness.destroyed) throw liveness.destroyedError();
    if (e instanceof DetlossError) throw e;
    if (liveness.isLost) throw liveness.lostError();
    throw new DetlossError('gpu_validation', `${op}: reading the result back failed: ${(e as Error).message}`);
  }
}

/** Reads a submitted call's loss, gradients and timestamps back (`run`); every buffer goes back to the pool. */
export async function readBack(rt: Runtime, x: SubmittedCall): Promise<RunResult> {
  const { desc, r, out, staging } = x;
  try {
    x.last.readbacks = staging.length;
    // Queue operations are ordered: the outputs may serve the next call while this one maps.
    x.release();
    x.releaseOutputs();
    rt.liveness.check();
    await Promise.all(staging.map((s) => mapStaging(rt.liveness, s.buffer, desc.name)));
    const loss = new Float32Array(out.lossBytes / 4);
    const grad: Record<string, Float32Array> = {};
    let aux: Record<string, number> | undefined;
    let status: Uint32Array | undefined;
    for (const s of staging) {
      const range = s.buffer.getMappedRange(0, s.bytes);
      const all = new Float32Array(range);
      for (const part of s.parts) {
        const values = all.subarray(part.at / 4, (part.at + part.bytes) / 4);
        if (part.name === undefined) loss.set(values);
        else if (part.name === TIMESTAMPS) readTimestamps(x.last, x.timingPasses!, new DataView(range, part.at, part.bytes));
        else if (part.name === STATUS) status = new Uint32Array(range.slice(part.at, part.at + part.bytes));
        else if (part.name === AUX) aux = { [out.aux!.name]: values[0] };
        else grad[part.name] = values.slice();
      }
      s.buffer.unmap();
    }
    // A GPU-resident input whose values break the op's rules: the call is refused, with no numbers.
    const refused = status && x.checks && checkFailure(desc, x.checks, status);
    if (refused) throw refused;
    for (const name of out.emptyGrads) grad[name] = new Float32Array(0);
    return { loss, shape: x.shape ?? (r.reduction === 'none' ? r.outShape : []), grad, ...(aux ? { aux } : {}) };
  } finally {
    x.release();
    x.releaseOutputs();
    for (const s of staging) rt.pool.release(s.buffer);
  }
}

/** Hands a submitted call's outputs over as buffers (`runResident`), after waiting for its timestamps if it took any. */
export async function residentResult(rt: Runtime, x: SubmittedCall): Promise<ResidentResult> {
  x.release();
  try {
    // With timestamps, wait for them (the one map of a resident call).
    for (const s of x.staging) {
      rt.liveness.check();
      await mapStaging(rt.liveness, s.buffer, x.desc.name);
      readTimestamps(x.last, x.timingPasses!, new DataView(s.buffer.getMappedRange(0, s.bytes)));
      s.buffer.unmap();
      x.last.readbacks++;
    }
    // The work is submitted; a context destroyed (or a device lost) meanwhile has no valid buffers to give.
    rt.liveness.check();
  } catch (e) {
    x.releaseOutputs();
    throw e;
  } finally {
    for (const s of x.staging) rt.pool.release(s.buffer);
  }
  const grad: Record<string, GPUBuffer> = {};
  const gradBytes: Record<string, number> = {};
  for (const [name, t] of Object.entries(x.out.grads)) {
    grad[name] = t.buffer;
    gradBytes[name] = t.bytes;
  }
  let released = false;
  return {
    loss: x.out.loss.buffer,
    lossBytes: x.out.lossBytes,
    shape: x.shape ?? (x.r.reduction === 'none' ? x.r.outShape : []),
    grad,
    gradBytes,
    ...(x.out.aux ? { aux: { [x.out.aux.name]: x.out.aux.buffer } } : {}),
    release: () => {
      if (released) return;
      released = true;
      x.releaseOutputs();
    },
  };
}
