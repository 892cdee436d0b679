/**
 * The bandwidth yardstick (bench/copy.wgsl) on a device: reads and writes as many bytes as a call of
 * the case, timed by the device where it can. The harness times it as the `copy` contender; the plan
 * probe (bench/plan-probe.ts) measures the launch plans against it.
 */
import copyWgsl from './copy.wgsl?raw';

/** One timed call: wall time, and the GPU time where the device measured it. */
export interface Timing {
  ms: number;
  gpuMs?: number;
}

/** The copy kernel over `read` bytes in and `write` bytes out, timed by the device where it can. */
export async function copyKernel(device: GPUDevice, read: number, write: number) {
  // vec4 granularity: sizes rounded up to 16 bytes.
  const nSrc = Math.ceil(read / 16);
  const nDst = Math.ceil(write / 16);
  const src = device.createBuffer({ size: Math.max(16, nSrc * 16), usage: GPUBufferUsage.STORAGE });
  const dst = device.createBuffer({ size: Math.max(16, nDst * 16), usage: GPUBufferUsage.STORAGE });
  const uni = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  const threads = Math.min(Math.ceil(nDst / 64) * 64, 16384);
  device.queue.writeBuffer(uni, 0, new Uint32Array([nSrc, nDst, threads, 0]));
  const module = device.createShaderModule({ code: copyWgsl });
  const pipeline = await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const bind = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: uni } },
      { binding: 1, resource: { buffer: src } },
      { binding: 2, resource: { buffer: dst } },
    ],
  });
  const buffers = [src, dst, uni];
  let stamps: { set: GPUQuerySet; resolve: GPUBuffer; read: GPUBuffer } | undefined;
  if (device.features.has('timestamp-query')) {
    stamps = {
      set: device.createQuerySet({ type: 'timestamp', count: 2 }),
      resolve: device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC }),
      read: device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }),
    };
    buffers.push(stamps.resolve, stamps.read);
  }
  return {
    buffers,
    stamps,
    /** One copy in one submit; returns after the queue has finished it. */
    async run(): Promise<Timing> {
      const t0 = performance.now();
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass(stamps ? { timestampWrites: { querySet: stamps.set, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : {});
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bind);
      pass.dispatchWorkgroups(threads / 64, 1);
      pass.end();
      if (stamps) {
        enc.resolveQuerySet(stamps.set, 0, 2, stamps.resolve, 0);
        enc.copyBufferToBuffer(stamps.resolve, 0, stamps.read, 0, 16);
      }
      device.queue.submit([enc.finish()]);
      await device.queue.onSubmittedWorkDone();
      const ms = performance.now() - t0;
      if (!stamps) return { ms };
      await stamps.read.mapAsync(GPUMapMode.READ);
      const [begin, end] = new BigUint64Array(stamps.read.getMappedRange().slice(0));
      stamps.read.unmap();
      // Equal stamps: a pass shorter than the timer's resolution. Zeros, or a later begin than end: no measurement.
      return { ms, gpuMs: end >= begin && end > 0n ? Number(end - begin) / 1e6 : undefined };
    },
    destroy() {
      for (const b of buffers) b.destroy();
      stamps?.set.destroy();
    },
  };
}

/** A copy kernel made by {@link copyKernel}. */
export type CopyKernel = Awaited<ReturnType<typeof copyKernel>>;
