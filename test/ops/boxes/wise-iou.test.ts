// Wise-IoU's batch mean of 1 - iou (`aux.batchIouMean`) on the CPU reference and on Node's WebGPU
// (run and runResident), and the WiseIoU helper that keeps the running mean: a hand-computed
// running mean over several calls, a checkpoint that resumes to the same bits, and its refusals.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { DetlossError } from '../../../src/errors';
import { WiseIoU } from '../../../src/wise-iou';
import { nodeContext } from '../../helpers/node-gpu';

type Detloss = Awaited<ReturnType<typeof nodeContext>>;

/** A seeded batch of n xyxy box pairs: overlapping, disjoint and nested ones. */
function batch(n: number, seed: number) {
  let s = seed >>> 0;
  const r = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const pred = new Float32Array(4 * n);
  const target = new Float32Array(4 * n);
  for (let i = 0; i < n; i++) {
    const x = 100 * r(), y = 100 * r(), w = 1 + 40 * r(), h = 1 + 40 * r();
    target.set([x, y, x + w, y + h], 4 * i);
    const dx = 30 * (r() - 0.5), dy = 30 * (r() - 0.5), sw = 0.5 + r(), sh = 0.5 + r();
    pred.set([x + dx, y + dy, x + dx + w * sw, y + dy + h * sh], 4 * i);
  }
  return { pred, target };
}

/** 1 - iou of each pair, written out here from ops.md's shared terms (eps 1e-7), in float64. */
function oneMinusIou(pred: Float32Array, target: Float32Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < pred.length / 4; i++) {
    const [x1, y1, x2, y2] = pred.subarray(4 * i, 4 * i + 4);
    const [a1, b1, a2, b2] = target.subarray(4 * i, 4 * i + 4);
    const iw = Math.min(x2, a2) - Math.max(x1, a1);
    const ih = Math.min(y2, b2) - Math.max(y1, b1);
    const inter = iw > 0 && ih > 0 ? iw * ih : 0;
    const union = (x2 - x1) * (y2 - y1) + (a2 - a1) * (b2 - b1) - inter;
    out.push(1 - inter / (union + 1e-7));
  }
  return out;
}
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

let dl: Detloss;
beforeAll(async () => {
  dl = await nodeContext();
});
afterAll(() => dl?.destroy());

