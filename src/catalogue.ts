/**
 * The wrapper catalogue, written once: every typed wrapper detloss offers, by the one name it has
 * on every surface (the core context's methods, `detloss/tfjs`, `detloss/ort`'s class and free
 * functions), with the op it calls, the op's inputs it takes as positional arguments, and the
 * params it fixes (`ciou` is `iou_loss` with `variant: 'ciou'`). Each surface builds its wrappers
 * from this table and types them with a mapped type over it, so a wrapper's positional inputs and
 * options come from {@link OP_SIGNATURES}: a wrong op name, input name or param here is a compile
 * error, and so is a wrapper that leaves out a required input.
 *
 * {@link splitOptions} is the one options splitter every surface uses.
 */
import { DetlossError } from './errors';
import type { OP_SIGNATURES, OpName, OpParams, OpReduction } from './ops/op-types';
import type { OpDescriptor } from './ops/types';
import { describeValue, SHARED_INPUTS } from './ops/validate';

type Signatures = typeof OP_SIGNATURES;
type InputsOf<N extends OpName> = Signatures[N]['inputs'];

/** The required inputs of op `N`, by name. */
export type RequiredInputName<N extends OpName> = { [K in keyof InputsOf<N>]: InputsOf<N>[K] extends `${string}?` ? never : K }[keyof InputsOf<N>] & string;
/** The optional tensor inputs of op `N` (`classWeight`, `posWeight`), passed in a wrapper's options. */
export type OptionalInputName<N extends OpName> = Exclude<keyof InputsOf<N>, RequiredInputName<N>> & string;

/** One wrapper of the table, for op `N`. */
interface WrapperSpec<N extends OpName> {
  /** The op it runs. */
  readonly op: N;
  /** The op's required inputs, in the order the wrapper takes them. */
  readonly args: readonly RequiredInputName<N>[];
  /** Params the wrapper fixes; a caller may repeat them, but not give another value. */
  readonly fixed?: OpParams<N>;
  /**
   * Where the op has more than one differentiable input: all of them, an optional one too (KFIoU's
   * `predDelta`, given in the options). Each surface returns the gradient of every one of them that
   * the call was given.
   */
  readonly grads?: readonly (RequiredInputName<N> | OptionalInputName<N>)[];
  /**
   * `'matrix'`: a similarity matrix, not a loss (no reduction, no gradient). `'outputs'`: the op's
   * named outputs (`tal_assign`'s assignment), with its loss where it has one (`yolo_detection_loss`).
   */
  readonly result?: 'matrix' | 'outputs';
  /**
   * Outputs of data-dependent length (NMS's indices): a surface must read their count before it
   * can give them their shape, so the TF.js wrapper is async, as `tf.image`'s NMS is.
   */
  readonly counted?: true;
}
type AnySpec = { [N in OpName]: WrapperSpec<N> }[OpName];

/**
 * Every wrapper, by its name on every surface. The doc comment of each entry is what an editor
 * shows for the wrapper (the mapped types keep it); inputs are named as the op names them.
 */
