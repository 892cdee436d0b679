/**
 * `detloss/tfjs`: detloss's losses on TF.js tensors, with custom gradients.
 *
 * On TF.js's WebGPU backend the losses run on the backend's own `GPUDevice`: inputs are read with
 * `dataToGPU()` (no download), the fused kernel computes loss and gradient in one pass, and the
 * same submit copies both into tensors TF.js allocates at their exact size (so TF.js owns them
 * outright, and detloss's pooled buffers go back to its pool). Every function is synchronous, so
 * it works inside `optimizer.minimize(() => ...)`; the other inputs are constants (no gradient).
 *
 * @example
 * import * as tf from '@tensorflow/tfjs-core';
 * import '@tensorflow/tfjs-backend-webgpu';
 * import { ciou, qualityFocal } from 'detloss/tfjs';
 * await tf.setBackend('webgpu');
 * optimizer.minimize(() => tf.add(ciou(model.boxes(x), gtBoxes), qualityFocal(model.cls(x), labels, scores)));
 * // Ranking losses: the gradient is the authors' error-driven update (apLoss, rankSort).
 * optimizer.minimize(() => tf.sum(rankSort(model.cls(x), ious)));
 */
import * as tf from '@tensorflow/tfjs-core';
import { optionsArg, positionalInputs, splitOptions, wrappers, type Flat, type HasOutputs, type IsCounted, type IsMatrix, type OptionalInputs, type SelfReduced, type WrapperArgs, type WrapperName, type WrapperOp, type WrapperParams, type WrapperTable } from '../catalogue';
import type { OP_NONE_RANK, OpReducedRank } from '../ops/op-types';
import { runCpu } from '../cpu';
import { makeAnchors as makeHeadAnchors } from '../ops/anchors';
import { DetlossError } from '../errors';
import { getOp } from '../ops/registry';
import { detectionsOf, yoloNmsOp, type YoloDetections, type YoloNmsOptions } from '../ops/yolo-nms';
import type { OpDescriptor } from '../ops/types';
import { LIMIT_MAX, type Reduction } from '../ops/validate';
import { Detloss, guardedCopies, runSync, type GuardedCopy, type SyncCall } from '../runtime/context';
import type { AdapterFacts, PlanRecord, TuneOptions } from '../runtime/public';
import { ledgerOf, throwFailure, verdictsIn } from './tfjs-ledger';

/** Options of every loss: the op's params plus these. */
export interface TfLossOptions {
  /** `'none' | 'mean' | 'sum'` (default `'mean'`). */
  reduction?: Reduction;
  /** With `'mean'`, divide the sum by this instead of the count. */
  avgFactor?: number;
  /** Multiplies the unreduced loss; the shape of the `'none'` output. A constant (no gradient). */
  weight?: tf.Tensor;
  /** `false`: forward only; the result then has no gradient. Default true. */
  grad?: boolean;
  /** Any other key is one of the op's params (`beta`, `variant`...) or an optional tensor input (`classWeight`, `posWeight`). */
  [param: string]: unknown;
}

/** The parts of TF.js's WebGPU backend this module uses (all public in tfjs-backend-webgpu 4.x). */
interface WebGpuBackendLike {
  device: GPUDevice;
  adapterInfo?: { vendor?: string; architecture?: string };
  uploadToGPU(dataId: object): void;
  makeTensorInfo(shape: number[], dtype: 'float32' | 'int32'): tf.TensorInfo;
  tensorMap: { get(dataId: object): { resource?: unknown; dtype?: string } };
}

function isWebGpuBackend(b: unknown): b is WebGpuBackendLike {
  const x = b as Partial<WebGpuBackendLike> | undefined;
  return !!x && typeof x.uploadToGPU === 'function' && typeof x.makeTensorInfo === 'function' && !!x.tensorMap && typeof (x.device as GPUDevice | undefined)?.createBuffer === 'function';
}

/** One context per device. */
interface DeviceState {
  dl: Detloss;
}
const states = new WeakMap<GPUDevice, DeviceState>();
/** The tuned plan records kept for each device ({@link usePlans}, {@link tune}): every context made for it loads them. */
const kept = new WeakMap<GPUDevice, PlanRecord[]>();

