/**
 * The benchmark page: holds one case's inputs on every contender's device and times one call
 * of a contender at a time, so the Node runner can interleave them (A B C A B C ...).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgpu';
import { cpu, createDetloss, type DetlossContext } from '../src/index';
import copyWgsl from './copy.wgsl?raw';
import { TFJS_LOSSES, tfjsPairwise, type Tensors } from './tfjs-losses';
import { rng } from '../demo/inputs';
import type { BenchCase, Contender } from '../src/bench';

type HostInputs = Record<string, Float32Array | Int32Array>;
interface Shaped {
  data: Float32Array | Int32Array;
  shape: number[];
}

let dl: DetlossContext;
/** The same device with a workgroup per row forced, to measure that choice against a thread per row. */
let dlRows: DetlossContext;
let state:
  | {
      c: BenchCase;
      host: Record<string, Shaped>;
      gpu: Record<string, { buffer: GPUBuffer; shape: number[] }>;
      /** detloss's loss and gradient, which TF.js must match before it is timed. */
      mine: { loss: Float32Array; grad?: Float32Array };
      tfw?: Tensors;
      tfc?: Tensors;
      copy: { pipeline: GPUComputePipeline; bind: GPUBindGroup; grid: [number, number]; buffers: GPUBuffer[] };
      bytes: { read: number; write: number };
    }
  | undefined;
let dispatchCount = 0;

// Count dispatches of everything in the page (detloss and TF.js alike), per call.
const proto = (globalThis as unknown as { GPUComputePassEncoder?: { prototype: GPUComputePassEncoder } }).GPUComputePassEncoder?.prototype;
if (proto) {
  const orig = proto.dispatchWorkgroups;
  proto.dispatchWorkgroups = function (this: GPUComputePassEncoder, ...a: Parameters<GPUComputePassEncoder['dispatchWorkgroups']>) {
    dispatchCount++;
    return orig.apply(this, a);
  };
}

function boxes(n: number, r: () => number, jitterOf?: Float32Array): Float32Array {
  const b = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) {
    if (jitterOf) {
      for (let k = 0; k < 4; k++) b[i * 4 + k] = jitterOf[i * 4 + k] + (r() - 0.5) * 8;
      if (b[i * 4 + 2] < b[i * 4] + 1) b[i * 4 + 2] = b[i * 4] + 1;
      if (b[i * 4 + 3] < b[i * 4 + 1] + 1) b[i * 4 + 3] = b[i * 4 + 1] + 1;
    } else {
      const x = r() * 500;
      const y = r() * 500;
      b.set([x, y, x + 4 + r() * 60, y + 4 + r() * 60], i * 4);
    }
  }
  return b;
}

/** The case's inputs, the same for every contender. */
function makeInputs(c: BenchCase): Record<string, Shaped> {
  const r = rng(1234 + c.n);
  const n = c.n;
  const w = c.width ?? 1;
  const floats = (len: number, lo: number, hi: number) => Float32Array.from({ length: len }, () => lo + r() * (hi - lo));
  switch (c.op) {
    case 'smooth_l1':
      return { pred: { data: floats(n, -3, 3), shape: [n] }, target: { data: floats(n, -3, 3), shape: [n] } };
    case 'iou_loss': {
      const target = boxes(n, r);
      return { pred: { data: boxes(n, r, target), shape: [n, 4] }, target: { data: target, shape: [n, 4] } };
    }
    case 'pairwise_iou':
      return { a: { data: boxes(n, r), shape: [n, 4] }, b: { data: boxes(n, r), shape: [n, 4] } };
    case 'sigmoid_focal':
      return { logits: { data: floats(n, -6, 6), shape: [n] }, targets: { data: Float32Array.from({ length: n }, () => (r() < 0.1 ? 1 : 0)), shape: [n] } };
    case 'quality_focal':
      return {
        logits: { data: floats(n * w, -6, 6), shape: [n, w] },
        labels: { data: Int32Array.from({ length: n }, () => (r() < 0.2 ? Math.floor(r() * w) : w)), shape: [n] },
        scores: { data: floats(n, 0, 1), shape: [n] },
      };
    case 'cross_entropy':
      return { logits: { data: floats(n * w, -6, 6), shape: [n, w] }, labels: { data: Int32Array.from({ length: n }, () => Math.floor(r() * w)), shape: [n] } };
    case 'distribution_focal':
      return { logits: { data: floats(n * w, -6, 6), shape: [n, w] }, targets: { data: floats(n, 0, w - 1.01), shape: [n] } };
  }
  throw new Error(`bench: no input generator for ${c.op}`);
}

