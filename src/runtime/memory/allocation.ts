import type { HostArray } from '../../ops/inputs';
import type { InputInfo } from '../../ops/validate';
import { USAGE } from '../device/constants';
import type { GpuTensor } from '../public';
import type { BufferPool } from './pool';
import type { OutputSizes, Staging } from './staging';

/** A buffer holding a tensor, and the bytes of it that do. */
export interface Tensor {
  buffer: GPUBuffer;
  bytes: number;
}

/** A call's outputs: the loss, the gradients, and the aux number where the op reports one. */
export interface CallOutputs {
  loss: Tensor;
  lossBytes: number;
  grads: Record<string, Tensor>;
  emptyGrads: string[];
  aux?: { name: string; buffer: GPUBuffer };
  /** The op's named outputs; an empty one holds a 4-byte buffer of which 0 bytes are data. */
  named: Record<string, Tensor & { dtype: 'f32' | 'i32' }>;
}

/** Whether an input is a GPUBuffer (a GPU tensor is one, or `{ buffer, shape }`). */
export function isGpuBuffer(x: unknown): x is GPUBuffer {
  return typeof x === 'object' && x !== null && typeof (x as GPUBuffer).mapAsync === 'function' && typeof (x as GPUBuffer).usage === 'number';
}

/**
 * The pooled buffers one call holds, in three lists: scratch (inputs, partials, uniforms),
 * outputs, and staging. `release` returns the scratch to the pool, `releaseOutputs` the outputs
 * (each once); `discardAll`, after a failure, drops the buffers this call created and returns
 * the rest.
 */
export class CallAllocation {
  /** Buffers created (not reused) for this call. */
  readonly fresh = new Set<GPUBuffer>();
  readonly scratch: GPUBuffer[] = [];
  readonly outputs: GPUBuffer[] = [];
  readonly staging: Staging[] = [];
  /** Buffers kept past the call's own release: the status words' staging, read after the call resolved. */
  readonly held: GPUBuffer[] = [];
  private released = false;
  private outputsReleased = false;
  private heldReleased = false;

  constructor(
    private readonly pool: BufferPool,
    private readonly op: string,
  ) {}

  /** A pooled buffer labelled `detloss:<op>:<label>`, kept in `list`. */
  acquire(bytes: number, usage: number, label: string, list: GPUBuffer[]): GPUBuffer {
    const b = this.pool.acquire(bytes, usage, `detloss:${this.op}:${label}`, this.fresh);
    list.push(b);
    return b;
  }

  readonly release = (): void => {
    if (this.released) return;
    this.released = true;
    for (const b of this.scratch) this.pool.release(b);
  };

  readonly releaseOutputs = (): void => {
    if (this.outputsReleased) return;
    this.outputsReleased = true;
    this.outputs.forEach((b) => this.pool.release(b));
  };

  readonly releaseHeld = (): void => {
    if (this.heldReleased) return;
    this.heldReleased = true;
    this.held.forEach((b) => this.pool.release(b));
  };

  /** Bytes of the scratch and output buffers it holds (what a failed allocation reports). */
  readonly bytes = (): number => [...this.outputs, ...this.scratch].reduce((sum, b) => sum + b.size, 0);

  discardAll(): void {
    this.released = true;
    this.outputsReleased = true;
    this.heldReleased = true;
    for (const b of [...this.scratch, ...this.outputs, ...this.staging.map((s) => s.buffer), ...this.held]) {
      if (this.fresh.has(b)) this.pool.discard(b);
      else this.pool.release(b);
    }
  }
}

/** Writes a host array into a buffer now (writeBuffer copies at call time); shared memory is staged through a private copy. */
export function upload(device: GPUDevice, buf: GPUBuffer, arr: HostArray): void {
  const shared = typeof SharedArrayBuffer !== 'undefined' && arr.buffer instanceof SharedArrayBuffer;
  if (!shared) {
    device.queue.writeBuffer(buf, 0, arr.buffer as ArrayBuffer, arr.byteOffset, arr.byteLength);
    return;
  }
  const step = Math.min(arr.byteLength, 1 << 22);
  const tmp = new Uint8Array(step);
  for (let at = 0; at < arr.byteLength; at += step) {
    const n = Math.min(step, arr.byteLength - at);
    tmp.set(new Uint8Array(arr.buffer, arr.byteOffset + at, n));
    device.queue.writeBuffer(buf, at, tmp.buffer, 0, n);
  }
}

/**
 * A call's outputs (loss and gradients; with `readback` false an empty gradient gets a buffer too),
 * its staging buffers, and its inputs: GPU tensors as given, host arrays uploaded into pooled
 * buffers. Shared by the fused path and the program path; call inside the call's error scopes.
 */
export function acquireCallIo(
  device: GPUDevice,
  a: CallAllocation,
  outs: OutputSizes,
  stagingParts: readonly Omit<Staging, 'buffer'>[],
  readback: boolean,
  io: { data: Record<string, HostArray | undefined>; info: Record<string, InputInfo | undefined>; gpu: Record<string, GpuTensor> },
): { out: CallOutputs; tensors: Record<string, Tensor | undefined> } {
  const outUsage = readback ? USAGE.STORAGE | USAGE.COPY_SRC : USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST;
  const out: CallOutputs = {
    loss: { buffer: a.acquire(Math.max(outs.lossBytes, 4), outUsage, 'loss', a.outputs), bytes: outs.lossBytes },
    lossBytes: outs.lossBytes,
    grads: {},
    emptyGrads: outs.emptyGrads,
    named: {},
  };
  for (const [name, o] of Object.entries(outs.named ?? {})) out.named[name] = { buffer: a.acquire(Math.max(o.bytes, 4), outUsage, `out.${name}`, a.outputs), bytes: o.bytes, dtype: o.dtype };
  for (const [name, bytes] of Object.entries(outs.grads)) out.grads[name] = { buffer: a.acquire(bytes, outUsage, `grad.${name}`, a.outputs), bytes };
  // The resident path hands every gradient over as a buffer, an empty one too (0 bytes of it hold data).
  if (!readback) for (const name of outs.emptyGrads) out.grads[name] = { buffer: a.acquire(4, outUsage, `grad.${name}`, a.outputs), bytes: 0 };
  if (outs.aux) out.aux = { name: outs.aux, buffer: a.acquire(4, outUsage, 'aux', a.outputs) };
  for (const s of stagingParts) a.staging.push({ ...s, buffer: a.acquire(s.bytes, USAGE.MAP_READ | USAGE.COPY_DST, 'staging', []) });
  const tensors: Record<string, Tensor | undefined> = {};
  for (const [name, t] of Object.entries(io.gpu)) {
    tensors[name] = io.info[name]!.length ? { buffer: isGpuBuffer(t) ? t : t.buffer, bytes: io.info[name]!.length * 4 } : undefined;
  }
  for (const [name, arr] of Object.entries(io.data)) {
    if (!arr || arr.length === 0) continue;
    const buf = a.acquire(arr.byteLength, USAGE.STORAGE | USAGE.COPY_DST, name, a.scratch);
    upload(device, buf, arr);
    tensors[name] = { buffer: buf, bytes: arr.byteLength };
  }
  return { out, tensors };
}
