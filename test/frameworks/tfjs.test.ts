// detloss/tfjs on TF.js's WebGPU backend over Node's Dawn (bench/node-globals.ts installs
// navigator.gpu before the backend registers). Values and gradients are held against TF.js's own
// autodiff of the same formula, computed on TF.js's CPU backend.
import '../../bench/node-globals';
import '@tensorflow/tfjs-backend-webgpu';
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import '../helpers/tfjs-quiet';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { beforeAll, describe, expect, test } from 'vitest';
import { TFJS_LOSSES } from '../../bench/tfjs-losses';
import { cpu } from '../../src/cpu';
import { DetlossError } from '../../src/errors';
import * as dt from '../../src/frameworks/tfjs';

type Arr = { data: number[]; shape: number[]; dtype?: 'float32' | 'int32' };
type Inputs = Record<string, Arr>;

function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}
const rand = rng(12345);
const vec = (n: number, lo = -2, hi = 2) => Array.from({ length: n }, () => lo + (hi - lo) * rand());
function boxes(n: number): Arr {
  const data: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = 10 * rand(), y = 10 * rand();
    data.push(x, y, x + 0.5 + 4 * rand(), y + 0.5 + 4 * rand());
  }
  return { data, shape: [n, 4] };
}
const labels = (n: number, c: number, bg = false): Arr => ({ data: Array.from({ length: n }, (_, i) => (bg && i % 3 === 0 ? c : Math.floor(c * rand()))), shape: [n], dtype: 'int32' });
const make = (a: Arr) => tf.tensor(a.data, a.shape, a.dtype ?? 'float32');

/** Runs f on `backend` with fresh tensors: its value, and d value / d inputs[wrt] (times dy when given). */
async function valueAndGrad(backend: string, inputs: Inputs, wrt: string, f: (t: Record<string, tf.Tensor>) => tf.Tensor, dy?: Arr) {
  await tf.setBackend(backend);
  const { value, grad } = tf.tidy(() => {
    const t = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, make(v)]));
    const g = tf.valueAndGrad((x: tf.Tensor) => f({ ...t, [wrt]: x }));
    return g(t[wrt], dy ? make(dy) : undefined);
  });
  const out = { value: Array.from(await value.data()), grad: Array.from(await grad.data()) };
  value.dispose();
  grad.dispose();
  return out;
}

function close(actual: number[], expected: number[], rel = 1e-4, abs = 1e-5) {
  expect(actual.length).toBe(expected.length);
  actual.forEach((a, i) => {
    const e = expected[i];
    if (!(Math.abs(a - e) <= abs + rel * Math.abs(e))) throw new Error(`index ${i}: ${a} vs ${e}`);
  });
}

const bce = (x: tf.Tensor, t: tf.Tensor) => tf.add(tf.sub(tf.relu(x), tf.mul(x, t)), tf.log1p(tf.exp(tf.neg(tf.abs(x)))));
const EPS = 1e-7;
function boxTerms(p: tf.Tensor, g: tf.Tensor) {
  const [x1, y1, x2, y2] = tf.unstack(p, 1);
  const [gx1, gy1, gx2, gy2] = tf.unstack(g, 1);
  const inter = tf.mul(tf.relu(tf.sub(tf.minimum(x2, gx2), tf.maximum(x1, gx1))), tf.relu(tf.sub(tf.minimum(y2, gy2), tf.maximum(y1, gy1))));
  const w = tf.sub(x2, x1), h = tf.sub(y2, y1), wg = tf.sub(gx2, gx1), hg = tf.sub(gy2, gy1);
  const union = tf.sub(tf.add(tf.mul(w, h), tf.mul(wg, hg)), inter);
  const iou = tf.div(inter, tf.add(union, EPS));
  const cw = tf.sub(tf.maximum(x2, gx2), tf.minimum(x1, gx1)), ch = tf.sub(tf.maximum(y2, gy2), tf.minimum(y1, gy1));
  const c2 = tf.add(tf.add(tf.square(cw), tf.square(ch)), EPS);
  const rho2 = tf.div(tf.add(tf.square(tf.sub(tf.add(x1, x2), tf.add(gx1, gx2))), tf.square(tf.sub(tf.add(y1, y2), tf.add(gy1, gy2)))), 4);
  return { iou, w, h, wg, hg, cw, ch, c2, rho2 };
}

