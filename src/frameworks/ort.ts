/**
 * detloss for ONNX Runtime Web (`detloss/ort`): losses and gradients on `ort.Tensor`s that live on
 * ORT's WebGPU device (`location: 'gpu-buffer'`), with no download and no upload.
 *
 * ORT is not imported: a tensor is read through its public fields (`type`, `dims`, `location`,
 * `gpuBuffer`, `data`), and the loss and gradient tensors are made with the class of the first
 * input tensor, so they belong to the same ORT build as the caller's (`onnxruntime-web` or
 * `onnxruntime-web/webgpu`, which bundle separate copies of `Tensor` and `env`).
 *
 * Ownership: input tensors stay the caller's and are neither copied nor disposed. Each output
 * tensor owns its buffer: `dispose()` (or `getData(true)`) hands it back, and the buffers of one
 * call return to the detloss pool once every tensor of that call is disposed.
 *
 * @example
 * import * as ort from 'onnxruntime-web/webgpu';
 * import { detlossFor, ciou } from 'detloss/ort';
 * const session = await ort.InferenceSession.create(model, { executionProviders: ['webgpu'], preferredOutputLocation: 'gpu-buffer' });
 * await detlossFor(await ort.env.webgpu.device);     // once, after the first WebGPU session
 * const { boxes } = await session.run(feeds);
 * const { loss, grad } = await ciou(boxes, target);  // ort.Tensors on the GPU
 */
import { DetlossContext } from '../api';
import { DetlossError } from '../errors';
import type { OpName, OpParams } from '../ops/op-types';
import { getOp } from '../ops/registry';
import type { TensorSpec } from '../ops/types';
import type { SharedOptions } from '../ops/validate';
import { contextOn, isDestroyed, readOutput } from '../runtime/context';
import type { DetlossOptions, GpuTensor, ResidentResult } from '../runtime/public';

/** The part of an `ort.Tensor` detloss reads. `gpuBuffer` and `data` throw where the data is not. */
export interface OrtTensor {
  readonly type: string;
  readonly dims: readonly number[];
  readonly location: string;
  readonly gpuBuffer: GPUBuffer;
  readonly data: unknown;
  dispose(): void;
}

/** What `new ort.Tensor({ location: 'gpu-buffer', ... })` takes. */
interface GpuBufferTensorInit {
  location: 'gpu-buffer';
  type: 'float32';
  dims: readonly number[];
  gpuBuffer: GPUBuffer;
  download(): Promise<Float32Array>;
  dispose(): void;
}
type OrtTensorClass<T> = new (init: GpuBufferTensorInit) => T;

/** An input: an `ort.Tensor` on the GPU (`'gpu-buffer'`) or on the CPU (`'cpu'`), or a typed array. */
export type OrtInput<T extends OrtTensor = OrtTensor> = T | Float32Array | Int32Array;

/**
 * Options of every loss: the op's params and the shared options (`reduction`, `avgFactor`,
 * `grad`), plus `weight` and `gradOutput` as tensors or arrays, and `device` to pick the context
 * made by {@link detlossFor} for that device (default: the last one made).
 */
export type OrtOptions<N extends OpName = OpName> = OpParams<N> &
  Omit<SharedOptions, 'check'> & {
    weight?: OrtInput;
    gradOutput?: OrtInput;
    device?: GPUDevice;
  };

/** A loss and the gradient of its tensor input (`undefined` with `grad: false`), as `ort.Tensor`s on the GPU. */
export interface OrtLoss<T> {
  /** A scalar tensor (`dims` `[]`) for `'mean'`/`'sum'`, the unreduced shape for `'none'`. */
  loss: T;
  grad: T | undefined;
}

/** What {@link OrtDetloss.runLoss} returns: the loss and the gradient of each input that has one. */
export interface OrtRunResult<T> {
  loss: T;
  grad: Record<string, T>;
}

const F32 = 'float32';
const contexts = new WeakMap<GPUDevice, OrtDetloss>();
/** The context the free functions use: the last one made by {@link detlossFor}. */
let current: OrtDetloss | undefined;

const isOrtTensor = (v: unknown): v is OrtTensor =>
  typeof v === 'object' && v !== null && 'location' in v && 'dims' in v && 'type' in v && !ArrayBuffer.isView(v);

