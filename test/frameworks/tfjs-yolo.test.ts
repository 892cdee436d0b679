// detloss/tfjs's talAssign, yoloLoss and makeAnchors on TF.js's WebGPU backend over Node's Dawn
// (bench/node-globals.ts installs navigator.gpu before the backend registers), and on its CPU
// backend (the fallback: download, cpu.run, upload): the fixtures' numbers, the gradients TF.js
// records for both predictions, int32 outputs, and a training step inside optimizer.minimize.
import '../../bench/node-globals';
import '@tensorflow/tfjs-backend-webgpu';
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import '../helpers/tfjs-quiet';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { compareCase, parseFixtures, type FixtureCase } from '../../src/fixtures';
import * as dt from '../../src/frameworks/tfjs';
import { makeAnchors } from '../../src/ops/anchors';

const cases = parseFixtures(readFileSync(new URL('../fixtures/tal.json', import.meta.url), 'utf8'), 'tal.json');
const yolo = cases.filter((c) => c.op === 'yolo_detection_loss' && !c.inputs.gradOutput);
const tal = cases.filter((c) => c.op === 'tal_assign');

const make = (c: FixtureCase, k: string) => tf.tensor(c.inputs[k].data, c.inputs[k].shape, c.inputs[k].dtype === 'i32' ? 'int32' : 'float32');

/** yoloLoss on `backend`: the loss, components and both gradients as TF.js records them, read back. */
async function yoloOn(backend: string, c: FixtureCase) {
  await tf.setBackend(backend);
  const before = tf.memory().numTensors;
  const out = tf.tidy(() => {
    const t = Object.fromEntries(Object.keys(c.inputs).map((k) => [k, make(c, k)]));
    let components: tf.Tensor | undefined;
    const f = (predDist: tf.Tensor, predScores: tf.Tensor) => {
      const r = dt.yoloLoss(predDist, predScores, t.anchors as tf.Tensor2D, t.strides as tf.Tensor1D, t.gtLabels, t.gtBoxes, t.gtMask, c.params);
      components = tf.keep(r.components);
      return r.loss;
    };
    const { value, grads } = tf.valueAndGrads(f)([t.predDist, t.predScores]);
    return { value, grads, components: components! };
  });
  const result = {
    loss: Array.from(await out.value.data()),
    grad: { predDist: Array.from(await out.grads[0].data()), predScores: Array.from(await out.grads[1].data()) },
    outputs: { components: Array.from(await out.components.data()) },
    rank: out.value.rank,
  };
  tf.dispose([out.value, ...out.grads, out.components]);
  // Nothing left behind: every tensor of the call was disposed or returned.
  expect(tf.memory().numTensors).toBe(before);
  return result;
}

for (const backend of ['webgpu', 'cpu']) {
  describe(`detloss/tfjs yoloLoss and talAssign on the ${backend} backend`, () => {
    test.each(yolo.map((c) => [c.name, c] as const))('%s: loss, components and the gradients TF.js records equal the fixture', async (_n, c) => {
      const got = await yoloOn(backend, c);
      expect(got.rank).toBe(0);
      const cmp = compareCase(c, got);
      expect(cmp.detail ?? 'ok').toBe('ok');
      await dt.flush();
    });

    test.each(tal.map((c) => [c.name, c] as const))('%s: talAssign gives every output, int32 ones exactly', async (_n, c) => {
      await tf.setBackend(backend);
      const t = Object.fromEntries(Object.keys(c.inputs).map((k) => [k, make(c, k)]));
      const r = dt.talAssign(t.scores, t.predBoxes, t.anchors, t.gtLabels, t.gtBoxes, t.gtMask, c.params);
      const outputs: Record<string, number[]> = {};
      const outputShapes: Record<string, number[]> = {};
      for (const [k, v] of Object.entries(r) as [string, tf.Tensor][]) {
        expect(v.dtype, k).toBe(c.expected.outputs![k].dtype === 'i32' ? 'int32' : 'float32');
        outputs[k] = Array.from(await v.data());
        outputShapes[k] = v.shape;
      }
      expect(Object.keys(r).sort()).toEqual(Object.keys(c.expected.outputs!).sort());
      const cmp = compareCase(c, { loss: [], grad: {}, outputs, outputShapes });
      expect(cmp.detail ?? 'ok').toBe('ok');
      tf.dispose([...Object.values(t), ...Object.values(r)]);
      await dt.flush();
    });
  });
}