/** Formulas bench/tfjs-losses.ts does not have, written the same way ('mean' reduction). */
const EXTRA: Record<string, (t: Record<string, tf.Tensor>) => tf.Tensor> = {
  l1: ({ pred, target }) => tf.mean(tf.abs(tf.sub(pred, target))),
  mse: ({ pred, target }) => tf.mean(tf.square(tf.sub(pred, target))),
  huber: ({ pred, target }) => {
    const ad = tf.abs(tf.sub(pred, target));
    const q = tf.minimum(ad, 0.5);
    return tf.mean(tf.add(tf.mul(0.5, tf.square(q)), tf.mul(0.5, tf.sub(ad, q))));
  },
  iou: ({ pred, target }) => tf.mean(tf.sub(1, boxTerms(pred, target).iou)),
  diou: ({ pred, target }) => {
    const b = boxTerms(pred, target);
    return tf.mean(tf.add(tf.sub(1, b.iou), tf.div(b.rho2, b.c2)));
  },
  eiou: ({ pred, target }) => {
    const b = boxTerms(pred, target);
    const d = tf.add(tf.sub(1, b.iou), tf.div(b.rho2, b.c2));
    return tf.mean(tf.add(d, tf.add(tf.div(tf.square(tf.sub(b.w, b.wg)), tf.add(tf.square(b.cw), EPS)), tf.div(tf.square(tf.sub(b.h, b.hg)), tf.add(tf.square(b.ch), EPS)))));
  },
  bce_with_logits: ({ logits, targets }) => tf.mean(bce(logits, targets)),
  kl_div: ({ student, teacher }) => {
    const q = tf.softmax(teacher);
    return tf.mean(tf.sum(tf.mul(q, tf.sub(tf.logSoftmax(teacher), tf.logSoftmax(student))), 1));
  },
  dice: ({ logits, targets }) => {
    const p = tf.sigmoid(logits);
    const a = tf.sum(tf.mul(p, targets), 1);
    const b = tf.add(tf.sum(tf.square(p), 1), 1e-3);
    const c = tf.add(tf.sum(tf.square(targets), 1), 1e-3);
    return tf.mean(tf.sub(1, tf.div(tf.mul(2, a), tf.add(b, c))));
  },
  varifocal: ({ logits, targets }) => {
    const p = tf.sigmoid(logits);
    const pos = tf.cast(tf.greater(targets, 0), 'float32');
    const w = tf.add(tf.mul(targets, pos), tf.mul(tf.mul(0.75, tf.square(p)), tf.sub(1, pos)));
    return tf.mean(tf.mul(bce(logits, targets), w));
  },
};

