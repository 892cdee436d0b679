/**
 * `cpu`: the float64 CPU reference as the package offers it, by op name. It looks the op up in the
 * registry and validates the call (src/ops), then runs the op's reference (src/cpu). It lives beside
 * src/cpu/ rather than in it, so src/cpu imports nothing from src/ops (the dependency runs one way).
 */
import { rotatedTalAssignOp, type RotatedTalOptions } from './ops/rotated-tal';
import { detectionsOf, yoloNmsOp, type YoloDetections, type YoloNmsOptions } from './ops/yolo-nms';
import type { CpuInputsOf, DynamicOpName, OpName, OpOptions } from './ops/op-types';
import { hostInputs } from './ops/inputs';
import { getOp, opNames } from './ops/registry';
import type { OpDescriptor } from './ops/types';
import { checkFinite, resolve, type SharedOptions } from './ops/validate';
import { reduceCpu, type CpuResult } from './cpu/run';

export type { CpuResult } from './cpu/run';

/** A host tensor: its data and shape. */
type HostTensor = { data: ArrayLike<number>; shape: number[] };

const toF64 = (a: ArrayLike<number> | undefined) => (a ? Float64Array.from(a) : undefined);

/**
 * Runs an op on the float64 CPU reference. Synchronous; same names, options and shapes as `dl.run`.
 *
 * @example
 * import { cpu } from 'detloss';
 * const r = cpu.run('smooth_l1', { pred, target }, { beta: 0.11, reduction: 'mean' });
 * r.loss[0]; r.grad.pred;
 */
export function runCpu<N extends OpName>(opName: N, inputs: CpuInputsOf<N>, options?: OpOptions<N>): CpuResult;
export function runCpu<S extends string>(opName: DynamicOpName<S> | OpDescriptor, inputs: Record<string, unknown>, options?: SharedOptions & Record<string, unknown>): CpuResult;
export function runCpu(opName: string | OpDescriptor, inputs: Record<string, unknown>, options: SharedOptions & Record<string, unknown> = {}): CpuResult {
  const op: OpDescriptor = getOp(opName);
  const { data, info } = hostInputs(op.name, inputs);
  const r = resolve(op, info, options, true);
  op.validate?.(data, r.params, r.dims, r.given, r.check, r.present);
  if (r.check) checkFinite(op, data);

  const cpuInputs: Record<string, Float64Array | Int32Array | undefined> = {};
  for (const [name, spec] of Object.entries(op.inputs)) {
    const d = data[name];
    cpuInputs[name] = spec.dtype === 'i32' ? (d as Int32Array | undefined) : toF64(d);
  }
  const fwd = op.cpu(cpuInputs, r.params, r.dims);
  const weight = toF64(data.weight);
  const result = reduceCpu(fwd, weight, toF64(data.gradOutput), {
    reduction: r.reduction,
    outCount: r.outCount,
    outShape: r.outShape,
    avgFactor: r.avgFactor,
    meanDenominator: op.meanDenominator && (() => op.meanDenominator!(cpuInputs, weight, r.params, r.dims)),
    wantGrad: r.wantGrad,
  });
  if (fwd.aux) result.aux = { ...fwd.aux };
  if (op.outputs) {
    result.outputs = {};
    // The row counts of outputs of data-dependent length, where the reference leaves them out.
    for (const [name, spec] of Object.entries(op.outputs)) {
      const rows = fwd.outputs?.[name];
      if (!spec.count || !rows || fwd.outputs![spec.count]) continue;
      const row = spec.shape.slice(1).reduce<number>((x, y) => x * (y as number), 1);
      fwd.outputs![spec.count] = Int32Array.of(rows.length / row);
    }
    for (const name of Object.keys(op.outputs)) {
      const o = fwd.outputs?.[name];
      if (!o) throw new Error(`detloss: ${op.name}'s CPU reference gave no output ${name}`);
      result.outputs[name] = o;
    }
    result.outputShapes = structuredClone(r.outputShapes);
    // An output of data-dependent length has the rows the reference wrote, not its capacity.
    for (const [name, spec] of Object.entries(op.outputs)) {
      if (!spec.capacity) continue;
      const shape = result.outputShapes[name];
      const row = shape.slice(1).reduce((x, y) => x * y, 1);
      shape[0] = row ? result.outputs[name].length / row : 0;
    }
  }
  return result;
}

/**
 * The float64 CPU reference: the oracle the GPU kernels are held against.
 * Synchronous, same op names, inputs, options and shapes as `dl.run`.
 *
 * @example
 * import { cpu } from 'detloss';
 * const r = cpu.run('huber', { pred, target }, { delta: 0.5, reduction: 'sum' });
 */
export const cpu = {
  run: runCpu,
  ops: opNames,
  /**
   * The YOLO post-process's float64 reference (`dl.yoloNms`'s): host arrays only.
   *
   * @example
   * const { boxes, count } = cpu.yoloNms({ data: output, shape: [1, 84, 8400] }, { confThreshold: 0.25 });
   */
  yoloNms(output: { data: ArrayLike<number>; shape: number[] }, options: YoloNmsOptions = {}): YoloDetections {
    return detectionsOf(runCpu(yoloNmsOp as never, { output } as never, options as never) as never);
  },
  /**
   * The rotated task-aligned assigner's float64 reference (`dl.rotatedTalAssign`'s): host arrays
   * only; `outputs` as `cpu.run('tal_assign', ...)` gives them, `boxes` [b, a, 5].
   *
   * @example
   * const r = cpu.rotatedTalAssign(scores, predBoxes, anchors, gtLabels, gtBoxes, gtMask, { topk: 10 });
   * r.outputs!.gtIndex; // Int32Array [b * a]
   */
  rotatedTalAssign(scores: HostTensor, predBoxes: HostTensor, anchors: HostTensor, gtLabels: HostTensor, gtBoxes: HostTensor, gtMask: HostTensor, options: RotatedTalOptions = {}): CpuResult {
    return runCpu(rotatedTalAssignOp, { scores, predBoxes, anchors, gtLabels, gtBoxes, gtMask }, options as never);
  },
};
