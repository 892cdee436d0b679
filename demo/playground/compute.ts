/**
 * One way to run an op for the demo: on the GPU through the page's detloss context when there is
 * one and the op has a kernel, else on the float64 CPU reference. Every result says where it ran.
 */
import { cpu, DetlossError, OPS, type DetlossContext } from 'detloss';
import type { GpuSession } from './gpu-session';

/** Where a result was computed. */
export type Backend = 'gpu' | 'cpu';

/** A loss and its gradients, with the backend that produced them. */
export interface Computed {
  loss: ArrayLike<number>;
  grad: Record<string, ArrayLike<number>>;
  backend: Backend;
}

type Inputs = Record<string, Float32Array | Int32Array | { data: Float32Array | Int32Array; shape: number[] }>;
type Params = Record<string, unknown>;

/** Whether `op` can run on the GPU of `dl` (a context exists and the op has a kernel). */
export function gpuCapable(dl: DetlossContext | undefined, op: string): boolean {
  return dl !== undefined && OPS[op]?.gpu !== undefined;
}

/** Human label of a backend, as the page shows it. */
export const backendLabel = (b: Backend) => (b === 'gpu' ? 'GPU (WebGPU)' : 'CPU reference');

/**
 * Runs `op` on the GPU when possible; when the GPU says the op is unsupported (`unknown_op`),
 * or there is no GPU, runs the CPU reference instead and labels the result `'cpu'`. When the
 * device is lost during the call, asks `gpu` for a new context and retries once on it; when
 * there is none (or the retry is lost too), computes on the CPU reference.
 *
 * @example
 * const r = await compute(gpu, 'iou_loss', { pred, target }, { variant: 'giou', reduction: 'none' });
 * r.backend; // 'gpu' or 'cpu'
 */
export async function compute(gpu: GpuSession, op: string, inputs: Inputs, params: Params): Promise<Computed> {
  let dl = gpu.context;
  for (let attempt = 0; attempt < 2 && dl && gpuCapable(dl, op); attempt++) {
    try {
      const r = await dl.run(op, inputs, params);
      gpu.worked(dl);
      return { loss: r.loss, grad: r.grad, backend: 'gpu' };
    } catch (e) {
      if (e instanceof DetlossError && e.code === 'unknown_op') break;
      if (!(await gpu.isLoss(dl, e))) throw e;
      dl = await gpu.recover(dl);
    }
  }
  const r = cpu.run(op, inputs, params);
  return { loss: r.loss, grad: r.grad, backend: 'cpu' };
}