interface Case {
  name: string;
  call: (t: Record<string, tf.Tensor>, opts?: dt.TfLossOptions) => tf.Tensor;
  inputs: () => Inputs;
  wrt: string;
  ref: (t: Record<string, tf.Tensor>) => tf.Tensor;
  tol?: [number, number];
}
const N = 13;
const box = () => ({ pred: boxes(N), target: boxes(N) });
const reg = () => ({ pred: { data: vec(3 * N), shape: [N, 3] }, target: { data: vec(3 * N), shape: [N, 3] } });
const CASES: Case[] = [
  { name: 'l1', call: (t, o) => dt.l1(t.pred, t.target, o), inputs: reg, wrt: 'pred', ref: EXTRA.l1 },
  { name: 'mse', call: (t, o) => dt.mse(t.pred, t.target, o), inputs: reg, wrt: 'pred', ref: EXTRA.mse },
  { name: 'smoothL1', call: (t, o) => dt.smoothL1(t.pred, t.target, o), inputs: reg, wrt: 'pred', ref: TFJS_LOSSES.smooth_l1 },
  { name: 'huber', call: (t, o) => dt.huber(t.pred, t.target, { delta: 0.5, ...o }), inputs: reg, wrt: 'pred', ref: EXTRA.huber },
  { name: 'iou', call: (t, o) => dt.iou(t.pred, t.target, o), inputs: box, wrt: 'pred', ref: EXTRA.iou },
  { name: 'giou', call: (t, o) => dt.giou(t.pred, t.target, o), inputs: box, wrt: 'pred', ref: TFJS_LOSSES.giou },
  { name: 'diou', call: (t, o) => dt.diou(t.pred, t.target, o), inputs: box, wrt: 'pred', ref: EXTRA.diou },
  { name: 'ciou', call: (t, o) => dt.ciou(t.pred, t.target, o), inputs: box, wrt: 'pred', ref: TFJS_LOSSES.ciou },
  { name: 'eiou', call: (t, o) => dt.eiou(t.pred, t.target, o), inputs: box, wrt: 'pred', ref: EXTRA.eiou },
  { name: 'siou', call: (t, o) => dt.siou(t.pred, t.target, o), inputs: box, wrt: 'pred', ref: TFJS_LOSSES.siou, tol: [1e-3, 1e-5] },
  { name: 'shapeIou', call: (t, o) => dt.shapeIou(t.pred, t.target, o), inputs: box, wrt: 'pred', ref: TFJS_LOSSES.shape },
  { name: 'wiou', call: (t, o) => dt.wiou(t.pred, t.target, o), inputs: box, wrt: 'pred', ref: TFJS_LOSSES.wiou },
  { name: 'sigmoidFocal', call: (t, o) => dt.sigmoidFocal(t.logits, t.targets, o), inputs: () => ({ logits: { data: vec(N * 5, -4, 4), shape: [N, 5] }, targets: { data: vec(N * 5, 0, 1), shape: [N, 5] } }), wrt: 'logits', ref: TFJS_LOSSES.sigmoid_focal },
  { name: 'bceWithLogits', call: (t, o) => dt.bceWithLogits(t.logits, t.targets, o), inputs: () => ({ logits: { data: vec(N * 5, -4, 4), shape: [N, 5] }, targets: { data: vec(N * 5, 0, 1), shape: [N, 5] } }), wrt: 'logits', ref: EXTRA.bce_with_logits },
  { name: 'varifocal', call: (t, o) => dt.varifocal(t.logits, t.targets, o), inputs: () => ({ logits: { data: vec(N * 5, -4, 4), shape: [N, 5] }, targets: { data: vec(N * 5).map((v) => (v > 0 ? v / 2 : 0)), shape: [N, 5] } }), wrt: 'logits', ref: EXTRA.varifocal },
  { name: 'qualityFocal', call: (t, o) => dt.qualityFocal(t.logits, t.labels, t.scores, o), inputs: () => ({ logits: { data: vec(N * 6, -4, 4), shape: [N, 6] }, labels: labels(N, 6, true), scores: { data: vec(N, 0, 1), shape: [N] } }), wrt: 'logits', ref: TFJS_LOSSES.quality_focal },
  { name: 'distributionFocal', call: (t, o) => dt.distributionFocal(t.logits, t.targets, o), inputs: () => ({ logits: { data: vec(N * 8), shape: [N, 8] }, targets: { data: vec(N, 0, 6.9), shape: [N] } }), wrt: 'logits', ref: TFJS_LOSSES.distribution_focal },
  { name: 'crossEntropy', call: (t, o) => dt.crossEntropy(t.logits, t.labels, o), inputs: () => ({ logits: { data: vec(N * 7, -3, 3), shape: [N, 7] }, labels: labels(N, 7) }), wrt: 'logits', ref: TFJS_LOSSES.cross_entropy },
  { name: 'klDiv', call: (t, o) => dt.klDiv(t.student, t.teacher, o), inputs: () => ({ student: { data: vec(N * 6), shape: [N, 6] }, teacher: { data: vec(N * 6), shape: [N, 6] } }), wrt: 'student', ref: EXTRA.kl_div },
  { name: 'dice', call: (t, o) => dt.dice(t.logits, t.targets, o), inputs: () => ({ logits: { data: vec(N * 9), shape: [N, 9] }, targets: { data: vec(N * 9, 0, 1), shape: [N, 9] } }), wrt: 'logits', ref: EXTRA.dice },
];