const isPairwise = (c: BenchCase) => c.op === 'pairwise_iou';

function tfTensors(host: Record<string, Shaped>): Tensors {
  const out: Tensors = {};
  for (const [k, t] of Object.entries(host)) out[k] = t.data instanceof Int32Array ? tf.tensor(t.data, t.shape, 'int32') : tf.tensor(t.data, t.shape);
  return out;
}

/** One TF.js call: loss and gradients with respect to the prediction, read back. */
async function tfjsCall(c: BenchCase, t: Tensors): Promise<{ loss: Float32Array; grad?: Float32Array }> {
  if (isPairwise(c)) {
    const m = tf.tidy(() => tfjsPairwise(t.a, t.b, c.tfjs.split(':')[1] as 'iou' | 'giou'));
    const data = (await m.data()) as Float32Array;
    m.dispose();
    return { loss: data };
  }
  const f = TFJS_LOSSES[c.tfjs];
  const predName = 'pred' in t ? 'pred' : 'logits';
  const { value, grads } = tf.tidy(() => tf.valueAndGrads((x: tf.Tensor) => f({ ...t, [predName]: x }))([t[predName]]));
  const [loss, grad] = await Promise.all([value.data(), grads[0].data()]);
  value.dispose();
  grads[0].dispose();
  return { loss: loss as Float32Array, grad: grad as Float32Array };
}

function options(c: BenchCase): Record<string, unknown> & { reduction: 'none' | 'mean' } {
  if (isPairwise(c)) return { ...c.params, reduction: 'none' };
  // Cross-entropy's 'mean' divides by data (weights of the rows not ignored), which inputs already on
  // the device cannot give the host; here no row is ignored and there are no class weights, so it is n.
  if (c.op === 'cross_entropy') return { ...c.params, reduction: 'mean', avgFactor: c.n };
  return { ...c.params, reduction: 'mean' };
}

const relErr = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) / (1e-3 + Math.abs(b[i])));
  return m;
};

