// The trainer's TF.js-ops side of the YOLOv8 loss (demo/trainer/yolo-tfjs.ts), held against the
// golden fixtures of test/fixtures/tal.json on TF.js's CPU backend, and on its WebGPU backend (the
// one the demo trains on) over Node's Dawn: every `yolo_detection_loss` case (loss, components,
// and the gradients TF.js's autodiff gives to predDist and predScores), every `tal_assign` case
// (the assigner the loss is built on), and the anchors of make_anchors. This is what the demo's
// "TF.js ops" curve is made of, so it must be the same loss as detloss's.
import { readFileSync } from 'node:fs';
import '../../bench/node-globals';
import '@tensorflow/tfjs-backend-webgpu';
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import '../helpers/tfjs-quiet';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { describe, expect, test } from 'vitest';
import { makeAnchors, talAssign, yoloLoss } from '../../demo/trainer/yolo-tfjs';
import { compareCase, type FixtureCase, type Tolerance } from '../../src/fixtures';
import { note } from '../helpers/note';

interface Tensor {
  dtype: 'f32' | 'i32';
  shape: number[];
  data: number[];
}
interface Case {
  name: string;
  op: string;
  params: Record<string, number>;
  inputs: Record<string, Tensor>;
  expected: { loss?: { shape: number[]; data: number[] }; grad: Record<string, { shape: number[]; data: number[] }>; outputs: Record<string, Tensor> };
  tolerance: { loss?: Tolerance; grad?: Tolerance; outputs?: Record<string, Tolerance> };
}

const cases = (JSON.parse(readFileSync(new URL('../fixtures/tal.json', import.meta.url), 'utf8')) as { cases: Case[] }).cases;
const yoloCases = cases.filter((c) => c.op === 'yolo_detection_loss');
const talCases = cases.filter((c) => c.op === 'tal_assign');

const make = (t: Tensor) => tf.tensor(t.data, t.shape, t.dtype === 'i32' ? 'int32' : 'float32');

/** compareCase's two rules (element by element, and each array as a whole) on one f32 array. */
function compareArray(what: string, got: ArrayLike<number>, want: number[], tol: Tolerance) {
  const c = { name: what, op: what, params: {}, inputs: {}, expected: { loss: { shape: [want.length], data: want } }, tolerance: { loss: tol } } as FixtureCase;
  return compareCase(c, { loss: got, grad: {} });
}

test('the fixtures hold the cases this test expects', () => {
  expect(yoloCases.length).toBeGreaterThanOrEqual(13);
  expect(talCases.length).toBeGreaterThanOrEqual(18);
});

describe.each(['cpu', 'webgpu'])('the TF.js-ops YOLOv8 loss (demo/trainer/yolo-tfjs.ts) on the fixtures, TF.js %s backend', (backend) => {
  test('makeAnchors gives the fixtures\' anchors and strides (64 px: strides 8, 16, 32; 128 px likewise)', async () => {
    expect(await tf.setBackend(backend)).toBe(true);
    for (const size of [64, 128]) {
      const c = yoloCases.find((c) => c.name.startsWith(`yolo_detection_loss/${size}px/`))!;
      const strides = [8, 16, 32];
      const r = makeAnchors(strides.map((s) => [size / s, size / s] as const), strides);
      expect(Array.from(await r.anchors.data())).toEqual(c.inputs.anchors.data);
      expect(Array.from(await r.strides.data())).toEqual(c.inputs.strides.data);
      tf.dispose([r.anchors, r.strides]);
    }
  });

  test.each(yoloCases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    expect(await tf.setBackend(backend)).toBe(true);
    const before = tf.memory().numTensors;
    const t = Object.fromEntries(Object.entries(c.inputs).map(([k, v]) => [k, make(v)])) as Record<string, tf.Tensor>;
    const params = { topk: c.params.topk, alpha: c.params.alpha, beta: c.params.beta, boxGain: c.params.boxGain, clsGain: c.params.clsGain, dflGain: c.params.dflGain };
    const call = (pd: tf.Tensor, ps: tf.Tensor) => yoloLoss(pd, ps, t.anchors as tf.Tensor2D, t.strides as tf.Tensor1D, t.gtLabels, t.gtBoxes, t.gtMask, params);
    const { loss, components } = call(t.predDist, t.predScores);
    // The gradient of gradOutput * loss (1 without one), by TF.js's autodiff.
    const dy = t.gradOutput ?? tf.scalar(1);
    const [gDist, gScores] = tf.grads((pd: tf.Tensor, ps: tf.Tensor) => call(pd, ps).loss)([t.predDist, t.predScores], dy);
    const got = { loss: await loss.data(), components: await components.data(), grad: { predDist: await gDist.data(), predScores: await gScores.data() } };
    tf.dispose([loss, components, gDist, gScores, dy, ...Object.values(t)]);
    expect(tf.memory().numTensors, 'tensors left behind').toBe(before);

    const main = compareCase(c as unknown as FixtureCase, { loss: got.loss, grad: got.grad, outputs: { components: got.components } });
    const comps = compareArray('components', got.components, c.expected.outputs.components.data, c.tolerance.outputs!.components);
    const rel = (g: number, w: number) => Math.abs(g - w) / Math.max(Math.abs(w), 1e-30);
    note(
      `${backend}, ${c.name}: loss ${got.loss[0]} (want ${c.expected.loss!.data[0]}, rel ${rel(got.loss[0], c.expected.loss!.data[0]).toExponential(2)}); ` +
        `components [${Array.from(got.components).join(', ')}] (want [${c.expected.outputs.components.data.join(', ')}], max |err| ${comps.lossErr.toExponential(2)}); ` +
        `grad max |err| ${main.gradErr.toExponential(2)}, relative L2 ${main.l2Err.toExponential(2)}`,
    );
    expect(main.detail, 'loss and gradients').toBeUndefined();
    expect(comps.detail, 'components').toBeUndefined();
    // The brief's float32 bound on the loss, besides the fixture's own tolerance: rtol 1e-3.
    expect(rel(got.loss[0], c.expected.loss!.data[0])).toBeLessThanOrEqual(1e-3);
  });

  test.each(talCases.map((c) => [c.name, c] as const))('the assigner on %s', async (_name, c) => {
    expect(await tf.setBackend(backend)).toBe(true);
    const before = tf.memory().numTensors;
    const t = Object.fromEntries(Object.entries(c.inputs).map(([k, v]) => [k, make(v)])) as Record<string, tf.Tensor>;
    const a = talAssign(t.scores, t.predBoxes, t.anchors, t.gtLabels, t.gtBoxes, t.gtMask, { topk: c.params.topk, alpha: c.params.alpha, beta: c.params.beta, eps: c.params.eps });
    const got = Object.fromEntries(await Promise.all(Object.entries(a).map(async ([k, v]) => [k, Array.from(await v.data())]))) as Record<keyof typeof a, number[]>;
    tf.dispose([...Object.values(a), ...Object.values(t)]);
    expect(tf.memory().numTensors, 'tensors left behind').toBe(before);
    const want = c.expected.outputs;
    for (const k of ['labels', 'foreground', 'gtIndex'] as const) {
      expect(want[k].dtype).toBe('i32');
      expect(got[k], k).toEqual(want[k].data);
    }
    for (const k of ['boxes', 'targetScores'] as const) {
      const r = compareArray(k, got[k], want[k].data, c.tolerance.outputs![k]);
      expect(r.detail, k).toBeUndefined();
    }
  });
});