export const WRAPPERS = {
  /** L1 loss, `abs(pred - target)` (`F.l1_loss`); any shape, pred and target alike. @example l1(pred, target, { reduction: 'sum' }) */
  l1: { op: 'l1', args: ['pred', 'target'] },
  /** Squared error (`F.mse_loss`). @example mse(pred, target) */
  mse: { op: 'mse', args: ['pred', 'target'] },
  /** Smooth L1 (`F.smooth_l1_loss`), `beta` default 1. @example smoothL1(pred, target, { beta: 0.11 }) */
  smoothL1: { op: 'smooth_l1', args: ['pred', 'target'] },
  /** Huber (`F.huber_loss`), `delta` default 1. @example huber(pred, target, { delta: 0.5 }) */
  huber: { op: 'huber', args: ['pred', 'target'] },
  /** Balanced L1 (Libra R-CNN, mmdetection): `alpha` 0.5, `gamma` 1.5, `beta` 1. @example balancedL1(pred, target, { beta: 0.5 }) */
  balancedL1: { op: 'balanced_l1', args: ['pred', 'target'] },
  /**
   * A box IoU loss of pred [n,4] against target [n,4], gradient for pred: `variant`, `format`, `eps`,
   * `mode` (with variant `'iou'`: `'linear'` (1 - iou), `'square'`, `'log'`) and the params of ops.md's "More box losses".
   * @example iouLoss(pred, target, { variant: 'ciou', format: 'cxcywh', reduction: 'sum' })
   */
  iouLoss: { op: 'iou_loss', args: ['pred', 'target'] },
  /** IoU loss, `1 - iou` (or `mode` `'square'`/`'log'`): `iou_loss` with `variant: 'iou'`. @example iou(pred, target, { mode: 'log' }) */
  iou: { op: 'iou_loss', args: ['pred', 'target'], fixed: { variant: 'iou' } },
  /** GIoU loss (torchvision's `generalized_box_iou_loss`): `iou_loss` with `variant: 'giou'`. */
  giou: { op: 'iou_loss', args: ['pred', 'target'], fixed: { variant: 'giou' } },
  /** DIoU loss (torchvision's `distance_box_iou_loss`): `iou_loss` with `variant: 'diou'`. */
  diou: { op: 'iou_loss', args: ['pred', 'target'], fixed: { variant: 'diou' } },
  /** CIoU loss (torchvision's `complete_box_iou_loss`, alpha held constant in the gradient): `iou_loss` with `variant: 'ciou'`. @example ciou(boxes, target, { format: 'cxcywh' }) */
  ciou: { op: 'iou_loss', args: ['pred', 'target'], fixed: { variant: 'ciou' } },
  /** EIoU loss: `iou_loss` with `variant: 'eiou'`. */
  eiou: { op: 'iou_loss', args: ['pred', 'target'], fixed: { variant: 'eiou' } },
  /** SIoU loss: `iou_loss` with `variant: 'siou'`. */
  siou: { op: 'iou_loss', args: ['pred', 'target'], fixed: { variant: 'siou' } },
  /** MPDIoU loss: `iou_loss` with `variant: 'mpdiou'`; `imageSize: [W, H]` is required. */
  mpdiou: { op: 'iou_loss', args: ['pred', 'target'], fixed: { variant: 'mpdiou' } },
  /** Shape-IoU loss (`scale`, default 0): `iou_loss` with `variant: 'shape'`. */
  shapeIou: { op: 'iou_loss', args: ['pred', 'target'], fixed: { variant: 'shape' } },
  /** Wise-IoU loss (`wiouVersion`, `iouMean`, `wiouAlpha`, `wiouDelta`): `iou_loss` with `variant: 'wiou'`; keep `iouMean` up to date with `WiseIoU`. */
  wiou: { op: 'iou_loss', args: ['pred', 'target'], fixed: { variant: 'wiou' } },
  /**
   * The [n,m] matrix of an IoU variant (a similarity) between every box of a [n,4] and b [m,4]: the cost
   * matrix of Hungarian, SimOTA or ATSS matching (`variant`, `format`); no reduction, no gradient.
   * @example pairwiseIou(anchors, gts, { variant: 'giou' }) // entry (i, j) at i*m + j
   */
  pairwiseIou: { op: 'pairwise_iou', args: ['a', 'b'], result: 'matrix' },
  /**
   * A loss of rotated boxes pred [n,5] against target [n,5], `(cx, cy, w, h, theta)` with theta in radians, gradient for
   * all five components of pred: `variant` (`'probiou'`, `'gwd'`, `'kld'`, `'jd'`, `'kld_symmax'`, `'kld_symmin'`,
   * `'kfiou'`) and its params; KFIoU takes `predDelta` and `targetDelta` [n,2] in the options, and then returns the
   * gradient of `predDelta` too.
   * @example rotatedIouLoss(pred, target, { variant: 'kld', tau: 1 })
   */
  rotatedIouLoss: { op: 'rotated_iou_loss', args: ['pred', 'target'], grads: ['pred', 'predDelta'] },
  /** ProbIoU loss of rotated boxes (ultralytics' `RotatedBboxLoss`, `1 - probiou`; `ciou` adds its aspect term): `rotated_iou_loss` with `variant: 'probiou'`. @example probiou(pred, target, { ciou: true }) */
  probiou: { op: 'rotated_iou_loss', args: ['pred', 'target'], grads: ['pred', 'predDelta'], fixed: { variant: 'probiou' } },
  /** Gaussian Wasserstein distance loss (mmrotate's `GDLoss(loss_type='gwd')`: `fun`, `tau`, `alpha`, `normalize`): `rotated_iou_loss` with `variant: 'gwd'`. */
  gwd: { op: 'rotated_iou_loss', args: ['pred', 'target'], grads: ['pred', 'predDelta'], fixed: { variant: 'gwd' } },
  /** KL divergence loss of rotated boxes (mmrotate's `GDLoss(loss_type='kld')`: `fun`, `tau`, `alpha`, `sqrt`): `rotated_iou_loss` with `variant: 'kld'`. @example kld(pred, target, { tau: 1 }) */
  kld: { op: 'rotated_iou_loss', args: ['pred', 'target'], grads: ['pred', 'predDelta'], fixed: { variant: 'kld' } },
  /** Jeffreys divergence loss (mmrotate's `GDLoss(loss_type='jd')`): `rotated_iou_loss` with `variant: 'jd'`. */
  jd: { op: 'rotated_iou_loss', args: ['pred', 'target'], grads: ['pred', 'predDelta'], fixed: { variant: 'jd' } },
  /** Symmetric KLD, the larger direction (mmrotate's `GDLoss(loss_type='kld_symmax')`): `rotated_iou_loss` with `variant: 'kld_symmax'`. */
  kldSymmax: { op: 'rotated_iou_loss', args: ['pred', 'target'], grads: ['pred', 'predDelta'], fixed: { variant: 'kld_symmax' } },
  /** Symmetric KLD, the smaller direction (mmrotate's `GDLoss(loss_type='kld_symmin')`): `rotated_iou_loss` with `variant: 'kld_symmin'`. */
  kldSymmin: { op: 'rotated_iou_loss', args: ['pred', 'target'], grads: ['pred', 'predDelta'], fixed: { variant: 'kld_symmin' } },
  /**
   * KFIoU loss (mmrotate 0.3.x `KFLoss`: `fun`, `beta`, `eps`): `rotated_iou_loss` with `variant: 'kfiou'`. `predDelta` and
   * `targetDelta` [n,2] (the encoded deltas) go in the options; `predDelta` then gets its gradient beside `pred`'s.
   * @example kfiou(pred, target, { predDelta, targetDelta, fun: 'ln' })
   */
  kfiou: { op: 'rotated_iou_loss', args: ['pred', 'target'], grads: ['pred', 'predDelta'], fixed: { variant: 'kfiou' } },
  /**
   * The [n,m] ProbIoU matrix (a similarity) between rotated boxes a [n,5] and b [m,5]: ultralytics' `batch_probiou`, which
   * OBB's NMS and validation use; no reduction, no gradient.
   * @example pairwiseProbiou(dets, gts) // entry (i, j) at i*m + j
   */
  pairwiseProbiou: { op: 'pairwise_probiou', args: ['a', 'b'], result: 'matrix' },
  /** torchvision's `sigmoid_focal_loss` on logits and targets of any shape alike (`alpha`, `gamma`). @example sigmoidFocal(logits, targets, { alpha: 0.25, gamma: 2 }) */
  sigmoidFocal: { op: 'sigmoid_focal', args: ['logits', 'targets'] },
  /**
   * Multi-class (softmax) focal loss: logits [n,c], labels [n] int32, optional `classWeight` [c] (per-class alpha) in the options.
   * @example softmaxFocal(logits, labels, { gamma: 2, classWeight })
   */
  softmaxFocal: { op: 'softmax_focal', args: ['logits', 'labels'] },
  /**
   * Class-balanced sigmoid focal loss (Cui et al. 2019): logits [n,c], labels [n] int32 (outside 0..c-1: background),
   * samplesPerClass [c] (counts). @example classBalancedFocal(logits, labels, counts, { beta: 0.999 })
   */
  classBalancedFocal: { op: 'class_balanced_focal', args: ['logits', 'labels', 'samplesPerClass'] },
  /** Quality focal loss (GFL, mmdetection QFL): logits [n,c], labels [n] int32 (outside 0..c-1: background), scores [n]. @example qualityFocal(logits, labels, scores, { beta: 2 }) */
  qualityFocal: { op: 'quality_focal', args: ['logits', 'labels', 'scores'] },
  /** Distribution focal loss (GFL, mmdetection DFL): logits [n,k], targets [n] in [0, k-1). @example distributionFocal(logits, targets) */
  distributionFocal: { op: 'distribution_focal', args: ['logits', 'targets'] },
  /** Varifocal loss (VFNet, mmdetection): logits and targets [n,c]. @example varifocal(logits, targets, { iouWeighted: false }) */
  varifocal: { op: 'varifocal', args: ['logits', 'targets'] },
  /** `F.binary_cross_entropy_with_logits`: logits and targets [n,c], optional `posWeight` [c] in the options. @example bceWithLogits(x, t, { posWeight }) */
  bceWithLogits: { op: 'bce_with_logits', args: ['logits', 'targets'] },
  /** `F.nll_loss`: logProbs [n,c] (log-probabilities), labels [n] int32, optional `classWeight` [c]. @example nll(logProbs, labels, { ignoreIndex: -1 }) */
  nll: { op: 'nll', args: ['logProbs', 'labels'] },
  /** The SVM hinge `max(0, margin - y * f)`: logits [n], targets [n] of -1 and +1. @example hinge(f, y, { margin: 1 }) */
  hinge: { op: 'hinge', args: ['logits', 'targets'] },
  /** `F.hinge_embedding_loss`: pred [n], targets [n] of -1 and +1. @example hingeEmbedding(d, y, { margin: 2 }) */
  hingeEmbedding: { op: 'hinge_embedding', args: ['pred', 'targets'] },
  /**
   * `F.margin_ranking_loss`: input1, input2 [n], targets [n] of -1 and +1; a gradient for each of input1 and input2.
   * @example marginRanking(s1, s2, y, { margin: 0.3 })
   */
  marginRanking: { op: 'margin_ranking', args: ['input1', 'input2', 'targets'], grads: ['input1', 'input2'] },
  /** AdaBoost's exponential loss `exp(min(-y * f, 80))`: logits [n], targets [n] of -1 and +1. @example exponential(f, y) */
  exponential: { op: 'exponential', args: ['logits', 'targets'] },
  /**
   * AP-Loss (ops.md, "Ranking losses"): logits over the whole minibatch, ranked as one flat list; targets alike,
   * 1 positive, 0 negative, -1 ignored. One number, `1 - mean interpolated precision`; its gradient is the
   * authors' error-driven update (times the upstream gradient). `delta` (1); reduction `'mean'` only, no `weight` or `avgFactor`.
   * @example apLoss(scores, targets, { delta: 1 })
   */
  apLoss: { op: 'ap_loss', args: ['logits', 'targets'] },
  /**
   * Rank & Sort loss (ops.md, "Ranking losses"): logits ranked together, targets a positive's IoU in (0, 1], 0 negative,
   * < 0 ignored. The loss is `[ranking, sorting]`; the error-driven update covers both and is scaled by the upstream
   * gradient of the first (the authors' `RankSort.backward`). `delta` (0.5); reduction `'mean'` only, no `weight` or `avgFactor`.
   * @example rankSort(scores, ious, { delta: 0.5 })
   */
  rankSort: { op: 'rank_sort', args: ['logits', 'targets'] },
  /** `F.cross_entropy`: logits [n,c], labels [n] int32, optional `classWeight` [c]. @example crossEntropy(logits, labels, { labelSmoothing: 0.1, ignoreIndex: -1 }) */
  crossEntropy: { op: 'cross_entropy', args: ['logits', 'labels'] },
  /** KL distillation from the teacher's logits [n,c] to the student's, gradient for the student (`temperature`, `classReduction`). @example klDiv(student, teacher, { temperature: 4 }) */
  klDiv: { op: 'kl_div', args: ['student', 'teacher'] },
  /** Dice loss (mmdetection) on sigmoid(logits) [n,p] per sample (`eps`, `naive`). @example dice(x, t, { naive: true }) */
  dice: { op: 'dice', args: ['logits', 'targets'] },
  /**
   * ultralytics' TaskAlignedAssigner (ops.md, "Task-aligned assignment"): scores [b,a,c] in [0, 1] (sigmoid of the logits),
   * predBoxes [b,a,4] and gtBoxes [b,m,4] xyxy, anchors [a,2] (centres, in the boxes' units), gtLabels [b,m] and gtMask [b,m]
   * int32. No gradient; no reduction, weight or avgFactor. Outputs `labels`, `boxes`, `targetScores`, `foreground` (1/0),
   * `gtIndex`. Params `topk` (10), `alpha` (0.5), `beta` (6), `eps` (1e-9): v8DetectionLoss's values.
   * @example talAssign(sigmoidScores, boxes, anchorPixels, gtLabels, gtBoxes, gtMask, { topk: 13, alpha: 1 })
   */
  talAssign: { op: 'tal_assign', args: ['scores', 'predBoxes', 'anchors', 'gtLabels', 'gtBoxes', 'gtMask'], result: 'outputs' },
  /**
   * ultralytics' v8DetectionLoss for a DFL head (ops.md, "The YOLOv8 loss"), assignment included: predDist [b,a,4r] DFL
   * logits (sides left, top, right, bottom), predScores [b,a,c] class logits, anchors [a,2] in grid units and strides [a]
   * in pixels (see `makeAnchors`), gtLabels [b,m], gtBoxes [b,m,4] xyxy pixels, gtMask [b,m]. The loss is the total
   * ultralytics backpropagates, `b * (box + cls + dfl)`; `outputs.components` is `[box, cls, dfl]`; gradients for
   * predDist and predScores. Params `topk`, `alpha`, `beta`, `boxGain` (7.5), `clsGain` (0.5), `dflGain` (1.5).
   * @example yoloLoss(predDist, predScores, anchors, strides, gtLabels, gtBoxes, gtMask, { boxGain: 7.5 })
   */
  yoloLoss: {
    op: 'yolo_detection_loss',
    args: ['predDist', 'predScores', 'anchors', 'strides', 'gtLabels', 'gtBoxes', 'gtMask'],
    grads: ['predDist', 'predScores'],
    result: 'outputs',
  },
  /**
   * Greedy NMS as `torchvision.ops.nms` (and `batched_nms` with the `classes` option, int32 [n]): boxes [n,4] in `format`
   * (`'xyxy'`), scores [n]. `iouThreshold` is required; `variant: 'diou'` for DIoU-NMS; `scoreThreshold` keeps
   * `score > scoreThreshold`. Outputs `keep` (int32 indices, decreasing score) and `count`.
   * @example nms(boxes, scores, { iouThreshold: 0.45, scoreThreshold: 0.25 })
   */
  nms: { op: 'nms', args: ['boxes', 'scores'], result: 'outputs', counted: true },
  /**
   * ONNX `NonMaxSuppression` as onnxruntime runs it: boxes [b,n,4] (`[y1,x1,y2,x2]`, or `[xc,yc,w,h]` with
   * `centerPointBox: 1`), scores [b,c,n]. `maxOutputBoxesPerClass` (a number or a bigint; 0 by default, as ONNX),
   * `iouThreshold` (0), `scoreThreshold`. Outputs `selected` (int32 [k,3] rows `(batch, class, box)`) and `count`.
   * @example nmsOnnx(boxes, scores, { maxOutputBoxesPerClass: 100, iouThreshold: 0.5, scoreThreshold: 0.25 })
   */
  nmsOnnx: { op: 'nms_onnx', args: ['boxes', 'scores'], result: 'outputs', counted: true },
  /**
   * `tf.image.nonMaxSuppressionWithScore`: boxes [n,4] (`[y1,x1,y2,x2]`), scores [n]; `maxOutputSize` is required,
   * `iouThreshold` (0.5), `scoreThreshold` (-Infinity), `softNmsSigma` (0: hard NMS). Outputs `selectedIndices`,
   * `selectedScores` (decayed in Soft-NMS) and `count`.
   * @example nmsTfjs(boxes, scores, { maxOutputSize: 100, softNmsSigma: 0.5 })
   */
  nmsTfjs: { op: 'nms_tfjs', args: ['boxes', 'scores'], result: 'outputs', counted: true },
} as const satisfies Record<string, AnySpec>;