const api = {
  async init() {
    dl = await createDetloss();
    dlRows = await createDetloss({ device: dl.device, rowThreshold: 0 });
    await tf.setBackend('webgpu');
    await tf.ready();
    return { adapter: dl.adapter };
  },

  /** Uploads a case for detloss and the copy kernel, and counts detloss's dispatches. TF.js comes in prepareTfjs. */
  async prepare(c: BenchCase) {
    api.dispose();
    const host = makeInputs(c);
    const gpu: Record<string, { buffer: GPUBuffer; shape: number[] }> = {};
    let read = 0;
    for (const [k, t] of Object.entries(host)) {
      const buffer = dl.device.createBuffer({ size: Math.max(16, t.data.byteLength), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, label: `bench:${k}` });
      dl.device.queue.writeBuffer(buffer, 0, t.data.buffer as ArrayBuffer, t.data.byteOffset, t.data.byteLength);
      gpu[k] = { buffer, shape: t.shape };
      read += t.data.byteLength;
    }
    // The detloss result, and what the kernel writes.
    const mine = await dl.run(c.op, gpu, options(c));
    const detlossDispatches = dl.stats().lastCall?.dispatches ?? 0;
    const gradName = Object.keys(mine.grad)[0];
    const write = isPairwise(c) ? mine.loss.byteLength : (mine.grad[gradName]?.byteLength ?? 0) + 4;
    // The copy kernel over the same bytes.
    // vec4 granularity: sizes rounded up to 16 bytes.
    const nSrc = Math.ceil(read / 16);
    const nDst = Math.ceil(write / 16);
    const src = dl.device.createBuffer({ size: Math.max(16, nSrc * 16), usage: GPUBufferUsage.STORAGE });
    const dst = dl.device.createBuffer({ size: Math.max(16, nDst * 16), usage: GPUBufferUsage.STORAGE });
    const uni = dl.device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    const threads = Math.min(Math.ceil(nDst / 64) * 64, 16384);
    dl.device.queue.writeBuffer(uni, 0, new Uint32Array([nSrc, nDst, threads, 0]));
    const module = dl.device.createShaderModule({ code: copyWgsl });
    const pipeline = await dl.device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    const bind = dl.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: uni } },
        { binding: 1, resource: { buffer: src } },
        { binding: 2, resource: { buffer: dst } },
      ],
    });
    state = { c, host, gpu, mine: { loss: mine.loss, grad: mine.grad[gradName] }, copy: { pipeline, bind, grid: [threads / 64, 1], buffers: [src, dst, uni] }, bytes: { read, write } };
    return { detlossDispatches, bytes: state.bytes };
  },

  /**
   * Uploads the case for TF.js (and its CPU backend for N <= 1e5), checks its loss and gradient
   * against detloss's and counts its dispatches. Separate from prepare() so that the host can tell
   * when TF.js, not detloss, is what failed (at 1e6 x 80 its intermediates exhaust this machine).
   */
  async prepareTfjs() {
    const s = state!;
    const c = s.c;
    await tf.setBackend('webgpu');
    s.tfw = tfTensors(s.host);
    if (c.n <= 100_000) {
      await tf.setBackend('cpu');
      s.tfc = tfTensors(s.host);
      await tf.setBackend('webgpu');
    }
    dispatchCount = 0;
    // An error here (TF.js out of memory takes the GPU process, and detloss's device, with it)
    // reaches the host, which restarts the page and measures the case without TF.js.
    const peer = await tfjsCall(c, s.tfw);
    const tfjsDispatches = dispatchCount;
    const lossErr = relErr(peer.loss, s.mine.loss);
    const gradErr = peer.grad ? relErr(peer.grad, s.mine.grad ?? []) : 0;
    const ok = lossErr < 2e-3 && gradErr < 2e-3;
    const check = { ok, detail: `loss rel err ${lossErr.toExponential(1)}, grad rel err ${gradErr.toExponential(1)}` };
    return { check, tfjsDispatches, tfjsCpu: !!s.tfc };
  },

  /** Times one call of one contender, in milliseconds. */
  async time(who: Contender): Promise<number> {
    const s = state!;
    const c = s.c;
    const t0 = performance.now();
    switch (who) {
      case 'detloss-gpu':
        await dl.run(c.op, s.gpu, options(c));
        break;
      case 'detloss-gpu-rows':
        await dlRows.run(c.op, s.gpu, options(c));
        break;
      case 'detloss-gpu-resident': {
        const r = await dl.runResident(c.op, s.gpu, options(c));
        await dl.device.queue.onSubmittedWorkDone();
        r.release();
        break;
      }
      case 'detloss-cpu':
        cpu.run(c.op, s.host, options(c));
        break;
      case 'tfjs-webgpu':
        if (tf.getBackend() !== 'webgpu') await tf.setBackend('webgpu');
        await tfjsCall(c, s.tfw!);
        break;
      case 'tfjs-cpu':
        if (tf.getBackend() !== 'cpu') await tf.setBackend('cpu');
        await tfjsCall(c, s.tfc!);
        await tf.setBackend('webgpu');
        break;
      case 'copy': {
        const enc = dl.device.createCommandEncoder();
        const pass = enc.beginComputePass();
        pass.setPipeline(s.copy.pipeline);
        pass.setBindGroup(0, s.copy.bind);
        pass.dispatchWorkgroups(...s.copy.grid);
        pass.end();
        dl.device.queue.submit([enc.finish()]);
        await dl.device.queue.onSubmittedWorkDone();
        break;
      }
    }
    return performance.now() - t0;
  },

  /** The first call on a fresh device (pipeline compile included), and the first call after warmup(). */
  async firstCalls(c: BenchCase) {
    const s = state!;
    const host: HostInputs = Object.fromEntries(Object.entries(s.host).map(([k, t]) => [k, t.data]));
    const shaped = Object.fromEntries(Object.entries(s.host).map(([k, t]) => [k, { data: host[k], shape: t.shape }]));
    const cold = await createDetloss();
    let t0 = performance.now();
    await cold.run(c.op, shaped, options(c));
    const coldMs = performance.now() - t0;
    cold.destroy();
    cold.device.destroy();
    const warm = await createDetloss();
    await warm.warmup([{ op: c.op, options: c.params }]);
    t0 = performance.now();
    await warm.run(c.op, shaped, options(c));
    const warmMs = performance.now() - t0;
    warm.destroy();
    warm.device.destroy();
    return { coldMs, warmMs };
  },

  dispose() {
    if (!state) return;
    for (const t of Object.values(state.gpu)) t.buffer.destroy();
    for (const b of state.copy.buffers) b.destroy();
    if (state.tfw) tf.dispose(Object.values(state.tfw));
    if (state.tfc) tf.dispose(Object.values(state.tfc));
    dl.trim();
    dlRows.trim();
    state = undefined;
  },
};

(window as unknown as { bench: typeof api }).bench = api;
(window as unknown as { benchReady: boolean }).benchReady = true;
