import { DetlossError } from '../../errors';
import type { OpDescriptor } from '../../ops/types';
import { USAGE } from '../device/constants';
import { encodeGuardedCopy } from './checks';
import type { Runtime, SyncCall } from './runtime';
import { statusVerdict } from './status';

/** One output of a synchronous call copied into a buffer the caller owns. */
export interface GuardedCopy {
  src: GPUBuffer;
  dst: GPUBuffer;
  bytes: number;
}

/**
 * Copies a guarded synchronous call's outputs into the caller's buffers in one submit, through
 * the guard (shaders/guard.wgsl): where the call's work did not run or a value check failed, the
 * copies hold NaN, never stale numbers. Returns two verdicts still to come: `compiled`, the guard
 * kernel's (compiled here if it was not), and `copied`, the copies' and then the value checks'
 * (the status words are read back after the submit).
 */
export function copyThroughGuard(rt: Runtime, desc: OpDescriptor, call: SyncCall, copies: readonly GuardedCopy[], into: string): { compiled: Promise<void>; copied: Promise<void> } {
  const { device } = rt;
  const status = call.status!;
  let staging: GPUBuffer | undefined;
  const compiles: Promise<string | undefined>[] = [];
  let copied!: Promise<void>;
  device.pushErrorScope('validation');
  try {
    const guard = rt.kernels.pipelineSync(rt.kernels.guardKey, compiles);
    const enc = device.createCommandEncoder({ label: `detloss:${desc.name}:guarded-copy` });
    for (const c of copies) encodeGuardedCopy(device, enc, guard, status, c.src, c.dst, c.bytes, rt.limits, desc.name);
    if (status.checks.length) {
      staging = rt.pool.acquire(status.bytes, USAGE.MAP_READ | USAGE.COPY_DST, `detloss:${desc.name}:status`);
      enc.copyBufferToBuffer(status.buffer, 0, staging, 0, status.bytes);
    }
    device.queue.submit([enc.finish()]);
  } catch (e) {
    if (staging) rt.pool.release(staging);
    staging = undefined;
    throw e;
  } finally {
    const popped = device.popErrorScope().then((e) => {
      if (e) throw new DetlossError('gpu_validation', `${desc.name}: copying the results into ${into} failed: ${e.message}`);
    });
    const held = staging;
    const checked = held ? statusVerdict(desc, status, held, () => rt.pool.release(held)) : Promise.resolve();
    popped.catch(() => {});
    checked.catch(() => {});
    copied = popped.then(() => checked);
  }
  const compiled = Promise.all(compiles).then((messages) => {
    const failed = messages.find((m) => m !== undefined);
    if (failed) throw new DetlossError('pipeline', failed);
  });
  compiled.catch(() => {});
  copied.catch(() => {});
  return { compiled, copied };
}
