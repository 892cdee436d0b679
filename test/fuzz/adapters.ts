/**
 * The framework adapters as fuzz surfaces: a share of the cases (drawn by index) also run through
 * detloss/tfjs, on TF.js's WebGPU backend and its own device, and through detloss/ort, on
 * gpu-buffer `ort.Tensor`s, and are held to `cpu.run` by the same rule as `dl.run`. A refusal must
 * be the reference's (on TF.js's webgpu backend a refusal of values on the GPU comes from
 * `flush()`, after the call returned NaN). Import '../../bench/node-globals' and
 * '@tensorflow/tfjs-backend-webgpu' before this module, and set the webgpu backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { createRequire } from 'node:module';
import * as o from '../../src/frameworks/ort';
import * as dt from '../../src/frameworks/tfjs';
import { OPS } from '../../src/ops/registry';
import { reflectShader } from '../../src/runtime/compile/reflect';
import type { FuzzCase, FuzzInput, HostData } from './cases';
import { planRecordFor } from './plans';
import type { Surface } from './runner';
import type { DetlossContext } from '../../src/api';

type Res = Awaited<ReturnType<Surface['run']>>;
type Tensorish = { data: HostData; shape: number[] };

/** One case in `every` goes through each adapter, at its own offset. */
const EVERY = 8;

/** An input as `{ data, shape }`, or undefined when tensors cannot express it (another dtype, a malformed shape). */
function tensorish(c: FuzzCase, name: string, v: FuzzInput | undefined): Tensorish | undefined {
  if (v === undefined) return undefined;
  const data = ArrayBuffer.isView(v) ? v : v.data;
  if (!(data instanceof Float32Array) && !(data instanceof Int32Array)) return undefined;
  let shape = ArrayBuffer.isView(v) ? [data.length] : v.shape;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0) || shape.reduce((a, b) => a * b, 1) !== data.length) return undefined;
  // A plain array of a rank-2 input ([n, 4] boxes, [n, c] logits): the shape its spec gives it.
  const spec = Object.hasOwn(OPS[c.op].inputs, name) ? OPS[c.op].inputs[name] : undefined;
  // Where the case's sizes do not give it (an invalid case's lengths), the core infers the shape
  // from the other inputs, and a tensor cannot say it: not a case for the adapters.
  if (ArrayBuffer.isView(v) && spec && spec.shape.length > 1) {
    const full = spec.shape.map((d) => (typeof d === 'number' ? d : c.dims[d]));
    if (!full.every((d) => Number.isSafeInteger(d)) || full.reduce((a, b) => a * b, 1) !== data.length) return undefined;
    shape = full;
  }
  return { data, shape };
}

/** Whether a case goes through an adapter: one in EVERY, by a hash of its index (ops rotate with the index). */
function drawn(index: number, offset: number): boolean {
  // murmur3's finaliser: every bit of the index reaches the low ones (index % 8 alone would pick 3 ops of 24).
  let h = index >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) % EVERY === offset;
}

/** Every input of the case as `{ data, shape }`, or undefined when one cannot be a tensor. */
function allTensorish(c: FuzzCase): Record<string, Tensorish> | undefined {
  const out: Record<string, Tensorish> = {};
  for (const [k, v] of Object.entries(c.inputs)) {
    if (v === undefined || v === null) continue;
    const t = tensorish(c, k, v);
    if (!t) return undefined;
    out[k] = t;
  }
  return out;
}

/**
 * The kernel the case runs binds no more storage buffers than the device allows (TF.js's device keeps
 * the default 8): the narrow module where the case gives none of the inputs it leaves out.
 */
function fits(c: FuzzCase, device: GPUDevice): boolean {
  const gpu = OPS[c.op].gpu;
  if (!gpu) return false;
  const narrow = gpu.narrow && gpu.narrow.without.every((name) => c.inputs[name] === undefined);
  return reflectShader(narrow ? gpu.narrow!.shader : gpu.shader).bindings.filter((b) => b.kind !== 'uniform').length <= device.limits.maxStorageBuffersPerShaderStage;
}

/** Whether an adapter on `device` can run the case at all: its kernel fits the device, its inputs can be tensors. */
export function expressible(c: FuzzCase, device: GPUDevice): boolean {
  return OPS[c.op].gpu !== undefined && fits(c, device) && allTensorish(c) !== undefined;
}