/** The table's type. Surfaces map over `keyof WrapperTable` (so an editor shows each entry's doc comment on the wrapper). */
export type WrapperTable = typeof WRAPPERS;
type Table = WrapperTable;
/** The name of a wrapper: the same on every surface. */
export type WrapperName = keyof Table;
/** The op wrapper `K` runs. */
export type WrapperOp<K extends WrapperName> = Table[K]['op'];
type ArgsOf<K extends WrapperName> = Table[K]['args'];
type FixedOf<K extends WrapperName> = Table[K] extends { fixed: infer F } ? F : {};

// Every wrapper takes every required input of its op: a type error names the wrapper that does not.
type MissingArgs = { [K in WrapperName]: Exclude<RequiredInputName<WrapperOp<K>>, ArgsOf<K>[number]> extends never ? never : K }[WrapperName];
type Assert<T extends true> = T;
export type EveryWrapperTakesEveryRequiredInput = Assert<[MissingArgs] extends [never] ? true : false>;

/**
 * The old names of the core context's wrappers, kept as aliases of the names every surface shares.
 * Each is the same method as its canonical name.
 */
export const CORE_ALIASES = {
  /** @deprecated The same loss as `sigmoidFocal`, the name every surface uses. */
  sigmoidFocalLoss: 'sigmoidFocal',
  /** @deprecated The same loss as `softmaxFocal`, the name every surface uses. */
  softmaxFocalLoss: 'softmaxFocal',
  /** @deprecated The same loss as `classBalancedFocal`, the name every surface uses. */
  classBalancedFocalLoss: 'classBalancedFocal',
  /** @deprecated The same loss as `qualityFocal`, the name every surface uses. */
  qualityFocalLoss: 'qualityFocal',
  /** @deprecated The same loss as `distributionFocal`, the name every surface uses. */
  distributionFocalLoss: 'distributionFocal',
  /** @deprecated The same loss as `varifocal`, the name every surface uses. */
  varifocalLoss: 'varifocal',
  /** @deprecated The same loss as `nll`, the name every surface uses. */
  nllLoss: 'nll',
  /** @deprecated The same loss as `hinge`, the name every surface uses. */
  hingeLoss: 'hinge',
  /** @deprecated The same loss as `hingeEmbedding`, the name every surface uses. */
  hingeEmbeddingLoss: 'hingeEmbedding',
  /** @deprecated The same loss as `marginRanking`, the name every surface uses. */
  marginRankingLoss: 'marginRanking',
  /** @deprecated The same loss as `exponential`, the name every surface uses. */
  exponentialLoss: 'exponential',
  /** @deprecated The same loss as `rankSort`, the name every surface uses. */
  rankSortLoss: 'rankSort',
  /** @deprecated The same loss as `dice`, the name every surface uses. */
  diceLoss: 'dice',
} as const satisfies Record<string, WrapperName>;

