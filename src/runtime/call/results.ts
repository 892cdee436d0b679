import { DetlossError } from '../../errors';
import type { OpDescriptor } from '../../ops/types';
import type { Liveness } from '../device/liveness';
import { USAGE } from '../device/constants';
import { readTimestamps } from '../device/timestamps';
import { PART, partOutput } from '../memory/staging';
import type { ResidentResult, RunResult } from '../public';
import type { Runtime, SubmittedCall } from './runtime';
import { checkFailure } from './status';

// A submitted call's results: read back into arrays (`run`), or handed over as buffers (`runResident`).

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
    const outputs: Record<string, Float32Array | Int32Array> = {};
    for (const s of staging) {
      const range = s.buffer.getMappedRange(0, s.bytes);
      const all = new Float32Array(range);
      for (const part of s.parts) {
        const values = all.subarray(part.at / 4, (part.at + part.bytes) / 4);
        if (part.name === undefined) loss.set(values);
        else if (part.name === PART.timestamps) readTimestamps(x.last, x.timingPasses!, new DataView(range, part.at, part.bytes));
        else if (part.name === PART.status) status = new Uint32Array(range.slice(part.at, part.at + part.bytes));
        else if (part.name === PART.aux) aux = { [out.aux!.name]: values[0] };
        else if (partOutput(part.name) !== undefined) {
          const name = partOutput(part.name)!;
          outputs[name] = out.named[name].dtype === 'i32' ? new Int32Array(range.slice(part.at, part.at + part.bytes)) : values.slice();
        } else grad[part.name] = values.slice();
      }
      s.buffer.unmap();
    }
    // A GPU-resident input whose values break the op's rules: the call is refused, with no numbers.
    const refused = status && x.checks && checkFailure(desc, x.checks, status);
    if (refused) throw refused;
    for (const name of out.emptyGrads) grad[name] = new Float32Array(0);
    const named = Object.entries(out.named);
    for (const [name, t] of named) outputs[name] ??= t.dtype === 'i32' ? new Int32Array(0) : new Float32Array(0);
    const shapes = named.length ? { outputs, outputShapes: structuredClone(r.outputShapes) } : {};
    if (named.length) trimToCounts(desc, outputs, shapes.outputShapes!);
    return { loss, shape: x.shape ?? (r.reduction === 'none' ? r.outShape : []), grad, ...(aux ? { aux } : {}), ...shapes };
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
  const named = Object.entries(x.out.named);
  const outputs = named.length
    ? {
        outputs: Object.fromEntries(named.map(([k, t]) => [k, t.buffer])),
        outputBytes: Object.fromEntries(named.map(([k, t]) => [k, t.bytes])),
        outputShapes: structuredClone(x.r.outputShapes),
        outputDtypes: Object.fromEntries(named.map(([k, t]) => [k, t.dtype])),
      }
    : {};
  let released = false;
  return {
    ...outputs,
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

/**
 * Copies `bytes` of a buffer to the host through a staging buffer of its own (an output the caller
 * holds, read on demand). A lost device or a destroyed context says so, as every other failure
 * does (`gpu_validation`), never with the browser's DOMException.
 */
export async function readBuffer(rt: Runtime, buffer: GPUBuffer, bytes: number, label: string): Promise<Float32Array> {
  rt.liveness.check();
  if (bytes === 0) return new Float32Array(0);
  const { device } = rt;
  let staging: GPUBuffer | undefined;
  try {
    staging = device.createBuffer({ size: bytes, usage: USAGE.MAP_READ | USAGE.COPY_DST, label: `detloss:${label}:download` });
    const enc = device.createCommandEncoder();
    enc.copyBufferToBuffer(buffer, 0, staging, 0, bytes);
    device.queue.submit([enc.finish()]);
    await Promise.race([staging.mapAsync(0x1 /* GPUMapMode.READ */), rt.liveness.lost]);
    return new Float32Array(staging.getMappedRange().slice(0));
  } catch (e) {
    if (e instanceof DetlossError) throw e;
    if (rt.liveness.destroyed) throw rt.liveness.destroyedError();
    if (rt.liveness.isLost) throw rt.liveness.lostError();
    throw new DetlossError('gpu_validation', `${label}: reading a tensor back failed: ${(e as Error)?.message ?? String(e)}`);
  } finally {
    staging?.destroy();
  }
}

/**
 * Outputs of data-dependent length (`OutputSpec.capacity`) come back at their capacity: each is cut
 * to the rows its count output says were written, and its shape says so. A count past the capacity
 * (a kernel fault) is an error, never numbers read past what was written.
 */
export function trimToCounts(desc: OpDescriptor, outputs: Record<string, Float32Array | Int32Array>, shapes: Record<string, number[]>) {
  for (const [name, spec] of Object.entries(desc.outputs ?? {})) {
    if (!spec.count) continue;
    const shape = shapes[name];
    const rows = outputs[spec.count]?.[0] ?? 0;
    if (!(rows >= 0 && rows <= shape[0])) throw new Error(`detloss: ${desc.name} wrote ${rows} rows of ${name}, past its capacity ${shape[0]}`);
    const row = shape.slice(1).reduce((a, b) => a * b, 1);
    outputs[name] = outputs[name].slice(0, rows * row);
    shape[0] = rows;
  }
}
