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
  /** torchvision sigmoid_focal_loss on logits [n]. @example await dl.sigmoidFocalLoss(logits, targets, { alpha: 0.25, gamma: 2 }) */
  sigmoidFocalLoss(logits: HostTensor, targets: HostTensor, options: WrapperOptions & { alpha?: number; gamma?: number } = {}) {
    return this.call('sigmoid_focal', { logits, targets }, options);
  }
  /**
   * Quality focal loss (mmdetection QFL): logits [n,c], labels [n] (Int32Array; outside 0..c-1 is background), scores [n].
   * @example await dl.qualityFocalLoss(logits, labels, scores, { beta: 2 })
   */
  qualityFocalLoss(logits: HostTensor, labels: HostTensor, scores: HostTensor, options: WrapperOptions & { beta?: number } = {}) {
    return this.call('quality_focal', { logits, labels, scores }, options);
  }
  /** Distribution focal loss (mmdetection DFL): logits [n,k], targets [n] in [0, k-1). @example await dl.distributionFocalLoss(logits, targets) */
  distributionFocalLoss(logits: HostTensor, targets: HostTensor, options: WrapperOptions = {}) {
    return this.call('distribution_focal', { logits, targets }, options);
  }
  /** Varifocal loss (mmdetection): logits, targets [n,c] (pass `{ data, shape }`). @example await dl.varifocalLoss({ data, shape: [n, c] }, { data: t, shape: [n, c] }) */
  varifocalLoss(logits: HostTensor, targets: HostTensor, options: WrapperOptions & { alpha?: number; gamma?: number; iouWeighted?: boolean } = {}) {
    return this.call('varifocal', { logits, targets }, options);
  }
  /** F.binary_cross_entropy_with_logits: logits, targets [n,c], optional posWeight [c]. @example await dl.bceWithLogits(x, t, { posWeight }) */
  bceWithLogits(logits: HostTensor, targets: HostTensor, options: WrapperOptions & { posWeight?: HostTensor } = {}) {
    const { posWeight, ...rest } = options;
    return this.call('bce_with_logits', { logits, targets, ...(posWeight ? { posWeight } : {}) }, rest);
  }
  /**
   * F.cross_entropy: logits [n,c], labels [n] (Int32Array), optional classWeight [c].
   * @example await dl.crossEntropy(logits, labels, { labelSmoothing: 0.1, ignoreIndex: -1 })
   */
  crossEntropy(logits: HostTensor, labels: HostTensor, options: WrapperOptions & { classWeight?: HostTensor; ignoreIndex?: number; labelSmoothing?: number } = {}) {
    const { classWeight, ...rest } = options;
    return this.call('cross_entropy', { logits, labels, ...(classWeight ? { classWeight } : {}) }, rest);
  }
  /** KL distillation from teacher logits [n,c] to the student's, gradient for the student. @example await dl.klDiv(student, teacher, { temperature: 4 }) */
  klDiv(student: HostTensor, teacher: HostTensor, options: WrapperOptions & { temperature?: number; classReduction?: 'sum' | 'mean' } = {}) {
    return this.call('kl_div', { student, teacher }, options);
  }
  /** Dice loss (mmdetection) on sigmoid(logits) [n,p] per sample. @example await dl.diceLoss(x, t, { naive: true }) */
  diceLoss(logits: HostTensor, targets: HostTensor, options: WrapperOptions & { eps?: number; naive?: boolean } = {}) {
    return this.call('dice', { logits, targets }, options);
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