// ---- Types each surface builds its wrappers' signatures from ----

/** Whether wrapper `K`'s op reduces itself (`'mean'` only: the ranking losses). */
export type SelfReduced<K extends WrapperName> = [OpReduction<WrapperOp<K>>] extends ['mean'] ? true : false;
/** Whether wrapper `K` returns a similarity matrix rather than a loss. */
export type IsMatrix<K extends WrapperName> = Table[K] extends { result: 'matrix' } ? true : false;
/** Whether wrapper `K` returns its op's named outputs (`talAssign`, `yoloLoss`). */
export type HasOutputs<K extends WrapperName> = Table[K] extends { result: 'outputs' } ? true : false;
/** Whether wrapper `K`'s outputs have a data-dependent length (its TF.js form is async). */
export type IsCounted<K extends WrapperName> = Table[K] extends { counted: true } ? true : false;
/** Whether wrapper `K`'s op has more than one differentiable input. */
export type HasGrads<K extends WrapperName> = Table[K] extends { grads: readonly string[] } ? true : false;

/** `T` with its members listed, as an editor shows it (a homomorphic map: each member keeps its doc comment). */
export type Flat<T> = { [P in keyof T]: T[P] } & {};

/** The params wrapper `K` takes: its op's, a fixed one only at its fixed value. */
export type WrapperParams<K extends WrapperName> = Omit<OpParams<WrapperOp<K>>, keyof FixedOf<K>> & { -readonly [P in keyof FixedOf<K>]?: FixedOf<K>[P] };

