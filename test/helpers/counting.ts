/** Counts what a context does to its device: submits, mapAsync calls, buffers created, dispatches. */
export interface Counts {
  submits: number;
  maps: number;
  buffers: number;
  dispatches: number;
}

/** Wraps a device in place so that its submits, mapAsync calls, buffer creations and dispatches are counted. */
export function countDevice(device: GPUDevice): Counts {
  const counts: Counts = { submits: 0, maps: 0, buffers: 0, dispatches: 0 };
  const queue = device.queue;
  const submit = queue.submit;
  queue.submit = function (this: GPUQueue, ...args: Parameters<GPUQueue['submit']>) {
    counts.submits++;
    return submit.apply(this, args);
  };
  const createBuffer = device.createBuffer;
  device.createBuffer = function (this: GPUDevice, desc: GPUBufferDescriptor) {
    counts.buffers++;
    const b = createBuffer.call(this, desc);
    const mapAsync = b.mapAsync;
    b.mapAsync = function (this: GPUBuffer, ...args: Parameters<GPUBuffer['mapAsync']>) {
      counts.maps++;
      return mapAsync.apply(this, args);
    };
    return b;
  };
  const createCommandEncoder = device.createCommandEncoder;
  device.createCommandEncoder = function (this: GPUDevice, ...args: Parameters<GPUDevice['createCommandEncoder']>) {
    const enc = createCommandEncoder.apply(this, args);
    const begin = enc.beginComputePass;
    enc.beginComputePass = function (this: GPUCommandEncoder, ...a: Parameters<GPUCommandEncoder['beginComputePass']>) {
      const pass = begin.apply(this, a);
      const dispatch = pass.dispatchWorkgroups;
      pass.dispatchWorkgroups = function (this: GPUComputePassEncoder, ...d: Parameters<GPUComputePassEncoder['dispatchWorkgroups']>) {
        counts.dispatches++;
        return dispatch.apply(this, d);
      };
      return pass;
    };
    return enc;
  };
  return counts;
}

export const reset = (c: Counts) => Object.assign(c, { submits: 0, maps: 0, buffers: 0, dispatches: 0 });

/** Deterministic pseudo-random floats in [lo, hi), float32-representable. */
export function rand(n: number, seed: number, lo = -3, hi = 3): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = lo + ((s >>> 0) / 2 ** 32) * (hi - lo);
  }
  return out;
}

/** Largest |a - b| relative to 1 + |b|. */
export function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) / (1 + Math.abs(b[i])));
  return m;
}