beforeAll(async () => {
  expect(await tf.setBackend('webgpu')).toBe(true);
});

describe('detloss/tfjs on the WebGPU backend', () => {
  for (const c of CASES) {
    for (const n of [N, 1]) {
      test(`${c.name}: value and gradient equal TF.js autodiff (n = ${n})`, async () => {
        const full = c.inputs();
        // n = 1: the first row of every input (a one-element launch)
        const inputs = n === N ? full : Object.fromEntries(Object.entries(full).map(([k, v]) => {
          const per = v.data.length / v.shape[0];
          return [k, { ...v, data: v.data.slice(0, per), shape: [1, ...v.shape.slice(1)] }];
        }));
        const ref = await valueAndGrad('cpu', inputs, c.wrt, c.ref);
        const got = await valueAndGrad('webgpu', inputs, c.wrt, (t) => c.call(t));
        const [rel, abs] = c.tol ?? [1e-4, 1e-5];
        close(got.value, ref.value, rel, abs);
        close(got.grad, ref.grad, Math.max(rel, 1e-3), abs);
        await dt.flush();
      });
    }
  }

  test("'none' with a non-uniform upstream gradient equals TF.js autodiff (ciou, crossEntropy, l1)", async () => {
    const b = box();
    const dy = { data: vec(N, -1, 3), shape: [N] };
    const refC = await valueAndGrad('cpu', b, 'pred', (t) => noneCiou(t), dy);
    const gotC = await valueAndGrad('webgpu', b, 'pred', (t) => dt.ciou(t.pred, t.target, { reduction: 'none' }), dy);
    close(gotC.value, refC.value);
    close(gotC.grad, refC.grad, 1e-3);
    const ce = CASES.find((x) => x.name === 'crossEntropy')!.inputs();
    const refE = await valueAndGrad('cpu', ce, 'logits', (t) => tf.neg(tf.sum(tf.mul(tf.oneHot(t.labels as tf.Tensor1D, 7), tf.logSoftmax(t.logits)), 1)), dy);
    const gotE = await valueAndGrad('webgpu', ce, 'logits', (t) => dt.crossEntropy(t.logits, t.labels, { reduction: 'none' }), dy);
    close(gotE.value, refE.value);
    close(gotE.grad, refE.grad, 1e-3);
    const r = reg();
    const dy2 = { data: vec(3 * N), shape: [N, 3] };
    const refL = await valueAndGrad('cpu', r, 'pred', (t) => tf.abs(tf.sub(t.pred, t.target)), dy2);
    const gotL = await valueAndGrad('webgpu', r, 'pred', (t) => dt.l1(t.pred, t.target, { reduction: 'none' }), dy2);
    expect(gotL.value.length).toBe(3 * N);
    close(gotL.value, refL.value);
    close(gotL.grad, refL.grad);
  });

  test('weight (a tensor, constant) and sum reduction', async () => {
    const r = reg();
    const w = { data: vec(3 * N, 0, 2), shape: [N, 3] };
    const ref = await valueAndGrad('cpu', { ...r, w }, 'pred', (t) => tf.sum(tf.mul(t.w, tf.abs(tf.sub(t.pred, t.target)))));
    const got = await valueAndGrad('webgpu', { ...r, w }, 'pred', (t) => dt.l1(t.pred, t.target, { weight: t.w, reduction: 'sum' }));
    close(got.value, ref.value);
    close(got.grad, ref.grad);
  });

  test('targets are constants: their gradient is zero', async () => {
    const b = box();
    await tf.setBackend('webgpu');
    const gt = tf.tidy(() => {
      const p = make(b.pred), t = make(b.target);
      return tf.grads((x: tf.Tensor, y: tf.Tensor) => dt.giou(x, y))([p, t])[1];
    });
    const g = Array.from(await gt.data());
    gt.dispose();
    expect(g.length).toBe(4 * N);
    expect(g.every((v) => v === 0)).toBe(true);
  });

  test('pairwiseIou: the [n, m] matrix, as the CPU reference', async () => {
    const a = boxes(5), b = boxes(3);
    await tf.setBackend('webgpu');
    const m = tf.tidy(() => dt.pairwiseIou(make(a), make(b), { variant: 'giou' }));
    expect(m.shape).toEqual([5, 3]);
    const ref = cpu.run('pairwise_iou', { a: { data: new Float32Array(a.data), shape: [5, 4] }, b: { data: new Float32Array(b.data), shape: [3, 4] } }, { variant: 'giou', reduction: 'none' });
    close(Array.from(await m.data()), Array.from(ref.loss));
    m.dispose();
  });

  test('optimizer.minimize(() => ciou(...)) lowers the loss, on the same path as TF.js autodiff of CIoU', async () => {
    await tf.setBackend('webgpu');
    const b = box();
    const train = async (loss: (p: tf.Tensor, t: tf.Tensor) => tf.Tensor) => {
      const target = make(b.target);
      const pred = tf.variable(make(b.pred));
      const opt = tf.train.adam(0.2);
      const losses: number[] = [];
      for (let i = 0; i < 40; i++) {
        const l = opt.minimize(() => loss(pred, target) as tf.Scalar, true)!;
        losses.push((await l.data())[0]);
        l.dispose();
      }
      const final = Array.from(await pred.data());
      opt.dispose();
      pred.dispose();
      target.dispose();
      return { losses, final };
    };
    const ours = await train((p, t) => dt.ciou(p, t));
    const theirs = await train((p, t) => TFJS_LOSSES.ciou({ pred: p, target: t }));
    expect(ours.losses.every(Number.isFinite)).toBe(true);
    expect(ours.losses[39]).toBeLessThan(0.7 * ours.losses[0]);
    close(ours.losses, theirs.losses, 1e-3, 1e-4);
    close(ours.final, theirs.final, 1e-3, 1e-3);
  });

  test('memory is flat: tensors and pool bytes equal after 10 and after 30 training calls', async () => {
    await tf.setBackend('webgpu');
    const b = box();
    const ce = CASES.find((x) => x.name === 'qualityFocal')!.inputs();
    const target = make(b.target), labelsT = make(ce.labels), scores = make(ce.scores);
    const pred = tf.variable(make(b.pred)), logits = tf.variable(make(ce.logits));
    const opt = tf.train.sgd(0.01);
    const seen: { tensors: number; inUse: number; allocated: number }[] = [];
    for (let i = 1; i <= 30; i++) {
      opt.minimize(() => tf.add(dt.ciou(pred, target), dt.qualityFocal(logits, labelsT, scores)) as tf.Scalar);
      await dt.flush();
      if (i === 10 || i === 30) {
        const s = dt.detlossFor().stats();
        seen.push({ tensors: tf.memory().numTensors, inUse: s.bytesInUse, allocated: s.bytesAllocated });
      }
    }
    expect(seen[1]).toEqual(seen[0]);
    expect(seen[0].inUse).toBe(0);
    for (const t of [target, labelsT, scores, pred, logits]) t.dispose();
    opt.dispose();
  });

  test('errors are DetlossErrors: int32 pred, shape mismatch, wrong label dtype, unknown option', async () => {
    await tf.setBackend('webgpu');
    const b = box();
    const catchErr = (f: () => unknown) => {
      try {
        tf.tidy(() => void f());
      } catch (e) {
        return e;
      }
      return undefined;
    };
    const e1 = catchErr(() => dt.ciou(tf.tensor(b.pred.data.map(Math.round), [N, 4], 'int32'), make(b.target)));
    expect(e1).toBeInstanceOf(DetlossError);
    expect(e1).toMatchObject({ code: 'wrong_dtype', argument: 'pred' });
    const e2 = catchErr(() => dt.ciou(make(b.pred), tf.zeros([N - 1, 4])));
    expect(e2).toBeInstanceOf(DetlossError);
    expect((e2 as DetlossError).code).toBe('shape_mismatch');
    const e3 = catchErr(() => dt.l1(tf.zeros([2, 3]), tf.zeros([3, 2])));
    expect(e3).toMatchObject({ code: 'shape_mismatch' });
    const e4 = catchErr(() => dt.crossEntropy(tf.zeros([2, 3]), tf.zeros([2])));
    expect(e4).toMatchObject({ code: 'wrong_dtype', argument: 'labels' });
    const e5 = catchErr(() => dt.l1(tf.zeros([2]), tf.zeros([2]), { gradOutput: tf.ones([2]) }));
    expect(e5).toMatchObject({ code: 'unknown_param' });
    await dt.flush();
  });
});

