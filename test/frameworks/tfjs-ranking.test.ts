// detloss/tfjs's ranking losses (apLoss, rankSort): their GPU kernel is a program of passes, run
// synchronously inside TF.js's customGrad. Values and gradients are held against the float64 CPU
// reference (cpu.run: loss, and the error-driven update times gradOutput), on TF.js's WebGPU
// backend over Node's Dawn and on its CPU backend (the fallback).
import '../../bench/node-globals';
import '@tensorflow/tfjs-backend-webgpu';
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import '../helpers/tfjs-quiet';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { beforeAll, describe, expect, test } from 'vitest';
import { cpu } from '../../src/cpu';
import { DetlossError } from '../../src/errors';
import * as dt from '../../src/frameworks/tfjs';
import { runResidentSync } from '../helpers/sync';
import { rankingInputs } from '../helpers/ranking-inputs';

const OPS = ['ap_loss', 'rank_sort'] as const;
type Op = (typeof OPS)[number];
const call = (op: Op, x: tf.Tensor, t: tf.Tensor, opts?: dt.TfLossOptions) => (op === 'ap_loss' ? dt.apLoss(x, t, opts) : dt.rankSort(x, t, opts));

interface Case {
  name: string;
  logits: Float32Array;
  targets: Float32Array;
  /** The TF.js shape of both tensors (flattened, it is the op's [n]). */
  shape: number[];
}

function cases(op: Op): Case[] {
  const pos = op === 'rank_sort' ? 0.7 : 1;
  const r = rankingInputs(op, 240, 0.1, 31);
  const few = rankingInputs(op, 37, 0.2, 32);
  const none = rankingInputs(op, 50, 0.1, 33);
  const list: Case[] = [
    { name: 'n=240 as [4, 60]', logits: r.logits, targets: r.targets, shape: [4, 60] },
    { name: 'n=37', logits: few.logits, targets: few.targets, shape: [37] },
    { name: 'no positive', logits: none.logits, targets: none.targets.map((t) => (t > 0 ? 0 : t)), shape: [50] },
  ];
  for (const [what, t] of [['positive', pos], ['negative', 0], ['ignored', -1]] as const) {
    list.push({ name: `one element (${what})`, logits: Float32Array.of(0.3), targets: Float32Array.of(t), shape: [1] });
  }
  return list;
}

/** cpu.run on the same float32 numbers: the loss, and grad.logits for an upstream gradOutput. */
function reference(op: Op, c: Case, up: number) {
  const r = cpu.run(op, { logits: c.logits, targets: c.targets, gradOutput: Float32Array.of(up) });
  return { loss: Array.from(r.loss), shape: r.shape, grad: Array.from(r.grad.logits) };
}

/** tf.valueAndGrad of the loss w.r.t. logits on `backend`, with upstream `dy` (the loss's shape). */
async function valueAndGrad(backend: string, op: Op, c: Case, dy: number[]) {
  expect(await tf.setBackend(backend)).toBe(true);
  const before = tf.memory().numTensors;
  const { value, grad } = tf.tidy(() => {
    const x = tf.tensor(c.logits, c.shape);
    const t = tf.tensor(c.targets, c.shape);
    const upstream = op === 'ap_loss' ? tf.scalar(dy[0]) : tf.tensor1d(dy);
    return tf.valueAndGrad((s: tf.Tensor) => call(op, s, t))(x, upstream);
  });
  const out = { value: Array.from(await value.data()), shape: value.shape, grad: Array.from(await grad.data()), gradShape: grad.shape };
  value.dispose();
  grad.dispose();
  await dt.flush();
  expect(tf.memory().numTensors).toBe(before);
  return out;
}

function expectLoss(got: number[], want: number[], what: string) {
  expect(got.length, what).toBe(want.length);
  got.forEach((g, i) => expect(Math.abs(g - want[i]), `${what} loss[${i}]: ${g} vs ${want[i]}`).toBeLessThanOrEqual(1e-5 + 1e-4 * Math.abs(want[i])));
}

/** The update, within float32 rounding of the kernel's sums: relative to the largest entry. */
function expectUpdate(got: number[], want: number[], what: string) {
  expect(got.length, what).toBe(want.length);
  const scale = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  got.forEach((g, i) => expect(Math.abs(g - want[i]), `${what} grad[${i}]: ${g} vs ${want[i]}`).toBeLessThanOrEqual(1e-7 + 1e-4 * scale + 1e-4 * Math.abs(want[i])));
}

beforeAll(async () => {
  expect(await tf.setBackend('webgpu')).toBe(true);
});

