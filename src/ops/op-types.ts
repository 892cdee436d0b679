import type { Reduction, SharedOptions } from './validate';

/**
 * The op catalogue as types see it: each op's inputs (dtype, `?` when optional), its params
 * (`'number'`, `'number!'` for one a call must give, `'limit'` for a count that may be a bigint (`'limit!'` required),
 * `'boolean'`, `'pair'` for two numbers, or the list of names an enum takes) and the reductions it accepts.
 * test/types/op-map.test.ts holds it against the registry (`OPS`), so the two cannot drift.
 */
export const OP_SIGNATURES = {
  l1: { inputs: { pred: 'f32', target: 'f32' }, params: {} },
  mse: { inputs: { pred: 'f32', target: 'f32' }, params: {} },
  smooth_l1: { inputs: { pred: 'f32', target: 'f32' }, params: { beta: 'number' } },
  huber: { inputs: { pred: 'f32', target: 'f32' }, params: { delta: 'number' } },
  balanced_l1: { inputs: { pred: 'f32', target: 'f32' }, params: { alpha: 'number', gamma: 'number', beta: 'number' } },
  iou_loss: {
    inputs: { pred: 'f32', target: 'f32' },
    params: {
      variant: ['iou', 'giou', 'diou', 'ciou', 'eiou', 'siou', 'mpdiou', 'shape', 'wiou'],
      format: ['xyxy', 'cxcywh', 'xywh'],
      eps: 'number',
      mode: ['linear', 'square', 'log'],
      ciouAlpha: ['torchvision', 'mmdet'],
      power: 'number',
      innerRatio: 'number',
      focaler: 'pair',
      imageSize: 'pair',
      scale: 'number',
      wiouVersion: 'number',
      iouMean: 'number',
      wiouAlpha: 'number',
      wiouDelta: 'number',
    },
  },
  pairwise_iou: {
    inputs: { a: 'f32', b: 'f32' },
    params: { variant: ['iou', 'giou', 'diou', 'ciou'], format: ['xyxy', 'cxcywh', 'xywh'] },
    reductions: ['none'],
  },
  rotated_iou_loss: {
    inputs: { pred: 'f32', target: 'f32', predDelta: 'f32?', targetDelta: 'f32?' },
    params: {
      variant: ['probiou', 'gwd', 'kld', 'jd', 'kld_symmax', 'kld_symmin', 'kfiou'],
      eps: 'number',
      ciou: 'boolean',
      fun: ['log1p', 'sqrt', 'none', 'ln', 'exp'],
      tau: 'number',
      alpha: 'number',
      normalize: 'boolean',
      sqrt: 'boolean',
      beta: 'number',
    },
  },
  pairwise_probiou: { inputs: { a: 'f32', b: 'f32' }, params: { eps: 'number' }, reductions: ['none'] },
  sigmoid_focal: { inputs: { logits: 'f32', targets: 'f32' }, params: { alpha: 'number', gamma: 'number' } },
  softmax_focal: { inputs: { logits: 'f32', labels: 'i32', classWeight: 'f32?' }, params: { gamma: 'number', ignoreIndex: 'number' } },
  class_balanced_focal: { inputs: { logits: 'f32', labels: 'i32', samplesPerClass: 'f32' }, params: { beta: 'number', gamma: 'number' } },
  quality_focal: { inputs: { logits: 'f32', labels: 'i32', scores: 'f32' }, params: { beta: 'number' } },
  distribution_focal: { inputs: { logits: 'f32', targets: 'f32' }, params: {} },
  varifocal: { inputs: { logits: 'f32', targets: 'f32' }, params: { alpha: 'number', gamma: 'number', iouWeighted: 'boolean' } },
  bce_with_logits: { inputs: { logits: 'f32', targets: 'f32', posWeight: 'f32?' }, params: {} },
  nll: { inputs: { logProbs: 'f32', labels: 'i32', classWeight: 'f32?' }, params: { ignoreIndex: 'number' } },
  hinge: { inputs: { logits: 'f32', targets: 'f32' }, params: { margin: 'number' } },
  hinge_embedding: { inputs: { pred: 'f32', targets: 'f32' }, params: { margin: 'number' } },
  margin_ranking: { inputs: { input1: 'f32', input2: 'f32', targets: 'f32' }, params: { margin: 'number' } },
  exponential: { inputs: { logits: 'f32', targets: 'f32' }, params: {} },
  ap_loss: { inputs: { logits: 'f32', targets: 'f32' }, params: { delta: 'number' }, reductions: ['mean'] },
  rank_sort: { inputs: { logits: 'f32', targets: 'f32' }, params: { delta: 'number' }, reductions: ['mean'] },
  cross_entropy: {
    inputs: { logits: 'f32', labels: 'i32', classWeight: 'f32?' },
    params: { ignoreIndex: 'number', labelSmoothing: 'number' },
  },
  kl_div: { inputs: { student: 'f32', teacher: 'f32' }, params: { temperature: 'number', classReduction: ['sum', 'mean'] } },
  dice: { inputs: { logits: 'f32', targets: 'f32' }, params: { eps: 'number', naive: 'boolean' } },
  tal_assign: {
    inputs: { scores: 'f32', predBoxes: 'f32', anchors: 'f32', gtLabels: 'i32', gtBoxes: 'f32', gtMask: 'i32' },
    params: { topk: 'number', alpha: 'number', beta: 'number', eps: 'number' },
    reductions: [],
  },
  yolo_detection_loss: {
    inputs: { predDist: 'f32', predScores: 'f32', anchors: 'f32', strides: 'f32', gtLabels: 'i32', gtBoxes: 'f32', gtMask: 'i32' },
    params: { topk: 'number', alpha: 'number', beta: 'number', boxGain: 'number', clsGain: 'number', dflGain: 'number' },
    reductions: [],
  },
  nms: {
    inputs: { boxes: 'f32', scores: 'f32', classes: 'i32?' },
    params: { iouThreshold: 'number!', format: ['xyxy', 'cxcywh', 'xywh'], variant: ['iou', 'diou'], scoreThreshold: 'number' },
    reductions: [],
  },
  nms_onnx: {
    inputs: { boxes: 'f32', scores: 'f32' },
    params: { maxOutputBoxesPerClass: 'limit', iouThreshold: 'number', scoreThreshold: 'number', centerPointBox: 'number' },
    reductions: [],
  },
  nms_tfjs: {
    inputs: { boxes: 'f32', scores: 'f32' },
    params: { maxOutputSize: 'limit!', iouThreshold: 'number', scoreThreshold: 'number', softNmsSigma: 'number' },
    reductions: [],
  },
} as const satisfies Record<
  string,
  {
    inputs: Record<string, 'f32' | 'i32' | 'f32?' | 'i32?'>;
    params: Record<string, 'number' | 'number!' | 'limit' | 'limit!' | 'boolean' | 'pair' | readonly string[]>;
    reductions?: readonly ('none' | 'mean' | 'sum')[];
  }