function noneCiou(t: Record<string, tf.Tensor>) {
  const b = boxTerms(t.pred, t.target);
  const d = tf.add(tf.sub(1, b.iou), tf.div(b.rho2, b.c2));
  const v = tf.mul(4 / Math.PI ** 2, tf.square(tf.sub(tf.atan(tf.div(b.wg, b.hg)), tf.atan(tf.div(b.w, b.h)))));
  const stop = tf.customGrad(((x: tf.Tensor) => ({ value: x.clone(), gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy) })) as unknown as Parameters<typeof tf.customGrad>[0]);
  const alpha = stop(tf.div(v, tf.add(tf.add(tf.sub(1, b.iou), v), EPS))) as tf.Tensor;
  return tf.add(d, tf.mul(alpha, v));
}

describe('detloss/tfjs on the CPU backend (fallback: download, cpu.run, upload)', () => {
  for (const name of ['ciou', 'qualityFocal', 'crossEntropy', 'smoothL1']) {
    test(`${name}: same numbers as on WebGPU, gradient included`, async () => {
      const c = CASES.find((x) => x.name === name)!;
      const inputs = c.inputs();
      const gpu = await valueAndGrad('webgpu', inputs, c.wrt, (t) => c.call(t));
      const host = await valueAndGrad('cpu', inputs, c.wrt, (t) => c.call(t));
      close(host.value, gpu.value);
      close(host.grad, gpu.grad, 1e-3);
      await tf.setBackend('webgpu');
    });
  }
});

