import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { caseInputs, caseOptions, compareCase, parseFixtures } from '../../../src/fixtures';
import { nodeContext } from '../../helpers/node-gpu';
import { note } from '../../helpers/note';

type Dl = Awaited<ReturnType<typeof nodeContext>>;
const cases = ['softmax_focal', 'class_balanced_focal'].flatMap((op) =>
  parseFixtures(readFileSync(new URL(`../../fixtures/${op}.json`, import.meta.url), 'utf8'), `${op}.json`),
);

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
const randn = (len: number, seed: number, scale = 4) => {
  const r = rng(seed);
  return Float32Array.from({ length: len }, () => (r() * 2 - 1) * scale);
};
const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};
/** max |gpu - cpu| / (atol + |cpu|): below 1 passes. */
const scaledErr = (got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol: number) => {
  let m = 0;
  for (let i = 0; i < want.length; i++) m = Math.max(m, Math.abs(got[i] - want[i]) / (atol + rtol * Math.abs(want[i])));
  return m;
};

/** Every fixture case on one context; returns failures and the max abs errors per op. */
async function runFixtures(dl: Dl) {
  const bad: string[] = [];
  const err: Record<string, { loss: number; grad: number }> = {};
  for (const c of cases) {
    try {
      const r = await dl.run(c.op, caseInputs(c), caseOptions(c));
      const cmp = compareCase(c, r);
      if (!cmp.pass) bad.push(`${c.name}: ${cmp.detail}`);
      const e = (err[c.op] ??= { loss: 0, grad: 0 });
      e.loss = Math.max(e.loss, maxAbs(r.loss, c.expected.loss!.data));
      e.grad = Math.max(e.grad, maxAbs(r.grad.logits, c.expected.grad!.logits.data));
    } catch (x) {
      bad.push(`${c.name}: threw ${(x as Error).message}`);
    }
  }
  return { bad, err };
}

