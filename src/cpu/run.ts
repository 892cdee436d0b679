import { DetlossError } from '../errors';
import type { CpuForward } from './types';

/** Result of the CPU reference: float64, same names and shapes as the GPU's. */
export interface CpuResult {
  /** Length 1 for `'mean'`/`'sum'`, the `'none'` shape otherwise. */
  loss: Float64Array;
  /** Shape of `loss` (`[]` when reduced). */
  shape: number[];
  /** One gradient per prediction input, same length as that input. Empty when `grad: false`. */
  grad: Record<string, Float64Array>;
  /** Numbers the op reports beside its loss (`iou_loss`, variant `'wiou'`: `batchIouMean`). */
  aux?: Record<string, number>;
  /** Named outputs, as `RunResult.outputs` (i32 as Int32Array, f32 as Float64Array here). */
  outputs?: Record<string, Float64Array | Int32Array>;
  /** The shape of each of `outputs`. */
  outputShapes?: Record<string, number[]>;
}

/** How a validated call is reduced (what src/ops/validate.ts settled). */
export interface CpuReduction {
  reduction: 'none' | 'mean' | 'sum';
  /** Elements of the `'none'` output, and its shape. */
  outCount: number;
  outShape: number[];
  /** `'mean'` divides by this when given (mmdetection's `avg_factor`). */
  avgFactor?: number;
  /** Otherwise by this, asked only for `'mean'` (the op's own denominator), or else by `outCount`. */
  meanDenominator?: () => number | undefined;
  wantGrad: boolean;
}

/**
 * Applies `weight`, the reduction and the upstream gradient to an op's unreduced CPU forward pass:
 * the loss as `cpu.run` returns it and, when wanted, the gradients of that loss.
 */
export function reduceCpu(fwd: CpuForward, weight: Float64Array | undefined, gradOutput: Float64Array | undefined, r: CpuReduction): CpuResult {
  if (fwd.reduced) {
    // An op that reduces itself: nothing to weigh or divide (ops.md, "Ranking losses").
    if (weight) throw new DetlossError('invalid_param', 'this op reduces itself and takes no weight', 'weight');
    if (r.avgFactor !== undefined) throw new DetlossError('invalid_param', 'this op reduces itself and takes no avgFactor', 'avgFactor');
    const grad = r.wantGrad ? fwd.backward(Float64Array.of(gradOutput ? gradOutput[0] : 1)) : {};
    return { loss: fwd.reduced.loss, shape: fwd.reduced.shape, grad };
  }
  const n = r.outCount;
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
    const denom = r.reduction === 'sum' ? 1 : r.avgFactor ?? r.meanDenominator?.() ?? n;
    const scale = denom === 0 ? 0 : 1 / denom;
    loss = Float64Array.of(sum * scale);
    const g = (gradOutput ? gradOutput[0] : 1) * scale;
    for (let i = 0; i < n; i++) upstream[i] = g * (weight ? weight[i] : 1);
  }
  const grad = r.wantGrad ? fwd.backward(upstream) : {};
  return { loss, shape: r.reduction === 'none' ? r.outShape : [], grad };
}