describe('a tensor cast to float32 from int32 or bool (tf.cast shares the source buffer, which keeps its dtype)', () => {
  for (const backend of ['webgpu', 'cpu']) {
    test(`${backend}: l1 and crossEntropy take it as the float32 tensor it is`, async () => {
      await tf.setBackend(backend);
      const ints = [3, -1, 0, 7, 2, -5];
      const flags = [true, false, true, true, false, false];
      const target = tf.tensor2d([0.5, 1, -2, 4, 0, 1], [2, 3]);
      const labels = tf.tensor1d([2, 0], 'int32');
      const cases: [string, tf.Tensor, number[]][] = [
        ['int32', tf.cast(tf.tensor2d(ints, [2, 3], 'int32'), 'float32'), ints],
        ['bool', tf.cast(tf.tensor2d(flags, [2, 3], 'bool'), 'float32'), flags.map(Number)],
      ];
      for (const [from, cast, values] of cases) {
        const plain = tf.tensor2d(values, [2, 3], 'float32');
        for (const [what, f] of [
          ['l1', (x: tf.Tensor) => dt.l1(x, target, { reduction: 'none' })],
          ['crossEntropy', (x: tf.Tensor) => dt.crossEntropy(x, labels, { reduction: 'none' })],
        ] as const) {
          const [got, want] = [f(cast), f(plain)];
          expect(Array.from(await got.data()), `${what} of a float32 tensor cast from ${from}`).toEqual(Array.from(await want.data()));
          tf.dispose([got, want]);
        }
        // And the labels the other way: int32 cast from bool.
        const fromBool = tf.cast(tf.tensor1d([true, false], 'bool'), 'int32');
        const [got, want] = [dt.crossEntropy(plain, fromBool, { reduction: 'none' }), dt.crossEntropy(plain, tf.tensor1d([1, 0], 'int32'), { reduction: 'none' })];
        expect(Array.from(await got.data()), `crossEntropy with int32 labels cast from bool, ${from}`).toEqual(Array.from(await want.data()));
        tf.dispose([plain, cast, fromBool, got, want]);
      }
      tf.dispose([target, labels]);
      await dt.flush();
    });
  }
});