describe("iou_loss variant 'wiou' reports the batch's mean of 1 - iou", () => {
  it.each([1, 7, 300])('n = %i: cpu.run and run give it beside the loss, for every reduction', async (n) => {
    const { pred, target } = batch(n, n);
    const want = mean(oneMinusIou(pred, target));
    for (const reduction of ['none', 'mean', 'sum'] as const) {
      const weight = new Float32Array(n).fill(0.5);
      const options = { variant: 'wiou', iouMean: 0.4, reduction } as const;
      const c = cpu.run('iou_loss', { pred, target, weight }, options);
      expect(c.aux?.batchIouMean).toBeCloseTo(want, 12);
      const g = await dl.run('iou_loss', { pred, target, weight }, options);
      expect(Math.abs(g.aux!.batchIouMean - want)).toBeLessThan(2e-6);
      // The loss itself is unchanged by the second call.
      for (let i = 0; i < c.loss.length; i++) expect(Math.abs(g.loss[i] - c.loss[i])).toBeLessThan(1e-5 + 1e-4 * Math.abs(c.loss[i]));
      // One submit and one readback: the batch mean is a pass of the same call.
      expect(dl.stats().lastCall).toMatchObject({ op: 'iou_loss', submits: 1, readbacks: 1 });
    }
  });
  it('under the hardware plan (a tree of several levels), in every reduction, it is the same mean', async () => {
    const hw = await nodeContext({ plan: { kind: 'hardware', reduceLanes: 64 } });
    const { pred, target } = batch(5000, 77);
    const want = mean(oneMinusIou(pred, target));
    for (const reduction of ['none', 'mean', 'sum'] as const) {
      const g = await hw.run('iou_loss', { pred, target }, { variant: 'wiou', wiouVersion: 1, reduction });
      expect(Math.abs(g.aux!.batchIouMean - want), reduction).toBeLessThan(2e-6);
    }
    hw.destroy();
  });
  it('other variants report nothing', async () => {
    const { pred, target } = batch(5, 3);
    expect(cpu.run('iou_loss', { pred, target }, { variant: 'ciou' }).aux).toBeUndefined();
    expect((await dl.run('iou_loss', { pred, target }, { variant: 'ciou' })).aux).toBeUndefined();
  });
  it('no boxes: 0, and a finite loss', async () => {
    const empty = new Float32Array(0);
    const c = cpu.run('iou_loss', { pred: empty, target: empty }, { variant: 'wiou' });
    expect(c.aux?.batchIouMean).toBe(0);
    const g = await dl.run('iou_loss', { pred: empty, target: empty }, { variant: 'wiou' });
    expect(g.aux?.batchIouMean).toBe(0);
    expect(g.loss[0]).toBe(0);
  });
  it('runResident hands it over as a 4-byte buffer, released with the rest', async () => {
    const { pred, target } = batch(64, 9);
    const before = dl.stats().bytesInUse;
    const r = await dl.runResident('iou_loss', { pred, target }, { variant: 'wiou', wiouVersion: 2, iouMean: 0.7 });
    const buf = r.aux!.batchIouMean;
    const staging = dl.device.createBuffer({ size: 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = dl.device.createCommandEncoder();
    enc.copyBufferToBuffer(buf, 0, staging, 0, 4);
    dl.device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const got = new Float32Array(staging.getMappedRange().slice(0))[0];
    staging.destroy();
    expect(Math.abs(got - mean(oneMinusIou(pred, target)))).toBeLessThan(2e-6);
    r.release();
    expect(dl.stats().bytesInUse).toBe(before);
  });
});

describe('WiseIoU keeps the running mean', () => {
  it('over several calls with a momentum it matches a running mean computed by hand, on the GPU and the CPU', async () => {
    const gpuHelper = new WiseIoU({ momentum: 0.1 });
    const cpuHelper = new WiseIoU({ momentum: 0.1 });
    let m = 1;
    for (let step = 0; step < 6; step++) {
      const { pred, target } = batch(40 + step, 100 + step);
      // The call uses the mean before this batch.
      const want = cpu.run('iou_loss', { pred, target }, { variant: 'wiou', iouMean: m });
      const g = await gpuHelper.run(dl, { pred, target });
      const c = cpuHelper.runCpu({ pred, target });
      expect(c.loss[0]).toBe(want.loss[0]);
      expect(Math.abs(g.loss[0] - want.loss[0])).toBeLessThan(1e-5);
      m = 0.9 * m + 0.1 * mean(oneMinusIou(pred, target));
      expect(cpuHelper.iouMean).toBeCloseTo(m, 12);
      expect(Math.abs(gpuHelper.iouMean - m)).toBeLessThan(1e-6);
    }
    expect(gpuHelper.state().steps).toBe(6);
    expect(m).toBeLessThan(0.95); // the mean moved: the test would see a helper that never updates
  });
  it('a checkpointed state resumes to identical results', async () => {
    const a = new WiseIoU({ momentum: 0.05, version: 3, alpha: 1.7, delta: 2.7 });
    for (let step = 0; step < 3; step++) await a.run(dl, batch(32, step));
    const saved = JSON.parse(JSON.stringify(a.state()));
    const b = new WiseIoU({ momentum: 0.05, version: 3, alpha: 1.7, delta: 2.7 });
    b.load(saved);
    expect(b.state()).toEqual(a.state());
    for (let step = 3; step < 6; step++) {
      const x = await a.run(dl, batch(32, step), { reduction: 'none' });
      const y = await b.run(dl, batch(32, step), { reduction: 'none' });
      expect(y.loss).toEqual(x.loss);
      expect(y.grad.pred).toEqual(x.grad.pred);
      expect(b.iouMean).toBe(a.iouMean);
    }
    // Without the load, the same calls differ.
    const fresh = new WiseIoU({ momentum: 0.05, version: 3, alpha: 1.7, delta: 2.7 });
    const z = await fresh.run(dl, batch(32, 6), { reduction: 'none' });
    const x = await a.run(dl, batch(32, 6), { reduction: 'none' });
    expect(z.loss).not.toEqual(x.loss);
  });
  it('an empty batch is not folded in', async () => {
    const h = new WiseIoU({ momentum: 0.5, iouMean: 0.8 });
    await h.run(dl, { pred: new Float32Array(0), target: new Float32Array(0) });
    h.runCpu({ pred: new Float32Array(0), target: new Float32Array(0) });
    expect(h.iouMean).toBe(0.8);
    expect(h.state().steps).toBe(0);
  });
  it('refuses bad options and states, naming them', () => {
    const refused = (f: () => unknown, argument: string) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(DetlossError);
        expect((e as DetlossError).code).toBe('invalid_param');
        expect((e as DetlossError).argument).toBe(argument);
        return;
      }
      throw new Error(`accepted: ${argument}`);
    };
    refused(() => new WiseIoU({ momentum: 0 }), 'momentum');
    refused(() => new WiseIoU({ momentum: 1.5 }), 'momentum');
    refused(() => new WiseIoU({ iouMean: 0 }), 'iouMean');
    refused(() => new WiseIoU({ version: 4 as 3 }), 'version');
    refused(() => new WiseIoU({ alpha: -1 }), 'alpha');
    const h = new WiseIoU({ momentum: 0.1 });
    refused(() => h.load({ iouMean: 0.5, momentum: 0.2, steps: 3 }), 'momentum');
    refused(() => h.load({ iouMean: NaN, momentum: 0.1, steps: 3 }), 'iouMean');
    refused(() => h.load({ iouMean: 0.5, momentum: 0.1, steps: -1 }), 'steps');
    refused(() => h.load(null as never), 'state');
    refused(() => h.update(NaN), 'batchIouMean');
    // The wrapped call's own options are checked by the op.
    refused(() => h.runCpu(batch(2, 1), { power: 2 } as never), 'power');
  });
  it('refuses, where they are given, settings that the op would refuse on every later call', async () => {
    const refusedAt = (f: () => unknown, argument: string, pattern: RegExp) => {
      let err: unknown;
      try {
        f();
      } catch (e) {
        err = e;
      }
      expect(err, `accepted: ${argument}`).toBeInstanceOf(DetlossError);
      expect({ code: (err as DetlossError).code, argument: (err as DetlossError).argument }).toEqual({ code: 'invalid_param', argument });
      expect((err as DetlossError).message).toMatch(pattern);
    };
    // v3's alpha must be > 1, and alpha^delta must stay within float32: the op says so, and now
    // so does the constructor, naming its own option.
    refusedAt(() => new WiseIoU({ alpha: 0.5 }), 'alpha', /^WiseIoU: alpha: .*> 1/);
    refusedAt(() => new WiseIoU({ alpha: 1e10, delta: 20 }), 'delta', /^WiseIoU: delta: /);
    refusedAt(() => new WiseIoU({ iouMean: 1e300 }), 'iouMean', /^WiseIoU: iouMean: /);
    const h = new WiseIoU({ momentum: 0.1 });
    refusedAt(() => h.load({ iouMean: 1e300, momentum: 0.1, steps: 1 }), 'iouMean', /^WiseIoU: iouMean: /);
    expect(h.iouMean).toBe(1);
    // Versions 1 and 2 have no such bound on alpha: accepted, and a call runs.
    const v1 = new WiseIoU({ version: 1, alpha: 0.5 });
    const r = await v1.run(dl, batch(3, 2));
    expect(Number.isFinite(r.loss[0])).toBe(true);
  });
  it('a batch with a NaN box returns its NaN loss and leaves the running mean alone, on the GPU and the CPU', async () => {
    const { pred, target } = batch(4, 9);
    pred[5] = NaN;
    for (const how of ['gpu', 'cpu'] as const) {
      const h = new WiseIoU({ momentum: 0.5, iouMean: 0.8 });
      const r = how === 'gpu' ? await h.run(dl, { pred, target }) : h.runCpu({ pred, target });
      expect(Number.isNaN(r.loss[0]), how).toBe(true);
      expect(h.iouMean, how).toBe(0.8);
      expect(h.state().steps, how).toBe(0);
      // A finite batch after it folds in as usual.
      await h.run(dl, batch(4, 10));
      expect(h.state().steps, how).toBe(1);
    }
  });
});
