/**
 * One-shot GPU faults planted in a device, for the tests of late failures: the next matching call
 * of detloss's (a label starting `detloss:`) is made to fail the way a real device can fail, and
 * every later call goes through untouched.
 *
 * - `pipeline`: the next pipeline (async or sync) names an entry point its module does not have,
 *   so it fails to compile.
 * - `validation`: the next bind group is made with no entries, which the device refuses.
 * - `oom`: the next buffer is asked for `bytes` (pass one the device cannot allocate; see
 *   {@link cannotAllocate}).
 */
export type Fault = 'pipeline' | 'validation' | 'oom';

const ours = (label: string | undefined) => typeof label === 'string' && label.startsWith('detloss:');

/** Arms one fault; returns `fired()`, true once the fault was planted in a call. */
export function plant(device: GPUDevice, fault: Fault, bytes = 0): { fired: () => boolean } {
  let fired = false;
  if (fault === 'pipeline') {
    const orig = { async: device.createComputePipelineAsync, sync: device.createComputePipeline };
    const broken = (d: GPUComputePipelineDescriptor): GPUComputePipelineDescriptor => ({ ...d, compute: { ...d.compute, entryPoint: 'detloss_planted_no_such_entry' } });
    device.createComputePipelineAsync = function (this: GPUDevice, d: GPUComputePipelineDescriptor) {
      if (fired || !ours(d.label)) return orig.async.call(this, d);
      fired = true;
      device.createComputePipelineAsync = orig.async;
      device.createComputePipeline = orig.sync;
      return orig.async.call(this, broken(d));
    };
    device.createComputePipeline = function (this: GPUDevice, d: GPUComputePipelineDescriptor) {
      if (fired || !ours(d.label)) return orig.sync.call(this, d);
      fired = true;
      device.createComputePipelineAsync = orig.async;
      device.createComputePipeline = orig.sync;
      return orig.sync.call(this, broken(d));
    };
  } else if (fault === 'validation') {
    const orig = device.createBindGroup;
    device.createBindGroup = function (this: GPUDevice, d: GPUBindGroupDescriptor) {
      if (fired || !ours(d.label)) return orig.call(this, d);
      fired = true;
      device.createBindGroup = orig;
      return orig.call(this, { ...d, entries: [] });
    };
  } else {
    const orig = device.createBuffer;
    device.createBuffer = function (this: GPUDevice, d: GPUBufferDescriptor) {
      if (fired || !ours(d.label)) return orig.call(this, d);
      fired = true;
      device.createBuffer = orig;
      return orig.call(this, { ...d, size: bytes });
    };
  }
  return { fired: () => fired };
}

/** Whether the device fails to allocate a buffer of `bytes` (out of memory), probed once. */
export async function cannotAllocate(device: GPUDevice, bytes: number): Promise<boolean> {
  device.pushErrorScope('out-of-memory');
  device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE }).destroy();
  return (await device.popErrorScope()) !== null;
}
