/**
 * The three ways the panel runs NMS on a scene, each timed the same way (`timed`: the median of RUNS
 * samples after a warm-up), and each returning the indices it kept:
 *
 *   gpu   detloss's `nms` on WebGPU (`dl.nms`): upload, the kernels, reading back the count and the kept indices.
 *   tfjs  `tf.image.nonMaxSuppressionAsync` on TF.js's backend, on tensors already there (as a model's outputs
 *         are): the call, which reads them back and runs NMS in JavaScript on the CPU, and reading the indices back.
 *   cpu   detloss's float64 CPU reference (`cpu.run('nms', ...)`), on the arrays as they are.
 *
 * `gpu` and `cpu` are one op (torchvision's semantics: a box goes when its IoU is `> iouThreshold`);
 * tf.image drops a box at `>=`. detloss's `nms_tfjs` is tf.image's algorithm, so `tfjsTwin` runs it
 * (on the GPU when there is one) on tf.image's inputs: its result must be tf.image's, index for index.
 */
import * as tf from '@tensorflow/tfjs-core';
import { cpu, type DetlossContext } from 'detloss';
import { classOffsetBoxes, type Scene } from './scene';

/** Timed samples per backend, after one warm-up call. */
export const RUNS = 5;
/** A sample lasts at least this long (calls are repeated), so that the browser's coarse clock still measures fast calls. */
const MIN_SAMPLE_MS = 10;

/** The settings of one NMS. */
export interface NmsSettings {
  iouThreshold: number;
  scoreThreshold: number;
  /** Boxes interact only within their class (torchvision's `batched_nms`). */
  classAware: boolean;
}

/** One backend's answer: the kept indices (decreasing score) and the median time of a call, in ms. */
export interface Run {
  keep: Int32Array;
  ms: number;
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * Times `call`: one warm-up call, then as many calls per sample as make it last MIN_SAMPLE_MS
 * (doubling), then the median of RUNS samples, per call. `prepare` makes each call's input outside
 * the clock (and `done` disposes of it), for what a call should not be charged with.
 */
async function timed<T>(call: (input: T) => Promise<Int32Array> | Int32Array, prepare: () => T, done: (input: T) => void = () => {}): Promise<Run> {
  let keep: Int32Array = new Int32Array(0);
  const sample = async (reps: number) => {
    const inputs = Array.from({ length: reps }, prepare);
    const t0 = performance.now();
    for (const input of inputs) keep = await call(input);
    const ms = performance.now() - t0;
    inputs.forEach(done);
    return ms;
  };
  await sample(1);
  let reps = 1;
  while ((await sample(reps)) < MIN_SAMPLE_MS && reps < 256) reps *= 2;
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) times.push((await sample(reps)) / reps);
  return { keep, ms: median(times) };
}

/** detloss's `nms` on the GPU from the arrays: the typed wrapper of `dl.run('nms', { boxes, scores, classes }, params)`. */
export function runGpu(dl: DetlossContext, s: Scene, o: NmsSettings): Promise<Run> {
  const options = { iouThreshold: o.iouThreshold, scoreThreshold: o.scoreThreshold, ...(o.classAware ? { classes: s.classes } : {}) };
  return timed(async () => (await dl.nms(s.boxes, s.scores, options)).outputs!.keep as Int32Array, () => undefined);
}

/** The same op on the float64 CPU reference. */
export function runCpu(s: Scene, o: NmsSettings): Promise<Run> {
  const inputs = o.classAware ? { boxes: s.boxes, scores: s.scores, classes: s.classes } : { boxes: s.boxes, scores: s.scores };
  const params = { iouThreshold: o.iouThreshold, scoreThreshold: o.scoreThreshold };
  return timed(() => cpu.run('nms', inputs, params).outputs!.keep as Int32Array, () => undefined);
}

/** The boxes tf.image is given: as they are, or shifted per class when class-aware (tf.image takes no classes). */
export const tfjsBoxes = (s: Scene, o: NmsSettings) => (o.classAware ? classOffsetBoxes(s.boxes, s.classes) : s.boxes);

/**
 * TF.js as after a model's forward pass: the boxes and scores are tensors on the backend (on WebGPU,
 * in GPU buffers: a kernel wrote them, here a multiplication by 1), made outside the clock. Timed:
 * `tf.image.nonMaxSuppressionAsync` with no output limit (n), which reads both back and runs NMS in
 * JavaScript, and reading the indices back. (A tensor made from an array alone stays on the CPU until a
 * kernel uses it, so the call would read nothing back.)
 */
export function runTfjs(s: Scene, o: NmsSettings): Promise<Run> {
  const boxes = tfjsBoxes(s, o);
  const prepare = () => tf.tidy(() => [tf.mul(tf.tensor2d(boxes, [s.n, 4]), 1), tf.mul(tf.tensor1d(s.scores), 1)] as [tf.Tensor2D, tf.Tensor1D]);
  return timed(
    async ([b, sc]) => {
      const picked = await tf.image.nonMaxSuppressionAsync(b, sc, s.n, o.iouThreshold, o.scoreThreshold);
      const keep = (await picked.data()) as Int32Array;
      picked.dispose();
      return keep;
    },
    prepare,
    (t) => tf.dispose(t),
  );
}

/** detloss's `nms_tfjs` (tf.image's algorithm) on tf.image's inputs: on the GPU when `dl` is given, else the CPU reference. Not timed. */
export async function tfjsTwin(dl: DetlossContext | undefined, s: Scene, o: NmsSettings): Promise<Int32Array> {
  const boxes = tfjsBoxes(s, o);
  const params = { maxOutputSize: s.n, iouThreshold: o.iouThreshold, scoreThreshold: o.scoreThreshold };
  const r = dl ? await dl.nmsTfjs(boxes, s.scores, params) : cpu.run('nms_tfjs', { boxes, scores: s.scores }, params);
  return r.outputs!.selectedIndices as Int32Array;
}