/** Element count of `dims`; bad dims are a `shape_mismatch`. */
function count(name: string, dims: readonly number[]): number {
  if (!Array.isArray(dims) || dims.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new DetlossError('shape_mismatch', `${name}: dims must be non-negative integers, got [${String(dims)}]`, name);
  }
  return dims.reduce((a, b) => a * b, 1);
}

/**
 * The shape detloss is given for an input of spec rank `rank`: rank 1 flattens, rank k keeps the
 * last k - 1 dims and folds the leading ones into the first (a [B, N, 4] box tensor is [B*N, 4]).
 */
function fold(dims: readonly number[], rank: number): number[] {
  if (rank <= 1 || dims.length <= rank) return rank <= 1 ? [dims.reduce((a, b) => a * b, 1)] : [...dims];
  const keep = dims.slice(dims.length - (rank - 1));
  const lead = dims.slice(0, dims.length - (rank - 1)).reduce((a, b) => a * b, 1);
  return [lead, ...keep];
}

/** Converts one input; `spec` is its catalogue entry (absent for `weight` and `gradOutput`). */
function toInput(op: string, name: string, v: OrtInput, spec: TensorSpec | undefined): { input: GpuTensor | Float32Array | Int32Array | { data: Float32Array | Int32Array; shape: number[] }; dims?: readonly number[] } {
  const want = spec?.dtype ?? 'f32';
  if (v instanceof Float32Array || v instanceof Int32Array) return { input: v };
  if (!isOrtTensor(v)) throw new DetlossError('wrong_dtype', `${op}: ${name} must be an ort.Tensor, a Float32Array or an Int32Array`, name);
  const type = want === 'i32' ? 'int32' : F32;
  if (v.type !== type) {
    const hint = v.type === 'int64' ? ' (cast int64 labels to int32 in the model or on the host)' : '';
    throw new DetlossError('wrong_dtype', `${op}: ${name} must be a ${type} tensor, got ${v.type}${hint}`, name);
  }
  const n = count(name, v.dims);
  const shape = spec ? fold(v.dims, spec.shape.length) : [n];
  if (v.location === 'gpu-buffer') {
    return { input: { buffer: v.gpuBuffer, shape, dtype: want === 'i32' ? 'i32' : 'f32' }, dims: v.dims };
  }
  if (v.location === 'cpu' || v.location === 'cpu-pinned') {
    const data = v.data;
    if (!(data instanceof Float32Array) && !(data instanceof Int32Array)) throw new DetlossError('wrong_dtype', `${op}: ${name} holds no typed array`, name);
    return { input: { data, shape }, dims: v.dims };
  }
  throw new DetlossError('invalid_value', `${op}: ${name} is on '${v.location}'; detloss takes 'gpu-buffer' and 'cpu' tensors`, name);
}

/**
 * Makes the output tensors of one resident call, each owning its buffer; the call's buffers go
 * back to the pool when the last of them is disposed.
 */
function wrapOutputs<T>(dl: DetlossContext, Tensor: OrtTensorClass<T>, r: ResidentResult, outs: { buffer: GPUBuffer; bytes: number; dims: number[] }[]): T[] {
  let live = outs.length;
  const done = () => {
    if (--live === 0) r.release();
  };
  return outs.map(({ buffer, bytes, dims }) => {
    let disposed = false;
    return new Tensor({
      location: 'gpu-buffer',
      type: F32,
      dims,
      gpuBuffer: buffer,
      download: () => readOutput(dl, buffer, bytes, 'detloss/ort'),
      dispose: () => {
        if (disposed) return;
        disposed = true;
        done();
      },
    });
  });
}

/**
 * The `'none'` output's dims: where detloss folded the grad input's leading dims into its first
 * axis (see {@link fold}), they are unfolded again ([B*N] back to [B, N] for boxes [B, N, 4]).
 */
function lossDims(shape: number[], gradDims: readonly number[] | undefined, rank: number): number[] {
  if (shape.length === 0 || !gradDims || gradDims.length < rank) return shape;
  const lead = gradDims.slice(0, gradDims.length - Math.max(0, rank - 1));
  return shape[0] === lead.reduce((a, b) => a * b, 1) ? [...lead, ...shape.slice(1)] : shape;
}

/**
 * detloss on one GPU device for ORT tensors: a loss per op of the catalogue, each returning
 * `ort.Tensor`s on the GPU. Make it with {@link detlossFor}.
 */
