// Tuned launch plans in detloss/tfjs: usePlans() and tune() keep records for TF.js's device, its
// context runs them (`stats().lastCall.tunedPlan`), a context made after a GPU failure loads them
// again, and the loss and gradient under a tuned plan equal the CPU reference. Records for another
// adapter are ignored with a warning; malformed ones are refused by the field's path, as the core
// refuses them.
import '../../bench/node-globals';
import '@tensorflow/tfjs-backend-webgpu';
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import '../helpers/tfjs-quiet';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDetloss, type DetlossContext } from '../../src/api';
import { cpu } from '../../src/cpu';
import { DetlossError } from '../../src/errors';
import * as dt from '../../src/frameworks/tfjs';
import type { PlanRecord, TunedPlan } from '../../src/runtime/public';
import { VERSION } from '../../src/version';
import { rand } from '../helpers/counting';
import { plant } from '../helpers/plant';

const N = 1e4;
const device = () => (tf.backend() as unknown as { device: GPUDevice }).device;
const pred = rand(N, 11, -3, 3);
const target = rand(N, 12, -3, 3);

/** smoothL1 on N elements under tf.valueAndGrad: the loss and d loss / d pred, and the tuned plan the call ran. */
async function smoothL1Call(options: { beta?: number; reduction?: 'mean' | 'sum' } = { beta: 0.5 }) {
  const t = tf.tensor(target, [N]);
  const { value, grad } = tf.valueAndGrad((p: tf.Tensor) => dt.smoothL1(p, t, options) as tf.Scalar)(tf.tensor(pred, [N]));
  const tunedPlan = dt.detlossFor().stats().lastCall?.tunedPlan;
  const out = { loss: (await value.data()) as Float32Array, grad: (await grad.data()) as Float32Array, tunedPlan };
  tf.dispose([t, value, grad]);
  await dt.flush();
  return out;
}

/** Each element within `rel` of the reference's, relative to the element itself (the gradient of a mean is about 1/N). */
function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string, rel = 1e-5) {
  expect(got.length, what).toBe(want.length);
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / (Math.abs(want[i]) + 1e-30));
  expect(worst, `${what}: worst relative error`).toBeLessThan(rel);
}

/** The call equals the CPU reference. */
function expectReference(got: { loss: Float32Array; grad: Float32Array }, options: Record<string, unknown> = { beta: 0.5 }) {
  const want = cpu.run('smooth_l1', { pred, target }, options);
  expectClose(got.loss, want.loss, 'loss');
  expectClose(got.grad, want.grad.pred, 'grad.pred');
}

/** A record of this device's adapter and this version holding one plan for `family` at `size`. */
function recordOf(adapter: PlanRecord['adapter'], plan: TunedPlan, family = 'regression', size = '1e4'): PlanRecord {
  return {
    format: 'detloss-plans',
    detloss: VERSION,
    adapter,
    timer: 'wall',
    created: new Date().toISOString(),
    plans: [{ family, size, plan, ms: 1, defaultMs: 2, op: 'smooth_l1', candidates: [{ plan, ms: 1 }] }],
  };
}

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}

let core: DetlossContext;
let adapter: PlanRecord['adapter'];
beforeAll(async () => {
  expect(await tf.setBackend('webgpu')).toBe(true);
  // A core context on TF.js's own device: a record it tunes is one for this adapter and version.
  core = await createDetloss({ device: device() });
  const a = dt.detlossFor().adapter;
  adapter = { vendor: a.vendor, architecture: a.architecture, device: a.device, description: a.description };
});
afterAll(() => core?.destroy());

