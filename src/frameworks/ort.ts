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
import { optionsArg, positionalInputs, splitOptions, wrappers, type HasGrads, type HasOutputs, type IsMatrix, type WrapperOp, type OptionalInputs, type SelfReduced, type Wrapper, type WrapperArgs, type WrapperName, type WrapperTable, type Flat, type WrapperParams } from '../catalogue';
import { DetlossError } from '../errors';
import type { OpName, OpParams } from '../ops/op-types';
import { getOp } from '../ops/registry';
import { yoloNmsOp, type YoloDetections, type YoloNmsOptions } from '../ops/yolo-nms';
import type { OpDescriptor, TensorSpec } from '../ops/types';
import { describeValue, type SharedOptions } from '../ops/validate';
import { checkContextOptions, contextOn, isDestroyed, readOutput } from '../runtime/context';
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
  type: 'float32' | 'int32' | 'int64';
  dims: readonly number[];
  gpuBuffer: GPUBuffer;
  download(): Promise<Float32Array | Int32Array | BigInt64Array>;
  dispose(): void;
}
/** `ort.Tensor`'s two constructors that detloss uses: on the GPU, and a CPU tensor from a typed array. */
type OrtTensorClass<T> = {
  new (init: GpuBufferTensorInit): T;
  new (type: 'float32', data: Float32Array, dims: readonly number[]): T;
};

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
  /** The named outputs of an op that has them (`tal_assign`, `yolo_detection_loss`), int32 or float32. */
  outputs?: Record<string, T>;
}

/**
 * What `talAssign` returns: its five outputs (labels, foreground and gtIndex int32). `yoloLoss`:
 * the loss, `components` and the gradients of predDist and predScores. Dispose each when done.
 */