export class OrtDetloss {
  constructor(
    /** The detloss context underneath (its `stats()`, `warmup()`, `trim()`). */
    readonly context: DetlossContext,
  ) {}

  /** The device both ORT and detloss run on. */
  get device(): GPUDevice {
    return this.context.device;
  }

  /**
   * Runs any op of the catalogue on ORT tensors; returns the loss and the gradient of each
   * differentiable input, as tensors of the first input's class. Dispose them when done.
   *
   * @example const { loss, grad } = await dl.runLoss('cross_entropy', { logits, labels }, { labelSmoothing: 0.1 });
   */
  async runLoss<T extends OrtTensor>(op: OpName, inputs: Record<string, OrtInput<T> | undefined>, options: Omit<OrtOptions, 'device'> = {}): Promise<OrtRunResult<T>> {
    const desc = getOp(op);
    checkArgs(desc.name, inputs, options);
    const { weight, gradOutput, ...params } = options as OrtOptions & Record<string, unknown>;
    // No prototype: an input named "__proto__" stays an input (and is refused as unknown).
    const given: Record<string, unknown> = Object.create(null);
    const dims: Record<string, readonly number[] | undefined> = {};
    let Tensor: OrtTensorClass<T> | undefined;
    for (const [name, v] of [...Object.entries(inputs), ['weight', weight], ['gradOutput', gradOutput]] as [string, OrtInput<T> | undefined][]) {
      if (v === undefined || v === null) continue;
      const spec = Object.hasOwn(desc.inputs, name) ? desc.inputs[name] : undefined;
      const { input, dims: d } = toInput(op, name, v, spec);
      given[name] = input;
      dims[name] = d;
      if (!Tensor && isOrtTensor(v)) Tensor = v.constructor as OrtTensorClass<T>;
    }
    if (!Tensor) throw new DetlossError('missing_input', `${op}: at least one input must be an ort.Tensor (the outputs are made with its class)`);
    const r = await this.context.runResident(op as string, given as Record<string, GpuTensor>, params as SharedOptions & Record<string, unknown>);
    // The call is awaited anyway: wait for its value checks too (labels and targets on the GPU,
    // check: true), so a refusal comes from this call, with no tensors, as run() gives it. Calls
    // with nothing to check have nothing to wait for.
    try {
      await this.context.flush();
    } catch (e) {
      r.release();
      throw e;
    }
    const gradName = Object.keys(desc.inputs).find((k) => desc.inputs[k].grad);
    const gradNames = Object.keys(r.grad);
    const rank = gradName ? desc.inputs[gradName].shape.length : 1;
    const outs = [
      { buffer: r.loss, bytes: r.lossBytes, dims: lossDims(r.shape, gradName ? dims[gradName] : undefined, rank) },
      ...gradNames.map((k) => ({ buffer: r.grad[k], bytes: r.gradBytes[k], dims: [...(dims[k] ?? [r.gradBytes[k] / 4])] })),
    ];
    const [loss, ...grads] = wrapOutputs(this.context, Tensor, r, outs);
    return { loss, grad: Object.fromEntries(gradNames.map((k, i) => [k, grads[i]])) };
  }

  /** Runs `op` and returns the loss with the gradient of `gradInput`. */
  private async one<T extends OrtTensor>(op: OpName, gradInput: string, inputs: Record<string, OrtInput<T> | undefined>, options: Omit<OrtOptions, 'device'>): Promise<OrtLoss<T>> {
    const r = await this.runLoss(op, inputs, options);
    return { loss: r.loss, grad: r.grad[gradInput] };
  }

