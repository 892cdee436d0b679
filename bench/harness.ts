/**
 * The benchmark's in-process half, shared by the Chromium page (bench/page.ts) and the Node entry
 * (bench/node.ts): holds one case's inputs on every contender's device and times one call of a
 * contender at a time, so the runner (src/tools/bench/) can interleave them (A B C A B C ...).
 */
import * as tf from '@tensorflow/tfjs-core';
import { cpu, DetlossError, type DetlossContext, type DetlossOptions } from '../src/index';
import { copyKernel, type Timing } from './copy';
import { isNms, isPairwise, makeInputs, options, type Shaped } from './inputs';
import { tfjsNms, tfjsYoloNms } from './tfjs-nms';
import { talAssign as tfjsTalAssign, yoloLoss as tfjsYoloLoss } from '../demo/trainer/yolo-tfjs';
import { TFJS_LOSSES, tfjsPairwise, type Tensors } from './tfjs-losses';
import type { BenchCase, Contender } from '../src/tools/bench/cases';
import { apLossAuthorsLoop, rankSortAuthorsLoop } from './ranking-baseline';

export type { Timing } from './copy';

type HostInputs = Record<string, Float32Array | Int32Array>;

/** How many `runResident` calls the pipelined contender issues before its one wait. */
export const PIPELINE_DEPTH = 10;

/** What the page and the Node entry provide: where the devices come from. */
export interface HarnessHost {
  /**
   * The context the benchmark times (its device also runs the copy kernel), an optional second
   * one on the same device with a workgroup per row forced, and facts about the adapter.
   */
  open(): Promise<{ dl: DetlossContext; dlRows?: DetlossContext; adapter: Record<string, unknown>; runtime?: Record<string, unknown> }>;
  /** A context on a new device, for first-call timings; the harness destroys it and its device. */
  fresh(): Promise<DetlossContext>;
  /** Whether TF.js's CPU backend is registered. */
  tfjsCpu: boolean;
  /** TF.js's CPU backend is timed up to this N (rows, boxes, or n of an n x n pairwise). */
  tfjsCpuMaxN: number;
  /** Gives back what `open` took (devices); called by `close`. */
  close?(): void;
}

/** The plan and per-pass GPU times the runtime reports, where it does (absent: an older runtime). */
interface StatsExtras {
  plan?: unknown;
  lastCall?: { gpuMs?: unknown; passes?: unknown };
}

// Counts dispatches of everything in the process (detloss and TF.js alike), per call.
let dispatchCount = 0;
let counting = false;
function countDispatches(): void {
  if (counting) return;
  const proto = (globalThis as unknown as { GPUComputePassEncoder?: { prototype: GPUComputePassEncoder } }).GPUComputePassEncoder?.prototype;
  if (!proto) return;
  const orig = proto.dispatchWorkgroups;
  proto.dispatchWorkgroups = function (this: GPUComputePassEncoder, ...a: Parameters<GPUComputePassEncoder['dispatchWorkgroups']>) {
    dispatchCount++;
    return orig.apply(this, a);
  };
  counting = true;
}

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
  if (c.op === 'nms') return { loss: Float32Array.from(await tfjsNms(t.boxes, t.scores, c.params.iouThreshold as number)) };
  if (c.op === 'yolo_nms') {
    const r = await tfjsYoloNms(t.output);
    return { loss: r.scores, grad: Float32Array.from(r.classes) };
  }
  if (c.op === 'tal_assign') {
    // The assigner composed from TF.js ops (the training demo's baseline, tf.topk for the top k): its soft targets.
    const r = tfjsTalAssign(t.scores, t.predBoxes, t.anchors, t.gtLabels, t.gtBoxes, t.gtMask);
    const data = (await r.targetScores.data()) as Float32Array;
    tf.dispose(Object.values(r));
    return { loss: data };
  }
  if (c.op === 'yolo_detection_loss') {
    // v8DetectionLoss composed from TF.js ops (the training demo's baseline), differentiated by TF.js.
    const f = (d: tf.Tensor, s: tf.Tensor) => tfjsYoloLoss(d, s, t.anchors as tf.Tensor2D, t.strides as tf.Tensor1D, t.gtLabels, t.gtBoxes, t.gtMask).loss;
    const { value, grads } = tf.tidy(() => tf.valueAndGrads(f)([t.predDist, t.predScores]));
    const [loss, grad] = await Promise.all([value.data(), grads[0].data()]);
    tf.dispose([value, ...grads]);
    return { loss: loss as Float32Array, grad: grad as Float32Array };
  }
  const f = TFJS_LOSSES[c.tfjs];
  const predName = 'pred' in t ? 'pred' : 'logits';
  const { value, grads } = tf.tidy(() => tf.valueAndGrads((x: tf.Tensor) => f({ ...t, [predName]: x }))([t[predName]]));
  const [loss, grad] = await Promise.all([value.data(), grads[0].data()]);
  value.dispose();
  grads[0].dispose();
  return { loss: loss as Float32Array, grad: grad as Float32Array };
}

