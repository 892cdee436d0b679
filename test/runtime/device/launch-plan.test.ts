// Issue 10: the launch plan per adapter, the fixed-shape reduction tree, and GPU timestamps, on
// Node's WebGPU over SwiftShader (the hardware plan forced).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { DetlossError } from '../../../src/errors';
import type { Detloss } from '../../../src/runtime/context';
import { reduceLevels } from '../../../src/runtime/call/chunks';
import { choosePlan, MAX_REDUCE_PER, PLANS } from '../../../src/runtime/device/launch-plan';
import { countDevice, maxRelErr, rand, reset } from '../../helpers/counting';
import { nodeContext } from '../../helpers/node-gpu';

let soft: Detloss;
let hard: Detloss;
/** The hardware plan with a tiny tree: 4 lanes adding 2 partials each, so even small calls take many levels. */
let deep: Detloss;
beforeAll(async () => {
  soft = await nodeContext({ plan: 'software' });
  hard = await nodeContext({ plan: 'hardware' });
  deep = await nodeContext({ plan: { kind: 'hardware', reduceLanes: 4, reducePer: 2, maxThreads: 4096 } });
});
afterAll(() => [soft, hard, deep].forEach((d) => d?.destroy()));

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

describe('choosing a plan', () => {
  it('gives a fallback adapter the software plan and hardware the hardware plan; options override fields', () => {
    expect(choosePlan({ isFallbackAdapter: true })).toEqual(PLANS.software);
    expect(choosePlan({ isFallbackAdapter: false })).toEqual(PLANS.hardware);
    expect(choosePlan({ isFallbackAdapter: true }, 'hardware', { maxThreads: 1024 })).toEqual({ ...PLANS.hardware, maxThreads: 1024 });
    expect(soft.stats().plan).toEqual({ ...PLANS.software, tuned: [], warnings: [] });
    expect(hard.stats().plan.kind).toBe('hardware');
  });
  it('refuses a malformed plan option by name', async () => {
    for (const [plan, argument] of [
      ['gpu', 'plan'],
      [{ kind: 'fast' }, 'plan.kind'],
      [{ reduceLanes: 3 }, 'plan.reduceLanes'],
      [{ reducePer: -1 }, 'plan.reducePer'],
      [{ maxThreds: 8 }, 'plan.maxThreds'],
      [{ vectorWidth: 2 }, 'plan.vectorWidth'],
    ] as const) {
      const e = await nodeContext({ plan: plan as never }).then(
        (d) => d.destroy(),
        (err: unknown) => err,
      );
      expect(e).toBeInstanceOf(DetlossError);
      expect((e as DetlossError).argument).toBe(argument);
    }
  });
});

