import { DetlossError } from '../../errors';
import type { OpDescriptor } from '../../ops/types';
import type { SharedOptions } from '../../ops/validate';
import type { GpuTensor } from '../public';
import { encode } from './encode';
import { allocateCall, prepareCall } from './fused';
import type { Runtime, SyncCall } from './runtime';
import { syncVerdict } from './status';

/**
 * The fused path for callers that must have the work submitted before they return: the losses
 * of framework adapters (TF.js calls them inside `optimizer.minimize(() => ...)`). Inputs must
 * all be on the device. Validation, allocation, a kernel not compiled yet (compiled with the
 * synchronous `createComputePipeline`), encoding and the submit all happen now; argument errors
 * throw at once, as in `runResident`, and the GPU's verdict arrives in `settled`.
 */
export function submitFusedSync(rt: Runtime, op: OpDescriptor, inputs: Record<string, GpuTensor | undefined>, options: SharedOptions & Record<string, unknown>, guard = false): SyncCall {
  const p = prepareCall(rt, op, inputs, options, false, undefined, guard);
  const { desc, r, plan, keys } = p;
  if (Object.values(p.data).some((d) => d !== undefined)) throw new DetlossError('invalid_value', `${desc.name}: a synchronous call takes GPU tensors only`, 'inputs');
  if (p.timingPasses) throw new DetlossError('invalid_param', `${desc.name}: a context with timestamps cannot run calls synchronously`, 'timestamps');
  const compiles: Promise<string | undefined>[] = [];
  const sync = (key: string | undefined) => (key ? rt.kernels.pipelineSync(key, compiles) : undefined);
  const kernels = { fused: sync(keys.fused)!, reduce: sync(keys.reduce), denominator: sync(keys.denominator), aux: sync(keys.aux), check: sync(keys.check) };
  const { a, bufs, allocErrors } = allocateCall(rt, p, false);
  let submitted: Promise<unknown>;
  try {
    submitted = encode(rt, desc, kernels, r, plan, bufs, []);
  } catch (e) {
    a.discardAll();
    throw e;
  }
  const settled = syncVerdict(desc.name, compiles, allocErrors, a.bytes, submitted);
  return { out: bufs.out, outputShapes: r.outputShapes, shape: r.reduction === 'none' ? r.outShape : [], release: a.release, releaseOutputs: a.releaseOutputs, settled, status: bufs.status };
}
