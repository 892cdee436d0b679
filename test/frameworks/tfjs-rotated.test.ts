// detloss/tfjs's rotated-box wrappers (rotatedIouLoss, probiou, gwd, kld, jd, kldSymmax, kldSymmin,
// kfiou, pairwiseProbiou) on TF.js's WebGPU backend over Node's Dawn (bench/node-globals.ts installs
// navigator.gpu before the backend registers) and on its CPU backend (the fallback: download,
// cpu.run, upload). Every public case of test/fixtures/rotated.json goes through the wrapper of its
// variant and through rotatedIouLoss: the loss, and the gradients TF.js records (for pred, and for
// KFIoU's predDelta where the case gives deltas), equal the fixture's under its tolerance.
//
// rotated_iou_loss's kernel binds 7 storage buffers, and 10 with KFIoU's deltas. TF.js's own 'webgpu'
// backend requests its device with WebGPU's default limits (8 per shader stage): there every case
// without deltas runs, and KFIoU with deltas is refused by name (too_large, naming the device), as
// margin_ranking is (docs/api.md, "Errors"). Every case runs on 'webgpu-limits': TF.js's
// WebGPUBackend on a device requested with the adapter's own maxStorageBuffersPerShaderStage, as
// docs/frameworks.md shows.
import '../../bench/node-globals';
import { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import '../helpers/tfjs-quiet';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, test } from 'vitest';
import { WRAPPERS } from '../../src/catalogue';
import { compareCase, parseFixtures, type FixtureCase } from '../../src/fixtures';
import { DetlossError } from '../../src/errors';
import * as dt from '../../src/frameworks/tfjs';
import { OPS } from '../../src/ops/registry';

/** TF.js's WebGPU backend on a device with the adapter's own storage-buffer limit (TF.js asks for the default, 8). */
tf.registerBackend('webgpu-limits', async () => {
  const adapter = (await navigator.gpu.requestAdapter())!;
  const l = adapter.limits;
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    },
  });
  return new WebGPUBackend(device, adapter.info);
});
// TF.js registers kernels by backend name: the new one gets the 'webgpu' backend's.
for (const k of tf.getKernelsForBackend('webgpu')) tf.registerKernel({ ...k, backendName: 'webgpu-limits' });

const cases = parseFixtures(readFileSync(new URL('../fixtures/rotated.json', import.meta.url), 'utf8'), 'rotated.json');
const losses = cases.filter((c) => c.op === 'rotated_iou_loss');
const matrices = cases.filter((c) => c.op === 'pairwise_probiou');

/** The wrapper that fixes `variant`, found in the catalogue (each variant has one). */
function wrapperOf(variant: string): string {
  const names = Object.entries(WRAPPERS)
    .filter(([, w]) => w.op === 'rotated_iou_loss' && 'fixed' in w && (w.fixed as { variant?: string }).variant === variant)
    .map(([k]) => k);
  expect(names, `the wrapper of variant ${variant}`).toHaveLength(1);
  return names[0];
}
type Fn = (pred: tf.Tensor, target: tf.Tensor, options?: Record<string, unknown>) => tf.Tensor;
const fn = (name: string) => (dt as unknown as Record<string, Fn>)[name];

const make = (c: FixtureCase, k: string) => tf.tensor(c.inputs[k].data, c.inputs[k].shape, 'float32');
/** The case's differentiable inputs: pred, and predDelta where it gives deltas. */
const wrtOf = (c: FixtureCase) => Object.keys(OPS.rotated_iou_loss.inputs).filter((k) => OPS.rotated_iou_loss.inputs[k].grad && c.inputs[k]);

/**
 * A case through TF.js: `via` the wrapper of its variant (the variant left out of the options) or
 * rotatedIouLoss; the tensor inputs other than pred and target go in the options, the fixture's
 * gradOutput is TF.js's dy. Returns the loss and the gradients TF.js records, read back.
 */
async function tfRun(backend: string, c: FixtureCase, via: 'variant' | 'rotatedIouLoss') {
  await tf.setBackend(backend);
  const before = tf.memory().numTensors;
  const { variant, ...rest } = c.params as { variant: string } & Record<string, unknown>;
  const f = via === 'variant' ? fn(wrapperOf(variant)) : dt.rotatedIouLoss;
  const params = via === 'variant' ? rest : c.params;
  const wrt = wrtOf(c);
  const out = tf.tidy(() => {
    const t = Object.fromEntries(Object.keys(c.inputs).map((k) => [k, make(c, k)]));
    const call = (...xs: tf.Tensor[]) => {
      const all = { ...t, ...Object.fromEntries(wrt.map((k, i) => [k, xs[i]])) };
      return f(all.pred, all.target, { ...params, weight: all.weight, predDelta: all.predDelta, targetDelta: all.targetDelta });
    };
    return tf.valueAndGrads(call)(
      wrt.map((k) => t[k]),
      t.gradOutput,
    );
  });
  const got = {
    loss: Array.from(await out.value.data()),
    shape: out.value.shape,
    grad: Object.fromEntries(await Promise.all(wrt.map(async (k, i) => [k, Array.from(await out.grads[i].data())] as const))),
    gradShapes: Object.fromEntries(wrt.map((k, i) => [k, out.grads[i].shape])),
  };
  tf.dispose([out.value, ...out.grads]);
  // Nothing left behind: every tensor of the call was disposed or returned.
  expect(tf.memory().numTensors, 'tensors left behind').toBe(before);
  await dt.flush();
  return got;
}

