import type { F32Tensor, I32Tensor, OpInputs, OpName, OpParams } from './ops/op-types';
import type { SharedOptions } from './ops/validate';
import { Detloss, openContext } from './runtime/context';
import type { DetlossOptions, RunResult } from './runtime/public';

/** Options every typed wrapper takes: the shared options plus the optional `weight` and `gradOutput` arrays. */
export type WrapperOptions = SharedOptions & {
  /** Multiplies the unreduced loss (same shape as the `'none'` output). */
  weight?: F32Tensor;
  /** Upstream gradient: the `'none'` shape, or one number for `'mean'`/`'sum'`. */
  gradOutput?: F32Tensor;
};

/** Options of the ranking losses: they reduce themselves ('mean' only) and take no weight or avgFactor. */
export type RankingOptions = Omit<WrapperOptions, 'weight' | 'avgFactor' | 'reduction'> & { reduction?: 'mean' };

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
  protected call<N extends OpName>(op: N, inputs: OpInputs<N>, options: WrapperOptions): Promise<RunResult> {
    const { extra, rest } = split(options);
    // The wrappers' own signatures are the typed ones; here the name is just a name.
    return this.run(op as string, { ...inputs, ...extra }, rest);
  }

  /** L1 loss, `abs(pred - target)` (`F.l1_loss`). @example await dl.l1(pred, target, { reduction: 'sum' }) */
  l1(pred: F32Tensor, target: F32Tensor, options: WrapperOptions = {}) {
    return this.call('l1', { pred, target }, options);
  }
  /** Squared error (`F.mse_loss`). @example await dl.mse(pred, target) */
  mse(pred: F32Tensor, target: F32Tensor, options: WrapperOptions = {}) {
    return this.call('mse', { pred, target }, options);
  }
  /** Smooth L1 (`F.smooth_l1_loss`), `beta` default 1. @example await dl.smoothL1(pred, target, { beta: 0.11 }) */
  smoothL1(pred: F32Tensor, target: F32Tensor, options: WrapperOptions & OpParams<'smooth_l1'> = {}) {
    return this.call('smooth_l1', { pred, target }, options);
  }
  /** Huber (`F.huber_loss`), `delta` default 1. @example await dl.huber(pred, target, { delta: 0.5 }) */
  huber(pred: F32Tensor, target: F32Tensor, options: WrapperOptions & OpParams<'huber'> = {}) {
    return this.call('huber', { pred, target }, options);
  }
  /** Balanced L1 (mmdetection), `alpha` 0.5, `gamma` 1.5, `beta` 1. @example await dl.balancedL1(pred, target, { beta: 0.5 }) */
  balancedL1(pred: F32Tensor, target: F32Tensor, options: WrapperOptions & OpParams<'balanced_l1'> = {}) {
    return this.call('balanced_l1', { pred, target }, options);
  }
  /**
   * A box IoU loss of pred [n,4] against target [n,4], with the gradient for pred.
   * @example await dl.iouLoss(pred, target, { variant: 'ciou', format: 'cxcywh', reduction: 'sum' })
   */
  iouLoss(pred: F32Tensor, target: F32Tensor, options: IouOptions = {}) {
    return this.call('iou_loss', { pred, target }, options);
  }
  /** torchvision sigmoid_focal_loss on logits [n]. @example await dl.sigmoidFocalLoss(logits, targets, { alpha: 0.25, gamma: 2 }) */
  sigmoidFocalLoss(logits: F32Tensor, targets: F32Tensor, options: WrapperOptions & OpParams<'sigmoid_focal'> = {}) {
    return this.call('sigmoid_focal', { logits, targets }, options);
  }
  /**
   * Multi-class (softmax) focal loss: logits [n,c], labels [n] (Int32Array), optional classWeight [c] (per-class alpha).
   * @example await dl.softmaxFocalLoss(logits, labels, { gamma: 2, classWeight })
   */
  softmaxFocalLoss(logits: F32Tensor, labels: I32Tensor, options: WrapperOptions & OpParams<'softmax_focal'> & { classWeight?: F32Tensor } = {}) {
    const { classWeight, ...rest } = options;
    return this.call('softmax_focal', { logits, labels, ...(classWeight ? { classWeight } : {}) }, rest);
  }
  /**
   * Class-balanced sigmoid focal loss (Cui et al. 2019): logits [n,c], labels [n] (Int32Array; outside 0..c-1 is
   * background), samplesPerClass [c] (counts). @example await dl.classBalancedFocalLoss(logits, labels, counts, { beta: 0.999 })
   */
  classBalancedFocalLoss(logits: F32Tensor, labels: I32Tensor, samplesPerClass: F32Tensor, options: WrapperOptions & OpParams<'class_balanced_focal'> = {}) {
    return this.call('class_balanced_focal', { logits, labels, samplesPerClass }, options);
  }
  /**
   * Quality focal loss (mmdetection QFL): logits [n,c], labels [n] (Int32Array; outside 0..c-1 is background), scores [n].
   * @example await dl.qualityFocalLoss(logits, labels, scores, { beta: 2 })
   */
  qualityFocalLoss(logits: F32Tensor, labels: I32Tensor, scores: F32Tensor, options: WrapperOptions & OpParams<'quality_focal'> = {}) {
    return this.call('quality_focal', { logits, labels, scores }, options);
  }
  /** Distribution focal loss (mmdetection DFL): logits [n,k], targets [n] in [0, k-1). @example await dl.distributionFocalLoss(logits, targets) */
  distributionFocalLoss(logits: F32Tensor, targets: F32Tensor, options: WrapperOptions = {}) {
    return this.call('distribution_focal', { logits, targets }, options);
  }
  /** Varifocal loss (mmdetection): logits, targets [n,c] (pass `{ data, shape }`). @example await dl.varifocalLoss({ data, shape: [n, c] }, { data: t, shape: [n, c] }) */
  varifocalLoss(logits: F32Tensor, targets: F32Tensor, options: WrapperOptions & OpParams<'varifocal'> = {}) {
    return this.call('varifocal', { logits, targets }, options);
  }
  /** F.binary_cross_entropy_with_logits: logits, targets [n,c], optional posWeight [c]. @example await dl.bceWithLogits(x, t, { posWeight }) */
  bceWithLogits(logits: F32Tensor, targets: F32Tensor, options: WrapperOptions & { posWeight?: F32Tensor } = {}) {
    const { posWeight, ...rest } = options;
    return this.call('bce_with_logits', { logits, targets, ...(posWeight ? { posWeight } : {}) }, rest);
  }
  /**
   * F.nll_loss: logProbs [n,c] (log-probabilities), labels [n] (Int32Array), optional classWeight [c].
   * @example await dl.nllLoss(logProbs, labels, { ignoreIndex: -1 })
   */
  nllLoss(logProbs: F32Tensor, labels: I32Tensor, options: WrapperOptions & OpParams<'nll'> & { classWeight?: F32Tensor } = {}) {
    const { classWeight, ...rest } = options;
    return this.call('nll', { logProbs, labels, ...(classWeight ? { classWeight } : {}) }, rest);
  }
  /** The SVM hinge `max(0, margin - y * f)`: logits [n], targets [n] of -1 and +1. @example await dl.hingeLoss(f, y, { margin: 1 }) */
  hingeLoss(logits: F32Tensor, targets: F32Tensor, options: WrapperOptions & OpParams<'hinge'> = {}) {
    return this.call('hinge', { logits, targets }, options);
  }
  /** F.hinge_embedding_loss: pred [n], targets [n] of -1 and +1. @example await dl.hingeEmbeddingLoss(d, y, { margin: 2 }) */
  hingeEmbeddingLoss(pred: F32Tensor, targets: F32Tensor, options: WrapperOptions & OpParams<'hinge_embedding'> = {}) {
    return this.call('hinge_embedding', { pred, targets }, options);
  }
  /**
   * F.margin_ranking_loss: input1, input2 [n], targets [n] of -1 and +1; gradients `grad.input1` and `grad.input2`.
   * @example await dl.marginRankingLoss(s1, s2, y, { margin: 0.3 })
   */
  marginRankingLoss(input1: F32Tensor, input2: F32Tensor, targets: F32Tensor, options: WrapperOptions & OpParams<'margin_ranking'> = {}) {
    return this.call('margin_ranking', { input1, input2, targets }, options);
  }
  /** AdaBoost's exponential loss `exp(min(-y * f, 80))`: logits [n], targets [n] of -1 and +1. @example await dl.exponentialLoss(f, y) */
  exponentialLoss(logits: F32Tensor, targets: F32Tensor, options: WrapperOptions = {}) {
    return this.call('exponential', { logits, targets }, options);
  }
  /**
   * AP-Loss (ops.md, "Ranking losses"): logits [n] over the whole minibatch, targets [n] of 1
   * (positive), 0 (negative), -1 (ignored). `loss` is one number; `grad.logits` is the authors'
   * error-driven update (times `gradOutput`), to use where a gradient would go.
   * @example const { loss, grad } = await dl.apLoss(scores, targets, { delta: 1 })
   */
  apLoss(logits: F32Tensor, targets: F32Tensor, options: RankingOptions & OpParams<'ap_loss'> = {}) {
    return this.call('ap_loss', { logits, targets }, options);
  }
  /**
   * Rank & Sort loss: logits [n], targets [n] with a positive's IoU in (0, 1], 0 negative, < 0
   * ignored. `loss` is `[ranking, sorting]`; `grad.logits` is the error-driven update.
   * @example const { loss: [ranking, sorting], grad } = await dl.rankSortLoss(scores, ious)
   */
  rankSortLoss(logits: F32Tensor, targets: F32Tensor, options: RankingOptions & OpParams<'rank_sort'> = {}) {
    return this.call('rank_sort', { logits, targets }, options);
  }
  /**
   * F.cross_entropy: logits [n,c], labels [n] (Int32Array), optional classWeight [c].
   * @example await dl.crossEntropy(logits, labels, { labelSmoothing: 0.1, ignoreIndex: -1 })
   */
  crossEntropy(logits: F32Tensor, labels: I32Tensor, options: WrapperOptions & OpParams<'cross_entropy'> & { classWeight?: F32Tensor } = {}) {
    const { classWeight, ...rest } = options;
    return this.call('cross_entropy', { logits, labels, ...(classWeight ? { classWeight } : {}) }, rest);
  }
  /** KL distillation from teacher logits [n,c] to the student's, gradient for the student. @example await dl.klDiv(student, teacher, { temperature: 4 }) */
  klDiv(student: F32Tensor, teacher: F32Tensor, options: WrapperOptions & OpParams<'kl_div'> = {}) {
    return this.call('kl_div', { student, teacher }, options);
  }
  /** Dice loss (mmdetection) on sigmoid(logits) [n,p] per sample. @example await dl.diceLoss(x, t, { naive: true }) */
  diceLoss(logits: F32Tensor, targets: F32Tensor, options: WrapperOptions & OpParams<'dice'> = {}) {
    return this.call('dice', { logits, targets }, options);
  }
  /**
   * The [n,m] matrix of an IoU variant (a similarity) between every box of a [n,4] and b [m,4]:
   * the cost matrix of Hungarian, SimOTA or ATSS matching. `b` may be passed as `{ data, shape }`.
   * @example const { values, shape } = await dl.pairwiseIou(a, b, { variant: 'giou' }); // values[i*m + j]
   */
  async pairwiseIou(a: F32Tensor, b: F32Tensor, options: PairwiseOptions = {}): Promise<{ values: Float32Array; shape: number[] }> {
    const r = await this.run('pairwise_iou', { a, b }, { ...options, reduction: 'none', grad: false });
    return { values: r.loss, shape: r.shape };
  }
}

export type { IouOptions, PairwiseOptions };

/**
 * Options of {@link DetlossContext.iouLoss}: `variant`, `format`, `eps`, and `mode` (only with
 * variant `'iou'`: `'linear'` (1 - iou), `'square'`, `'log'`).
 */
type IouOptions = WrapperOptions & OpParams<'iou_loss'>;

/** Options of {@link DetlossContext.pairwiseIou}: `variant`, `format`, `check`. */
type PairwiseOptions = OpParams<'pairwise_iou'> & { check?: boolean };

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
  return openContext(DetlossContext, options);
}