describe('the reduction tree', () => {
  it('has a fixed shape in which no lane adds more than MAX_REDUCE_PER values', () => {
    expect(reduceLevels(16384, PLANS.software, 65535).map((l) => [l.count, l.per, l.groups])).toEqual([[16384, 256, 1]]);
    expect(reduceLevels(1 << 20, PLANS.hardware, 65535).map((l) => [l.count, l.groups])).toEqual([
      [1 << 20, 512],
      [512, 1],
    ]);
    expect(reduceLevels(1e6, PLANS.software, 65535).map((l) => l.per)).toEqual([MAX_REDUCE_PER, Math.ceil(Math.ceil(1e6 / (64 * MAX_REDUCE_PER)) / 64)]);
    expect(reduceLevels(100, { reduceLanes: 4, reducePer: 2 }, 65535).map((l) => l.groups)).toEqual([13, 2, 1]);
    for (const n of [1, 7, 64, 5000, 123457]) for (const p of [PLANS.software, PLANS.hardware]) for (const l of reduceLevels(n, p, 65535)) expect(l.per).toBeLessThanOrEqual(MAX_REDUCE_PER);
  });
  it('ends for every plan a record may hold: one lane adding one partial each adds two (a level of one would leave all it took)', () => {
    expect(reduceLevels(100, { reduceLanes: 1, reducePer: 1 }, 65535).map((l) => [l.count, l.per, l.groups])).toEqual([
      [100, 2, 50], [50, 2, 25], [25, 2, 13], [13, 2, 7], [7, 2, 4], [4, 2, 2], [2, 2, 1],
    ]);
    for (const reduceLanes of [1, 2, 64, 256]) {
      for (const reducePer of [0, 1, 2, 64]) {
        for (const n of [0, 1, 2, 3, 1000, 70_001]) {
          const levels = reduceLevels(n, { reduceLanes, reducePer }, 65535);
          expect(levels.length, `lanes ${reduceLanes} per ${reducePer} n ${n}`).toBeLessThanOrEqual(Math.max(1, Math.ceil(Math.log2(Math.max(2, n)))));
          expect(levels[levels.length - 1].groups).toBe(1);
          for (const l of levels) expect(reduceLanes * l.per).toBeGreaterThanOrEqual(2);
        }
      }
    }
  });
  it("a tuned plan's tree of one lane adding one partial (reduceLanes 1, reducePer 1) gives the CPU reference's sum", async () => {
    const dl = await nodeContext({ plan: { reduceLanes: 1, reducePer: 1, maxThreads: 256 } });
    try {
      const n = 1000;
      const pred = rand(n, 71, -3, 3);
      const target = rand(n, 72, -3, 3);
      const ref = cpu.run('smooth_l1', { pred, target }, { reduction: 'sum', beta: 0.5 });
      const r = await dl.run('smooth_l1', { pred, target }, { reduction: 'sum', beta: 0.5 });
      expect(maxRelErr(r.loss, ref.loss)).toBeLessThan(2e-6);
      expect(dl.stats().lastCall!.dispatches).toBe(1 + reduceLevels(256, dl.plan, 65535).length);
    } finally {
      dl.destroy();
    }
  });
  it.each(['mean', 'sum'] as const)("matches the CPU reference under every plan, with several levels (%s)", async (reduction) => {
    for (const n of [1, 63, 1000, 70_001]) {
      const pred = rand(n, n, -3, 3);
      const target = rand(n, n + 1, -3, 3);
      const ref = cpu.run('smooth_l1', { pred, target }, { reduction, beta: 0.5 });
      for (const dl of [soft, hard, deep]) {
        const c = countDevice(dl.device);
        reset(c);
        const r = await dl.run('smooth_l1', { pred, target }, { reduction, beta: 0.5 });
        expect(maxRelErr(r.loss, ref.loss), `${dl.plan.kind} n=${n}`).toBeLessThan(2e-6);
        expect(maxRelErr(r.grad.pred, ref.grad.pred)).toBeLessThan(1e-6);
        expect(c.submits).toBe(1);
        expect(dl.stats().lastCall!.readbacks).toBe(1);
        // The vec4 kernel (a multiple of 4 elements) takes four elements per thread step.
        const steps = n % 4 === 0 && dl.plan.vectorWidth === 4 ? n / 4 : n;
        expect(dl.stats().lastCall!.kernel).toBe(steps < n ? 'regression+vec4:main' : 'regression:main');
        const levels = reduceLevels(Math.min(dl.plan.maxThreads, Math.ceil(steps / 64) * 64), dl.plan, 65535).length;
        expect(dl.stats().lastCall!.dispatches).toBe(1 + levels);
      }
    }
  });
  it('gives the same bits on every run, calls in flight together included', async () => {
    const n = 50_003;
    const pred = rand(n * 4, 5, 0, 100);
    const target = rand(n * 4, 6, 0, 100);
    for (const dl of [soft, hard, deep]) {
      const first = await dl.run('iou_loss', { pred, target }, { variant: 'ciou' });
      const again = await Promise.all([1, 2, 3].map(() => dl.run('iou_loss', { pred, target }, { variant: 'ciou' })));
      for (const r of again) {
        expect(bits(r.loss)).toEqual(bits(first.loss));
        expect(bits(r.grad.pred)).toEqual(bits(first.grad.pred));
      }
    }
  });
});