export type OrtOutputsOf<N, T> = N extends 'tal_assign'
  ? { labels: T; boxes: T; targetScores: T; foreground: T; gtIndex: T }
  : N extends 'yolo_detection_loss'
    ? { loss: T; components: T; grad: { predDist: T; predScores: T } }
    : OrtRunResult<T>;

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
function wrapOutputs<T>(dl: DetlossContext, Tensor: OrtTensorClass<T>, r: ResidentResult, outs: { buffer: GPUBuffer; bytes: number; dims: number[]; type?: 'int32' }[]): T[] {
  let live = outs.length;
  const done = () => {
    if (--live === 0) r.release();
  };
  return outs.map(({ buffer, bytes, dims, type }) => {
    let disposed = false;
    return new Tensor({
      location: 'gpu-buffer',
      type: type ?? F32,
      dims,
      gpuBuffer: buffer,
      // An int32 output's words, read as they are.
      download: () => readOutput(dl, buffer, bytes, 'detloss/ort').then((f) => (type === 'int32' ? new Int32Array(f.buffer, f.byteOffset, f.length) : f)),
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

// ---- ONNX NonMaxSuppression (the nonMaxSuppression drop-in) ----

/**
 * One of `NonMaxSuppression`'s optional scalar inputs, as ONNX gives it: a one-element `ort.Tensor`
 * (dims `[]` or `[1]`; int64 for `max_output_boxes_per_class`, float32 for the thresholds), on the
 * CPU or the GPU, or a plain number (a bigint for the limit too). `undefined` or `null`: the input
 * is absent, and ONNX's default holds.
 */
export type OnnxScalar = OrtTensor | number | bigint | null | undefined;

/** The options of `nonMaxSuppression`. */
export interface OrtNmsOptions {
  /** ONNX's `center_point_box` attribute: 0 (default) boxes `[y1, x1, y2, x2]`, 1 boxes `[xc, yc, w, h]`. */
  centerPointBox?: 0 | 1;
  /** The output's type: `'int64'` (default), as ONNX's `selected_indices`, or `'int32'`. */
  outputType?: 'int64' | 'int32';
}

/** The scalar inputs in ONNX's order, with the type ONNX gives each. */
const NMS_SCALARS = [
  ['maxOutputBoxesPerClass', 'int64'],
  ['iouThreshold', 'float32'],
  ['scoreThreshold', 'float32'],
] as const;

/** GPUBufferUsage, without the global (which only a WebGPU environment defines). */
const USAGE = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, STORAGE: 0x80 } as const;

/**
 * Checks one scalar input: its value (undefined where absent), or, for a tensor on the GPU, a
 * function that submits the read of its bytes (called once every input has been checked).
 */
function onnxScalar(name: string, type: 'int64' | 'float32', v: unknown): number | bigint | undefined | ((dl: DetlossContext) => Promise<number | bigint>) {
  const fn = 'nonMaxSuppression';
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') {
    if (type === 'int64') return v;
    throw new DetlossError('invalid_param', `${fn}: ${name} must be a number or a float32 ort.Tensor, got a bigint`, name);
  }
  if (!isOrtTensor(v)) throw new DetlossError('invalid_param', `${fn}: ${name} must be a one-element ${type} ort.Tensor, a number${type === 'int64' ? ' or a bigint' : ''}, or absent; got ${describeValue(v)}`, name);
  if (v.type !== type) throw new DetlossError('wrong_dtype', `${fn}: ${name} must be a ${type} tensor, as ONNX gives it; got ${v.type}`, name);
  if (count(name, v.dims) !== 1) throw new DetlossError('shape_mismatch', `${fn}: ${name} must hold one element (dims [] or [1]), got [${v.dims.join(', ')}]`, name);
  if (v.location === 'cpu' || v.location === 'cpu-pinned') {
    const data = v.data;
    if (type === 'int64' && data instanceof BigInt64Array) return data[0];
    if (type === 'float32' && data instanceof Float32Array) return data[0];
    throw new DetlossError('wrong_dtype', `${fn}: ${name} holds no ${type === 'int64' ? 'BigInt64Array' : 'Float32Array'}`, name);
  }
  if (v.location === 'gpu-buffer') {
    const bytes = type === 'int64' ? 8 : 4;
    const buffer = v.gpuBuffer;
    if (!(buffer?.size >= bytes)) throw new DetlossError('shape_mismatch', `${fn}: ${name}'s buffer holds ${buffer?.size ?? 0} bytes, fewer than one ${type}`, name);
    return (dl) => readOutput(dl, buffer, bytes, `${fn}.${name}`).then((f) => (type === 'int64' ? new BigInt64Array(f.buffer, f.byteOffset, 1)[0] : f[0]));
  }
  throw new DetlossError('invalid_value', `${fn}: ${name} is on '${v.location}'; detloss takes 'gpu-buffer' and 'cpu' tensors`, name);
}

/**
 * A copy of a boxes or scores tensor taken now, for a call that reads a scalar from the GPU
 * before it can run: a GPU copy (its buffer in `made`, destroyed after the call), or a copy of the
 * data of a CPU tensor. Anything that is not a float32 tensor of well-formed dims whose buffer holds
 * them is left as it is, for the call to refuse by name.
 */
function snapshot(dl: DetlossContext, v: unknown, made: GPUBuffer[]): unknown {
  if (!isOrtTensor(v) || v.type !== F32 || !Array.isArray(v.dims) || v.dims.some((d) => !Number.isSafeInteger(d) || d < 0)) return v;
  const Tensor = v.constructor as OrtTensorClass<OrtTensor>;
  const bytes = 4 * v.dims.reduce((a, b) => a * b, 1);
  if (v.location === 'cpu' || v.location === 'cpu-pinned') return v.data instanceof Float32Array ? new Tensor(F32, v.data.slice(), v.dims) : v;
  if (v.location !== 'gpu-buffer' || !(v.gpuBuffer?.size >= bytes)) return v;
  const device = dl.device;
  const copy = device.createBuffer({ size: Math.max(16, Math.ceil(bytes / 16) * 16), usage: USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST, label: 'detloss:nonMaxSuppression:input' });
  made.push(copy);
  if (bytes > 0) {
    const enc = device.createCommandEncoder();
    enc.copyBufferToBuffer(v.gpuBuffer, 0, copy, 0, bytes);
    device.queue.submit([enc.finish()]);
  }
  return new Tensor({ location: 'gpu-buffer', type: F32, dims: v.dims, gpuBuffer: copy, download: () => readOutput(dl, copy, bytes, 'nonMaxSuppression'), dispose: () => {} });
}

/** Widens i32 to i64 (two's complement: the high word is the sign): one element per lane, strided. */
const WIDEN_WGSL = `
@group(0) @binding(0) var<storage, read> src: array<i32>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec2<i32>>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  for (var i = gid.x; i < arrayLength(&dst); i += groups.x * 64u) {
    let v = src[i];
    dst[i] = vec2<i32>(v, select(0, -1, v < 0));
  }
}`;
const widenPipelines = new WeakMap<GPUDevice, GPUComputePipeline>();

/**
 * The int64 copy of an int32 tensor on the GPU (8 bytes an element, as ORT's WebGPU EP keeps
 * int64), in a buffer of its own that the returned tensor owns. A GPU error of this pass is thrown
 * here, and no tensor comes back.
 */
async function widenToInt64<T>(dl: DetlossContext, Tensor: OrtTensorClass<T>, from: OrtTensor): Promise<T> {
  const device = dl.device;
  const dims = [...from.dims];
  const len = dims.reduce((a, b) => a * b, 1);
  let buffer: GPUBuffer | undefined;
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  try {
    // A multiple of 16 bytes, as ORT's WebGPU EP sizes its buffers and copies them whole.
    buffer = device.createBuffer({ size: Math.max(16, Math.ceil((8 * len) / 16) * 16), usage: USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST, label: 'detloss:nonMaxSuppression:int64' });
    if (len > 0) {
      let pipeline = widenPipelines.get(device);
      if (!pipeline) {
        pipeline = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code: WIDEN_WGSL, label: 'detloss:widen-i64' }), entryPoint: 'main' }, label: 'detloss:widen-i64' });
        widenPipelines.set(device, pipeline);
      }
      const bind = device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: from.gpuBuffer, size: 4 * len } },
          { binding: 1, resource: { buffer, size: 8 * len } },
        ],
      });
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bind);
      pass.dispatchWorkgroups(Math.min(Math.ceil(len / 64), 65535));
      pass.end();
      device.queue.submit([enc.finish()]);
    }
  } finally {
    const validation = await device.popErrorScope();
    const oom = await device.popErrorScope();
    if (validation || oom) {
      buffer?.destroy();
      // A pipeline that failed is not kept: the next call compiles it again.
      widenPipelines.delete(device);
      throw oom
        ? new DetlossError('gpu_out_of_memory', `nonMaxSuppression: no memory for the int64 output (${8 * len} bytes): ${oom.message}`)
        : new DetlossError('gpu_validation', `nonMaxSuppression: widening the output to int64 failed: ${validation!.message}`);
    }
  }
  const out = buffer!;
  return new Tensor({
    location: 'gpu-buffer',
    type: 'int64',
    dims,
    gpuBuffer: out,
    download: () => readOutput(dl, out, 8 * len, 'nonMaxSuppression').then((f) => new BigInt64Array(f.buffer, f.byteOffset, len)),
    dispose: () => out.destroy(),
  });
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
    return this.runWith(getOp(op), inputs, options);
  }

  /**
   * The YOLO post-process of a model's output tensor `[b, 4 + C, A]` (an ultralytics export
   * without NMS: `[1, 84, 8400]`), a gpu-buffer tensor left on the GPU (or a cpu tensor): decode,
   * best class (or every class above the threshold with `multiLabel`), class-aware NMS, at most
   * `maxDet` per image, as ultralytics' `non_max_suppression`; the detections read back once.
   *
   * @example const { boxes, scores, classes, count } = await dl.yoloNms(results.output0, { confThreshold: 0.25 });
   */
  async yoloNms(output: OrtInput, options: YoloNmsOptions = {}): Promise<YoloDetections> {
    checkArgs('yolo_nms', {}, options);
    const { input } = toInput('yolo_nms', 'output', output, yoloNmsOp.inputs.output);
    return this.context.yoloNms(input, options);
  }

  /** {@link runLoss} on a descriptor, with the params a wrapper fixes (`where`: the wrapper's name, for messages). */
  private async runWith<T extends OrtTensor>(desc: OpDescriptor, inputs: Record<string, OrtInput<T> | undefined>, options: unknown, fixed?: Readonly<Record<string, unknown>>, where?: string): Promise<OrtRunResult<T>> {
    const op = desc.name;
    checkArgs(op, inputs, {});
    const { tensors, params } = splitOptions(desc, options, fixed, where);
    // No prototype: an input named "__proto__" stays an input (and is refused as unknown).
    const given: Record<string, unknown> = Object.create(null);
    const dims: Record<string, readonly number[] | undefined> = {};
    let Tensor: OrtTensorClass<T> | undefined;
    for (const [name, v] of [...Object.entries(inputs), ...Object.entries(tensors)] as [string, OrtInput<T> | undefined][]) {
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
    // Only the 'none' loss has the rows' shape; a reduced one keeps its own (a scalar, rank_sort's [2]).
    const rows = (params.reduction ?? (desc.reductions?.length === 1 ? desc.reductions[0] : 'mean')) === 'none';
    const outs = [
      { buffer: r.loss, bytes: r.lossBytes, dims: rows ? lossDims(r.shape, gradName ? dims[gradName] : undefined, rank) : r.shape },
      ...gradNames.map((k) => ({ buffer: r.grad[k], bytes: r.gradBytes[k], dims: [...(dims[k] ?? [r.gradBytes[k] / 4])] })),
    ];
    // Named outputs (tal_assign's assignment, yolo_detection_loss's components), each in its shape.
    // One of data-dependent length (NMS's indices) has the rows its count says: the count's 4
    // bytes are read back (an ort.Tensor needs its dims), the rows stay on the GPU.
    const named = Object.keys(r.outputs ?? {});
    const shapes = structuredClone(r.outputShapes ?? {});
    const bytes = { ...r.outputBytes };
    const counted = Object.entries(desc.outputs ?? {}).filter(([, spec]) => spec.count);
    if (counted.length) {
      const countOf = new Map<string, number>();
      try {
        for (const [, spec] of counted) if (!countOf.has(spec.count!)) countOf.set(spec.count!, new Int32Array((await readOutput(this.context, r.outputs![spec.count!], 4, `${op}.${spec.count}`)).buffer)[0]);
      } catch (e) {
        r.release();
        throw e;
      }
      for (const [k, spec] of counted) {
        const rows = countOf.get(spec.count!)!;
        const row = shapes[k].slice(1).reduce((a, b) => a * b, 1);
        shapes[k] = [rows, ...shapes[k].slice(1)];
        bytes[k] = 4 * rows * row;
      }
    }
    for (const k of named) outs.push({ buffer: r.outputs![k], bytes: bytes[k], dims: shapes[k], ...(r.outputDtypes![k] === 'i32' ? { type: 'int32' as const } : {}) });
    const made = wrapOutputs(this.context, Tensor, r, outs);
    const [loss, ...grads] = made;
    const outputs = Object.fromEntries(named.map((k, i) => [k, made[1 + gradNames.length + i]]));
    return { loss, grad: Object.fromEntries(gradNames.map((k, i) => [k, grads[i]])), ...(named.length ? { outputs } : {}) };
  }

  /** Runs one wrapper of the catalogue: the loss with the gradient of its differentiable input (of each, where it has several), or the matrix alone. */
  private async wrapper<T extends OrtTensor>(w: Wrapper, args: unknown[]): Promise<OrtLoss<T> | OrtRunResult<T> | T> {
    const desc = getOp(w.op);
    const r = await this.runWith<T>(desc, positionalInputs<OrtInput<T> | undefined>(w, args), optionsArg(w, args), w.fixed, w.name);
    if (w.result === 'outputs') {
      // An op with no loss (tal_assign) still made an empty loss tensor: hand back its buffer share.
      if (desc.gpu?.program?.lossShape.some((d) => d === 0)) {
        r.loss.dispose();
        return { ...r.outputs } as unknown as T;
      }
      return { loss: r.loss, grad: r.grad, ...r.outputs } as unknown as T;
    }
    if (w.result === 'matrix' || w.grads) return w.result === 'matrix' ? r.loss : r;
    const gradName = Object.keys(desc.inputs).find((k) => desc.inputs[k].grad);
    return { loss: r.loss, grad: gradName ? r.grad[gradName] : undefined };
  }

  /**
   * ONNX `NonMaxSuppression` (opsets 10 and 11) as onnxruntime computes it, on ORT tensors: a model
   * exported without its NMS node, then this call on the node's inputs, gives the node's output.
   * See the free function {@link nonMaxSuppression} for the arguments.
   */
  async nonMaxSuppression<T extends OrtTensor>(boxes: T, scores: T, maxOutputBoxesPerClass?: OnnxScalar, iouThreshold?: OnnxScalar, scoreThreshold?: OnnxScalar, options: OrtNmsOptions = {}): Promise<T> {
    const fn = 'nonMaxSuppression';
    if (typeof options !== 'object' || options === null) throw new DetlossError('invalid_param', `${fn}: options must be an object`, 'options');
    const { centerPointBox, outputType = 'int64', ...rest } = options as OrtNmsOptions & Record<string, unknown>;
    for (const [k, v] of Object.entries(rest)) {
      if (v !== undefined) throw new DetlossError('unknown_param', `${fn}: unknown option "${k}" (known: centerPointBox, outputType)`, k);
    }
    if (outputType !== 'int64' && outputType !== 'int32') throw new DetlossError('invalid_param', `${fn}: outputType must be 'int64' or 'int32', got ${describeValue(outputType)}`, 'outputType');
    for (const [name, v, layout] of [['boxes', boxes, 'b, n, 4'], ['scores', scores, 'b, c, n']] as const) {
      if (v === undefined || v === null) throw new DetlossError('missing_input', `${fn}: ${name} is required (a float32 ort.Tensor [${layout}])`, name);
      if (!isOrtTensor(v)) throw new DetlossError('wrong_dtype', `${fn}: ${name} must be a float32 ort.Tensor [${layout}], got ${describeValue(v)}`, name);
      // ONNX's ranks exactly (the losses fold leading dims; onnxruntime refuses them).
      if (Array.isArray(v.dims) && v.dims.length !== 3) throw new DetlossError('shape_mismatch', `${fn}: ${name} must have dims [${layout}], got [${v.dims.join(', ')}]`, name);
    }
    // The scalars decide the output's capacity, so they are needed on the host: each is checked
    // now, and one on the GPU is read back (its 4 or 8 bytes, copied now: later writes to its
    // buffer do not change this call). Awaiting that read, the call takes its boxes and scores now
    // too: a copy of each, made before the await.
    const values = [maxOutputBoxesPerClass, iouThreshold, scoreThreshold];
    const checked = NMS_SCALARS.map(([name, type], i) => onnxScalar(name, type, values[i]));
    const taken = checked.map((c) => (typeof c === 'function' ? c(this.context) : c));
    const copies: GPUBuffer[] = [];
    const later = taken.some((t) => t instanceof Promise);
    const inputs = later ? { boxes: snapshot(this.context, boxes, copies), scores: snapshot(this.context, scores, copies) } : { boxes, scores };
    try {
      // No await unless a scalar is on the GPU: the call then reads its inputs before it returns.
      const [max, iou, score] = later ? await Promise.all(taken) : taken;
      const params = { maxOutputBoxesPerClass: max, iouThreshold: iou, scoreThreshold: score, centerPointBox };
      const r = await this.runWith<T>(getOp('nms_onnx'), inputs as Record<string, OrtInput<T>>, params, undefined, fn);
      // The op has no loss (an empty tensor) and a count beside its rows: only the rows go back.
      r.loss.dispose();
      r.outputs!.count.dispose();
      const selected = r.outputs!.selected;
      if (outputType === 'int32') return selected;
      try {
        return await widenToInt64(this.context, (selected as OrtTensor).constructor as OrtTensorClass<T>, selected);
      } finally {
        selected.dispose();
      }
    } finally {
      for (const b of copies) b.destroy();
    }
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
 * `options` are `createDetloss`'s (less `device` and `gpu`), checked on every call. They make the
 * context on the first call for a device; on a later one only `plans` (tuned launch plans, what
 * `dl.context.tune()` returned) takes effect, loaded into the existing context.
 *
 * @example const dl = await detlossFor(await ort.env.webgpu.device, { plans: JSON.parse(localStorage.getItem('detloss-plans') ?? '[]') });
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
  if (typeof options !== 'object' || options === null) throw new DetlossError('invalid_param', `detlossFor: options must be an object, got ${describeValue(options)}`, 'options');
  let dl = contexts.get(device);
  if (!dl || isDestroyed(dl.context)) {
    dl = new OrtDetloss(contextOn(DetlossContext, device, options));
    contexts.set(device, dl);
  } else if (Object.keys(options).length) {
    // The device's context exists: the options are checked all the same, and tuned plans load into it.
    checkContextOptions(device, options);
    if (options.plans !== undefined) dl.context.usePlans(options.plans);
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

/** Takes `device` out of a free function's options (which must be an object). */
const strip = (o: unknown = {}) => {
  checkArgs('detloss/ort', {}, o);
  const { device, ...rest } = o as { device?: GPUDevice };
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

/** The options of ORT wrapper `K` on an {@link OrtDetloss}: its params (a fixed one only at its fixed value), shared options, tensor options. */
export type OrtWrapperOptions<K extends WrapperName, T extends OrtTensor = OrtTensor> = Flat<
  WrapperParams<K> &
    OptionalInputs<K, OrtInput<T>> &
    (HasOutputs<K> extends true
      ? { grad?: boolean; gradOutput?: OrtInput }
      : IsMatrix<K> extends true
      ? Omit<SharedOptions, 'check' | 'reduction'> & { weight?: OrtInput }
      : SelfReduced<K> extends true
        ? { reduction?: 'mean'; grad?: boolean; gradOutput?: OrtInput }
        : Omit<SharedOptions, 'check'> & { weight?: OrtInput; gradOutput?: OrtInput })
>;

/** What ORT wrapper `K` returns: the loss and its gradient (every gradient, where the op has several), the matrix, or the named outputs. */
export type OrtWrapperResult<K extends WrapperName, T> =
  HasOutputs<K> extends true ? OrtOutputsOf<WrapperOp<K>, T> : IsMatrix<K> extends true ? T : HasGrads<K> extends true ? OrtRunResult<T> : OrtLoss<T>;

/** The wrappers of {@link OrtDetloss}, one per entry of the catalogue, named as on every surface. */
export type OrtWrappers = {
  [K in keyof WrapperTable]: <T extends OrtTensor>(...args: WrapperArgs<K, T, OrtInput<T>, OrtInput<T>, OrtWrapperOptions<K, T>>) => Promise<OrtWrapperResult<K, T>>;
};
/** The free functions: the same wrappers on the context of `options.device`, or on the last made by {@link detlossFor}. */
export type OrtFreeWrappers = {
  [K in keyof WrapperTable]: <T extends OrtTensor>(...args: WrapperArgs<K, T, OrtInput<T>, OrtInput<T>, Flat<OrtWrapperOptions<K, T> & { device?: GPUDevice }>>) => Promise<OrtWrapperResult<K, T>>;
};

export interface OrtDetloss extends OrtWrappers {}

const FREE: Record<string, unknown> = {};
for (const w of wrappers()) {
  const method = function (this: OrtDetloss, ...args: unknown[]) {
    return (this as unknown as { wrapper(w: Wrapper, args: unknown[]): Promise<unknown> }).wrapper(w, args);
  };
  Object.defineProperty(method, 'name', { value: w.name });
  Object.defineProperty(OrtDetloss.prototype, w.name, { value: method, writable: true, configurable: true });
  // The free function reads its inputs when it is called, as the method does: no await before it.
  const free = async (...args: unknown[]) => {
    const { device, rest } = strip(optionsArg(w, args));
    return (contextOf(device) as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[w.name](...args.slice(0, w.args.length), rest);
  };
  Object.defineProperty(free, 'name', { value: w.name });
  FREE[w.name] = free;
}

/**
 * ONNX `NonMaxSuppression` (opsets 10 and 11) on ORT tensors, as onnxruntime computes it: for a
 * model exported without its NMS node, this call on the node's inputs gives the node's output,
 * `selected_indices`, an int64 `ort.Tensor` `[k, 3]` of rows `(batch, class, box)`, on the GPU.
 *
 * `boxes` float32 `[b, n, 4]` and `scores` float32 `[b, c, n]`: `ort.Tensor`s on the GPU
 * (`'gpu-buffer'`) or the CPU. The three scalar inputs in ONNX's order, each optional as in ONNX
 * (see {@link OnnxScalar}): `maxOutputBoxesPerClass` (default 0: no output, as ONNX says),
 * `iouThreshold` (default 0), `scoreThreshold` (default: no filter). They decide the output's size,
 * so they are needed on the host: one on the GPU is read back (4 or 8 bytes). `options`:
 * `centerPointBox` (ONNX's attribute), `outputType: 'int32'` for int32 rows, `device`.
 *
 * Only the 4-byte count of rows is read back besides; the boxes and scores stay on the GPU. Bad
 * input is a `DetlossError` naming the argument, where onnxruntime would fail the run (a threshold
 * outside [0, 1], boxes not `[b, n, 4]`) and also for a NaN score threshold, a limit that is not
 * an integer, and a scalar tensor of more than one element.
 *
 * @example
 * const { boxes, scores } = await session.run(feeds); // a detector exported without NMS
 * const selected = await nonMaxSuppression(boxes, scores, 100n, 0.5, 0.25); // int64 [k, 3]
 */
export async function nonMaxSuppression<T extends OrtTensor>(boxes: T, scores: T, maxOutputBoxesPerClass?: OnnxScalar, iouThreshold?: OnnxScalar, scoreThreshold?: OnnxScalar, options: Flat<OrtNmsOptions & { device?: GPUDevice }> = {}): Promise<T> {
  const { device, rest } = strip(options);
  return contextOf(device).nonMaxSuppression(boxes, scores, maxOutputBoxesPerClass, iouThreshold, scoreThreshold, rest);
}

// One export per catalogue entry, each documented in src/catalogue.ts (test/catalogue.test.ts holds this list to it).
export const {
  l1,
  mse,
  smoothL1,
  huber,
  balancedL1,
  iouLoss,
  iou,
  giou,
  diou,
  ciou,
  eiou,
  siou,
  mpdiou,
  shapeIou,
  wiou,
  pairwiseIou,
  rotatedIouLoss,
  probiou,
  gwd,
  kld,
  jd,
  kldSymmax,
  kldSymmin,
  kfiou,
  pairwiseProbiou,
  sigmoidFocal,
  softmaxFocal,
  classBalancedFocal,
  qualityFocal,
  distributionFocal,
  varifocal,
  bceWithLogits,
  nll,
  hinge,
  hingeEmbedding,
  marginRanking,
  exponential,
  apLoss,
  rankSort,
  crossEntropy,
  klDiv,
  dice,
  talAssign,
  yoloLoss,
  nms,
  nmsOnnx,
  nmsTfjs,
} = FREE as OrtFreeWrappers;
export { makeAnchors } from '../ops/anchors';
export type { HeadAnchors } from '../ops/anchors';

/**
 * {@link OrtDetloss.yoloNms} on `options.device`'s context, or the last one {@link detlossFor} made.
 *
 * @example const { boxes, scores, classes, count } = await yoloNms(results.output0, { confThreshold: 0.25, iouThreshold: 0.45 });
 */
export function yoloNms(output: OrtInput, options: YoloNmsOptions & { device?: GPUDevice } = {}): Promise<YoloDetections> {
  try {
    const { device, rest } = strip(options);
    return contextOf(device).yoloNms(output, rest);
  } catch (e) {
    return Promise.reject(e);
  }
}
