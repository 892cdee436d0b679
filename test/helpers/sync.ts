import { runSync, type Detloss } from '../../src/runtime/context';

/**
 * A synchronous call (the path under the framework adapters) with its outputs named as
 * `runResident` names them: loss, grad and their bytes, and one release for everything.
 */
export function runResidentSync(dl: Detloss, ...rest: Parameters<typeof runSync> extends [unknown, ...infer R] ? R : never) {
  const c = runSync(dl, ...rest);
  const grad: Record<string, GPUBuffer> = {};
  const gradBytes: Record<string, number> = {};
  for (const [name, t] of Object.entries(c.out.grads)) {
    grad[name] = t.buffer;
    gradBytes[name] = t.bytes;
  }
  return {
    loss: c.out.loss.buffer,
    lossBytes: c.out.lossBytes,
    shape: c.shape,
    grad,
    gradBytes,
    settled: c.settled,
    status: c.status,
    release: () => {
      c.release();
      c.releaseOutputs();
    },
  };
}
