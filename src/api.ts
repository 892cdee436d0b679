import type { HostTensor } from './ops/inputs';
import type { SharedOptions } from './ops/validate';
import { Detloss, openDevice, type DetlossOptions, type RunResult } from './runtime/context';

/** Options every typed wrapper takes: the shared options plus the optional `weight` and `gradOutput` arrays. */
export type WrapperOptions = SharedOptions & {
  /** Multiplies the unreduced loss (same shape as the `'none'` output). */
  weight?: HostTensor;
  /** Upstream gradient: the `'none'` shape, or one number for `'mean'`/`'sum'`. */
  gradOutput?: HostTensor;
};

const split = (options: WrapperOptions) => {
  const { weight, gradOutput, ...rest } = options as WrapperOptions & Record<string, unknown>;
  return { extra: { weight, gradOutput }, rest };
};

/**
 * A detloss context with typed wrappers over {@link Detloss.run}. Create it with {@link createDetloss}.
 *
 * @example
 * const dl = await createDetloss();
 * const { loss, grad } = await dl.smoothL1(pred, target, { beta: 0.11 });
 */
export class DetlossContext extends Detloss {
  /** Calls `run(op, { ...inputs, weight, gradOutput }, params)`. */
  protected call(op: string, inputs: Record<string, HostTensor>, options: WrapperOptions): Promise<RunResult> {
    const { extra, rest } = split(options);
    return this.run(op, { ...inputs, ...extra }, rest);
  }

  /** L1 loss, `abs(pred - target)` (`F.l1_loss`). @example await dl.l1(pred, target, { reduction: 'sum' }) */
  l1(pred: HostTensor, target: HostTensor, options: WrapperOptions = {}) {
    return this.call('l1', { pred, target }, options);
  }
  /** Squared error (`F.mse_loss`). @example await dl.mse(pred, target) */
  mse(pred: HostTensor, target: HostTensor, options: WrapperOptions = {}) {
    return this.call('mse', { pred, target }, options);
  }
  /** Smooth L1 (`F.smooth_l1_loss`), `beta` default 1. @example await dl.smoothL1(pred, target, { beta: 0.11 }) */
  smoothL1(pred: HostTensor, target: HostTensor, options: WrapperOptions & { beta?: number } = {}) {
    return this.call('smooth_l1', { pred, target }, options);
  }
  /** Huber (`F.huber_loss`), `delta` default 1. @example await dl.huber(pred, target, { delta: 0.5 }) */
  huber(pred: HostTensor, target: HostTensor, options: WrapperOptions & { delta?: number } = {}) {
    return this.call('huber', { pred, target }, options);
  }
  /** Balanced L1 (mmdetection), `alpha` 0.5, `gamma` 1.5, `beta` 1. @example await dl.balancedL1(pred, target, { beta: 0.5 }) */
  balancedL1(pred: HostTensor, target: HostTensor, options: WrapperOptions & { alpha?: number; gamma?: number; beta?: number } = {}) {
    return this.call('balanced_l1', { pred, target }, options);
  }
  /**
   * A box IoU loss of pred [n,4] against target [n,4], with the gradient for pred.
   * @example await dl.iouLoss(pred, target, { variant: 'ciou', format: 'cxcywh', reduction: 'sum' })
   */
  iouLoss(pred: HostTensor, target: HostTensor, options: IouOptions = {}) {
    return this.call('iou_loss', { pred, target }, options);
  }
  /**
   * The [n,m] matrix of an IoU variant (a similarity) between every box of a [n,4] and b [m,4]:
   * the cost matrix of Hungarian, SimOTA or ATSS matching. `b` may be passed as `{ data, shape }`.
   * @example const { values, shape } = await dl.pairwiseIou(a, b, { variant: 'giou' }); // values[i*m + j]
   */
  async pairwiseIou(a: HostTensor, b: HostTensor, options: PairwiseOptions = {}): Promise<{ values: Float32Array; shape: number[] }> {
    const r = await this.run('pairwise_iou', { a, b }, { ...options, reduction: 'none', grad: false });
    return { values: r.loss, shape: r.shape };
  }
}

export type { IouOptions, PairwiseOptions };

/** Options of {@link DetlossContext.iouLoss}. */
interface IouOptions extends WrapperOptions {
  variant?: 'iou' | 'giou' | 'diou' | 'ciou' | 'eiou' | 'siou';
  format?: 'xyxy' | 'cxcywh' | 'xywh';
  /** Only with variant 'iou': 'linear' (1 - iou), 'square', 'log'. */
  mode?: 'linear' | 'square' | 'log';
  eps?: number;
}

/** Options of {@link DetlossContext.pairwiseIou}. */
interface PairwiseOptions {
  variant?: 'iou' | 'giou' | 'diou' | 'ciou';
  format?: 'xyxy' | 'cxcywh' | 'xywh';
  check?: boolean;
}

/**
 * Creates a detloss context: uses `options.device`, or requests an adapter and a device with
 * the adapter's own limits. No WebGPU: `DetlossError` with code `no_webgpu`.
 *
 * @example
 * import { createDetloss } from 'detloss';
 * const dl = await createDetloss();
 * const r = await dl.run('smooth_l1', { pred, target }, { beta: 0.11, reduction: 'mean' });
 */
export async function createDetloss(options: DetlossOptions = {}): Promise<DetlossContext> {
  const { device, adapter } = await openDevice(options);
  return new DetlossContext(device, adapter, options);
}
