import type { GpuKernel, OpDescriptor } from '../../ops/types';
import { runCallResident } from '../call/entry';
import type { Runtime } from '../call/runtime';
import { USAGE } from '../device/constants';
import type { GpuTensor } from '../public';
import { tuneInputs } from './inputs';

// Timing one candidate within the time left, and the inputs the candidates' calls share.

/** A call is started only where this many times the costliest call so far still ends in time. */
export const SLACK = 1.5;

export const now = () => performance.now();

/** One family and size class to tune: the op that represents it, its options and its size. */
export interface Job {
  desc: OpDescriptor;
  gk: GpuKernel;
  options: Record<string, unknown>;
  dims: Record<string, number>;
  size: number;
  sizeKey: string;
}

/** The time left, and what a call and a compile have cost so far (to start only what fits). */
export interface Clock {
  start: number;
  deadline: number;
  perCall: number;
  compile: number;
  measured: number;
}

/** The bytes of a job's inputs (what its calls read), from the op's shapes at its size. */
export function inputBytes(job: Job): number {
  const { dims } = tuneInputs(job.desc, 1, job.dims, !!job.gk.rows, {});
  const perRow = Object.values(job.desc.inputs).reduce((a, s) => a + (s.optional ? 0 : s.shape.slice(1).reduce<number>((m, d) => m * (typeof d === 'number' ? d : dims[d]), 1)), 0);
  const rows = job.gk.rows ? job.size : Math.max(1, job.size / Math.max(1, job.desc.output.slice(1).reduce<number>((m, d) => m * (typeof d === 'number' ? d : dims[d] ?? 1), 1)));
  return 4 * perRow * rows;
}

/** Uploads a job's inputs once, as GPU tensors every candidate's calls take. */
export function upload(rt: Runtime, arrays: ReturnType<typeof tuneInputs>['arrays']): { tensors: Record<string, GpuTensor>; destroy(): void } {
  const buffers: GPUBuffer[] = [];
  const tensors: Record<string, GpuTensor> = {};
  for (const [name, a] of Object.entries(arrays)) {
    const buffer = rt.device.createBuffer({ label: `detloss:tune:${name}`, size: Math.max(16, Math.ceil(a.data.byteLength / 16) * 16), usage: USAGE.STORAGE | USAGE.COPY_DST });
    buffers.push(buffer);
    if (a.data.byteLength) rt.device.queue.writeBuffer(buffer, 0, a.data.buffer, a.data.byteOffset, a.data.byteLength);
    tensors[name] = { buffer, shape: a.shape, dtype: a.data instanceof Int32Array ? 'i32' : 'f32' };
  }
  return { tensors, destroy: () => buffers.forEach((b) => b.destroy()) };
}

/**
 * The fastest of `reps` calls under the runtime's forced plan, after one untimed call (which
 * compiles what it needs): on a machine shared with other work, noise only adds time, so the
 * minimum is the plan's own cost. Undefined, with nothing more run, when the next step would pass
 * the deadline.
 */
export async function measure(trt: Runtime, desc: OpDescriptor, tensors: Record<string, GpuTensor>, options: Record<string, unknown>, reps: number, timer: 'gpu' | 'wall', clock: Clock, fresh: boolean): Promise<number | undefined> {
  const one = async () => {
    const t0 = now();
    const res = await runCallResident(trt, desc, tensors, options);
    await trt.device.queue.onSubmittedWorkDone();
    const wall = now() - t0;
    res.release();
    return { wall, gpu: trt.last?.gpuMs };
  };
  // A plan whose kernels are not compiled yet pays a compile first: as much as the costliest so far.
  if (now() + (fresh ? clock.compile : 0) + SLACK * clock.perCall > clock.deadline) return undefined;
  const before = trt.kernels.compiled;
  let warm = await one();
  if (trt.kernels.compiled > before) {
    clock.compile = Math.max(clock.compile, warm.wall - clock.perCall);
    // The job's first call: its time was mostly the compile's; one more untimed call gives a call's.
    if (clock.perCall === 0) {
      if (now() + warm.wall > clock.deadline) return undefined;
      warm = await one();
    }
  }
  if (clock.perCall === 0) clock.perCall = warm.wall;
  const ms: number[] = [];
  for (let k = 0; k < reps; k++) {
    if (now() + SLACK * clock.perCall > clock.deadline) return undefined;
    const t = await one();
    clock.perCall = Math.max(t.wall, clock.perCall * 0.9);
    ms.push(timer === 'gpu' && t.gpu !== undefined ? t.gpu : t.wall);
  }
  return Math.min(...ms);
}