function stateFor(backend: WebGpuBackendLike): DeviceState {
  const device = backend.device;
  let s = states.get(device);
  if (!s) {
    const info = (device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
    const facts: AdapterFacts = {
      vendor: info?.vendor ?? backend.adapterInfo?.vendor ?? '',
      architecture: info?.architecture ?? backend.adapterInfo?.architecture ?? '',
      device: info?.device ?? '',
      description: info?.description ?? '',
      isFallbackAdapter: (info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter ?? false,
      subgroupMaxSize: (info as { subgroupMaxSize?: number } | undefined)?.subgroupMaxSize,
    };
    // A context made after a GPU failure dropped the last one keeps the plans that one held.
    s = { dl: new Detloss(device, facts, { plans: kept.get(device) }) };
    states.set(device, s);
  }
  return s;
}

/**
 * The detloss context on a TF.js WebGPU backend's device (default: the active backend), created on
 * first use and shared by every loss of this module. For `stats()` and `trim()`; do not destroy it.
 * A non-WebGPU backend is `no_webgpu`. A GPU error of an earlier call that no call has thrown yet
 * is thrown here (once): the context it broke is gone, and the next one is made after it.
 */
export function detlossFor(backend: tf.KernelBackend = tf.backend()): Detloss {
  if (!isWebGpuBackend(backend)) throw new DetlossError('no_webgpu', `detlossFor: the TF.js backend is ${tf.getBackend()}, not webgpu`, 'backend');
  throwFailure(backend.device);
  return stateFor(backend).dl;
}

/** `detlossFor(backend).stats()`: the shared context's pool and pipeline counters. */
export function stats(backend: tf.KernelBackend = tf.backend()): ReturnType<Detloss['stats']> {
  return detlossFor(backend).stats();
}

/**
 * Loads tuned launch plans (what {@link tune} or `Detloss.tune()` returned, kept by the caller) for
 * the backend's device: into its context now, and into any context made for it later (after a GPU
 * failure drops one). One record or several; each is checked as `createDetloss({ plans })` checks
 * it, and a malformed one is a `DetlossError` naming the field (`plans.plans[0].plan.workgroupSize`),
 * with nothing loaded. A record for another adapter or another version of detloss is ignored with a
 * warning in `stats().plan.warnings`. A non-WebGPU backend is `no_webgpu`.
 *
 * @example usePlans(JSON.parse(localStorage.getItem('detloss-plans') ?? '[]'));
 */
export function usePlans(plans: PlanRecord | readonly PlanRecord[], backend: tf.KernelBackend = tf.backend()): void {
  if (!isWebGpuBackend(backend)) throw new DetlossError('no_webgpu', `usePlans: the TF.js backend is ${tf.getBackend()}, not webgpu`, 'backend');
  // The context's own check refuses a malformed record before anything is loaded or kept.
  stateFor(backend).dl.usePlans(plans);
  keep(backend.device, Array.isArray(plans) ? plans : [plans as PlanRecord]);
}

/**
 * Times candidate launch plans on the backend's device (`detlossFor(backend).tune(options)`, see
 * `Detloss.tune`) and keeps the fastest for that device, as {@link usePlans} keeps a record: later
 * calls, and contexts made for the device later, run them. Resolves with the record to store.
 * Bad options are refused by name before anything runs, and the plans held stay as they were.
 *
 * @example
 * const record = await tune({ ops: ['smooth_l1', { op: 'cross_entropy', dims: { c: 80 } }], sizes: [1e6] });
 * localStorage.setItem('detloss-plans', JSON.stringify(record));
 */
export async function tune(options?: TuneOptions, backend: tf.KernelBackend = tf.backend()): Promise<PlanRecord> {
  if (!isWebGpuBackend(backend)) throw new DetlossError('no_webgpu', `tune: the TF.js backend is ${tf.getBackend()}, not webgpu`, 'backend');
  const dl = detlossFor(backend);
  const record = await dl.tune(options);
  keep(backend.device, [record]);
  // The tuned context holds the plans already; one made since (a GPU failure during tune() dropped it) loads them.
  const now = states.get(backend.device)?.dl;
  if (now && now !== dl) now.usePlans(record);
  return record;
}

/** Keeps checked records for a device, as copies (later changes to the caller's objects change nothing). */
function keep(device: GPUDevice, records: readonly PlanRecord[]): void {
  kept.set(device, [...(kept.get(device) ?? []), ...records.map((r) => JSON.parse(JSON.stringify(r)) as PlanRecord)]);
}

/**
 * Optional: compiles pipelines ahead of the first step (names or `{ op, options }`, as
 * `Detloss.warmup`), so no call stalls the queue compiling. Calls work without it: a kernel not
 * compiled yet is compiled synchronously on first use.
 */
export async function ready(ops?: Parameters<Detloss['warmup']>[0]): Promise<void> {
  await tf.ready();
  const b = tf.backend();
  if (isWebGpuBackend(b)) await detlossFor(b).warmup(ops ?? []);
}

/**
 * Waits until the GPU has judged every call made so far on the backend's device and throws the
 * first `pipeline` / `gpu_out_of_memory` / `gpu_validation` error among them (or `invalid_value`
 * for labels or targets the GPU found invalid). Without it such an error is thrown by the next
 * call. Nothing to wait for on a non-WebGPU backend.
 */
export async function flush(backend: tf.KernelBackend = tf.backend()): Promise<void> {
  if (!isWebGpuBackend(backend)) return;
  await verdictsIn(backend.device);
  throwFailure(backend.device);
}

/** Waits for the GPU's verdict on a call's work; a failure drops the context and is kept for the next call (thrown once; the next call makes a new context). */
function watch(device: GPUDevice, s: DeviceState, settled: Promise<void>): void {
  ledgerOf(device).watch(
    settled.catch((e: unknown) => {
      // Buffers of a failed allocation are not safe to reuse: drop the context (the next call makes
      // another; TF.js's copies of earlier results are TF.js's own buffers and unaffected).
      const err = e instanceof DetlossError ? e : new DetlossError('gpu_validation', String((e as Error)?.message ?? e));
      // A failed value check (invalid_value) leaves the context sound; a GPU failure may not.
      if (err.code !== 'invalid_value' && states.get(device) === s) {
        states.delete(device);
        s.dl.destroy();
      }
      throw err;
    }),
  );
}

const TF_DTYPE = { f32: 'float32', i32: 'int32' } as const;

/**
 * Splits options with the catalogue's splitter, then holds TF.js's own rules: the upstream
 * gradient comes from TF.js (`dy`), never from the options, and every tensor option is a `tf.Tensor`.
 */
function splitTfOptions(desc: OpDescriptor, opts: unknown, fixed?: Readonly<Record<string, unknown>>, where?: string): { extra: Record<string, tf.Tensor>; params: Record<string, unknown> } {
  const { tensors, params } = splitOptions(desc, opts, fixed, where);
  for (const [k, v] of Object.entries(tensors)) {
    if (k === 'gradOutput') throw new DetlossError('unknown_param', `${desc.name}: gradOutput is not an option here: the upstream gradient comes from TF.js (dy)`, 'gradOutput');
    if (!(v instanceof tf.Tensor)) throw new DetlossError('invalid_value', `${desc.name}: ${k} must be a tf.Tensor`, k);
  }
  return { extra: tensors as Record<string, tf.Tensor>, params };
}

/** Whether every given input is the op's 1-D `[n]` kind: then tensors of any shape are flattened and the output takes pred's shape. */
function elementwise(desc: OpDescriptor): boolean {
  return desc.output.length === 1 && Object.values(desc.inputs).every((s) => s.shape.length === 1 && s.shape[0] === desc.output[0]);
}

/** The forward pass: the loss and, for each prediction input, d(loss)/d(input) with an upstream of one (per output element for 'none'). */
interface Forward {
  /** Absent for an op with no loss (`tal_assign`). */
  value?: tf.Tensor;
  grads: Record<string, tf.Tensor>;
  /** The op's named outputs (`tal_assign`'s assignment, `yolo_detection_loss`'s components). */
  outputs: Record<string, tf.Tensor>;
}

/**
 * A copy of a tensor's values on the GPU, taken now, in the tensor's own dtype; the tensors to
 * dispose once our work is submitted go in `refs`.
 */
function gpuCopy(backend: WebGpuBackendLike, given: tf.Tensor, refs: tf.Tensor[]): GPUBuffer {
  let t = given;
  // tf.cast to a wider dtype (int32 or bool to float32, bool to int32) gives a tensor that
  // shares the source's buffer, whose words are still the source's dtype: TF.js's kernels read
  // them by that dtype, and so must we. Such a tensor is converted on the GPU first (x * 1
  // is exact, and TF.js writes it in the tensor's own dtype).
  if (backend.tensorMap.get(t.dataId)?.dtype !== t.dtype) {
    t = tf.tidy(() => tf.mul(given, tf.scalar(1, given.dtype as 'float32' | 'int32')));
    refs.push(t);
  }
  // A tensor whose values are still on the host (made from an array, not used yet) is uploaded first.
  backend.uploadToGPU(t.dataId);
  // readToGPU copies into a new buffer and submits TF.js's queue: everything that wrote the tensor is submitted before our work.
  const g = t.dataToGPU() as unknown as { buffer: GPUBuffer; tensorRef: tf.Tensor };
  refs.push(g.tensorRef);
  return g.buffer;
}

function forwardGpu(backend: WebGpuBackendLike, desc: OpDescriptor, inputs: Record<string, tf.Tensor>, shapes: Record<string, number[]>, params: Record<string, unknown>, outShape: (s: number[]) => number[]): Forward {
  throwFailure(backend.device);
  const s = stateFor(backend);
  const refs: tf.Tensor[] = [];
  let res: SyncCall;
  try {
    const gpu: Record<string, { buffer: GPUBuffer; shape: number[]; dtype: 'f32' | 'i32' }> = {};
    for (const [name, given] of Object.entries(inputs)) gpu[name] = { buffer: gpuCopy(backend, given, refs), shape: shapes[name], dtype: given.dtype === 'int32' ? 'i32' : 'f32' };
    // guard: the call checks its labels and targets on the GPU and marks that its work ran.
    res = runSync(s.dl, desc, gpu, params, true);
  } finally {
    // Our work is submitted (or was never made): TF.js may reuse these copies in its later submits.
    for (const r of refs) r.dispose();
  }
  // Results go into tensors TF.js allocates at their exact size (a tensor made with
  // tf.tensor({ buffer }) from a larger pooled buffer would read back the whole buffer), copied
  // in one submit of ours through the guard: where the call's work did not run (a late GPU
  // failure) or a value check failed, the tensors hold NaN, never stale numbers. Then our buffers
  // go back to the pool; TF.js owns its tensors. The status words come back asynchronously: a
  // failed check is thrown by the next call or flush(), as the GPU's own errors are.
  const made: tf.Tensor[] = [];
  try {
    const copies: GuardedCopy[] = [];
    const take = (src: GPUBuffer, bytes: number, shape: number[], dtype: 'float32' | 'int32' = 'float32'): tf.Tensor => {
      // An empty output has nothing to copy (and TF.js no buffer to copy into).
      if (bytes === 0) {
        const t = tf.zeros(shape, dtype);
        made.push(t);
        return t;
      }
      const info = backend.makeTensorInfo(shape, dtype);
      backend.uploadToGPU(info.dataId);
      const t = tf.engine().makeTensorFromTensorInfo(info);
      made.push(t);
      copies.push({ src, dst: backend.tensorMap.get(info.dataId).resource as GPUBuffer, bytes });
      return t;
    };
    const value = res.shape.some((d) => d === 0) && res.out.lossBytes === 0 && desc.outputs ? undefined : take(res.out.loss.buffer, res.out.lossBytes, outShape(res.shape));
    const grads: Record<string, tf.Tensor> = {};
    for (const [name, g] of Object.entries(res.out.grads)) grads[name] = take(g.buffer, g.bytes, inputs[name].shape);
    const outputs: Record<string, tf.Tensor> = {};
    for (const [name, o] of Object.entries(res.out.named)) outputs[name] = take(o.buffer, o.bytes, res.outputShapes[name], TF_DTYPE[o.dtype]);
    const { compiled, copied } = guardedCopies(s.dl, desc, res, copies, 'TF.js tensors');
    watch(backend.device, s, compiled);
    // After the call's own verdict: a copy that failed because the call's buffers could not be
    // made is not the cause, and the checks' words mean nothing when the work did not run.
    watch(backend.device, s, res.settled.then(() => copied));
    return { value, grads, outputs };
  } catch (e) {
    for (const t of made) t.dispose();
    throw e;
  } finally {
    res.release();
    res.releaseOutputs();
  }
}

function forwardCpu(desc: OpDescriptor, inputs: Record<string, tf.Tensor>, shapes: Record<string, number[]>, params: Record<string, unknown>, outShape: (s: number[]) => number[]): Forward {
  const host: Record<string, { data: Float32Array | Int32Array; shape: number[] }> = {};
  for (const [name, t] of Object.entries(inputs)) {
    // A tensor cast to a wider dtype shares its source's values (an Int32Array or a Uint8Array
    // behind a float32 tensor): they are converted to the tensor's own dtype here.
    const data = t.dataSync();
    const own = t.dtype === 'int32' ? (data instanceof Int32Array ? data : Int32Array.from(data as ArrayLike<number>)) : data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>);
    host[name] = { data: own, shape: shapes[name] };
  }
  const r = runCpu(desc, host, params);
  const value = desc.outputs && r.loss.length === 0 && r.shape.some((d) => d === 0) ? undefined : tf.tensor(Float32Array.from(r.loss), outShape(r.shape), 'float32');
  const grads: Record<string, tf.Tensor> = {};
  for (const [name, g] of Object.entries(r.grad)) grads[name] = tf.tensor(Float32Array.from(g), inputs[name].shape, 'float32');
  const outputs: Record<string, tf.Tensor> = {};
  for (const [name, o] of Object.entries(r.outputs ?? {})) {
    outputs[name] = o instanceof Int32Array ? tf.tensor(o, r.outputShapes![name], 'int32') : tf.tensor(Float32Array.from(o), r.outputShapes![name], 'float32');
  }
  return { value, grads, outputs };
}

/**
 * Runs any op of the catalogue (or an `OpDescriptor`) on TF.js tensors. Inputs are named as the
 * op names them; `opts` holds its params, `reduction`, `avgFactor`, `weight`, `grad` and its
 * optional tensor inputs. Returns the loss (a scalar for `'mean'`/`'sum'`) with a custom gradient
 * for the op's prediction input(s); every other input (targets, labels, weights) is a constant:
 * its gradient is zero.
 *
 * The ranking losses (`ap_loss`, `rank_sort`) return an error-driven update in place of a
 * gradient (ops.md "Ranking losses"): the custom gradient is that update times the upstream `dy`.
 * `rank_sort`'s loss is `[ranking, sorting]`; its update serves the pair and is scaled by `dy[0]`
 * alone (the authors' convention), so reduce it with `tf.sum` (or add the two) before `minimize`.
 *
 * On the WebGPU backend the op runs on the GPU; on any other backend (cpu, webgl, wasm) the inputs
 * are downloaded (`dataSync`), the float64 CPU reference (`cpu.run`) computes loss and gradient,
 * and the results are uploaded: same numbers within float32 rounding, same custom gradient.
 *
 * @example
 * const loss = runLoss('iou_loss', { pred, target }, { variant: 'ciou' });
 */
export function runLoss(op: string | OpDescriptor, inputs: Record<string, tf.Tensor | undefined>, opts: TfLossOptions = {}): tf.Tensor {
  return runWith(getOp(op), inputs, opts);
}

/** A call checked and ready to run: its tensors by input name, their shapes as the op sees them, its params. */
interface TfCall {
  all: Record<string, tf.Tensor>;
  names: string[];
  params: Record<string, unknown>;
  reduced: boolean;
  /** The op is elementwise: tensors of any shape were flattened. */
  flat: boolean;
  wantGrad: boolean;
  run(): Forward;
}

/** Checks a call's tensors and options (every refusal a DetlossError naming the argument), and how to run it. */
function prepareTf(desc: OpDescriptor, inputs: Record<string, tf.Tensor | undefined>, opts: unknown, fixed?: Readonly<Record<string, unknown>>, where?: string): TfCall {
  // Anything but objects is refused by name, never a TypeError.
  if (typeof inputs !== 'object' || inputs === null) throw new DetlossError('missing_input', `${desc.name}: inputs must be an object`, 'inputs');
  const { extra, params } = splitTfOptions(desc, opts, fixed, where);
  // No prototype: an input named "__proto__" stays an input (refused as unknown below).
  const all: Record<string, tf.Tensor> = Object.create(null);
  for (const [name, t] of Object.entries(inputs)) {
    if (t === undefined || t === null) continue;
    if (!(t instanceof tf.Tensor)) throw new DetlossError('invalid_value', `${desc.name}: ${name} must be a tf.Tensor`, name);
    all[name] = t;
  }
  Object.assign(all, extra);
  for (const [name, t] of Object.entries(all)) {
    // TF.js's own throwIfDisposed() is a plain Error: every refusal here is a DetlossError.
    if (t.isDisposed) throw new DetlossError('invalid_value', `${desc.name}: ${name} is a disposed tf.Tensor`, name);
    const spec = name === 'weight' || !Object.hasOwn(desc.inputs, name) ? undefined : desc.inputs[name];
    if (name !== 'weight' && !spec) throw new DetlossError('unknown_input', `${desc.name}: no input named ${name} (inputs: ${Object.keys(desc.inputs).join(', ')})`, name);
    const want = TF_DTYPE[spec?.dtype ?? 'f32'];
    if (t.dtype !== want) throw new DetlossError('wrong_dtype', `${desc.name}: ${name} must be a ${want} tensor, got ${t.dtype}`, name);
  }
  const flat = elementwise(desc);
  const shapes: Record<string, number[]> = {};
  for (const [name, t] of Object.entries(all)) shapes[name] = flat ? [t.size] : t.shape;
  const predName = Object.keys(desc.inputs).find((k) => desc.inputs[k].grad);
  if (flat && predName && all[predName]) {
    // Flattened, every tensor must have pred's shape (else two [2,3] vs [3,2] tensors would pass as [6]).
    const ps = all[predName].shape;
    for (const [name, t] of Object.entries(all)) {
      if (t.shape.length !== ps.length || t.shape.some((d, i) => d !== ps[i])) {
        throw new DetlossError('shape_mismatch', `${desc.name}: ${name} has shape [${t.shape.join(', ')}], ${predName} [${ps.join(', ')}]`, name);
      }
    }
  }
  const reduced = (params.reduction ?? 'mean') !== 'none';
  // An elementwise op's 'none' output takes pred's shape; a reduced one keeps its own (a scalar, or rank_sort's [2]).
  const outShape = (s: number[]) => (flat && !reduced && s.length === 1 && predName && all[predName] ? all[predName].shape : s);

  const names = Object.keys(all);
  const wantGrad = params.grad !== false && Object.values(desc.inputs).some((s) => s.grad);
  const run = (): Forward => {
    const backend = tf.backend();
    return isWebGpuBackend(backend) ? forwardGpu(backend, desc, all, shapes, params, outShape) : forwardCpu(desc, all, shapes, params, outShape);
  };
  return { all, names, params, reduced, flat, wantGrad, run };
}

/** {@link runLoss} on a descriptor, with the params a wrapper fixes (`where`: the wrapper's name, for messages). */
function runWith(desc: OpDescriptor, inputs: Record<string, tf.Tensor | undefined>, opts: unknown, fixed?: Readonly<Record<string, unknown>>, where?: string): tf.Tensor {
  const { all, names, reduced, flat, wantGrad, run } = prepareTf(desc, inputs, opts, fixed, where);
  if (!wantGrad) return tf.tidy(() => run().value!);

  const f = tf.customGrad(((...args: unknown[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const { value, grads } = run();
    if (!value) throw new DetlossError('invalid_param', `${desc.name}: has no loss; its results are named outputs (runOutputs)`, 'op');
    const gradNames = names.filter((n) => grads[n]);
    save(gradNames.map((n) => grads[n]));
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        names.map((n) => {
          const i = gradNames.indexOf(n);
          if (i < 0) return tf.zerosLike(all[n]);
          const g = saved[i];
          // A reduced loss has one upstream number, except rank_sort's [ranking, sorting]: its update is one
          // vector for the pair and rides on the first entry, as in the authors' RankSort.backward
          // (g1 * out_grad1): with tf.sum(loss) or loss[0] + loss[1] it is applied once.
          if (reduced) return tf.mul(g, dy.size > 1 ? tf.reshape(tf.slice(tf.reshape(dy, [-1]), [0], [1]), []) : tf.reshape(dy, []));
          // 'none': output element i depends only on row i of the prediction, so the upstream
          // gradient scales that row (dy is the output's shape; broadcast over the row's own dims).
          const up = flat ? tf.reshape(dy, g.shape) : tf.reshape(dy, [...dy.shape, ...g.shape.slice(dy.shape.length).map(() => 1)]);
          return tf.mul(g, up);
        }),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(...names.map((n) => all[n]));
}

/**
 * The results of an op with named outputs on TF.js tensors: each output as a tensor (int32 for
 * `tal_assign`'s labels, foreground and gtIndex), and `loss` where the op has one, with a custom
 * gradient for its differentiable inputs (`yolo_detection_loss`: predDist and predScores). The
 * outputs carry no gradient. Like any tensor made inside `tf.tidy` or `optimizer.minimize`, an
 * output that should outlive it needs `tf.keep`.
 */
export type TfOutputs = { loss?: tf.Scalar } & Record<string, tf.Tensor>;

/** Runs an op with named outputs (`tal_assign`, `yolo_detection_loss`) on TF.js tensors: see {@link TfOutputs}. */
export function runOutputs(op: string | OpDescriptor, inputs: Record<string, tf.Tensor | undefined>, opts: TfLossOptions = {}): TfOutputs {
  const desc = getOp(op);
  if (Object.values(desc.outputs ?? {}).some((spec) => spec.count)) {
    throw new DetlossError('invalid_param', `${desc.name}: its outputs' length depends on the data, which a synchronous call cannot read from the GPU; use runOutputsAsync (or its wrapper, which is async)`, 'op');
  }
  return outputsWith(desc, inputs, opts);
}

/**
 * {@link runOutputs} for any op with named outputs, NMS's included: outputs whose length depends on
 * the data are cut to it, once their 4-byte count is read back (the rows stay on the GPU).
 *
 * @example
 * const { keep } = await runOutputsAsync('nms', { boxes, scores }, { iouThreshold: 0.5 });
 */
export async function runOutputsAsync(op: string | OpDescriptor, inputs: Record<string, tf.Tensor | undefined>, opts: TfLossOptions = {}): Promise<TfOutputs> {
  return outputsCounted(getOp(op), inputs, opts);
}

function outputsWith(desc: OpDescriptor, inputs: Record<string, tf.Tensor | undefined>, opts: unknown, fixed?: Readonly<Record<string, unknown>>, where?: string): TfOutputs {
  if (!desc.outputs) throw new DetlossError('invalid_param', `${desc.name}: has no named outputs (use runLoss)`, 'op');
  const { all, names, wantGrad, run } = prepareTf(desc, inputs, opts, fixed, where);
  // One call gives the loss, the gradients and the outputs together: run it here, and hand its
  // loss and gradients to customGrad (which records the gradient), so the outputs come from the
  // same call and stay in the caller's scope.
  const fw = run();
  const out: TfOutputs = { ...fw.outputs };
  if (!fw.value) {
    for (const g of Object.values(fw.grads)) g.dispose();
    return out;
  }
  if (!wantGrad) {
    out.loss = fw.value as tf.Scalar;
    return out;
  }
  const gradNames = names.filter((n) => fw.grads[n]);
  const f = tf.customGrad(((...args: unknown[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    save(gradNames.map((n) => fw.grads[n]));
    return {
      value: fw.value!,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        names.map((n) => {
          const i = gradNames.indexOf(n);
          return i < 0 ? tf.zerosLike(all[n]) : tf.mul(saved[i], tf.reshape(dy, []));
        }),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  out.loss = f(...names.map((n) => all[n])) as tf.Scalar;
  // customGrad kept clones of the gradients; these are not needed any more.
  for (const g of Object.values(fw.grads)) g.dispose();
  return out;
}

/**
 * {@link outputsWith} for an op whose outputs have a data-dependent length (NMS): each comes at its
 * capacity from the GPU, so the 4-byte count is awaited and each is cut to its rows.
 */
async function outputsCounted(desc: OpDescriptor, inputs: Record<string, tf.Tensor | undefined>, opts: unknown, fixed?: Readonly<Record<string, unknown>>, where?: string): Promise<TfOutputs> {
  const out = outputsWith(desc, inputs, opts, fixed, where);
  const counted = Object.entries(desc.outputs ?? {}).filter(([, spec]) => spec.count);
  if (!counted.length) return out;
  let rows: number;
  try {
    rows = (await (out[counted[0][1].count!] as tf.Tensor).data())[0];
    // The call's verdict first (a value check on the GPU, check: true): a refused call gives no
    // tensors, and its count is not a number of rows.
    await flush();
    const capacity = (out[counted[0][0]] as tf.Tensor).shape[0];
    if (!(Number.isInteger(rows) && rows >= 0 && rows <= capacity)) throw new Error(`detloss: ${desc.name} wrote ${rows} rows, past its capacity ${capacity}`);
  } catch (e) {
    for (const t of Object.values(out)) (t as tf.Tensor).dispose();
    throw e;
  }
  for (const [k] of counted) {
    const t = out[k] as tf.Tensor;
    if (t.shape[0] === rows) continue;
    out[k] = tf.slice(t, 0, rows);
    t.dispose();
  }
  return out;
}

/** What `talAssign` and `yoloLoss` return, by op. */
export interface TfOutputsByOp {
  /** The assignment of every anchor: ops.md, `tal_assign`'s outputs. */
  tal_assign: { labels: tf.Tensor2D; boxes: tf.Tensor3D; targetScores: tf.Tensor3D; foreground: tf.Tensor2D; gtIndex: tf.Tensor2D };
  /** The total (with its gradient to predDist and predScores) and `[box, cls, dfl]` (no gradient). */
  yolo_detection_loss: { loss: tf.Scalar; components: tf.Tensor1D };
}
/** The results of an op with named outputs. */
export type TfOutputsOf<N> = N extends keyof TfOutputsByOp ? TfOutputsByOp[N] : TfOutputs;
/** The options of `talAssign` and `yoloLoss`: the op's params and `grad`, `check` (no reduction, weight or avgFactor). */
export type TfOutputsOptions<K extends WrapperName> = Flat<WrapperParams<K> & { grad?: boolean; check?: boolean }>;

/** The options of TF.js wrapper `K`: {@link TfLossOptions} with its op's params typed (a fixed one only at its fixed value). */
export type TfWrapperOptions<K extends WrapperName> = Flat<TfLossOptions & WrapperParams<K> & OptionalInputs<K, tf.Tensor>>;

/**
 * The TF.js wrappers, one per entry of the catalogue (`src/catalogue.ts`), with the names every
 * surface shares: `tf.Tensor`s in, positional as the op names its inputs; a tensor out, with a
 * custom gradient for each differentiable input (see {@link runLoss}; KFIoU's `predDelta`, an
 * option, gets one too). `pairwiseIou` and `pairwiseProbiou` have none.
 */
export type TfWrappers = { [K in keyof WrapperTable]: TfWrapper<K> };

/** A TF.js tensor of rank `R` (0 is `tf.Scalar`, 1 `tf.Tensor1D`, 2 `tf.Tensor2D`). */
type TensorOfRank<R extends 0 | 1 | 2> = R extends 0 ? tf.Scalar : R extends 1 ? tf.Tensor1D : tf.Tensor2D;
/** Wrapper `K`'s `'none'` output for a first input of rank `R`: that rank where its op is elementwise, else its op's output rank. */
type NoneResult<K extends WrapperName, R extends tf.Rank> = (typeof OP_NONE_RANK)[WrapperOp<K>] extends infer D ? (D extends 1 | 2 ? TensorOfRank<D> : tf.Tensor<R>) : never;
type Args<K extends WrapperName, First, O> = WrapperArgs<K, First, tf.Tensor, tf.Tensor, O>;

/**
 * TF.js wrapper `K`, typed by its reduction. `'mean'`, `'sum'` and no reduction return a
 * `tf.Scalar` (so `optimizer.minimize(() => ciou(pred, gt))` compiles as it is); `'none'` returns
 * the unreduced loss at its rank (the first input's where the op is elementwise: `l1` on a
 * `tf.Tensor2D` gives a `tf.Tensor2D`); a reduction known only at run time returns a `tf.Tensor`.
 * The ranking losses take `'mean'` only (another is refused when called): `apLoss` gives a
 * `tf.Scalar`, `rankSort` its `[ranking, sorting]` as a `tf.Tensor1D`. `pairwiseIou` and `pairwiseProbiou` give their `[n, m]` matrix, a `tf.Tensor2D`.
 */
export type TfWrapper<K extends WrapperName> =
  IsCounted<K> extends true
    ? (...args: Args<K, tf.Tensor, TfOutputsOptions<K>>) => Promise<TfOutputsOf<WrapperOp<K>>>
    : HasOutputs<K> extends true
    ? (...args: Args<K, tf.Tensor, TfOutputsOptions<K>>) => TfOutputsOf<WrapperOp<K>>
    : IsMatrix<K> extends true
    ? (...args: Args<K, tf.Tensor, TfWrapperOptions<K>>) => tf.Tensor2D
    : SelfReduced<K> extends true
      ? (...args: Args<K, tf.Tensor, TfWrapperOptions<K>>) => TensorOfRank<OpReducedRank<WrapperOp<K>>>
      : {
          (...args: Args<K, tf.Tensor, TfWrapperOptions<K> & { reduction?: 'mean' | 'sum' }>): tf.Scalar;
          <R extends tf.Rank>(...args: Required<Args<K, tf.Tensor<R>, TfWrapperOptions<K> & { reduction: 'none' }>>): NoneResult<K, R>;
          (...args: Args<K, tf.Tensor, TfWrapperOptions<K>>): tf.Tensor;
        };

const TF_WRAPPERS = Object.fromEntries(
  wrappers().map((w) => {
    const desc = getOp(w.op);
    const fn = (...args: unknown[]): tf.Tensor | TfOutputs | Promise<TfOutputs> =>
      ('counted' in w && w.counted ? outputsCounted : w.result === 'outputs' ? outputsWith : runWith)(desc, positionalInputs<tf.Tensor | undefined>(w, args), optionsArg(w, args), w.fixed, w.name);
    Object.defineProperty(fn, 'name', { value: w.name });
    return [w.name, fn];
  }),
) as TfWrappers;

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
} = TF_WRAPPERS;

/**
 * The anchor centres and strides of a detection head as TF.js tensors (ultralytics' `make_anchors`;
 * see `makeAnchors` of the package root): `anchors` [a, 2] in grid units of each level (cell
 * centres 0.5, 1.5, ...), `strides` [a] in pixels, level after level, row-major within a level.
 * `sizes` are the levels' grids as `[h, w]`.
 *
 * @example
 * const { anchors, strides } = makeAnchors([[80, 80], [40, 40], [20, 20]], [8, 16, 32]);
 * const { loss, components } = yoloLoss(predDist, predScores, anchors, strides, gtLabels, gtBoxes, gtMask);
 */
export function makeAnchors(sizes: readonly (readonly [h: number, w: number])[], strides: readonly number[], offset = 0.5): { anchors: tf.Tensor2D; strides: tf.Tensor1D } {
  const h = makeHeadAnchors(sizes, strides, offset);
  return { anchors: tf.tensor2d(h.anchors, [h.count, 2]), strides: tf.tensor1d(h.strides) };
}

/**
 * The YOLO post-process of a detector's output tensor `[b, 4 + C, A]` (an exported ultralytics
 * model's, e.g. `[1, 84, 8400]`): decode, best class (or every class above the threshold with
 * `multiLabel`), class-aware NMS, at most `maxDet` per image, as ultralytics' `non_max_suppression`.
 * On the WebGPU backend the tensor stays on the GPU and the detections are read back once; on any
 * other backend the float64 reference runs on its data. The tensor is read when the call is made.
 *
 * @example
 * const { boxes, scores, classes, count } = await yoloNms(model.predict(image) as tf.Tensor3D, { confThreshold: 0.25 });
 */
export async function yoloNms(output: tf.Tensor, options: YoloNmsOptions = {}): Promise<YoloDetections> {
  if (!(output instanceof tf.Tensor)) throw new DetlossError('invalid_value', 'yolo_nms: output must be a tf.Tensor', 'output');
  if (output.dtype !== 'float32') throw new DetlossError('wrong_dtype', `yolo_nms: output must be float32, got ${output.dtype}`, 'output');
  const backend = tf.backend();
  if (!isWebGpuBackend(backend)) {
    const data = output.dataSync() as Float32Array;
    return detectionsOf(runCpu(yoloNmsOp, { output: { data, shape: output.shape } }, options as Record<string, unknown>) as never);
  }
  throwFailure(backend.device);
  const s = stateFor(backend);
  // A copy of the tensor's data now, on TF.js's queue: later writes to the tensor do not reach it.
  const refs: tf.Tensor[] = [];
  try {
    const buffer = gpuCopy(backend, output, refs);
    return detectionsOf(await s.dl.run(yoloNmsOp as never, { output: { buffer, shape: output.shape, dtype: 'f32' } } as never, options as never));
  } finally {
    for (const r of refs) r.dispose();
  }
}

// ---- Drop-ins for tf.image's NMS ----

/**
 * A `tf.image` NMS argument as a float32 tensor. `tf.image` takes any numeric tensor (int32, bool
 * too) or a TensorLike (nested arrays, typed arrays): a TensorLike becomes a tensor here, another
 * dtype is cast on the backend (no download), and both go in `made` to be disposed after the call.
 */
function nmsInput(fn: string, name: 'boxes' | 'scores', x: unknown, made: tf.Tensor[]): tf.Tensor {
  if (x === undefined || x === null) throw new DetlossError('missing_input', `${fn}: ${name} is required (a tf.Tensor or a TensorLike)`, name);
  let t: tf.Tensor;
  if (x instanceof tf.Tensor) {
    // TF.js's own throwIfDisposed() is a plain Error: refused here by name first.
    if (x.isDisposed) throw new DetlossError('invalid_value', `${fn}: ${name} is a disposed tf.Tensor`, name);
    t = x;
  } else {
    try {
      t = tf.tensor(x as tf.TensorLike);
    } catch (e) {
      throw new DetlossError('invalid_value', `${fn}: ${name} must be a tf.Tensor or a TensorLike (${String((e as Error)?.message ?? e)})`, name);
    }
    made.push(t);
  }
  if (t.dtype === 'float32') return t;
  if (t.dtype === 'string' || t.dtype === 'complex64') throw new DetlossError('wrong_dtype', `${fn}: ${name} must be a numeric tensor, got ${t.dtype}`, name);
  const c = tf.cast(t, 'float32');
  made.push(c);
  return c;
}

/**
 * `maxOutputSize` as `tf.image` reads it (`Math.min(maxOutputSize, numBoxes)`): a number, where
 * +Infinity means no limit and -Infinity none selected. A number that is not an integer (NaN,
 * 2.5) is refused by the op, by name.
 */
function tfMaxOutputSize(fn: string, v: unknown): unknown {
  if (typeof v !== 'number') throw new DetlossError('invalid_param', `${fn}: maxOutputSize must be an integer (a number), got ${v === undefined ? 'none' : typeof v}`, 'maxOutputSize');
  return v === Infinity ? LIMIT_MAX : v === -Infinity ? 0 : v;
}

/** `nms_tfjs` on the drop-ins' arguments: its outputs cut to their rows, the others disposed. */
async function imageNms(fn: string, boxes: unknown, scores: unknown, params: Record<string, unknown>): Promise<{ selectedIndices: tf.Tensor1D; selectedScores: tf.Tensor1D }> {
  const made: tf.Tensor[] = [];
  let call: Promise<TfOutputs>;
  try {
    const b = nmsInput(fn, 'boxes', boxes, made);
    const s = nmsInput(fn, 'scores', scores, made);
    // null is tf.image's default too; undefined leaves the op's default (which is tf.image's).
    const given: Record<string, unknown> = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, v === null ? undefined : v]));
    given.maxOutputSize = tfMaxOutputSize(fn, params.maxOutputSize);
    // Runs to its first await here: the inputs are read (on WebGPU, copied on the GPU) and the
    // work submitted before this returns, so the tensors made above can go.
    call = outputsCounted(getOp('nms_tfjs'), { boxes: b, scores: s }, given, undefined, fn);
  } finally {
    for (const t of made) t.dispose();
  }
  const out = await call;
  for (const [k, t] of Object.entries(out)) if (k !== 'selectedIndices' && k !== 'selectedScores') (t as tf.Tensor).dispose();
  return { selectedIndices: out.selectedIndices as tf.Tensor1D, selectedScores: out.selectedScores as tf.Tensor1D };
}

/**
 * `tf.image.nonMaxSuppressionAsync` on the GPU: the same arguments, defaults and result (the
 * selected indices, an int32 `tf.Tensor1D`), computed where the tensors are. On TF.js's WebGPU
 * backend the boxes and scores are not downloaded; only the 4-byte count of selected boxes is read
 * back, to give the result its length. On other backends it runs the CPU reference.
 *
 * Boxes are `[numBoxes, 4]` (`[y1, x1, y2, x2]`, any diagonal pair of corners), scores
 * `[numBoxes]`; tensors of any numeric dtype or TensorLikes, as `tf.image` takes. Bad arguments are
 * `DetlossError`s naming the argument; `maxOutputSize` must be an integer (or ±Infinity), and a NaN
 * threshold is refused.
 *
 * @example
 * const keep = await nonMaxSuppression(boxes, scores, 100, 0.5, 0.25); // tf.Tensor1D, int32
 */
export async function nonMaxSuppression(boxes: tf.Tensor2D | tf.TensorLike, scores: tf.Tensor1D | tf.TensorLike, maxOutputSize: number, iouThreshold?: number, scoreThreshold?: number): Promise<tf.Tensor1D> {
  const { selectedIndices, selectedScores } = await imageNms('nonMaxSuppression', boxes, scores, { maxOutputSize, iouThreshold, scoreThreshold });
  selectedScores.dispose();
  return selectedIndices;
}

/**
 * `tf.image.nonMaxSuppressionWithScoreAsync` on the GPU, Soft-NMS included (`softNmsSigma > 0`):
 * the same arguments, defaults (`iouThreshold` 0.5, `scoreThreshold` -Infinity, `softNmsSigma` 0)
 * and results (`selectedIndices` int32, `selectedScores` float32, both `tf.Tensor1D`). See
 * {@link nonMaxSuppression} for what is read back and what is refused.
 *
 * @example
 * const { selectedIndices, selectedScores } = await nonMaxSuppressionWithScore(boxes, scores, 100, 1, 0.05, 0.5);
 */
export async function nonMaxSuppressionWithScore(
  boxes: tf.Tensor2D | tf.TensorLike,
  scores: tf.Tensor1D | tf.TensorLike,
  maxOutputSize: number,
  iouThreshold?: number,
  scoreThreshold?: number,
  softNmsSigma?: number,
): Promise<{ selectedIndices: tf.Tensor1D; selectedScores: tf.Tensor1D }> {
  return imageNms('nonMaxSuppressionWithScore', boxes, scores, { maxOutputSize, iouThreshold, scoreThreshold, softNmsSigma });
}