const reduced = (c: FuzzCase) => ((c.options.reduction as string | undefined) ?? (c.op === 'pairwise_iou' || c.op === 'pairwise_probiou' ? 'none' : 'mean')) !== 'none';
/** The ops with named outputs (tal_assign, yolo_detection_loss): their loss shape is the program's ([0]: none; []: a scalar). */
const outputsOp = (c: FuzzCase) => !!OPS[c.op].outputs;
const programShape = (c: FuzzCase) => [...(OPS[c.op].gpu?.program?.lossShape ?? [])];

/**
 * Registers (once) a second TF.js WebGPU backend, `name`, on a device of its own, with the
 * `webgpu` backend's limits and kernels: the cases with a tuned plan run there, so that the plans
 * detloss/tfjs keeps for its device (usePlans) never reach the cases run without one.
 */
export function registerTunedBackend(name = 'webgpu-tuned'): string {
  if (tf.findBackendFactory(name)) return name;
  tf.registerBackend(name, async () => {
    const adapter = (await navigator.gpu.requestAdapter())!;
    const l = adapter.limits;
    const device = await adapter.requestDevice({
      requiredFeatures: adapter.features.has('timestamp-query') ? ['timestamp-query'] : [],
      requiredLimits: {
        maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
        maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
        maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
        maxBufferSize: l.maxBufferSize,
        maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
        maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      },
    });
    return new WebGPUBackend(device, adapter.info as never);
  });
  for (const k of tf.getKernelsForBackend('webgpu')) tf.registerKernel({ ...k, backendName: name });
  return name;
}

/**
 * detloss/tfjs on the active TF.js backend (webgpu). The upstream gradient is TF.js's `dy`: the
 * case's `gradOutput`, shaped as the output (rank_sort's update rides on `dy[0]`). A case with a
 * tuned plan runs on the backend `tuned` (see {@link registerTunedBackend}), after `usePlans` with
 * a record of its plan, and reports the tuned plan the call ran.
 */
export function tfjsSurface(tuned?: string): Surface {
  const device = () => (tf.backend() as unknown as { device: GPUDevice }).device;
  return {
    name: 'tfjs',
    unitUpstream: true,
    takes: (c) => drawn(c.index, 3) && expressible(c, device()),
    async run(c): Promise<Res> {
      if (!c.plan || !tuned) return runTfjs(c);
      const active = tf.getBackend();
      await tf.setBackend(tuned);
      try {
        dt.usePlans(planRecordFor(c, dt.detlossFor().adapter));
        const res = await runTfjs(c);
        return { ...res, tunedPlan: dt.detlossFor().stats().lastCall?.tunedPlan ?? null };
      } finally {
        await tf.setBackend(active);
      }
    },
  };
}

/** A case through detloss/tfjs on the active backend (see {@link tfjsSurface}). */
async function runTfjs(c: FuzzCase): Promise<Res> {
  const ins = allTensorish(c)!;
  const made: tf.Tensor[] = [];
  const mk = (t: Tensorish) => {
    const x = tf.tensor(t.data, t.shape, t.data instanceof Int32Array ? 'int32' : 'float32');
    made.push(x);
    return x;
  };
  try {
    const tensors: Record<string, tf.Tensor> = {};
    let weight: tf.Tensor | undefined;
    for (const [k, t] of Object.entries(ins)) {
      if (k === 'gradOutput') continue;
      if (k === 'weight') weight = mk(t);
      else tensors[k] = mk(t);
    }
    const { gradOutput: _g, ...rest } = c.options as Record<string, unknown>;
    const options = { ...rest, ...(weight ? { weight } : {}) };
    const gradNames = c.options.grad === false ? [] : Object.keys(OPS[c.op].inputs).filter((k) => OPS[c.op].inputs[k].grad && tensors[k]);
    if (outputsOp(c)) return await tfjsOutputs(c, tensors, options, gradNames, ins.gradOutput, made);
    const f = (...xs: tf.Tensor[]) => dt.runLoss(c.op, { ...tensors, ...Object.fromEntries(gradNames.map((k, i) => [k, xs[i]])) }, options);
    let loss: tf.Tensor;
    const grad: Record<string, Float32Array> = {};
    if (gradNames.length === 0) {
      loss = f();
      made.push(loss);
    } else {
      const value = f(...gradNames.map((k) => tensors[k]));
      made.push(value);
      const up = ins.gradOutput;
      let dy: tf.Tensor | undefined;
      if (up) {
        const data = c.op === 'rank_sort' ? Float32Array.of(up.data[0], 0) : (up.data as Float32Array);
        dy = tf.tensor(data, value.shape);
        made.push(dy);
      }
      const gs = tf.grads((...xs: tf.Tensor[]) => f(...xs))(gradNames.map((k) => tensors[k]), dy);
      made.push(...gs);
      loss = value;
      for (const [i, k] of gradNames.entries()) grad[k] = (await gs[i].data()) as Float32Array;
    }
    const values = (await loss.data()) as Float32Array;
    // A value refused on the GPU (a label on the device that is no class, check: true) is thrown by flush().
    await dt.flush();
    const shape = reduced(c) ? (c.op === 'rank_sort' ? [2] : []) : cpuShape(c, values.length);
    return { loss: values, shape, grad };
  } finally {
    for (const t of made) t.dispose();
  }
}