describe('training with yoloLoss', () => {
  test('makeAnchors gives ultralytics make_anchors layout, as tensors', async () => {
    const { anchors, strides } = dt.makeAnchors([[2, 3], [1, 1]], [8, 16]);
    expect(anchors.shape).toEqual([7, 2]);
    expect(Array.from(await anchors.data())).toEqual([0.5, 0.5, 1.5, 0.5, 2.5, 0.5, 0.5, 1.5, 1.5, 1.5, 2.5, 1.5, 0.5, 0.5]);
    expect(Array.from(await strides.data())).toEqual([8, 8, 8, 8, 8, 8, 16]);
    const h = makeAnchors([[2, 3], [1, 1]], [8, 16], 0);
    expect(Array.from(h.anchors.slice(0, 4))).toEqual([0, 0, 1, 0]);
    tf.dispose([anchors, strides]);
  });

  test('optimizer.minimize with yoloLoss lowers the loss on the WebGPU backend, leaks no tensor, and the components come from the same call', async () => {
    await tf.setBackend('webgpu');
    const c = cases.find((x) => x.name === 'yolo_detection_loss/64px/B=2/C=5/R=16/M=6/crowded')!;
    const t = Object.fromEntries(Object.keys(c.inputs).map((k) => [k, make(c, k)]));
    const predDist = tf.variable(t.predDist);
    const predScores = tf.variable(t.predScores);
    const opt = tf.train.sgd(0.05);
    const losses: number[] = [];
    let count = 0;
    for (let step = 0; step < 6; step++) {
      let parts: tf.Tensor | undefined;
      const loss = opt.minimize(() => {
        const r = dt.yoloLoss(predDist, predScores, t.anchors as tf.Tensor2D, t.strides as tf.Tensor1D, t.gtLabels, t.gtBoxes, t.gtMask);
        parts = tf.keep(r.components);
        return r.loss;
      }, true)!;
      const [value] = await loss.data();
      const comps = Array.from(await parts!.data());
      // The total is b * (box + cls + dfl) of the same call.
      expect(value).toBeCloseTo(2 * comps.reduce((a, b) => a + b, 0), 4);
      losses.push(value);
      tf.dispose([loss, parts!]);
      if (step === 1) count = tf.memory().numTensors;
      if (step > 1) expect(tf.memory().numTensors).toBe(count);
    }
    expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
    tf.dispose([predDist, predScores, ...Object.values(t)]);
    await dt.flush();
  });

  test('grad: false gives the loss and components with no gradient; a reduction is refused by name', async () => {
    await tf.setBackend('webgpu');
    const c = yolo[0];
    const t = Object.fromEntries(Object.keys(c.inputs).map((k) => [k, make(c, k)]));
    const r = dt.yoloLoss(t.predDist, t.predScores, t.anchors as tf.Tensor2D, t.strides as tf.Tensor1D, t.gtLabels, t.gtBoxes, t.gtMask, { ...c.params, grad: false });
    expect(Math.abs((await r.loss.data())[0] - c.expected.loss!.data[0])).toBeLessThan(1e-3 * Math.abs(c.expected.loss!.data[0]));
    const call = () => dt.yoloLoss(t.predDist, t.predScores, t.anchors as tf.Tensor2D, t.strides as tf.Tensor1D, t.gtLabels, t.gtBoxes, t.gtMask, { reduction: 'sum' } as never);
    expect(call).toThrow(expect.objectContaining({ code: 'invalid_param', argument: 'reduction' }));
    tf.dispose([r.loss, r.components, ...Object.values(t)]);
    await dt.flush();
  });
});
