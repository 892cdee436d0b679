// Tuned launch plans in detloss/ort: `detlossFor(device, { plans })` loads a record into the
// device's context, whether the call makes that context or finds it made, and a call of an ORT
// wrapper then runs the tuned plan (`dl.context.stats().lastCall.tunedPlan`) with the CPU
// reference's loss and gradient. A record for another adapter is ignored with a warning; a corrupt
// one is refused by the field's path, as createDetloss refuses it. ORT tensors as in
// ort-node.test.ts: gpu-buffer tensors made with onnxruntime-web's Tensor class.
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DetlossContext } from '../../src/api';
import { cpu } from '../../src/cpu';
import { DetlossError } from '../../src/errors';
import { detlossFor, smoothL1, type OrtDetloss, type OrtTensor } from '../../src/frameworks/ort';
import type { PlanRecord, TunedPlan } from '../../src/runtime/public';
import { VERSION } from '../../src/version';
import { rand } from '../helpers/counting';
import { nodeContext } from '../helpers/node-gpu';

interface OrtModule {
  Tensor: { fromGpuBuffer(buffer: GPUBuffer, options: { dataType: string; dims: number[] }): OrtTensor & { getData(release?: boolean): Promise<Float32Array> } };
}
const ort = createRequire(import.meta.url)('onnxruntime-web') as OrtModule;
type T = OrtTensor & { getData(release?: boolean): Promise<Float32Array> };

const N = 1e4;
const pred = rand(N, 21, -3, 3);
const target = rand(N, 22, -3, 3);

/** Devices of their own (the ORT context of a device is made once): one for each kind of start. */
let tuner: DetlossContext;
let fresh: DetlossContext;
let other: DetlossContext;
const made: GPUBuffer[] = [];
const ortOf: OrtDetloss[] = [];
beforeAll(async () => {
  [tuner, fresh, other] = await Promise.all([nodeContext(), nodeContext(), nodeContext()]);
});
afterAll(() => {
  made.forEach((b) => b.destroy());
  ortOf.forEach((d) => d.destroy());
  [tuner, fresh, other].forEach((c) => c?.destroy());
});