/** The optional tensor inputs of wrapper `K`'s op, as options of type `F`. */
export type OptionalInputs<K extends WrapperName, F> = { [P in OptionalInputName<WrapperOp<K>>]?: F };

type TensorOf<N extends OpName, Name, F, I> = Name extends keyof InputsOf<N> ? (InputsOf<N>[Name] extends 'i32' | 'i32?' ? I : F) : never;

/**
 * Wrapper `K`'s parameters: its positional inputs, named as the op names them, then `options?: O`.
 * `First` types the first input, `F` the other float inputs, `I` the int32 ones (labels). Tuple
 * labels cannot be computed from names, so the argument lists the table uses are spelled out here;
 * any other list gets the same types without labels.
 */
export type WrapperArgs<K extends WrapperName, First, F, I, O> = Named<ArgsOf<K>, Typed<WrapperOp<K>, ArgsOf<K>, First, F, I>, O>;

type Typed<N extends OpName, A extends readonly string[], First, F, I> = { -readonly [P in keyof A]: P extends '0' ? First : TensorOf<N, A[P], F, I> };

type Named<A extends readonly string[], X extends readonly unknown[], O> = A extends readonly ['pred', 'target']
  ? [pred: X[0], target: X[1], options?: O]
  : A extends readonly ['logits', 'targets']
    ? [logits: X[0], targets: X[1], options?: O]
    : A extends readonly ['logits', 'labels']
      ? [logits: X[0], labels: X[1], options?: O]
      : A extends readonly ['logits', 'labels', 'scores']
        ? [logits: X[0], labels: X[1], scores: X[2], options?: O]
        : A extends readonly ['logits', 'labels', 'samplesPerClass']
          ? [logits: X[0], labels: X[1], samplesPerClass: X[2], options?: O]
          : A extends readonly ['logProbs', 'labels']
            ? [logProbs: X[0], labels: X[1], options?: O]
            : A extends readonly ['pred', 'targets']
              ? [pred: X[0], targets: X[1], options?: O]
              : A extends readonly ['input1', 'input2', 'targets']
                ? [input1: X[0], input2: X[1], targets: X[2], options?: O]
                : A extends readonly ['student', 'teacher']
                  ? [student: X[0], teacher: X[1], options?: O]
                  : A extends readonly ['a', 'b']
                    ? [a: X[0], b: X[1], options?: O]
                    : A extends readonly ['scores', 'predBoxes', 'anchors', 'gtLabels', 'gtBoxes', 'gtMask']
                      ? [scores: X[0], predBoxes: X[1], anchors: X[2], gtLabels: X[3], gtBoxes: X[4], gtMask: X[5], options?: O]
                      : A extends readonly ['predDist', 'predScores', 'anchors', 'strides', 'gtLabels', 'gtBoxes', 'gtMask']
                        ? [predDist: X[0], predScores: X[1], anchors: X[2], strides: X[3], gtLabels: X[4], gtBoxes: X[5], gtMask: X[6], options?: O]
                        : [...X, O?];

