// detloss/tfjs when the GPU fails after a call returned, and when the GPU finds labels or targets
// that the CPU backend would refuse. The calls are synchronous (they run inside
// optimizer.minimize), so the GPU's verdict arrives later: it is thrown by the next call, by
// flush() or by detlossFor(), once; and the tensors the failed call returned hold NaN, never
// numbers. Faults are planted once (test/helpers/plant.ts) in the backend's own device.
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
import { verdictsIn } from '../../src/frameworks/tfjs-ledger';
import { enableRuntimeReflection } from '../../src/runtime/compile/reflect-wgsl';
import { cannotAllocate, plant, type Fault } from '../helpers/plant';
import { squareOp } from '../helpers/square-op';

// The custom op below is not in the generated layout table.
enableRuntimeReflection();

const device = () => (tf.backend() as unknown as { device: GPUDevice }).device;
const values = async (t: tf.Tensor) => Array.from(await t.data());
const pred = () => tf.tensor([0.5, -1, 2, 3.5, 0, 1], [6]);
const target = () => tf.tensor([0, 0, 1, 1, 2, 2], [6]);

async function rejection(p: Promise<unknown>): Promise<DetlossError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e instanceof DetlossError, `not a DetlossError: ${String(e)}`).toBe(true);
  return e as DetlossError;
}
function thrown(f: () => unknown): DetlossError {
  let e: unknown;
  try {
    f();
  } catch (x) {
    e = x;
  }
  expect(e instanceof DetlossError, `not a DetlossError: ${String(e)}`).toBe(true);
  return e as DetlossError;
}

/** A good call: the CPU reference's value. */
async function expectGood() {
  const got = await values(dt.smoothL1(pred(), target(), { reduction: 'sum' }));
  const want = cpu.run('smooth_l1', { pred: Float32Array.of(0.5, -1, 2, 3.5, 0, 1), target: Float32Array.of(0, 0, 1, 1, 2, 2) }, { reduction: 'sum' }).loss;
  expect(Math.abs(got[0] - want[0])).toBeLessThan(1e-5);
}

beforeAll(async () => {
  expect(await tf.setBackend('webgpu')).toBe(true);
});

const CODE: Record<Fault, DetlossError['code']> = { pipeline: 'pipeline', validation: 'gpu_validation', oom: 'gpu_out_of_memory' };

describe('a custom op whose WGSL does not compile (the reported case)', () => {
  const broken = squareOp('broken', '  return in_x[i] * undefined_name;');
  test('after an l1 call left its buffers in the pool: the loss is NaN (not the old gradient), flush() throws pipeline once, the next call works', async () => {
    // An l1 call first, so the pool holds a gradient of the same size the failed call could hand back.
    await values(tf.grad((p: tf.Tensor) => dt.l1(p, target(), { reduction: 'none' }))(pred()));
    const loss = dt.runLoss(broken, { x: pred() }, { reduction: 'sum' });
    expect((await values(loss)).every(Number.isNaN)).toBe(true);
    expect((await rejection(dt.flush())).code).toBe('pipeline');
    await dt.flush(); // thrown once
    await expectGood();
  });
  test('under tf.grad: value and gradient are NaN, and the next call throws the failure', async () => {
    const { value, grad } = tf.valueAndGrad((x: tf.Tensor) => dt.runLoss(broken, { x }, { reduction: 'sum' }) as tf.Scalar)(pred());
    expect((await values(value)).every(Number.isNaN)).toBe(true);
    expect((await values(grad)).every(Number.isNaN)).toBe(true);
    // Without flush(): once the verdict is in (waited for without taking it), the next call throws
    // it, then calls work again.
    await verdictsIn(device());
    expect(thrown(() => dt.smoothL1(pred(), target()).dispose()).code).toBe('pipeline');
    await expectGood();
  });
  test('detlossFor() throws a failure no call has thrown yet, and then returns a working context', async () => {
    dt.runLoss(broken, { x: pred() }, { reduction: 'sum' }).dispose();
    await verdictsIn(device()); // the verdict, not taken
    expect(thrown(() => dt.detlossFor()).code).toBe('pipeline');
    expect(dt.detlossFor().stats().bytesInUse).toBe(0);
    await expectGood();
  });
});