  /** L1 loss (`F.l1_loss`). */
  l1<T extends OrtTensor>(pred: T, target: OrtInput<T>, options: OrtOptions<'l1'> = {}) {
    return this.one('l1', 'pred', { pred, target }, options);
  }
  /** Squared error (`F.mse_loss`). */
  mse<T extends OrtTensor>(pred: T, target: OrtInput<T>, options: OrtOptions<'mse'> = {}) {
    return this.one('mse', 'pred', { pred, target }, options);
  }
  /** Smooth L1 (`F.smooth_l1_loss`, `beta`). */
  smoothL1<T extends OrtTensor>(pred: T, target: OrtInput<T>, options: OrtOptions<'smooth_l1'> = {}) {
    return this.one('smooth_l1', 'pred', { pred, target }, options);
  }
  /** Huber (`F.huber_loss`, `delta`). */
  huber<T extends OrtTensor>(pred: T, target: OrtInput<T>, options: OrtOptions<'huber'> = {}) {
    return this.one('huber', 'pred', { pred, target }, options);
  }
  /** Balanced L1 (Libra R-CNN). */
  balancedL1<T extends OrtTensor>(pred: T, target: OrtInput<T>, options: OrtOptions<'balanced_l1'> = {}) {
    return this.one('balanced_l1', 'pred', { pred, target }, options);
  }
  /** Box IoU loss of any `variant` on [..., 4] boxes. */
  iouLoss<T extends OrtTensor>(pred: T, target: OrtInput<T>, options: OrtOptions<'iou_loss'> = {}) {
    return this.one('iou_loss', 'pred', { pred, target }, options);
  }
  /** Sigmoid focal loss (RetinaNet). */
  sigmoidFocal<T extends OrtTensor>(logits: T, targets: OrtInput<T>, options: OrtOptions<'sigmoid_focal'> = {}) {
    return this.one('sigmoid_focal', 'logits', { logits, targets }, options);
  }
  /** Quality focal loss (GFL): `labels` int32 (background = number of classes). */
  qualityFocal<T extends OrtTensor>(logits: T, labels: OrtInput<T>, scores: OrtInput<T>, options: OrtOptions<'quality_focal'> = {}) {
    return this.one('quality_focal', 'logits', { logits, labels, scores }, options);
  }
  /** Distribution focal loss (GFL). */
  distributionFocal<T extends OrtTensor>(logits: T, targets: OrtInput<T>, options: OrtOptions<'distribution_focal'> = {}) {
    return this.one('distribution_focal', 'logits', { logits, targets }, options);
  }
  /** Varifocal loss (VFNet). */
  varifocal<T extends OrtTensor>(logits: T, targets: OrtInput<T>, options: OrtOptions<'varifocal'> = {}) {
    return this.one('varifocal', 'logits', { logits, targets }, options);
  }
  /** Binary cross-entropy on logits, with an optional `posWeight` per class. */
  bceWithLogits<T extends OrtTensor>(logits: T, targets: OrtInput<T>, options: OrtOptions<'bce_with_logits'> & { posWeight?: OrtInput<T> } = {}) {
    const { posWeight, ...rest } = options;
    return this.one('bce_with_logits', 'logits', { logits, targets, posWeight }, rest);
  }
  /** Cross-entropy over classes: `labels` int32, optional `classWeight`. */
  crossEntropy<T extends OrtTensor>(logits: T, labels: OrtInput<T>, options: OrtOptions<'cross_entropy'> & { classWeight?: OrtInput<T> } = {}) {
    const { classWeight, ...rest } = options;
    return this.one('cross_entropy', 'logits', { logits, labels, classWeight }, rest);
  }
  /** KL divergence for distillation (gradient of the student). */
  klDiv<T extends OrtTensor>(student: T, teacher: OrtInput<T>, options: OrtOptions<'kl_div'> = {}) {
    return this.one('kl_div', 'student', { student, teacher }, options);
  }
  /** Dice loss on [n, p] logits. */
  dice<T extends OrtTensor>(logits: T, targets: OrtInput<T>, options: OrtOptions<'dice'> = {}) {
    return this.one('dice', 'logits', { logits, targets }, options);
  }
  /**
   * Waits for the value checks of every call made so far: labels and targets on the GPU are
   * checked there without waiting, and a bad one (its loss elements NaN) is thrown as
   * `invalid_value` by the next call, or here.
   */
  flush(): Promise<void> {
    return this.context.flush();
  }

  /** Frees detloss's buffers on this device (ORT's device is left alone) and forgets the context. */
  destroy(): void {
    this.context.destroy();
    if (current === this) current = undefined;
    if (contexts.get(this.context.device) === this) contexts.delete(this.context.device);
  }
}

/**
 * The detloss context for ORT's WebGPU device, made once per device and reused; the free
 * functions of this module use the last one made. Read the device after the first WebGPU session
 * exists: `await ort.env.webgpu.device` (undefined before it; a `GPUDevice` after, in both
 * `onnxruntime-web` and `onnxruntime-web/webgpu`). With `onnxruntime-web/webgpu` a device can
 * also go the other way, into ORT: `executionProviders: [{ name: 'webgpu', device }]`.
 *
 * @example const dl = await detlossFor(await ort.env.webgpu.device);
 */