/**
 * An op with named outputs through detloss/tfjs's runOutputs: the outputs read back (int32 as such),
 * and for yolo_detection_loss the loss with the gradients of its custom gradient (tf.grads, dy the
 * case's gradOutput). The tensors it makes go into `made`.
 */
async function tfjsOutputs(c: FuzzCase, tensors: Record<string, tf.Tensor>, options: Record<string, unknown>, gradNames: string[], up: Tensorish | undefined, made: tf.Tensor[]): Promise<Res> {
  if (counted(c)) return tfjsCounted(c, tensors, options, made);
  const call = (...xs: tf.Tensor[]) => dt.runOutputs(c.op, { ...tensors, ...Object.fromEntries(gradNames.map((k, i) => [k, xs[i]])) }, options as never);
  const out = call(...gradNames.map((k) => tensors[k]));
  made.push(...Object.values(out));
  const { loss, ...named } = out;
  const outputs: Record<string, ArrayLike<number>> = {};
  for (const [k, t] of Object.entries(named)) outputs[k] = (await t.data()) as Float32Array | Int32Array;
  const grad: Record<string, Float32Array> = {};
  if (loss && gradNames.length) {
    const dy = up ? tf.tensor(up.data[0], []) : undefined;
    if (dy) made.push(dy);
    // (the outputs of the calls tf.grads makes are its own; only the loss is differentiated)
    const gs = tf.grads((...xs: tf.Tensor[]) => call(...xs).loss!)(gradNames.map((k) => tensors[k]), dy);
    made.push(...gs);
    for (const [i, k] of gradNames.entries()) grad[k] = (await gs[i].data()) as Float32Array;
  }
  const values = loss ? ((await loss.data()) as Float32Array) : new Float32Array(0);
  await dt.flush();
  return { loss: values, shape: programShape(c), grad, outputs };
}

/** Whether an op's outputs have a data-dependent length (NMS): they come with a count. */
const counted = (c: FuzzCase) => Object.values(OPS[c.op].outputs ?? {}).some((spec) => spec.count);
/** Each NMS op's wrapper of the catalogue (src/catalogue.ts), the same name on every surface. */
const WRAPPER: Record<string, string> = { nms: 'nms', nms_onnx: 'nmsOnnx', nms_tfjs: 'nmsTfjs' };

/**
 * An op whose outputs have a data-dependent length (NMS) through detloss/tfjs: the synchronous
 * runOutputs refuses it, so by the async path, which awaits the 4-byte count and cuts each output
 * to its rows: runOutputsAsync for even indices, the op's wrapper (its optional inputs, `classes`,
 * among the options) for odd ones. Every output read back (int32 as such).
 */