describe('softmax_focal and class_balanced_focal on the GPU (Node, Dawn)', () => {
  let dl: Dl;
  beforeAll(async () => {
    dl = await nodeContext();
  });
  afterAll(() => dl.destroy());

  it('every fixture case passes: thread per row', async () => {
    const { bad, err } = await runFixtures(dl);
    expect(bad).toEqual([]);
    note(`max abs error vs fixtures (thread per row): ${JSON.stringify(err)}`);
    expect(cases.length).toBe(57 + 32);
  });

  it.each([
    ['workgroup per row', { rowThreshold: 0 }],
    ['subgroup per row', { plan: { kind: 'hardware' as const, rowThreshold: 0, rowLanes: 'subgroup' as const } }],
    ['hardware plan (multi-level reduction)', { plan: 'hardware' as const }],
  ])('every fixture case passes: %s', async (_name, opts) => {
    const other = await nodeContext(opts);
    const { bad, err } = await runFixtures(other);
    expect(bad).toEqual([]);
    note(`max abs error vs fixtures (${_name}): ${JSON.stringify(err)}`);
    other.destroy();
  });

  it('softmax_focal uses the row kernels (workgroup and subgroup) where rows are long', async () => {
    const n = 3;
    const c = 80;
    const logits = randn(n * c, 3);
    const labels = Int32Array.from([5, 79, 0]);
    const plans = [
      [{ rowThreshold: 0 }, 'sfl:main_rows'],
      [{ plan: { kind: 'hardware' as const, rowThreshold: 0, rowLanes: 'subgroup' as const } }, 'sfl+subgroup:main_rows'],
    ] as const;
    for (const [opts, kernel] of plans) {
      const d = await nodeContext(opts);
      const r = await d.run('softmax_focal', { logits: { data: logits, shape: [n, c] }, labels }, { reduction: 'none' });
      expect(d.stats().lastCall?.kernel).toContain(kernel);
      const ref = cpu.run('softmax_focal', { logits: { data: logits, shape: [n, c] }, labels }, { reduction: 'none' });
      expect(scaledErr(r.loss, ref.loss, 1e-5, 1e-4)).toBeLessThan(1);
      expect(scaledErr(r.grad.logits, ref.grad.logits, 1e-6, 1e-3)).toBeLessThan(1);
      d.destroy();
    }
  });

  it('one-row launches, every reduction', async () => {
    for (const rowThreshold of [1e9, 0]) {
      const d = await nodeContext({ rowThreshold });
      for (const reduction of ['none', 'mean', 'sum'] as const) {
        const logits = { data: randn(7, 5), shape: [1, 7] };
        const labels = Int32Array.from([4]);
        const sf = await d.run('softmax_focal', { logits, labels }, { reduction, gamma: 1.5 });
        const sfRef = cpu.run('softmax_focal', { logits, labels }, { reduction, gamma: 1.5 });
        expect(scaledErr(sf.loss, sfRef.loss, 1e-5, 1e-4)).toBeLessThan(1);
        expect(scaledErr(sf.grad.logits, sfRef.grad.logits, 1e-6, 1e-3)).toBeLessThan(1);
        const samplesPerClass = Float32Array.from([3, 0, 100, 7, 12, 1, 4000]);
        const cb = await d.run('class_balanced_focal', { logits, labels, samplesPerClass }, { reduction, beta: 0.99 });
        const cbRef = cpu.run('class_balanced_focal', { logits, labels, samplesPerClass }, { reduction, beta: 0.99 });
        expect(scaledErr(cb.loss, cbRef.loss, 1e-5, 1e-4)).toBeLessThan(1);
        expect(scaledErr(cb.grad.logits, cbRef.grad.logits, 1e-6, 1e-3)).toBeLessThan(1);
      }
      d.destroy();
    }
  });

  it('class_balanced_focal with more classes than a workgroup has lanes, over several chunks', async () => {
    const n = 40;
    const c = 150;
    const logits = { data: randn(n * c, 8), shape: [n, c] };
    const r0 = rng(9);
    const labels = Int32Array.from({ length: n }, (_, i) => (i % 7 === 0 ? -1 : Math.floor(r0() * c)));
    const samplesPerClass = Float32Array.from({ length: c }, (_, j) => (j % 11 === 0 ? 0 : Math.floor(r0() * 5000)));
    const small = await nodeContext({ maxThreads: 64 });
    const r = await small.run('class_balanced_focal', { logits, labels, samplesPerClass }, { reduction: 'none' });
    const ref = cpu.run('class_balanced_focal', { logits, labels, samplesPerClass }, { reduction: 'none' });
    expect(scaledErr(r.loss, ref.loss, 1e-5, 1e-4)).toBeLessThan(1);
    expect(scaledErr(r.grad.logits, ref.grad.logits, 1e-6, 1e-3)).toBeLessThan(1);
    small.destroy();
  });

  describe('GPU-resident inputs', () => {
    const upload = (a: Float32Array | Int32Array) => {
      const b = dl.device.createBuffer({ size: Math.max(4, a.byteLength), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
      dl.device.queue.writeBuffer(b, 0, a.buffer as ArrayBuffer, a.byteOffset, a.byteLength);
      return b;
    };
    const readBack = async (b: GPUBuffer, bytes: number) => {
      const s = dl.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      const e = dl.device.createCommandEncoder();
      e.copyBufferToBuffer(b, 0, s, 0, bytes);
      dl.device.queue.submit([e.finish()]);
      await s.mapAsync(GPUMapMode.READ);
      const out = new Float32Array(s.getMappedRange().slice(0));
      s.destroy();
      return out;
    };
    const n = 12;
    const c = 20;
    const logits = randn(n * c, 21);
    const labels = Int32Array.from({ length: n }, (_, i) => (i % 5 === 0 ? c : (i * 7) % c));

    it('class_balanced_focal normalises samplesPerClass from a GPUBuffer, and follows its contents', async () => {
      const counts = Float32Array.from({ length: c }, (_, j) => (j === 3 ? 0 : 10 + j * j * 37));
      const bufs = { logits: upload(logits), labels: upload(labels), samplesPerClass: upload(counts) };
      const inputs = { logits: { buffer: bufs.logits, shape: [n, c] }, labels: { buffer: bufs.labels, shape: [n], dtype: 'i32' as const }, samplesPerClass: { buffer: bufs.samplesPerClass, shape: [c] } };
      for (const counts2 of [counts, Float32Array.from(counts, (v, j) => (j % 2 ? v * 50 : v))]) {
        dl.device.queue.writeBuffer(bufs.samplesPerClass, 0, counts2.buffer as ArrayBuffer);
        const r = await dl.runResident('class_balanced_focal', inputs, { reduction: 'none', beta: 0.999 });
        const ref = cpu.run('class_balanced_focal', { logits: { data: logits, shape: [n, c] }, labels, samplesPerClass: counts2 }, { reduction: 'none', beta: 0.999 });
        expect(scaledErr(await readBack(r.loss, n * c * 4), ref.loss, 1e-5, 1e-4)).toBeLessThan(1);
        expect(scaledErr(await readBack(r.grad.logits, n * c * 4), ref.grad.logits, 1e-6, 1e-3)).toBeLessThan(1);
        r.release();
      }
      Object.values(bufs).forEach((b) => b.destroy());
    });

    it("softmax_focal's 'mean' with resident labels sums its denominator on the GPU", async () => {
      const cw = Float32Array.from({ length: c }, (_, j) => 0.5 + (j % 4) * 0.5);
      const lab = Int32Array.from(labels, (v) => (v === c ? -100 : v));
      const bufs = { logits: upload(logits), labels: upload(lab), classWeight: upload(cw) };
      const inputs = { logits: { buffer: bufs.logits, shape: [n, c] }, labels: { buffer: bufs.labels, shape: [n], dtype: 'i32' as const }, classWeight: { buffer: bufs.classWeight, shape: [c] } };
      const r = await dl.runResident('softmax_focal', inputs, { reduction: 'mean' });
      const ref = cpu.run('softmax_focal', { logits: { data: logits, shape: [n, c] }, labels: lab, classWeight: cw }, { reduction: 'mean' });
      expect(scaledErr(await readBack(r.loss, 4), ref.loss, 1e-5, 1e-4)).toBeLessThan(1);
      expect(scaledErr(await readBack(r.grad.logits, n * c * 4), ref.grad.logits, 1e-6, 1e-3)).toBeLessThan(1);
      r.release();
      Object.values(bufs).forEach((b) => b.destroy());
    });
  });

  it('logits of ±100 give finite losses and gradients close to the reference', async () => {
    const n = 6;
    const c = 4;
    const logits = { data: Float32Array.from({ length: n * c }, (_, k) => ((k * 5) % 3 === 0 ? 100 : (k * 3) % 4 === 1 ? -100 : 0)), shape: [n, c] };
    const labels = Int32Array.from([0, 1, 2, 3, 0, 2]);
    for (const gamma of [0, 0.5, 2]) {
      for (const op of ['softmax_focal', 'class_balanced_focal'] as const) {
        const inputs = op === 'softmax_focal' ? { logits, labels } : { logits, labels, samplesPerClass: Float32Array.from([5, 0, 50, 500]) };
        const r = await dl.run(op, inputs, { reduction: 'none', gamma });
        for (const v of [...r.loss, ...r.grad.logits]) expect(Number.isFinite(v), `${op} gamma ${gamma}`).toBe(true);
        const ref = cpu.run(op, inputs, { reduction: 'none', gamma });
        expect(scaledErr(r.loss, ref.loss, 1e-4, 1e-4), `${op} gamma ${gamma}`).toBeLessThan(1);
        expect(scaledErr(r.grad.logits, ref.grad.logits, 1e-5, 1e-3), `${op} gamma ${gamma}`).toBeLessThan(1);
      }
    }
  });

  it('softmax_focal keeps 1 - p where p rounds to 1 in float32', async () => {
    // 1 - p_y = 2 e^-20 / (1 + 2 e^-20) ~ 4.1e-9: 1 - p in float32 is 0.
    const t = 2 * Math.exp(-20);
    const r = await dl.run('softmax_focal', { logits: { data: Float32Array.from([20, 0, 0]), shape: [1, 3] }, labels: Int32Array.from([0]) }, { reduction: 'none', gamma: 2 });
    expect(Math.abs(r.loss[0] - t ** 3) / t ** 3).toBeLessThan(1e-4);
    expect(Math.abs(r.grad.logits[0] + 3 * t ** 3) / (3 * t ** 3)).toBeLessThan(1e-4);
  });

  it('refuses bad input as the CPU does', async () => {
    const logits = { data: randn(8, 1), shape: [2, 4] };
    await expect(dl.run('softmax_focal', { logits, labels: Int32Array.from([0, 4]) })).rejects.toMatchObject({ code: 'invalid_value', argument: 'labels' });
    await expect(dl.run('class_balanced_focal', { logits, labels: Int32Array.from([0, 4]), samplesPerClass: Float32Array.from([1, 2, 3, 4]) }, { beta: 1 })).rejects.toMatchObject({
      code: 'invalid_param',
      argument: 'beta',
    });
  });
});
