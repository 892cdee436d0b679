import type { OpDescriptor } from '../ops/types';
import { hostInputs } from '../ops/inputs';
import { resolve, type SharedOptions } from '../ops/validate';
import { getOp } from '../ops/registry';
import { fail } from '../ops/types';

/** Result of the CPU reference: float64, same names and shapes as the GPU's. */
export interface CpuResult {
  /** Length 1 for `'mean'`/`'sum'`, the `'none'` shape otherwise. */
  loss: Float64Array;
  /** Shape of `loss` (`[]` when reduced). */
  shape: number[];
  /** One gradient per prediction input, same length as that input. Empty when `grad: false`. */
  grad: Record<string, Float64Array>;
}

const toF64 = (a: ArrayLike<number> | undefined) => (a ? Float64Array.from(a) : undefined);

/**
 * Runs an op on the float64 CPU reference. Synchronous; same names, options and shapes as `dl.run`.
 *
 * @example
 * import { cpu } from 'detloss';
 * const r = cpu.run('smooth_l1', { pred, target }, { beta: 0.11, reduction: 'mean' });
 * r.loss[0]; r.grad.pred;
 */
export function runCpu(opName: string | OpDescriptor, inputs: Record<string, unknown>, options: SharedOptions & Record<string, unknown> = {}): CpuResult {
  const op: OpDescriptor = getOp(opName);
  const { data, info } = hostInputs(op.name, inputs);
  const r = resolve(op, info, options, true);
  op.validate?.(data, r.params, r.dims, r.given);
  if (r.check) checkFinite(op, data);

  const cpuInputs: Record<string, Float64Array | Int32Array | undefined> = {};
  for (const [name, spec] of Object.entries(op.inputs)) {
    const d = data[name];
    cpuInputs[name] = spec.dtype === 'i32' ? (d as Int32Array | undefined) : toF64(d);
  }
  const fwd = op.cpu(cpuInputs, r.params, r.dims);
  const n = r.outCount;
  const weight = toF64(data.weight);
  const gradOutput = toF64(data.gradOutput);

  let loss: Float64Array;
  const upstream = new Float64Array(n);
  if (r.reduction === 'none') {
    loss = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const w = weight ? weight[i] : 1;
      loss[i] = w * fwd.loss[i];
      upstream[i] = (gradOutput ? gradOutput[i] : 1) * w;
    }
  } else {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += (weight ? weight[i] : 1) * fwd.loss[i];
    const denom = r.reduction === 'sum' ? 1 : r.avgFactor ?? op.meanDenominator?.(cpuInputs, weight, r.params, r.dims) ?? n;
    const scale = denom === 0 ? 0 : 1 / denom;
    loss = Float64Array.of(sum * scale);
    const g = (gradOutput ? gradOutput[0] : 1) * scale;
    for (let i = 0; i < n; i++) upstream[i] = g * (weight ? weight[i] : 1);
  }
  const grad = r.wantGrad ? fwd.backward(upstream) : {};
  return { loss, shape: r.reduction === 'none' ? r.outShape : [], grad };
}

/** Rejects NaN and infinite values in float inputs (only when the caller asks with `check: true`). */
export function checkFinite(op: OpDescriptor, data: Record<string, ArrayLike<number> | undefined>) {
  for (const [name, arr] of Object.entries(data)) {
    if (!arr || arr instanceof Int32Array) continue;
    for (let i = 0; i < arr.length; i++) {
      if (!Number.isFinite(arr[i])) fail('invalid_value', `${op.name}: ${name}[${i}] is ${arr[i]}; inputs must be finite`, name);
    }
  }
}