async function tfjsCounted(c: FuzzCase, tensors: Record<string, tf.Tensor>, options: Record<string, unknown>, made: tf.Tensor[]): Promise<Res> {
  let out: Record<string, tf.Tensor | undefined>;
  if (c.index % 2 === 0) out = await dt.runOutputsAsync(c.op, tensors, options as never);
  else {
    const { boxes, scores, ...rest } = tensors;
    const wrapper = (dt as unknown as Record<string, (...a: unknown[]) => Promise<Record<string, tf.Tensor>>>)[WRAPPER[c.op]];
    out = await wrapper(boxes, scores, { ...options, ...rest });
  }
  made.push(...(Object.values(out).filter(Boolean) as tf.Tensor[]));
  const { loss, ...named } = out;
  const outputs: Record<string, ArrayLike<number>> = {};
  for (const [k, t] of Object.entries(named)) outputs[k] = (await t!.data()) as Float32Array | Int32Array;
  await dt.flush();
  return { loss: loss ? ((await loss.data()) as Float32Array) : new Float32Array(0), shape: programShape(c), grad: {}, outputs };
}

/** The 'none' shape of the reference (TF.js keeps the prediction's shape for element-wise ops; the runner compares the core's). */
function cpuShape(c: FuzzCase, length: number): number[] {
  if (c.op === 'pairwise_iou' || c.op === 'pairwise_probiou') return [c.dims.n, c.dims.m];
  const out = OPS[c.op].output;
  if (out.length === 1) return [length];
  return out.map((d) => (typeof d === 'number' ? d : c.dims[d]));
}

interface OrtTensorClass {
  fromGpuBuffer(buffer: GPUBuffer, options: { dataType: string; dims: readonly number[] }): o.OrtTensor;
}
type Downloadable = o.OrtTensor & { getData(release?: boolean): Promise<Float32Array> };

/**
 * detloss/ort on gpu-buffer tensors of `base`; weight and gradOutput go as tensors too. A case with
 * a tuned plan runs on `tuned` (another device, so that the plans its ORT context keeps never reach
 * the cases run without one), after `detlossFor(tuned, { plans })` with a record of its plan, and
 * reports the tuned plan the call ran.
 */