describe.each(['webgpu', 'cpu'])('detloss/tfjs ranking losses on the %s backend', (backend) => {
  for (const op of OPS) {
    for (const c of cases(op)) {
      test(`${op}, ${c.name}: value and gradient equal cpu.run's loss and update times the upstream`, async () => {
        // ap_loss: a scalar upstream. rank_sort: [ranking, sorting] upstream; the update rides on the first.
        const dy = op === 'ap_loss' ? [-1.75] : [0.625, 3];
        const got = await valueAndGrad(backend, op, c, dy);
        const want = reference(op, c, dy[0]);
        expect(got.shape).toEqual(want.shape);
        expect(got.gradShape).toEqual(c.shape);
        expectLoss(got.value, want.loss, c.name);
        expectUpdate(got.grad, want.grad, c.name);
        if (c.name === 'no positive') expect(got.value.concat(got.grad).every((v) => v === 0)).toBe(true);
        if (c.name.startsWith('n=')) expect(want.grad.some((v) => v !== 0)).toBe(true);
      });
    }
  }

  test('rank_sort: tf.grad of tf.sum(loss) is the update once (not twice), and loss[1] alone carries none', async () => {
    const c = cases('rank_sort')[1];
    await tf.setBackend(backend);
    const [sum, first, second] = tf.tidy(() => {
      const x = tf.tensor(c.logits, c.shape);
      const t = tf.tensor(c.targets, c.shape);
      return [
        tf.grad((s: tf.Tensor) => tf.sum(dt.rankSort(s, t)))(x),
        tf.grad((s: tf.Tensor) => tf.reshape(tf.slice(dt.rankSort(s, t), [0], [1]), []))(x),
        tf.grad((s: tf.Tensor) => tf.reshape(tf.slice(dt.rankSort(s, t), [1], [1]), []))(x),
      ];
    });
    const want = reference('rank_sort', c, 1).grad;
    expectUpdate(Array.from(await sum.data()), want, 'sum');
    expectUpdate(Array.from(await first.data()), want, 'loss[0]');
    expect(Array.from(await second.data()).every((v) => v === 0)).toBe(true);
    tf.dispose([sum, first, second]);
    await dt.flush();
  });

  test('grad: false gives the loss alone; targets are constants (zero gradient)', async () => {
    const c = cases('ap_loss')[0];
    await tf.setBackend(backend);
    const x = tf.tensor(c.logits, c.shape);
    const t = tf.tensor(c.targets, c.shape);
    const plain = dt.apLoss(x, t, { grad: false });
    const gt = tf.tidy(() => tf.grads((a: tf.Tensor, b: tf.Tensor) => dt.apLoss(a, b))([x, t])[1]);
    expectLoss(Array.from(await plain.data()), reference('ap_loss', c, 1).loss, 'grad: false');
    const g = Array.from(await gt.data());
    expect(g.length).toBe(c.logits.length);
    expect(g.every((v) => v === 0)).toBe(true);
    tf.dispose([x, t, plain, gt]);
    await dt.flush();
  });

  test('errors are DetlossErrors: weight, avgFactor, reduction, delta', async () => {
    await tf.setBackend(backend);
    const c = cases('rank_sort')[1];
    const x = tf.tensor(c.logits, c.shape);
    const t = tf.tensor(c.targets, c.shape);
    const refused = (f: () => unknown) => {
      try {
        tf.tidy(() => void f());
      } catch (e) {
        return e;
      }
      return undefined;
    };
    const want: [() => unknown, string, string][] = [
      [() => dt.apLoss(x, t, { weight: tf.onesLike(x) }), 'invalid_param', 'weight'],
      [() => dt.rankSort(x, t, { weight: tf.onesLike(x) }), 'invalid_param', 'weight'],
      [() => dt.rankSort(x, t, { avgFactor: 3 }), 'invalid_param', 'avgFactor'],
      [() => dt.apLoss(x, tf.cast(tf.greater(t, 0), 'float32'), { reduction: 'sum' }), 'invalid_param', 'reduction'],
      [() => dt.rankSort(x, t, { reduction: 'none' }), 'invalid_param', 'reduction'],
      [() => dt.apLoss(x, tf.cast(tf.greater(t, 0), 'float32'), { delta: 0 }), 'invalid_param', 'delta'],
      [() => dt.rankSort(x, tf.zeros([c.logits.length + 1])), 'shape_mismatch', 'targets'],
    ];
    for (const [f, code, argument] of want) {
      const e = refused(f);
      expect(e, `${code} ${argument}`).toBeInstanceOf(DetlossError);
      expect(e).toMatchObject({ code, argument });
    }
    tf.dispose([x, t]);
    await dt.flush();
  });
});

