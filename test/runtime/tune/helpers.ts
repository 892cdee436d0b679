import { afterAll } from 'vitest';
import type { Detloss } from '../../../src/runtime/context';
import { nodeContext } from '../../helpers/node-gpu';
import type { DetlossOptions, TunedPlan } from '../../../src/runtime/public';

/** A tuned plan as createDetloss's `plan` option fixes it (a row strategy is a threshold of 0 or Infinity). */
export function fixedPlan(p: TunedPlan): NonNullable<DetlossOptions['plan']> {
  const { rows, ...rest } = p;
  return { ...rest, rowThreshold: rows === 'thread' ? Infinity : 0, rowLanes: rows === 'subgroup' ? 'subgroup' : 'workgroup' };
}

/** GPU buffers holding host arrays, as resident calls take them. */
export function upload(dl: Detloss, arrays: Record<string, { data: Float32Array | Int32Array; shape: number[] }>) {
  const out: Record<string, { buffer: GPUBuffer; shape: number[]; dtype: 'f32' | 'i32' }> = {};
  for (const [k, a] of Object.entries(arrays)) {
    const buffer = dl.device.createBuffer({ size: Math.max(16, Math.ceil(a.data.byteLength / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    dl.device.queue.writeBuffer(buffer, 0, a.data.buffer as ArrayBuffer, a.data.byteOffset, a.data.byteLength);
    out[k] = { buffer, shape: a.shape, dtype: a.data instanceof Int32Array ? 'i32' : 'f32' };
  }
  return out;
}

/** GPU time of one resident call (the context takes timestamps). */
export async function gpuTime(dl: Detloss, op: string, inputs: Record<string, unknown>, options: Record<string, unknown>): Promise<number> {
  const r = await dl.runResident(op, inputs as never, options as never);
  r.release();
  return dl.stats().lastCall!.gpuMs!;
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Opens contexts on Node's WebGPU for one test file, each destroyed when the file's tests end. */
export function contextPool() {
  const contexts: Detloss[] = [];
  afterAll(() => contexts.forEach((d) => d.destroy()));
  return {
    contexts,
    open: async (o: Parameters<typeof nodeContext>[0] = {}) => {
      const dl = await nodeContext(o);
      contexts.push(dl);
      return dl;
    },
  };
}