export function ortSurface(base: GPUDevice, tuned?: GPUDevice): Surface {
  const ort = createRequire(import.meta.url)('onnxruntime-web') as { Tensor: OrtTensorClass };
  return {
    name: 'ort',
    takes: (c) => drawn(c.index, 6) && expressible(c, base),
    async run(c): Promise<Res> {
      if (!c.plan || !tuned) return runOrt(c, base);
      const { adapter } = (await o.detlossFor(tuned)).context;
      const dl = await o.detlossFor(tuned, { plans: planRecordFor(c, adapter) });
      const res = await runOrt(c, tuned);
      return { ...res, tunedPlan: dl.context.stats().lastCall?.tunedPlan ?? null };
    },
  };

  /** A case through detloss/ort's free functions on `device`'s context. */
  async function runOrt(c: FuzzCase, device: GPUDevice): Promise<Res> {
    const ins = allTensorish(c)!;
    const buffers: GPUBuffer[] = [];
    const mk = (t: Tensorish) => {
      const buffer = device.createBuffer({ size: Math.max(16, Math.ceil(t.data.byteLength / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
      device.queue.writeBuffer(buffer, 0, t.data.buffer as ArrayBuffer, t.data.byteOffset, t.data.byteLength);
      buffers.push(buffer);
      return ort.Tensor.fromGpuBuffer(buffer, { dataType: t.data instanceof Int32Array ? 'int32' : 'float32', dims: t.shape });
    };
    try {
      const tensors: Record<string, o.OrtTensor> = {};
      const extra: Record<string, o.OrtTensor> = {};
      for (const [k, t] of Object.entries(ins)) (k === 'weight' || k === 'gradOutput' ? extra : tensors)[k] = mk(t);
      if (counted(c) && c.index % 2 === 1) {
        // NMS by its free wrapper (its optional inputs among the options) for odd indices: the
        // outputs' rows are their count's, and the tensors stay on the GPU
        const { boxes, scores, ...rest } = tensors;
        const wrapper = (o as unknown as Record<string, (...a: unknown[]) => Promise<Record<string, o.OrtTensor>>>)[WRAPPER[c.op]];
        const w = await wrapper(boxes, scores, { ...c.options, ...rest, ...extra, device });
        const outputs = Object.fromEntries(await Promise.all(Object.entries(w).map(async ([k, t]) => [k, await (t as Downloadable).getData(true)] as const)));
        return { loss: new Float32Array(0), shape: programShape(c), grad: {}, outputs };
      }
      const r = await o.runLoss(c.op as never, tensors as never, { ...c.options, ...extra, device } as never);
      const loss = await (r.loss as Downloadable).getData(true);
      const grad: Record<string, Float32Array> = {};
      for (const [k, g] of Object.entries(r.grad)) grad[k] = await (g as Downloadable).getData(true);
      // the named outputs (int32 read as such)
      const named = r.outputs ? { outputs: Object.fromEntries(await Promise.all(Object.entries(r.outputs).map(async ([k, t]) => [k, await (t as Downloadable).getData(true)] as const))) } : {};
      if (outputsOp(c)) return { loss, shape: programShape(c), grad, ...named };
      // ORT keeps the leading dims of the inputs in the 'none' shape; the runner compares the core's.
      return { loss, shape: reduced(c) ? (c.op === 'rank_sort' ? [2] : []) : cpuShape(c, loss.length), grad };
    } finally {
      for (const b of buffers) b.destroy();
    }
  }
}

/** Copies `bytes` of a buffer back to the host. */
async function readBack(device: GPUDevice, buffer: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
  if (bytes === 0) return new ArrayBuffer(0);
  const staging = device.createBuffer({ size: Math.ceil(bytes / 4) * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  try {
    const enc = device.createCommandEncoder();
    enc.copyBufferToBuffer(buffer, 0, staging, 0, Math.ceil(bytes / 4) * 4);
    device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    return staging.getMappedRange().slice(0, bytes);
  } finally {
    staging.destroy();
  }
}

/**
 * `runResident` on GPU buffers of the context a case runs on, for the ops whose outputs have a
 * data-dependent length (NMS; one case in four): each such output comes at its capacity
 * (`outputShapes`), with the number of rows written in `outputs.count`; the count is read, held to
 * the capacity, and the rows it names read back (int32 as such). (The other ops reach
 * `runResident` through detloss/ort.)
 */
export function residentSurface(pick: (c: FuzzCase) => DetlossContext): Surface {
  return {
    name: 'resident',
    takes: (c) => counted(c) && (drawn(c.index, 0) || drawn(c.index, 4)) && allTensorish(c) !== undefined,
    async run(c): Promise<Res> {
      const dl = pick(c);
      const ins = allTensorish(c)!;
      const buffers: GPUBuffer[] = [];
      const inputs: Record<string, { buffer: GPUBuffer; shape: number[]; dtype: 'f32' | 'i32' }> = {};
      for (const [k, t] of Object.entries(ins)) {
        const buffer = dl.device.createBuffer({ size: Math.max(16, Math.ceil(t.data.byteLength / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
        dl.device.queue.writeBuffer(buffer, 0, t.data.buffer as ArrayBuffer, t.data.byteOffset, t.data.byteLength);
        buffers.push(buffer);
        inputs[k] = { buffer, shape: t.shape, dtype: t.data instanceof Int32Array ? 'i32' : 'f32' };
      }
      try {
        const r = await dl.runResident(c.op as never, inputs as never, c.options as never);
        try {
          // a value checked on the GPU (check: true) is refused by flush(), not by the call
          await dl.flush();
          const outputs: Record<string, ArrayLike<number>> = {};
          const specs = OPS[c.op].outputs ?? {};
          const countOf = new Map<string, number>();
          for (const spec of Object.values(specs)) {
            if (spec.count && !countOf.has(spec.count)) countOf.set(spec.count, new Int32Array(await readBack(dl.device, r.outputs![spec.count], 4))[0]);
          }
          for (const [k, spec] of Object.entries(specs)) {
            const shape = r.outputShapes![k];
            const row = shape.slice(1).reduce((a, b) => a * b, 1);
            let rows = shape[0];
            if (spec.count) {
              rows = countOf.get(spec.count)!;
              // a count past the capacity would read rows never written
              if (!(rows >= 0 && rows <= shape[0])) throw new Error(`${c.op}: count ${rows} past the capacity ${shape[0]} of ${k}`);
            }
            const bytes = await readBack(dl.device, r.outputs![k], 4 * rows * row);
            outputs[k] = r.outputDtypes![k] === 'i32' ? new Int32Array(bytes) : new Float32Array(bytes);
          }
          const loss = new Float32Array(await readBack(dl.device, r.loss, r.lossBytes));
          return { loss, shape: r.shape, grad: {}, outputs };
        } finally {
          r.release();
        }
      } finally {
        for (const b of buffers) b.destroy();
      }
    },
  };
}