beforeAll(async () => {
  expect(await tf.setBackend('webgpu-limits')).toBe(true);
  expect((tf.backend() as unknown as { device: GPUDevice }).device.limits.maxStorageBuffersPerShaderStage).toBeGreaterThanOrEqual(10);
});

describe.each(['webgpu-limits', 'cpu'])('detloss/tfjs rotated boxes on the %s backend', (backend) => {
  test('the fixtures hold cases of every variant, with deltas and without, and matrices', () => {
    const variants = new Set(losses.map((c) => c.params.variant));
    expect([...variants].sort()).toEqual([...(OPS.rotated_iou_loss.params.variant as { values: readonly string[] }).values].sort());
    expect(losses.some((c) => c.inputs.predDelta)).toBe(true);
    expect(matrices.length).toBeGreaterThan(0);
  });

  test.each(losses.map((c) => [c.name, c] as const))('%s: the loss and the gradients TF.js records equal the fixture, through the variant\'s wrapper and rotatedIouLoss', async (_n, c) => {
    for (const via of ['variant', 'rotatedIouLoss'] as const) {
      const got = await tfRun(backend, c, via);
      expect(got.shape, `${via}: the loss's shape`).toEqual(c.expected.loss!.shape);
      expect(Object.keys(got.grad).sort(), `${via}: its gradients`).toEqual(Object.keys(c.expected.grad ?? {}).sort());
      for (const [k, s] of Object.entries(got.gradShapes)) expect(s, `${via}: grad.${k}'s shape`).toEqual(c.inputs[k].shape);
      expect(compareCase(c, got).detail ?? 'ok', via).toBe('ok');
    }
  });

  test.each(matrices.map((c) => [c.name, c] as const))('%s: pairwiseProbiou gives the [n, m] matrix of the fixture', async (_n, c) => {
    await tf.setBackend(backend);
    const [a, b] = [make(c, 'a'), make(c, 'b')];
    const m = dt.pairwiseProbiou(a, b);
    expect(m.shape).toEqual([c.inputs.a.shape[0], c.inputs.b.shape[0]]);
    expect(m.rank).toBe(2);
    expect(compareCase(c, { loss: Array.from(await m.data()), grad: {} }).detail ?? 'ok').toBe('ok');
    tf.dispose([a, b, m]);
    await dt.flush();
  });

  test('tf.grad through probiou and tf.variableGrads through kld give the fixture\'s gradient', async () => {
    await tf.setBackend(backend);
    const picked = losses.filter((c) => ['probiou', 'kld'].includes(c.params.variant as string) && c.params.reduction !== 'none' && !c.inputs.gradOutput && c.inputs.pred.shape[0] > 0);
    expect(picked.map((c) => c.params.variant)).toEqual(expect.arrayContaining(['probiou', 'kld']));
    for (const c of picked) {
      const { variant, ...rest } = c.params as { variant: string } & Record<string, unknown>;
      const [pred, target] = [make(c, 'pred'), make(c, 'target')];
      const weight = c.inputs.weight ? make(c, 'weight') : undefined;
      let g: tf.Tensor;
      if (variant === 'probiou') {
        g = tf.grad((p: tf.Tensor) => dt.probiou(p, target, { ...rest, weight }))(pred);
      } else {
        const v = tf.variable(pred, true, `rotated-${c.name}`);
        const { value, grads } = tf.variableGrads(() => dt.kld(v, target, { ...rest, weight }), [v]);
        expect(Object.keys(grads)).toEqual([v.name]);
        g = grads[v.name];
        value.dispose();
        v.dispose();
      }
      expect(g.shape, c.name).toEqual(c.inputs.pred.shape);
      const cmp = compareCase({ ...c, expected: { grad: c.expected.grad } }, { loss: [], grad: { pred: Array.from(await g.data()) } });
      expect(cmp.detail ?? 'ok', c.name).toBe('ok');
      tf.dispose([pred, target, g, ...(weight ? [weight] : [])]);
    }
    await dt.flush();
  });

  test('kfiou with deltas returns both gradients, pred and predDelta; target and targetDelta are constants (gradient zero)', async () => {
    await tf.setBackend(backend);
    const withDeltas = losses.filter((c) => c.inputs.predDelta);
    expect(withDeltas.length).toBeGreaterThan(0);
    for (const c of withDeltas) {
      const { variant: _v, ...rest } = c.params as { variant: string } & Record<string, unknown>;
      const t = Object.fromEntries(Object.keys(c.inputs).map((k) => [k, make(c, k)]));
      const names = ['pred', 'target', 'predDelta', 'targetDelta'];
      const grads = tf.grads((p: tf.Tensor, g: tf.Tensor, pd: tf.Tensor, td: tf.Tensor) => dt.kfiou(p, g, { ...rest, weight: t.weight, predDelta: pd, targetDelta: td }))(
        names.map((k) => t[k]),
        t.gradOutput,
      );
      const got = Object.fromEntries(await Promise.all(names.map(async (k, i) => [k, Array.from(await grads[i].data())] as const)));
      names.forEach((k, i) => expect(grads[i].shape, `grad.${k}'s shape`).toEqual(c.inputs[k].shape));
      expect(compareCase({ ...c, expected: { grad: c.expected.grad } }, { loss: [], grad: got }).detail ?? 'ok', c.name).toBe('ok');
      // The centre term reads the deltas: pred's centres get no gradient (ops.md, KFIoU).
      expect(got.pred.filter((_, i) => i % 5 < 2).every((v) => v === 0), 'grad.pred[:, 0:2]').toBe(true);
      expect(got.predDelta.some((v) => v !== 0), 'grad.predDelta is not all zero').toBe(true);
      expect(got.target.every((v) => v === 0) && got.targetDelta.every((v) => v === 0), 'constants').toBe(true);
      tf.dispose([...grads, ...Object.values(t)]);
    }
    await dt.flush();
  });
});