>;

type Signatures = typeof OP_SIGNATURES;

/**
 * The rank of each op's unreduced (`'none'`) output, for the types of `detloss/tfjs`: `'input'`
 * where the op is elementwise (every input `[n]`, so a framework's tensors of any shape are
 * flattened and the output takes the first input's shape), else the rank of the op's output
 * (`iou_loss` `[n]`, `varifocal` `[n, c]`, `pairwise_iou` `[n, m]`). Reduced, every op gives one
 * number except `rank_sort`, whose loss is `[ranking, sorting]` ({@link OpReducedRank}).
 * test/types/op-map.test.ts holds it against the registry.
 */
export const OP_NONE_RANK = {
  l1: 'input',
  mse: 'input',
  smooth_l1: 'input',
  huber: 'input',
  balanced_l1: 'input',
  iou_loss: 1,
  pairwise_iou: 2,
  rotated_iou_loss: 1,
  pairwise_probiou: 2,
  sigmoid_focal: 'input',
  softmax_focal: 1,
  class_balanced_focal: 2,
  quality_focal: 1,
  distribution_focal: 1,
  varifocal: 2,
  bce_with_logits: 2,
  nll: 1,
  hinge: 'input',
  hinge_embedding: 'input',
  margin_ranking: 'input',
  exponential: 'input',
  ap_loss: 'input',
  rank_sort: 'input',
  cross_entropy: 1,
  kl_div: 1,
  dice: 1,
  tal_assign: 1,
  yolo_detection_loss: 0,
  nms: 1,
  nms_onnx: 1,
  nms_tfjs: 1,
} as const satisfies Record<keyof typeof OP_SIGNATURES, 'input' | 0 | 1 | 2>;