describe.each(['pipeline', 'validation', 'oom'] as Fault[])('a planted %s fault', (fault) => {
  test('the call returns, flush() throws its DetlossError, and the next call works', async () => {
    await dt.flush();
    // A new context (its pipelines not compiled yet): drop the current one with a failure of our own.
    let bytes = 0;
    if (fault === 'oom') {
      bytes = dt.detlossFor().limits.maxBufferSize;
      const oom = await cannotAllocate(device(), bytes);
      if (dt.detlossFor().adapter.isFallbackAdapter) expect(oom).toBe(true);
      if (!oom) return;
    }
    if (fault === 'pipeline') {
      // Only a pipeline compiled in this call can fail: an op not used yet in this file.
      const planted = plant(device(), fault);
      const t = dt.runLoss('exponential', { logits: pred(), targets: tf.tensor([1, -1, 1, -1, 1, -1]) }, { reduction: 'sum' });
      expect(planted.fired()).toBe(true);
      expect((await values(t)).every(Number.isNaN)).toBe(true);
    } else {
      const planted = plant(device(), fault, bytes);
      // Inputs of a size not used yet in this file: the call needs buffers the pool does not hold.
      const n = fault === 'oom' ? 4099 : 6;
      const t = n === 6 ? dt.smoothL1(pred(), target(), { reduction: 'sum' }) : dt.smoothL1(tf.ones([n]), tf.zeros([n]), { reduction: 'none' });
      expect(planted.fired()).toBe(true);
      // validation: the work never ran, the guard writes NaN. oom: detloss's own buffer could not
      // be made, so the guard's copy could not run either: the values are unspecified.
      if (fault === 'validation') expect((await values(t)).every(Number.isNaN)).toBe(true);
      else t.dispose();
    }
    expect((await rejection(dt.flush())).code).toBe(CODE[fault]);
    await expectGood();
  });
});

describe('labels and targets the CPU backend refuses are refused on WebGPU too (late), with NaN values', () => {
  const cases: { what: string; call: () => tf.Tensor; argument: string }[] = [
    { what: 'cross-entropy with label 7 of 4 classes', call: () => dt.crossEntropy(tf.zeros([2, 4]), tf.tensor([1, 7], [2], 'int32')), argument: 'labels' },
    { what: 'apLoss with target 2', call: () => dt.apLoss(tf.tensor([0.1, 0.2, 0.3]), tf.tensor([1, 0, 2])), argument: 'targets' },
    { what: 'rankSort with target 1.5', call: () => dt.rankSort(tf.tensor([0.1, 0.2, 0.3]), tf.tensor([1.5, 0, 0.5])), argument: 'targets' },
    { what: 'hinge with target 0', call: () => dt.runLoss('hinge', { logits: tf.tensor([0.1, 0.2]), targets: tf.tensor([1, 0]) }), argument: 'targets' },
    { what: 'check: true with a NaN logit', call: () => dt.crossEntropy(tf.tensor([[0, NaN], [1, 2]]), tf.tensor([1, 0], [2], 'int32'), { check: true }), argument: 'logits' },
  ];
  for (const c of cases) {
    test(`${c.what}: cpu throws invalid_value at the call; webgpu gives NaN and flush() throws the same`, async () => {
      await tf.setBackend('cpu');
      const onCpu = thrown(() => tf.tidy(c.call));
      expect({ code: onCpu.code, argument: onCpu.argument }).toEqual({ code: 'invalid_value', argument: c.argument });
      await tf.setBackend('webgpu');
      await dt.flush();
      const t = c.call();
      expect((await values(t)).every(Number.isNaN)).toBe(true);
      const late = await rejection(dt.flush());
      expect({ code: late.code, argument: late.argument }).toEqual({ code: 'invalid_value', argument: c.argument });
      expect(late.message).toMatch(new RegExp(`${c.argument}\\[\\d+\\] \\(on the GPU\\)`));
      await expectGood();
    });
  }
});

describe('a disposed input', () => {
  test('is a DetlossError naming it, on webgpu and cpu', async () => {
    for (const backend of ['webgpu', 'cpu']) {
      await tf.setBackend(backend);
      const p = pred();
      p.dispose();
      const e = thrown(() => dt.smoothL1(p, target()));
      expect({ code: e.code, argument: e.argument }).toEqual({ code: 'invalid_value', argument: 'pred' });
    }
    await tf.setBackend('webgpu');
  });
});