const relErr = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) / (1e-3 + Math.abs(b[i])));
  return m;
};

const extras = (dl: DetlossContext) => dl.stats() as unknown as StatsExtras;

/** The last call's GPU time in ms, where the runtime measured it; waits a few turns for a late readback. */
async function lastGpuMs(dl: DetlossContext): Promise<number | undefined> {
  for (let i = 0; i < 4; i++) {
    const g = extras(dl).lastCall?.gpuMs;
    if (typeof g === 'number' && Number.isFinite(g)) return g;
    if (!extras(dl).lastCall || !('gpuMs' in extras(dl).lastCall!) || i === 3) return undefined;
    await new Promise((r) => setTimeout(r, 0));
  }
  return undefined;
}

/**
 * A context with GPU timestamps where the runtime offers them (`timestamps: true`); a runtime that
 * does not know the option gets the same call without it.
 */
export async function createTimedDetloss(make: (o: DetlossOptions) => Promise<DetlossContext>, o: DetlossOptions): Promise<DetlossContext> {
  try {
    return await make({ ...o, timestamps: true } as DetlossOptions);
  } catch (e) {
    if (e instanceof DetlossError && e.argument === 'timestamps') return make(o);
    throw e;
  }
}

/** The benchmark's API as the runner calls it (page.evaluate in Chromium, a plain call in Node). */
export function createHarness(host: HarnessHost) {
  countDispatches();
  let dl: DetlossContext;
  /** The same device with a workgroup per row forced, to measure that choice against a thread per row. */
  let dlRows: DetlossContext | undefined;
  let state:
    | {
        c: BenchCase;
        host: Record<string, Shaped>;
        gpu: Record<string, { buffer: GPUBuffer; shape: number[] }>;
        /** detloss's loss and gradient, which TF.js must match before it is timed. */
        mine: { loss: Float32Array; grad?: Float32Array };
        tfw?: Tensors;
        tfc?: Tensors;
        copy: Awaited<ReturnType<typeof copyKernel>>;
        bytes: { read: number; write: number };
      }
    | undefined;

  const api = {
    async init() {
      const opened = await host.open();
      dl = opened.dl;
      dlRows = opened.dlRows;
      await tf.setBackend('webgpu');
      await tf.ready();
      return { adapter: opened.adapter, runtime: opened.runtime ?? {}, timestamps: dl.device.features.has('timestamp-query') };
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
      // The detloss result, and what the kernel writes; the bytes the pool allocates for the first
      // call and for the next one (the pool keeps the first call's buffers for the next).
      const pool0 = dl.stats().bytesAllocated;
      const mine = await dl.run(c.op, gpu, options(c));
      const pool1 = dl.stats().bytesAllocated;
      await dl.run(c.op, gpu, options(c));
      const allocated = { first: pool1 - pool0, later: dl.stats().bytesAllocated - pool1 };
      const detlossDispatches = dl.stats().lastCall?.dispatches ?? 0;
      const plan = extras(dl).plan;
      const gradName = Object.keys(mine.grad)[0];
      const outputs = Object.values(mine.outputs ?? {}).reduce((s, o) => s + o.byteLength, 0);
      const write = isPairwise(c) ? mine.loss.byteLength : isNms(c) ? outputs : Object.values(mine.grad).reduce((s, g) => s + g.byteLength, 0) + outputs + mine.loss.byteLength;
      const copy = await copyKernel(dl.device, read, write);
      // The assigner has no loss: its soft targets are what TF.js must match.
      // NMS: the kept indices, or the detections' scores and classes.
      const checked =
        c.op === 'tal_assign'
          ? { loss: mine.outputs!.targetScores as Float32Array }
          : c.op === 'nms'
            ? { loss: Float32Array.from(mine.outputs!.keep) }
            : c.op === 'yolo_nms'
              ? { loss: Float32Array.from(mine.outputs!.scores), grad: Float32Array.from(mine.outputs!.classes) }
              : { loss: mine.loss, grad: mine.grad[gradName] };
      state = { c, host, gpu, mine: checked, copy, bytes: { read, write } };
      return { detlossDispatches, bytes: state.bytes, allocated, plan: plan === undefined ? undefined : JSON.parse(JSON.stringify(plan)) };
    },

    /**
     * Uploads the case for TF.js (and its CPU backend for N up to the host's limit), checks its loss and gradient
     * against detloss's and counts its dispatches. Separate from prepare() so that the host can tell
     * when TF.js, not detloss, is what failed (at 1e6 x 80 its intermediates can exhaust a machine).
     */
    async prepareTfjs() {
      const s = state!;
      const c = s.c;
      await tf.setBackend('webgpu');
      s.tfw = tfTensors(s.host);
      if (host.tfjsCpu && c.n <= host.tfjsCpuMaxN) {
        await tf.setBackend('cpu');
        s.tfc = tfTensors(s.host);
        await tf.setBackend('webgpu');
      }
      dispatchCount = 0;
      // An error here (TF.js out of memory can take the GPU process, and detloss's device, with it)
      // reaches the host, which restarts and measures the case without TF.js.
      const peer = await tfjsCall(c, s.tfw);
      const tfjsDispatches = dispatchCount;
      const lossErr = relErr(peer.loss, s.mine.loss);
      const gradErr = peer.grad ? relErr(peer.grad, s.mine.grad ?? []) : 0;
      const ok = lossErr < 2e-3 && gradErr < 2e-3;
      const check = { ok, detail: `loss rel err ${lossErr.toExponential(1)}, grad rel err ${gradErr.toExponential(1)}` };
      return { check, tfjsDispatches, tfjsCpu: !!s.tfc, tfjsCpuMaxN: host.tfjsCpuMaxN };
    },

    /** Times one call of one contender: wall ms, and GPU ms where the device measured it. */
    async time(who: Contender): Promise<Timing> {
      const s = state!;
      const c = s.c;
      const t0 = performance.now();
      switch (who) {
        case 'detloss-gpu': {
          await dl.run(c.op, s.gpu, options(c));
          const ms = performance.now() - t0;
          return { ms, gpuMs: await lastGpuMs(dl) };
        }
        case 'detloss-gpu-rows':
          await dlRows!.run(c.op, s.gpu, options(c));
          break;
        case 'detloss-gpu-resident': {
          const r = await dl.runResident(c.op, s.gpu, options(c));
          await dl.device.queue.onSubmittedWorkDone();
          const ms = performance.now() - t0;
          r.release();
          return { ms, gpuMs: await lastGpuMs(dl) };
        }
        case 'detloss-gpu-pipelined': {
          // Calls issued back to back with one wait: what a training step that keeps its data on the
          // device sees, without a queue round trip per call. Time per call.
          const rs = [];
          for (let i = 0; i < PIPELINE_DEPTH; i++) rs.push(await dl.runResident(c.op, s.gpu, options(c)));
          await dl.device.queue.onSubmittedWorkDone();
          const ms = (performance.now() - t0) / PIPELINE_DEPTH;
          for (const r of rs) r.release();
          return { ms, gpuMs: await lastGpuMs(dl) };
        }
        case 'detloss-cpu':
          cpu.run(c.op, s.host, options(c));
          break;
        case 'tfjs-webgpu':
          if (tf.getBackend() !== 'webgpu') await tf.setBackend('webgpu');
          await tfjsCall(c, s.tfw!);
          break;
        case 'js-authors-loop': {
          const logits = s.host.logits.data as Float32Array;
          const targets = s.host.targets.data as Float32Array;
          if (c.op === 'ap_loss') apLossAuthorsLoop(logits, targets);
          else rankSortAuthorsLoop(logits, targets);
          break;
        }
        case 'tfjs-cpu':
          if (tf.getBackend() !== 'cpu') await tf.setBackend('cpu');
          await tfjsCall(c, s.tfc!);
          await tf.setBackend('webgpu');
          break;
        case 'copy':
          return s.copy.run();
      }
      return { ms: performance.now() - t0 };
    },

    /** The passes of detloss's last call with their GPU times, where the runtime measured them. */
    lastPasses(): { name: string; gpuMs: number }[] | undefined {
      const p = extras(dl).lastCall?.passes;
      return Array.isArray(p) ? JSON.parse(JSON.stringify(p)) : undefined;
    },

    /** The first call on a fresh device (pipeline compile included), and the first call after warmup(). */
    async firstCalls(c: BenchCase) {
      const s = state!;
      const hostIn: HostInputs = Object.fromEntries(Object.entries(s.host).map(([k, t]) => [k, t.data]));
      const shaped = Object.fromEntries(Object.entries(s.host).map(([k, t]) => [k, { data: hostIn[k], shape: t.shape }]));
      const cold = await host.fresh();
      let t0 = performance.now();
      await cold.run(c.op, shaped, options(c));
      const coldMs = performance.now() - t0;
      cold.destroy();
      cold.device.destroy();
      const warm = await host.fresh();
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
      state.copy.destroy();
      if (state.tfw) tf.dispose(Object.values(state.tfw));
      if (state.tfc) tf.dispose(Object.values(state.tfc));
      dl.trim();
      dlRows?.trim();
      state = undefined;
    },

    /** Frees the case and the contexts, and what the host opened. */
    close() {
      api.dispose();
      dlRows?.destroy();
      dl?.destroy();
      host.close?.();
    },
  };
  return api;
}

/** The API the runner drives. */
export type BenchApi = ReturnType<typeof createHarness>;