/** The rank of op `N`'s reduced loss: `rank_sort`'s `[ranking, sorting]` is 1, every other op's one number 0. */
export type OpReducedRank<N extends OpName> = N extends 'rank_sort' ? 1 : 0;

/** The name of an op detloss implements: `'iou_loss'`, `'cross_entropy'`, ... */
export type OpName = keyof Signatures;

/** A float32 tensor from the host: a `Float32Array`, or one with its shape. */
export type F32Tensor = Float32Array | { data: Float32Array; shape: number[] };
/** An int32 tensor from the host (labels): an `Int32Array`, or one with its shape. */
export type I32Tensor = Int32Array | { data: Int32Array; shape: number[] };
/** What the CPU reference also takes for a float input: float64 data (it widens to float64 anyway). */
export type F64Tensor = Float64Array | { data: Float64Array; shape: number[] };

type Flatten<T> = { [K in keyof T]: T[K] } & {};
type InputsOf<N extends OpName> = Signatures[N]['inputs'];
type RequiredInputs<N extends OpName> = { [K in keyof InputsOf<N>]: InputsOf<N>[K] extends `${string}?` ? never : K }[keyof InputsOf<N>];
type OptionalInputs<N extends OpName> = Exclude<keyof InputsOf<N>, RequiredInputs<N>>;
type TensorOf<D, F, I> = D extends 'i32' | 'i32?' ? I : F;

/**
 * The inputs of op `N`, by name: its own tensors plus the optional `weight` and `gradOutput`.
 * `F` is how a float tensor is passed, `I` an int32 one: {@link F32Tensor} and {@link I32Tensor}
 * for `run` (which also takes GPU tensors), {@link F64Tensor} too for `cpu.run`.
 */
export type OpInputs<N extends OpName, F = F32Tensor, I = I32Tensor> = Flatten<
  { [K in RequiredInputs<N>]: TensorOf<InputsOf<N>[K], F, I> } & { [K in OptionalInputs<N>]?: TensorOf<InputsOf<N>[K], F, I> } & {
    /** Multiplies the unreduced loss (same shape as the `'none'` output). */
    weight?: F;
    /** Upstream gradient: the `'none'` shape, or one number for `'mean'`/`'sum'`. */
    gradOutput?: F;
  }
>;

type ParamsOf<N extends OpName> = Signatures[N]['params'];
type ParamType<P> = P extends 'number' | 'number!' ? number : P extends 'limit' | 'limit!' ? number | bigint : P extends 'boolean' ? boolean : P extends 'pair' ? readonly [number, number] : P extends readonly (infer V)[] ? V : never;
type RequiredParams<N extends OpName> = { [K in keyof ParamsOf<N>]: ParamsOf<N>[K] extends 'number!' | 'limit!' ? K : never }[keyof ParamsOf<N>];

/**
 * The params of op `N`: each optional, with its default in the registry, except those marked
 * `'number!'` (`nms`'s `iouThreshold`), which a call must give; enums as their literal names.
 */
export type OpParams<N extends OpName> = Flatten<
  { -readonly [K in Exclude<keyof ParamsOf<N>, RequiredParams<N>>]?: ParamType<ParamsOf<N>[K]> } & { -readonly [K in RequiredParams<N>]: ParamType<ParamsOf<N>[K]> }
>;

/** The reductions op `N` accepts (`pairwise_iou`: `'none'` only). */
export type OpReduction<N extends OpName> = Extract<Signatures[N] extends { reductions: readonly (infer R)[] } ? R : Reduction, Reduction>;

/** The options of op `N`: the shared options ({@link SharedOptions}) and its own params. */
export type OpOptions<N extends OpName> = Flatten<Omit<SharedOptions, 'reduction'> & { reduction?: OpReduction<N> } & OpParams<N>>;

/**
 * Accepts the wide type `string` only, never a string literal: a name known only at run time
 * (`for (const op of opNames())`) is checked there, while a literal must be an {@link OpName}.
 */
export type DynamicOpName<S extends string> = S & (string extends S ? unknown : never);

/** The inputs `run` and `runResident` take for op `N`: host tensors (float32, int32) or GPU tensors `G`. */
export type DeviceInputs<N extends OpName, G> = OpInputs<N, F32Tensor | G, I32Tensor | G>;

/** The inputs `cpu.run` takes for op `N`: float tensors as float32 or float64, labels as int32. */
export type CpuInputsOf<N extends OpName> = OpInputs<N, F32Tensor | F64Tensor, I32Tensor>;