describe('tuned plans in detloss/tfjs', () => {
  it('before any record: the call runs the context plan, and equals the CPU reference', async () => {
    const r = await smoothL1Call();
    expect(r.tunedPlan).toBeUndefined();
    expectReference(r);
  });

  it('a record for another adapter is ignored with a warning: no tuned plan runs', async () => {
    const foreign = recordOf({ ...adapter, vendor: 'another-vendor', description: 'another GPU' }, { maxThreads: 1024, workgroupSize: 128, vectorWidth: 1, reduceLanes: 64, reducePer: 4, rows: 'thread' });
    dt.usePlans(foreign);
    const { plan } = dt.detlossFor().stats();
    expect(plan.tuned).toEqual([]);
    expect(plan.warnings.some((w) => /another adapter/.test(w) && /vendor/.test(w)), plan.warnings.join('; ')).toBe(true);
    const r = await smoothL1Call();
    expect(r.tunedPlan).toBeUndefined();
    expectReference(r);
  });

  it('a corrupt record is refused naming the field, and nothing is loaded', () => {
    const good = recordOf(adapter, { maxThreads: 4096, workgroupSize: 128, vectorWidth: 4, reduceLanes: 64, reducePer: 0, rows: 'thread' });
    const bad = structuredClone(good);
    bad.plans[0].plan.workgroupSize = 48;
    for (const [given, argument] of [
      [bad, 'plans.plans[0].plan.workgroupSize'],
      [[good, bad], 'plans[1].plans[0].plan.workgroupSize'],
      [{ ...good, format: 'plans' }, 'plans.format'],
    ] as const) {
      const e = thrown(() => dt.usePlans(given as never));
      expect(e instanceof DetlossError, String(e)).toBe(true);
      expect({ code: (e as DetlossError).code, argument: (e as DetlossError).argument }).toEqual({ code: 'invalid_param', argument });
      expect((e as Error).message).toContain(argument);
    }
    // (the good record beside the bad one was not loaded either)
    expect(dt.detlossFor().stats().plan.tuned).toEqual([]);
  });

  it('a record tuned on this device, loaded with usePlans, makes smoothL1 on 1e4 elements run its plan, with the reference loss and gradient', async () => {
    const record = await core.tune({ ops: ['smooth_l1'], sizes: [N], budgetMs: 1500 });
    expect(record.plans.map((c) => `${c.family} ${c.size}`)).toEqual(['regression 1e4']);
    dt.usePlans(record);
    const r = await smoothL1Call();
    expect(r.tunedPlan).toBe('regression 1e4');
    expectReference(r);
    // Other sizes keep the context plan: 1e2 is two powers of ten away.
    const small = tf.tensor(pred.subarray(0, 100));
    dt.smoothL1(small, tf.tensor(target.subarray(0, 100))).dispose();
    expect(dt.detlossFor().stats().lastCall?.tunedPlan).toBeUndefined();
    small.dispose();
  });

  it('a plan other than the context plan (workgroups of 256, scalar loads, a deep tree) gives the reference loss and gradient, reduced by sum and by mean', async () => {
    dt.usePlans(recordOf(adapter, { maxThreads: 512, workgroupSize: 256, vectorWidth: 1, reduceLanes: 16, reducePer: 2, rows: 'thread' }));
    for (const options of [{ beta: 0.5 }, { beta: 0.25, reduction: 'sum' as const }]) {
      const r = await smoothL1Call(options);
      expect(r.tunedPlan).toBe('regression 1e4');
      expectReference(r, options);
    }
    expect(dt.detlossFor().stats().plan.tuned.map((c) => c.plan.workgroupSize)).toEqual([256]);
  });

  it('a context made after a GPU failure dropped the last one loads the records kept for the device', async () => {
    const before = dt.detlossFor();
    const fault = plant(device(), 'validation');
    dt.smoothL1(tf.tensor(pred, [N]), tf.tensor(target, [N])).dispose();
    expect(fault.fired()).toBe(true);
    const e = await dt.flush().then(() => undefined, (x: unknown) => x);
    expect((e as DetlossError)?.code).toBe('gpu_validation');
    const after = dt.detlossFor();
    expect(after).not.toBe(before);
    expect(after.stats().plan.tuned.map((c) => [`${c.family} ${c.size}`, c.plan.workgroupSize])).toEqual([['regression 1e4', 256]]);
    // The foreign record is kept too: the new context warns of it again.
    expect(after.stats().plan.warnings.some((w) => /another adapter/.test(w))).toBe(true);
    const r = await smoothL1Call();
    expect(r.tunedPlan).toBe('regression 1e4');
    expectReference(r);
  });

  it('tune() times plans on the device and keeps its record: the next call runs it', async () => {
    const record = await dt.tune({ ops: ['smooth_l1'], sizes: [N], budgetMs: 1500 });
    expect(record.format).toBe('detloss-plans');
    expect(record.adapter).toEqual(adapter);
    const mine = record.plans.find((c) => c.family === 'regression' && c.size === '1e4')!;
    expect(mine.candidates.length).toBeGreaterThan(0);
    const held = dt.detlossFor().stats().plan.tuned.find((c) => c.family === 'regression' && c.size === '1e4');
    expect(held?.plan).toEqual(mine.plan);
    const r = await smoothL1Call();
    expect(r.tunedPlan).toBe('regression 1e4');
    expectReference(r);
  });

  it('a tune() with bad options is refused by name and leaves the plans held as they were', async () => {
    const held = structuredClone(dt.detlossFor().stats().plan.tuned);
    const e = await dt.tune({ ops: ['smooth_l1'], budgetMs: 0 }).then(() => undefined, (x: unknown) => x);
    expect({ code: (e as DetlossError).code, argument: (e as DetlossError).argument }).toEqual({ code: 'invalid_param', argument: 'budgetMs' });
    expect(dt.detlossFor().stats().plan.tuned).toEqual(held);
  });

  it('on another backend both are no_webgpu, as detlossFor is', async () => {
    await tf.setBackend('cpu');
    try {
      const e = thrown(() => dt.usePlans(recordOf(adapter, { maxThreads: 4096, workgroupSize: 64, vectorWidth: 4, reduceLanes: 64, reducePer: 0, rows: 'thread' })));
      expect({ code: (e as DetlossError).code, argument: (e as DetlossError).argument }).toEqual({ code: 'no_webgpu', argument: 'backend' });
      const t = await dt.tune({ ops: ['smooth_l1'] }).then(() => undefined, (x: unknown) => x);
      expect({ code: (t as DetlossError).code, argument: (t as DetlossError).argument }).toEqual({ code: 'no_webgpu', argument: 'backend' });
    } finally {
      await tf.setBackend('webgpu');
    }
  });
});