describe("a data-dependent 'mean' denominator summed on the GPU", () => {
  const upload = (dl: Detloss, a: Float32Array | Int32Array) => {
    const b = dl.device.createBuffer({ size: Math.max(16, a.byteLength), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    dl.device.queue.writeBuffer(b, 0, a.buffer, a.byteOffset, a.byteLength);
    return b;
  };
  it.each([
    ['plain', {}],
    ['class weights, ignored rows, label smoothing', { classWeight: true, ignoreIndex: 2, labelSmoothing: 0.1 }],
    ['a weight, and every row ignored in a second call', { weight: true, ignoreIndex: 2 }],
  ] as const)("cross_entropy 'mean' on resident inputs needs no avgFactor (%s), under every plan", async (_what, o) => {
    const n = 3001;
    const c = 7;
    const logits = rand(n * c, 1, -4, 4);
    const labels = Int32Array.from({ length: n }, (_, i) => (i * 5) % c);
    const classWeight = rand(c, 3, 0.2, 2);
    const weight = rand(n, 4, 0, 2);
    const params = { ...('ignoreIndex' in o ? { ignoreIndex: o.ignoreIndex } : {}), ...('labelSmoothing' in o ? { labelSmoothing: o.labelSmoothing } : {}) };
    const host = { logits: { data: logits, shape: [n, c] }, labels, ...('classWeight' in o ? { classWeight } : {}), ...('weight' in o ? { weight } : {}) };
    const ref = cpu.run('cross_entropy', host, params);
    for (const dl of [soft, hard, deep]) {
      const gpu = {
        logits: { buffer: upload(dl, logits), shape: [n, c] },
        labels: { buffer: upload(dl, labels), shape: [n] },
        ...('classWeight' in o ? { classWeight: { buffer: upload(dl, classWeight), shape: [c] } } : {}),
        ...('weight' in o ? { weight: { buffer: upload(dl, weight), shape: [n] } } : {}),
      };
      const r = await dl.run('cross_entropy', gpu, params);
      expect(maxRelErr(r.loss, ref.loss), dl.plan.kind).toBeLessThan(1e-5);
      expect(maxRelErr(r.grad.logits, ref.grad.logits)).toBeLessThan(1e-5);
      const res = await dl.runResident('cross_entropy', gpu, params);
      const back = dl.device.createBuffer({ size: 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      const enc = dl.device.createCommandEncoder();
      enc.copyBufferToBuffer(res.loss, 0, back, 0, 4);
      dl.device.queue.submit([enc.finish()]);
      await back.mapAsync(GPUMapMode.READ);
      expect(Math.abs(new Float32Array(back.getMappedRange())[0] - ref.loss[0])).toBeLessThan(1e-5 * Math.abs(ref.loss[0]) + 1e-7);
      back.unmap();
      res.release();
      if ('weight' in o) {
        // Every row ignored: the denominator is 0, and 'mean' of nothing is 0 (ops.md).
        const none = await dl.run('cross_entropy', { ...gpu, labels: { buffer: upload(dl, new Int32Array(n).fill(2)), shape: [n] } }, params);
        expect(none.loss[0]).toBe(0);
        expect(none.grad.logits.every((v) => v === 0)).toBe(true);
      }
    }
  });
});

describe('GPU time from timestamps', () => {
  it('reports each pass of the last call, in the same readback', async () => {
    const timed = await nodeContext({ timestamps: true });
    if (!timed.device.features.has('timestamp-query')) {
      // A device without the feature: no numbers, and no error.
      expect(timed.stats().lastCall?.gpuMs).toBeUndefined();
      return;
    }
    const pred = rand(100_000, 1);
    const target = rand(100_000, 2);
    const c = countDevice(timed.device);
    for (const reduction of ['mean', 'none'] as const) {
      reset(c);
      await timed.run('l1', { pred, target }, { reduction });
      const last = timed.stats().lastCall!;
      expect(c.maps).toBe(1);
      expect(last.passes!.map((p) => p.name)).toEqual(reduction === 'none' ? ['fused'] : ['fused', 'reduce']);
      for (const p of last.passes!) expect(p.gpuMs).toBeGreaterThanOrEqual(0);
      expect(last.gpuMs).toBeGreaterThan(0);
      expect(last.gpuMs).toBeCloseTo(last.passes!.reduce((a, p) => a + p.gpuMs, 0), 9);
    }
    const r = await timed.runResident('l1', { pred, target });
    expect(timed.stats().lastCall!.gpuMs).toBeGreaterThan(0);
    r.release();
    timed.destroy();
  });
  it('is off unless asked for', async () => {
    await soft.run('l1', { pred: rand(10, 1), target: rand(10, 2) });
    expect(soft.stats().lastCall!.gpuMs).toBeUndefined();
  });
});
