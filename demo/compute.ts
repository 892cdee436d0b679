/**
 * One way to run an op for the demo: on the GPU through a detloss context when there is one and
 * the op has a kernel, else on the float64 CPU reference. Every result says where it ran.
 */
import { cpu, DetlossError, OPS, type DetlossContext } from '../src/index';

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
 * or there is no GPU, runs the CPU reference instead and labels the result `'cpu'`.
 *
 * @example
 * const r = await compute(dl, 'iou_loss', { pred, target }, { variant: 'giou', reduction: 'none' });
 * r.backend; // 'gpu' or 'cpu'
 */
export async function compute(dl: DetlossContext | undefined, op: string, inputs: Inputs, params: Params): Promise<Computed> {
  if (dl && gpuCapable(dl, op)) {
    try {
      const r = await dl.run(op, inputs, params);
      return { loss: r.loss, grad: r.grad, backend: 'gpu' };
    } catch (e) {
      if (!(e instanceof DetlossError && e.code === 'unknown_op')) throw e;
    }
  }
  const r = cpu.run(op, inputs, params);
  return { loss: r.loss, grad: r.grad, backend: 'cpu' };
}