export function detlossFor(device: GPUDevice, options: Omit<DetlossOptions, 'device' | 'gpu'> = {}): Promise<OrtDetloss> {
  try {
    return Promise.resolve(contextFor(device, options));
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * The context of a device, made at once (a device the caller has needs no await): so the free
 * functions can read their inputs when they are called, as the context's own methods do. A lost
 * device keeps its context, whose calls then say `device_lost`.
 */
function contextFor(device: GPUDevice, options: Omit<DetlossOptions, 'device' | 'gpu'> = {}): OrtDetloss {
  if (typeof device !== 'object' || device === null || typeof (device as { createBuffer?: unknown }).createBuffer !== 'function') {
    throw new DetlossError('invalid_param', `detlossFor: device must be a GPUDevice (await ort.env.webgpu.device after creating a WebGPU session), got ${String(device)}`, 'device');
  }
  let dl = contexts.get(device);
  if (!dl || isDestroyed(dl.context)) {
    dl = new OrtDetloss(contextOn(DetlossContext, device, options));
    contexts.set(device, dl);
  }
  current = dl;
  return dl;
}

/** The context a free function runs on: `options.device`'s, or the last made by {@link detlossFor}. */
function contextOf(device: GPUDevice | undefined): OrtDetloss {
  if (device) return contextFor(device);
  if (!current) {
    throw new DetlossError('no_webgpu', 'detloss/ort: no device yet; call detlossFor(await ort.env.webgpu.device) after creating a WebGPU session, or pass { device }', 'device');
  }
  return current;
}

/** {@link OrtDetloss.flush} of `device`'s context, or of the last one made. */
export async function flush(device?: GPUDevice): Promise<void> {
  return contextOf(device).flush();
}

type Opts<N extends OpName> = OrtOptions<N>;
const strip = <O extends { device?: GPUDevice }>(o: O) => {
  checkArgs('detloss/ort', {}, o);
  const { device, ...rest } = o;
  return { device, rest };
};

/** Inputs and options must be objects: anything else is refused by name, never a TypeError. */
function checkArgs(op: string, inputs: unknown, options: unknown): void {
  if (typeof inputs !== 'object' || inputs === null) throw new DetlossError('missing_input', `${op}: inputs must be an object`, 'inputs');
  if (typeof options !== 'object' || options === null) throw new DetlossError('invalid_param', `${op}: options must be an object`, 'options');
}

/** Any op of the catalogue on ORT tensors; see {@link OrtDetloss.runLoss}. */
export async function runLoss<T extends OrtTensor>(op: OpName, inputs: Record<string, OrtInput<T> | undefined>, options: OrtOptions = {}): Promise<OrtRunResult<T>> {
  const { device, rest } = strip(options);
  return contextOf(device).runLoss(op, inputs, rest);
}

const iouVariant =
  (variant: 'iou' | 'giou' | 'diou' | 'ciou' | 'eiou' | 'siou' | 'mpdiou' | 'shape' | 'wiou') =>
  async <T extends OrtTensor>(pred: T, target: OrtInput<T>, options: Omit<Opts<'iou_loss'>, 'variant'> = {}): Promise<OrtLoss<T>> => {
    const { device, rest } = strip(options);
    return contextOf(device).iouLoss(pred, target, { ...rest, variant });
  };

/** IoU loss (`1 - iou`, or `mode` 'square'/'log') on [..., 4] boxes. @example const { loss, grad } = await iou(pred, target) */
export const iou = iouVariant('iou');
/** GIoU loss on [..., 4] boxes. */
export const giou = iouVariant('giou');
/** DIoU loss on [..., 4] boxes. */
export const diou = iouVariant('diou');
/** CIoU loss on [..., 4] boxes. @example const { loss, grad } = await ciou(boxes, target, { format: 'cxcywh' }) */
export const ciou = iouVariant('ciou');
/** EIoU loss on [..., 4] boxes. */
export const eiou = iouVariant('eiou');
/** SIoU loss on [..., 4] boxes. */
export const siou = iouVariant('siou');
/** MPDIoU loss on [..., 4] boxes; `imageSize: [W, H]` is required. */
export const mpdiou = iouVariant('mpdiou');
/** Shape-IoU loss on [..., 4] boxes (`scale`). */
export const shapeIou = iouVariant('shape');
/** Wise-IoU loss on [..., 4] boxes (`wiouVersion`, `iouMean`, `wiouAlpha`, `wiouDelta`). */
export const wiou = iouVariant('wiou');

/** L1 loss. */
export const l1 = async <T extends OrtTensor>(pred: T, target: OrtInput<T>, options: Opts<'l1'> = {}) => contextOf(options.device).l1(pred, target, strip(options).rest);
/** Squared error. */
export const mse = async <T extends OrtTensor>(pred: T, target: OrtInput<T>, options: Opts<'mse'> = {}) => contextOf(options.device).mse(pred, target, strip(options).rest);
/** Smooth L1 (`beta`). @example const { loss, grad } = await smoothL1(deltas, target, { beta: 0.11 }) */
export const smoothL1 = async <T extends OrtTensor>(pred: T, target: OrtInput<T>, options: Opts<'smooth_l1'> = {}) =>
  contextOf(options.device).smoothL1(pred, target, strip(options).rest);
/** Huber (`delta`). */
export const huber = async <T extends OrtTensor>(pred: T, target: OrtInput<T>, options: Opts<'huber'> = {}) => contextOf(options.device).huber(pred, target, strip(options).rest);
/** Balanced L1. */
export const balancedL1 = async <T extends OrtTensor>(pred: T, target: OrtInput<T>, options: Opts<'balanced_l1'> = {}) =>
  contextOf(options.device).balancedL1(pred, target, strip(options).rest);
/** Box IoU loss with `variant` chosen in the options. */
export const iouLoss = async <T extends OrtTensor>(pred: T, target: OrtInput<T>, options: Opts<'iou_loss'> = {}) =>
  contextOf(options.device).iouLoss(pred, target, strip(options).rest);
/** Sigmoid focal loss. */
export const sigmoidFocal = async <T extends OrtTensor>(logits: T, targets: OrtInput<T>, options: Opts<'sigmoid_focal'> = {}) =>
  contextOf(options.device).sigmoidFocal(logits, targets, strip(options).rest);
/** Quality focal loss: `labels` int32. */
export const qualityFocal = async <T extends OrtTensor>(logits: T, labels: OrtInput<T>, scores: OrtInput<T>, options: Opts<'quality_focal'> = {}) =>
  contextOf(options.device).qualityFocal(logits, labels, scores, strip(options).rest);
/** Distribution focal loss. */
export const distributionFocal = async <T extends OrtTensor>(logits: T, targets: OrtInput<T>, options: Opts<'distribution_focal'> = {}) =>
  contextOf(options.device).distributionFocal(logits, targets, strip(options).rest);
/** Varifocal loss. */
export const varifocal = async <T extends OrtTensor>(logits: T, targets: OrtInput<T>, options: Opts<'varifocal'> = {}) =>
  contextOf(options.device).varifocal(logits, targets, strip(options).rest);
/** Binary cross-entropy on logits. */
export const bceWithLogits = async <T extends OrtTensor>(logits: T, targets: OrtInput<T>, options: Opts<'bce_with_logits'> & { posWeight?: OrtInput<T> } = {}) =>
  contextOf(options.device).bceWithLogits(logits, targets, strip(options).rest);
/** Cross-entropy: `labels` int32. */
export const crossEntropy = async <T extends OrtTensor>(logits: T, labels: OrtInput<T>, options: Opts<'cross_entropy'> & { classWeight?: OrtInput<T> } = {}) =>
  contextOf(options.device).crossEntropy(logits, labels, strip(options).rest);
/** KL divergence (gradient of the student). */
export const klDiv = async <T extends OrtTensor>(student: T, teacher: OrtInput<T>, options: Opts<'kl_div'> = {}) =>
  contextOf(options.device).klDiv(student, teacher, strip(options).rest);
/** Dice loss. */
export const dice = async <T extends OrtTensor>(logits: T, targets: OrtInput<T>, options: Opts<'dice'> = {}) =>
  contextOf(options.device).dice(logits, targets, strip(options).rest);
/** The [n, m] IoU matrix of boxes `a` [n, 4] and `b` [m, 4] (no gradient); `loss` holds it. */
export const pairwiseIou = async <T extends OrtTensor>(a: T, b: OrtInput<T>, options: Omit<Opts<'pairwise_iou'>, 'reduction'> = {}) => {
  const { device, rest } = strip(options);
  return (await contextOf(device).runLoss('pairwise_iou', { a, b }, { ...rest, reduction: 'none', grad: false })).loss;
};
