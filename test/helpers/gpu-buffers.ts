/** Buffers of the tests' own: host data put on a device, and a buffer's bytes read back. */

/** A storage buffer holding `data` (at least 16 bytes; COPY_SRC so it can be read back too). */
export function toGpu(device: GPUDevice, data: Float32Array | Int32Array, usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC): GPUBuffer {
  const b = device.createBuffer({ size: Math.max(16, Math.ceil(data.byteLength / 4) * 4), usage });
  device.queue.writeBuffer(b, 0, data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
  return b;
}

/** The first `bytes` of a buffer, as floats, through a staging buffer of its own. */
export async function readGpu(device: GPUDevice, buffer: GPUBuffer, bytes: number): Promise<Float32Array> {
  if (bytes === 0) return new Float32Array(0);
  const staging = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(buffer, 0, staging, 0, bytes);
  device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = new Float32Array(staging.getMappedRange().slice(0));
  staging.destroy();
  return out;
}