// ---- At run time ----

/** One wrapper of the table, as the surfaces read it at run time. */
export interface Wrapper {
  name: WrapperName;
  op: OpName;
  args: readonly string[];
  fixed?: Readonly<Record<string, unknown>>;
  grads?: readonly string[];
  result?: 'matrix' | 'outputs';
}

/** The table as a list, each entry with its name. */
export const wrappers = (): Wrapper[] => Object.entries(WRAPPERS).map(([name, w]) => ({ name: name as WrapperName, ...(w as Omit<Wrapper, 'name'>) }));

/**
 * The positional inputs of a wrapper's call, by name (no prototype: an input named like an
 * Object method stays an input). Absent ones stay, as `undefined`, for the op to refuse by name.
 */
export function positionalInputs<V>(w: Wrapper, args: readonly unknown[]): Record<string, V> {
  const out: Record<string, V> = Object.create(null);
  w.args.forEach((name, i) => (out[name] = args[i] as V));
  return out;
}

/** A wrapper's options: the argument after its positional inputs. */
export const optionsArg = (w: Wrapper, args: readonly unknown[]): unknown => args[w.args.length];

/**
 * Splits a call's options into the tensors that travel with the inputs (`weight`, `gradOutput` and
 * the op's optional inputs, such as `classWeight`) and the params (everything else: the op's own,
 * `reduction`, `avgFactor`, `grad`, `check`, and any unknown key, which the op refuses by name).
 * Keys whose value is `undefined` count as not given. `fixed` are the params a wrapper fixes: given
 * again with another value, they are an `invalid_param` naming the key. Options that are not an
 * object are an `invalid_param` naming `options`. Both results have no prototype.
 */
export function splitOptions(desc: OpDescriptor, options: unknown, fixed?: Readonly<Record<string, unknown>>, where: string = desc.name): { tensors: Record<string, unknown>; params: Record<string, unknown> } {
  if (options === undefined) options = {};
  if (typeof options !== 'object' || options === null) throw new DetlossError('invalid_param', `${where}: options must be an object`, 'options');
  const tensors: Record<string, unknown> = Object.create(null);
  const params: Record<string, unknown> = Object.create(null);
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    const input = (SHARED_INPUTS as readonly string[]).includes(key) || (Object.hasOwn(desc.inputs, key) && desc.inputs[key].optional === true);
    (input ? tensors : params)[key] = value;
  }
  for (const [key, value] of Object.entries(fixed ?? {})) {
    if (key in params && params[key] !== value) {
      throw new DetlossError('invalid_param', `${where}: ${key} is ${JSON.stringify(value)} here, got ${describeValue(params[key])} (op ${desc.name} takes any ${key})`, key);
    }
    params[key] = value;
  }
  return { tensors, params };
}