describe('training with a rotated loss', () => {
  test('optimizer.minimize(() => probiou(...)) lowers the loss on the WebGPU backend and leaks no tensor', async () => {
    await tf.setBackend('webgpu-limits');
    const c = losses.find((x) => x.params.variant === 'probiou' && x.name.endsWith('/random') && !x.inputs.weight && !x.inputs.gradOutput)!;
    const target = make(c, 'target');
    const pred = tf.variable(make(c, 'pred'));
    const opt = tf.train.adam(0.05);
    const values: number[] = [];
    let count = 0;
    for (let step = 0; step < 12; step++) {
      const loss = opt.minimize(() => dt.probiou(pred, target), true)!;
      values.push((await loss.data())[0]);
      loss.dispose();
      if (step === 1) count = tf.memory().numTensors;
      if (step > 1) expect(tf.memory().numTensors).toBe(count);
    }
    expect(values.every(Number.isFinite)).toBe(true);
    expect(values[values.length - 1]).toBeLessThan(values[0]);
    tf.dispose([pred, target]);
    opt.dispose();
    await dt.flush();
  });
});

describe("TF.js's own 'webgpu' backend (a device with the default limits)", () => {
  test.each(losses.filter((c) => !c.inputs.predDelta).map((c) => [c.name, c] as const))('%s without deltas runs there and equals the fixture', async (_n, c) => {
    const got = await tfRun('webgpu', c, 'variant');
    expect(compareCase(c, got).detail ?? 'ok').toBe('ok');
  });

  test('KFIoU with deltas is refused by name (too_large, the device), on every wrapper, with no tensor left; pairwiseProbiou runs', async () => {
    expect(await tf.setBackend('webgpu')).toBe(true);
    expect((tf.backend() as unknown as { device: GPUDevice }).device.limits.maxStorageBuffersPerShaderStage).toBeLessThan(10);
    const c = losses.find((x) => x.params.variant === 'kfiou' && x.inputs.predDelta)!;
    const t = Object.fromEntries(Object.keys(c.inputs).map((k) => [k, make(c, k)]));
    // The wrappers that take deltas: kfiou, and rotatedIouLoss with variant 'kfiou'.
    const names = ['kfiou', 'rotatedIouLoss'];
    for (const name of names) expect(WRAPPERS[name as keyof typeof WRAPPERS].op).toBe('rotated_iou_loss');
    for (const name of names) {
      const before = tf.memory().numTensors;
      const deltas = { predDelta: t.predDelta, targetDelta: t.targetDelta };
      const opts = name === 'rotatedIouLoss' ? { variant: 'kfiou', ...deltas } : deltas;
      let err: unknown;
      let out: tf.Tensor | undefined;
      try {
        out = tf.tidy(() => fn(name)(t.pred, t.target, opts));
      } catch (e) {
        err = e;
      }
      expect(out, `${name}: no tensor`).toBeUndefined();
      expect(err, name).toBeInstanceOf(DetlossError);
      expect({ code: (err as DetlossError).code, argument: (err as DetlossError).argument }, name).toEqual({ code: 'too_large', argument: 'device' });
      expect((err as DetlossError).message).toMatch(/maxStorageBuffersPerShaderStage/);
      expect(tf.memory().numTensors - before, `${name}: tensors left`).toBe(0);
    }
    const m = matrices.find((x) => x.inputs.a.shape[0] > 0)!;
    const got = dt.pairwiseProbiou(make(m, 'a'), make(m, 'b'));
    expect(got.shape).toEqual([m.inputs.a.shape[0], m.inputs.b.shape[0]]);
    expect(compareCase(m, { loss: Array.from(await got.data()), grad: {} }).detail ?? 'ok').toBe('ok');
    tf.dispose([got, ...Object.values(t)]);
    await dt.flush();
  });
});
