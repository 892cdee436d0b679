// The benchmark's TF.js peers of the rotated-box losses (bench/tfjs-losses.ts: ultralytics' ProbIoU,
// mmrotate's KLD) compute what detloss computes, so that timing one against the other is fair:
// row by row, loss and gradient, on TF.js's CPU backend against the float64 reference, and the
// bench's own inputs ('mean', as timed) on TF.js's WebGPU backend against detloss on the GPU.
import '../../bench/node-globals';
import '@tensorflow/tfjs-backend-webgpu';
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import '../helpers/tfjs-quiet';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { afterAll, describe, expect, test } from 'vitest';
import { makeInputs, options } from '../../bench/inputs';
import { TFJS_LOSSES, tfjsKld, tfjsProbiou } from '../../bench/tfjs-losses';
import { cpu } from '../../src/cpu';
import { ROTATED_ROWS } from '../../src/tools/bench/cases';
import { nodeContext } from '../helpers/node-gpu';

function rng(seed: number) {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

/**
 * n pairs of rotated boxes (cx, cy, w, h, theta): sides 0.5 to 40 (aspect ratios up to about 20),
 * any angle up to |theta| = 6, pred's centre up to 6 px off, its sides and angle unrelated to the
 * target's in one row of three and near them otherwise.
 */
function pairs(n: number, seed: number) {
  const r = rng(seed);
  const pred = new Float32Array(5 * n);
  const target = new Float32Array(5 * n);
  for (let i = 0; i < n; i++) {
    const t = [r() * 100, r() * 100, 0.5 + r() * 40, 0.5 + r() * 40, (r() - 0.5) * 12];
    const far = i % 3 === 0;
    const p = [t[0] + (r() - 0.5) * 12, t[1] + (r() - 0.5) * 12, far ? 0.5 + r() * 40 : t[2] * (0.7 + 0.6 * r()), far ? 0.5 + r() * 40 : t[3] * (0.7 + 0.6 * r()), far ? (r() - 0.5) * 12 : t[4] + (r() - 0.5)];
    target.set(t, 5 * i);
    pred.set(p, 5 * i);
  }
  return { pred, target };
}

/** The TF.js peer's per-row loss and its gradient with respect to pred (of the sum), on `backend`. */
async function peer(backend: string, rows: (p: tf.Tensor, t: tf.Tensor) => tf.Tensor, pred: Float32Array, target: Float32Array) {
  await tf.setBackend(backend);
  const n = pred.length / 5;
  const { value, grad } = tf.tidy(() => {
    const t = tf.tensor(target, [n, 5]);
    return tf.valueAndGrad((p: tf.Tensor) => tf.sum(rows(p, t)))(tf.tensor(pred, [n, 5]));
  });
  const loss = tf.tidy(() => rows(tf.tensor(pred, [n, 5]), tf.tensor(target, [n, 5])));
  const out = { loss: (await loss.data()) as Float32Array, grad: (await grad.data()) as Float32Array };
  tf.dispose([value, grad, loss]);
  return out;
}

/** max |got - want| / (atol + rtol * |want|) over a row's numbers must stay at most 1. */
function worst(got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol: number) {
  let m = 0;
  let at = -1;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i] - want[i]) / (atol + rtol * Math.abs(want[i]));
    if (!(e <= m)) [m, at] = [e, i];
  }
  return { m, at, got: got[at], want: want[at] };
}

const PEERS = [
  // ultralytics' loss is 1 - probiou
  { variant: 'probiou' as const, rows: (p: tf.Tensor, t: tf.Tensor) => tf.sub(1, tfjsProbiou(p, t)) },
  { variant: 'kld' as const, rows: (p: tf.Tensor, t: tf.Tensor) => tfjsKld(p, t) },
];

describe("the bench's TF.js peers of rotated_iou_loss equal detloss's formulas", () => {
  for (const { variant, rows } of PEERS) {
    test(`${variant}: loss and gradient of each row, TF.js's CPU backend (float32) against the float64 reference`, async () => {
      const n = 300;
      const { pred, target } = pairs(n, variant === 'kld' ? 7 : 11);
      const ref = cpu.run('rotated_iou_loss', { pred: { data: pred, shape: [n, 5] }, target: { data: target, shape: [n, 5] } }, { variant, reduction: 'none' });
      const got = await peer('cpu', rows, pred, target);
      // float32 through the references' own 2 x 2 arithmetic (ops.md accepts it, wider for thin boxes)
      const l = worst(got.loss, ref.loss, 1e-5, 1e-4);
      expect(l.m, `loss row ${l.at}: ${l.got} vs ${l.want}`).toBeLessThanOrEqual(1);
      // The gradient of each row against that row's largest component.
      for (let i = 0; i < n; i++) {
        const want = ref.grad.pred.subarray(5 * i, 5 * i + 5);
        const scale = Math.max(...Array.from(want, Math.abs), 1e-3);
        const g = worst(got.grad.subarray(5 * i, 5 * i + 5), want, 2e-3 * scale, 0);
        expect(g.m, `grad row ${i} component ${g.at}: ${g.got} vs ${g.want} (pred ${Array.from(pred.subarray(5 * i, 5 * i + 5))}, target ${Array.from(target.subarray(5 * i, 5 * i + 5))})`).toBeLessThanOrEqual(1);
      }
    });
  }

  const ctx = nodeContext();
  afterAll(async () => (await ctx).destroy());

  for (const c of ROTATED_ROWS) {
    test(`${c.tfjs}: the timed call ('mean' of the bench's inputs, n = 2000) on TF.js's WebGPU backend against detloss on the GPU`, async () => {
      const dl = await ctx;
      const bc = { ...c, n: 2000 };
      const inputs = makeInputs(bc);
      const mine = await dl.run(bc.op, inputs, options(bc));
      await tf.setBackend('webgpu');
      const pred = tf.tensor(inputs.pred.data, inputs.pred.shape);
      const target = tf.tensor(inputs.target.data, inputs.target.shape);
      const { value, grads } = tf.tidy(() => tf.valueAndGrads((x: tf.Tensor) => TFJS_LOSSES[bc.tfjs]({ pred: x, target }))([pred]));
      const loss = (await value.data())[0];
      const grad = (await grads[0].data()) as Float32Array;
      tf.dispose([value, ...grads, pred, target]);
      // detloss is within 1e-6 of the float64 mean; TF.js's float32 mean of 2000 rows of 2 x 2
      // arithmetic came within 2.2e-5 of it (probiou) and 1.2e-5 (kld) on SwiftShader.
      const ref = cpu.run(bc.op, inputs, options(bc)).loss[0];
      expect(Math.abs(mine.loss[0] - ref) / ref, `detloss ${mine.loss[0]} vs float64 ${ref}`).toBeLessThan(1e-6);
      expect(Math.abs(loss - ref) / ref, `TF.js ${loss} vs float64 ${ref}`).toBeLessThan(1e-4);
      const scale = Math.max(...Array.from(mine.grad.pred, Math.abs));
      const g = worst(grad, mine.grad.pred, 1e-3 * scale, 0);
      expect(g.m, `grad ${g.at}: ${g.got} vs ${g.want}`).toBeLessThanOrEqual(1);
    });
  }
});