function onGpu(device: GPUDevice, data: Float32Array): T {
  const buffer = device.createBuffer({ size: Math.max(16, Math.ceil(data.byteLength / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
  made.push(buffer);
  return ort.Tensor.fromGpuBuffer(buffer, { dataType: 'float32', dims: [data.length] });
}

/** smoothL1 through the free wrapper on `dl`'s device: loss, gradient, and the tuned plan the call ran. */
async function call(dl: OrtDetloss) {
  const { loss, grad } = await smoothL1(onGpu(dl.device, pred), onGpu(dl.device, target), { beta: 0.5, device: dl.device });
  const tunedPlan = dl.context.stats().lastCall?.tunedPlan;
  return { loss: await (loss as T).getData(true), grad: await (grad as T).getData(true), tunedPlan };
}

function expectReference(got: { loss: Float32Array; grad: Float32Array }) {
  const want = cpu.run('smooth_l1', { pred, target }, { beta: 0.5 });
  for (const [what, g, w] of [['loss', got.loss, want.loss], ['grad.pred', got.grad, want.grad.pred]] as const) {
    expect(g.length, what).toBe(w.length);
    let worst = 0;
    for (let i = 0; i < w.length; i++) worst = Math.max(worst, Math.abs(g[i] - w[i]) / (Math.abs(w[i]) + 1e-30));
    expect(worst, `${what}: worst relative error`).toBeLessThan(1e-5);
  }
}

const keyOf = (a: DetlossContext['adapter']): PlanRecord['adapter'] => ({ vendor: a.vendor, architecture: a.architecture, device: a.device, description: a.description });
function recordOf(adapter: PlanRecord['adapter'], plan: TunedPlan): PlanRecord {
  return { format: 'detloss-plans', detloss: VERSION, adapter, timer: 'wall', created: new Date().toISOString(), plans: [{ family: 'regression', size: '1e4', plan, ms: 1, defaultMs: 2, op: 'smooth_l1', candidates: [] }] };
}
const WIDE: TunedPlan = { maxThreads: 512, workgroupSize: 256, vectorWidth: 1, reduceLanes: 16, reducePer: 2, rows: 'thread' };

async function refusal(p: Promise<unknown>): Promise<{ code?: string; argument?: string; message?: string }> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  expect(e instanceof DetlossError, String(e)).toBe(true);
  return { code: (e as DetlossError).code, argument: (e as DetlossError).argument, message: (e as Error).message };
}

describe('detlossFor(device, { plans })', () => {
  it('a record tuned on the device makes the context detlossFor makes run it, with the reference loss and gradient', async () => {
    const record = await tuner.tune({ ops: ['smooth_l1'], sizes: [N], budgetMs: 1500 });
    expect(record.plans.map((c) => `${c.family} ${c.size}`)).toEqual(['regression 1e4']);
    const dl = await detlossFor(tuner.device, { plans: record });
    ortOf.push(dl);
    expect(dl.context).not.toBe(tuner);
    expect(dl.context.stats().plan.tuned.map((c) => c.plan)).toEqual([record.plans[0].plan]);
    const r = await call(dl);
    expect(r.tunedPlan).toBe('regression 1e4');
    expectReference(r);
  });

  it('on a device whose context exists, a record loads into it (the same context), and its plan runs', async () => {
    const dl = await detlossFor(fresh.device);
    ortOf.push(dl);
    expect((await call(dl)).tunedPlan).toBeUndefined();
    const again = await detlossFor(fresh.device, { plans: recordOf(keyOf(fresh.adapter), WIDE) });
    expect(again).toBe(dl);
    expect(dl.context.stats().plan.tuned.map((c) => c.plan)).toEqual([WIDE]);
    const r = await call(dl);
    expect(r.tunedPlan).toBe('regression 1e4');
    expectReference(r);
  });

  it('a record for another adapter is ignored with a warning: no tuned plan runs', async () => {
    const foreign = recordOf({ ...keyOf(other.adapter), vendor: 'another-vendor', device: 'another device' }, WIDE);
    const dl = await detlossFor(other.device, { plans: foreign });
    ortOf.push(dl);
    const { plan } = dl.context.stats();
    expect(plan.tuned).toEqual([]);
    expect(plan.warnings.some((w) => /another adapter/.test(w) && /vendor/.test(w)), plan.warnings.join('; ')).toBe(true);
    const r = await call(dl);
    expect(r.tunedPlan).toBeUndefined();
    expectReference(r);
  });

  it('a corrupt record is refused naming the field, on a new context and an existing one, and nothing is loaded', async () => {
    const good = recordOf(keyOf(other.adapter), WIDE);
    const cases: [unknown, string][] = [
      [{ ...good, plans: [{ ...good.plans[0], plan: { ...WIDE, workgroupSize: 48 } }] }, 'plans.plans[0].plan.workgroupSize'],
      [[good, { ...good, adapter: { vendor: 'x' } }], 'plans[1].adapter.architecture'],
      [{ ...good, plans: [{ ...good.plans[0], plan: { ...WIDE, rows: 'warp' } }] }, 'plans.plans[0].plan.rows'],
    ];
    const extra = await nodeContext();
    try {
      for (const [plans, argument] of cases) {
        // `other` has its ORT context from the test above; `extra` has none.
        for (const device of [other.device, extra.device]) {
          const r = await refusal(detlossFor(device, { plans: plans as PlanRecord }));
          expect({ code: r.code, argument: r.argument }).toEqual({ code: 'invalid_param', argument });
          expect(r.message).toContain(argument);
        }
      }
      expect((await detlossFor(other.device)).context.stats().plan.tuned).toEqual([]);
    } finally {
      extra.destroy();
    }
  });
});