describe('detloss/tfjs ranking losses: training on the WebGPU backend', () => {
  test('optimizer.minimize(() => apLoss(...)) and tf.sum(rankSort(...)) lower the loss of a small score variable', async () => {
    await tf.setBackend('webgpu');
    for (const op of OPS) {
      const c = rankingInputs(op, 96, 0.15, 41);
      const targets = tf.tensor(c.targets, [96]);
      const scores = tf.variable(tf.tensor(c.logits, [96]));
      const opt = tf.train.sgd(op === 'ap_loss' ? 4 : 8);
      const losses: number[] = [];
      for (let i = 0; i < 12; i++) {
        const l = opt.minimize(() => (op === 'ap_loss' ? dt.apLoss(scores, targets) : tf.sum(dt.rankSort(scores, targets))) as tf.Scalar, true)!;
        losses.push((await l.data())[0]);
        l.dispose();
      }
      await dt.flush();
      expect(losses.every(Number.isFinite), op).toBe(true);
      expect(losses[0], op).toBeGreaterThan(0.1);
      expect(losses[11], `${op}: ${losses.join(', ')}`).toBeLessThan(0.6 * losses[0]);
      opt.dispose();
      scores.dispose();
      targets.dispose();
    }
  });

  test('memory is flat: tensors and pool bytes equal after 10 and after 30 training calls', async () => {
    await tf.setBackend('webgpu');
    const a = rankingInputs('ap_loss', 300, 0.05, 51);
    const b = rankingInputs('rank_sort', 200, 0.1, 52);
    const ta = tf.tensor(a.targets), tb = tf.tensor(b.targets);
    const sa = tf.variable(tf.tensor(a.logits)), sb = tf.variable(tf.tensor(b.logits));
    const opt = tf.train.sgd(0.5);
    const seen: { tensors: number; inUse: number; allocated: number }[] = [];
    for (let i = 1; i <= 30; i++) {
      opt.minimize(() => tf.add(dt.apLoss(sa, ta), tf.sum(dt.rankSort(sb, tb))) as tf.Scalar);
      await dt.flush();
      if (i === 10 || i === 30) {
        const s = dt.detlossFor().stats();
        seen.push({ tensors: tf.memory().numTensors, inUse: s.bytesInUse, allocated: s.bytesAllocated });
      }
    }
    expect(seen[1]).toEqual(seen[0]);
    expect(seen[0].inUse).toBe(0);
    for (const t of [ta, tb, sa, sb]) t.dispose();
    opt.dispose();
  });
});

describe('runResidentSync with a program op', () => {
  test('submits now and returns the program loss shape; argument errors throw at once', async () => {
    await tf.setBackend('webgpu');
    const dl = dt.detlossFor();
    const { logits, targets } = rankingInputs('rank_sort', 500, 0.05, 61);
    const bufs = [logits, targets].map((a) => {
      const b = dl.device.createBuffer({ size: a.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
      dl.device.queue.writeBuffer(b, 0, a as Float32Array<ArrayBuffer>);
      return b;
    });
    const onGpu = { logits: { buffer: bufs[0], shape: [500] }, targets: { buffer: bufs[1], shape: [500] } };
    const res = runResidentSync(dl, 'rank_sort', onGpu, {});
    expect(res.shape).toEqual([2]);
    expect(res.lossBytes).toBe(8);
    expect(res.gradBytes.logits).toBe(2000);
    const read = async (src: GPUBuffer, bytes: number) => {
      const staging = dl.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      const enc = dl.device.createCommandEncoder();
      enc.copyBufferToBuffer(src, 0, staging, 0, bytes);
      dl.device.queue.submit([enc.finish()]);
      await staging.mapAsync(GPUMapMode.READ);
      const out = Array.from(new Float32Array(staging.getMappedRange().slice(0)));
      staging.destroy();
      return out;
    };
    const loss = await read(res.loss, res.lossBytes);
    const grad = await read(res.grad.logits, res.gradBytes.logits);
    await res.settled;
    res.release();
    const async = await dl.run('rank_sort', { logits, targets });
    // The same kernels and inputs as the async path: the same bits.
    expect(loss).toEqual(Array.from(async.loss));
    expect(grad).toEqual(Array.from(async.grad.logits));
    const before = dl.stats().bytesInUse;
    expect(() => runResidentSync(dl, 'ap_loss', { ...onGpu, weight: onGpu.logits }, {})).toThrow(expect.objectContaining({ code: 'invalid_param', argument: 'weight' }));
    expect(() => runResidentSync(dl, 'ap_loss', { logits: onGpu.logits, targets: new Float32Array(500) } as unknown as Parameters<typeof runResidentSync>[2], {})).toThrow(expect.objectContaining({ code: 'invalid_value', argument: 'inputs' }));
    expect(dl.stats().bytesInUse).toBe(before);
    bufs.forEach((b) => b.destroy());
  });
});
