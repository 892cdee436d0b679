import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { DetlossError } from '../../../src/errors';
import type { Detloss } from '../../../src/runtime/context';
import { foldGrid, planChunks } from '../../../src/runtime/call/chunks';
import { countDevice, maxRelErr, rand, reset, type Counts } from '../../helpers/counting';
import { nodeContext } from '../../helpers/node-gpu';

let dl: Detloss;
let counts: Counts;
beforeAll(async () => {
  dl = await nodeContext();
  counts = countDevice(dl.device);
});
afterAll(() => dl?.destroy());

const pred = rand(1000, 1);
const target = rand(1000, 2);

describe('one call', () => {
  it('is one submit, one readback and two dispatches for a reduced loss', async () => {
    await dl.run('smooth_l1', { pred, target }); // compile, allocate
    reset(counts);
    const r = await dl.run('smooth_l1', { pred, target }, { beta: 0.5 });
    expect(counts).toMatchObject({ submits: 1, maps: 1, dispatches: 2, buffers: 0 });
    expect(dl.stats().lastCall).toMatchObject({ op: 'smooth_l1', kernel: 'regression+vec4:main', dispatches: 2, submits: 1, readbacks: 1 });
    const ref = cpu.run('smooth_l1', { pred, target }, { beta: 0.5 });
    expect(maxRelErr(r.loss, ref.loss)).toBeLessThan(1e-5);
    expect(maxRelErr(r.grad.pred, ref.grad.pred)).toBeLessThan(1e-5);
  });
  it("is one dispatch for reduction 'none', and grad: false returns no gradient", async () => {
    await dl.run('l1', { pred, target }, { reduction: 'none', grad: false });
    reset(counts);
    const r = await dl.run('l1', { pred, target }, { reduction: 'none', grad: false });
    expect(counts).toMatchObject({ submits: 1, maps: 1, dispatches: 1 });
    expect(r.grad).toEqual({});
    expect(r.loss.length).toBe(1000);
    expect(r.shape).toEqual([1000]);
  });
});

describe('pipeline cache', () => {
  it('compiles once per (op, compile-time choices), never per size', async () => {
    await dl.run('huber', { pred, target });
    const s0 = dl.stats();
    await dl.run('huber', { pred: pred.subarray(0, 12), target: target.subarray(0, 12) }, { delta: 0.3 });
    await dl.run('huber', { pred, target }, { reduction: 'sum' });
    const s1 = dl.stats();
    expect(s1.pipelinesCompiled).toBe(s0.pipelinesCompiled);
    expect(s1.pipelineCacheHits).toBeGreaterThanOrEqual(s0.pipelineCacheHits + 2);
    // A size that is no multiple of 4 takes the scalar kernel (one more compile), once for every such size.
    await dl.run('huber', { pred: pred.subarray(0, 10), target: target.subarray(0, 10) });
    await dl.run('huber', { pred: pred.subarray(0, 999), target: target.subarray(0, 999) });
    expect(dl.stats().pipelinesCompiled).toBe(s1.pipelinesCompiled + 1);
    await dl.run('huber', { pred, target });
    const s2 = dl.stats();
    await dl.run('mse', { pred, target });
    expect(dl.stats().pipelinesCompiled).toBe(s2.pipelinesCompiled + 1);
  });
  it('warmup compiles ahead, so the first call compiles nothing', async () => {
    const fresh = await nodeContext();
    await fresh.warmup(['balanced_l1']);
    const before = fresh.stats().pipelinesCompiled;
    expect(before).toBe(3); // the op's scalar and vec4 kernels, and the reduction
    await fresh.run('balanced_l1', { pred, target });
    await fresh.run('balanced_l1', { pred: pred.subarray(0, 7), target: target.subarray(0, 7) });
    expect(fresh.stats().pipelinesCompiled).toBe(before);
    await expect(fresh.warmup(['no_such_op'])).rejects.toMatchObject({ code: 'unknown_op' });
    fresh.destroy();
  });
  it('warmup compiles every pass of a program op (the ranking losses)', async () => {
    const fresh = await nodeContext();
    await fresh.warmup(['ap_loss', 'rank_sort']);
    const before = fresh.stats().pipelinesCompiled;
    const logits = Float32Array.of(0.3, -1, 2, 0.5, 0.1);
    await fresh.run('ap_loss', { logits, targets: Float32Array.of(1, 0, 0, 1, -1) });
    await fresh.run('rank_sort', { logits, targets: Float32Array.of(0.8, 0, 0, 0.4, -1) });
    expect(fresh.stats().pipelinesCompiled).toBe(before);
    fresh.destroy();
  });
});

describe('buffer pool', () => {
  it('repeated calls do not grow memory, and nothing stays in use', async () => {
    for (let i = 0; i < 3; i++) await dl.run('l1', { pred, target, weight: rand(1000, 9, 0, 1) });
    const s0 = dl.stats();
    reset(counts);
    for (let i = 0; i < 20; i++) await dl.run('l1', { pred, target, weight: rand(1000, 9, 0, 1) });
    const s1 = dl.stats();
    expect(counts.buffers).toBe(0);
    expect(s1.bytesAllocated).toBe(s0.bytesAllocated);
    expect(s1.bytesInUse).toBe(0);
  });
  it('trim frees what is not in use', async () => {
    await dl.run('l1', { pred, target });
    expect(dl.stats().bytesAllocated).toBeGreaterThan(0);
    dl.trim();
    expect(dl.stats().bytesAllocated).toBe(0);
  });
});

describe('chunking and grid folding', () => {
  it('plans aligned chunks that fit one binding', () => {
    const limits = { maxStorageBufferBindingSize: 1024, maxComputeWorkgroupsPerDimension: 65535, minStorageBufferOffsetAlignment: 256 };
    const chunks = planChunks({ rows: 1000, maxBytesPerRow: 4, outPerRow: 1, wg: 64, maxThreads: 16384, limits, label: 't' });
    expect(chunks.map((c) => [c.rowStart, c.rows])).toEqual([
      [0, 256],
      [256, 256],
      [512, 256],
      [768, 232],
    ]);
    for (const c of chunks) expect((c.partialStart * 4) % 256).toBe(0);
    expect(() => planChunks({ rows: 10, maxBytesPerRow: 4096, outPerRow: 1, wg: 64, maxThreads: 64, limits, label: 't' })).toThrow(DetlossError);
  });
  it('folds grids over the per-dimension limit into two dimensions', () => {
    expect(foldGrid(10, 65535)).toEqual([10, 1]);
    const [x, y] = foldGrid(100_000, 65535);
    expect(x).toBeLessThanOrEqual(65535);
    expect(x * y).toBeGreaterThanOrEqual(100_000);
    expect(() => foldGrid(65536 * 65536, 65535)).toThrow(/maxComputeWorkgroupsPerDimension/);
  });
  it('matches the CPU reference when inputs exceed a (lowered) binding limit', async () => {
    const small = await nodeContext({ limits: { maxStorageBufferBindingSize: 1024 } });
    const c = countDevice(small.device);
    const weight = rand(1000, 3, 0, 2);
    for (const reduction of ['none', 'mean', 'sum'] as const) {
      const gradOutput = reduction === 'none' ? rand(1000, 4) : Float32Array.of(0.7);
      reset(c);
      const r = await small.run('balanced_l1', { pred, target, weight, gradOutput }, { reduction });
      expect(c.submits).toBe(1);
      expect(c.dispatches).toBe(reduction === 'none' ? 4 : 5); // four chunks of 256 rows (+ the reduction)
      const ref = cpu.run('balanced_l1', { pred, target, weight, gradOutput }, { reduction });
      expect(maxRelErr(r.loss, ref.loss)).toBeLessThan(1e-5);
      expect(maxRelErr(r.grad.pred, ref.grad.pred)).toBeLessThan(1e-5);
    }
    small.destroy();
  });
  it('matches the CPU reference with a folded grid', async () => {
    const folded = await nodeContext({ limits: { maxComputeWorkgroupsPerDimension: 3 }, maxThreads: 64 * 8 });
    const r = await folded.run('mse', { pred, target }, { reduction: 'none' });
    const ref = cpu.run('mse', { pred, target }, { reduction: 'none' });
    expect(maxRelErr(r.loss, ref.loss)).toBeLessThan(1e-6);
    expect(maxRelErr(r.grad.pred, ref.grad.pred)).toBeLessThan(1e-6);
    folded.destroy();
  });
});

describe('GPU-resident path', () => {
  const upload = (a: Float32Array) => {
    const b = dl.device.createBuffer({ size: a.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
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
  it('takes GPU buffers, returns GPU buffers, reads nothing back', async () => {
    const p = upload(pred);
    const t = upload(target);
    (await dl.runResident('smooth_l1', { pred: p, target: t })).release();
    reset(counts);
    const r = await dl.runResident('smooth_l1', { pred: p, target: t }, { reduction: 'sum' });
    expect(counts).toMatchObject({ submits: 1, maps: 0, dispatches: 2 });
    expect(dl.stats().lastCall?.readbacks).toBe(0);
    const ref = cpu.run('smooth_l1', { pred, target }, { reduction: 'sum' });
    expect(maxRelErr(await readBack(r.loss, 4), ref.loss)).toBeLessThan(1e-5);
    expect(maxRelErr(await readBack(r.grad.pred, 4000), ref.grad.pred)).toBeLessThan(1e-5);
    const inUse = dl.stats().bytesInUse;
    expect(inUse).toBeGreaterThan(0);
    r.release();
    expect(dl.stats().bytesInUse).toBe(0);
    p.destroy();
    t.destroy();
  });
  it('run() reads back from inputs already on the device, with one submit and one map', async () => {
    const p = upload(pred);
    const t = upload(target);
    await dl.run('huber', { pred: p, target: t });
    reset(counts);
    const r = await dl.run('huber', { pred: p, target: t, weight: rand(1000, 5, 0, 1) }, { delta: 0.4, reduction: 'mean' });
    expect(counts).toMatchObject({ submits: 1, maps: 1 });
    const ref = cpu.run('huber', { pred, target, weight: rand(1000, 5, 0, 1) }, { delta: 0.4 });
    expect(maxRelErr(r.loss, ref.loss)).toBeLessThan(1e-5);
    expect(maxRelErr(r.grad.pred, ref.grad.pred)).toBeLessThan(1e-5);
    expect(dl.stats().bytesInUse).toBe(0);
    p.destroy();
    t.destroy();
  });
  it('takes { buffer, shape } and checks the shape against the buffer', async () => {
    const p = upload(pred);
    const t = upload(target);
    const r = await dl.runResident('l1', { pred: { buffer: p, shape: [500] }, target: { buffer: t, shape: [500] } }, { reduction: 'none' });
    expect(r.shape).toEqual([500]);
    const ref = cpu.run('l1', { pred: pred.subarray(0, 500), target: target.subarray(0, 500) }, { reduction: 'none' });
    expect(maxRelErr(await readBack(r.loss, 2000), ref.loss)).toBeLessThan(1e-6);
    r.release();
    await expect(dl.runResident('l1', { pred: { buffer: p, shape: [2000] }, target: t })).rejects.toMatchObject({ code: 'shape_mismatch', argument: 'pred' });
    p.destroy();
    t.destroy();
  });
});

describe('empty input', () => {
  it.each(['none', 'mean', 'sum'] as const)("n = 0 with reduction '%s'", async (reduction) => {
    const r = await dl.run('smooth_l1', { pred: new Float32Array(0), target: new Float32Array(0) }, { reduction });
    expect(Array.from(r.loss)).toEqual(reduction === 'none' ? [] : [0]);
    expect(r.grad.pred.length).toBe(0);
  });
});

describe('GPU errors and a lost device', () => {
  it('a validation error is caught by an error scope and thrown as DetlossError', async () => {
    const p = dl.device.createBuffer({ size: 4000, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    const t = dl.device.createBuffer({ size: 4000, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    p.destroy(); // a destroyed buffer in a submit is a validation error
    await expect(dl.runResident('l1', { pred: p, target: t })).rejects.toMatchObject({ code: 'gpu_validation' });
    t.destroy();
    // The context still works afterwards.
    const r = await dl.run('l1', { pred, target });
    expect(r.loss.length).toBe(1);
  });
  it('a lost device makes calls fail fast with device_lost, never hang', async () => {
    const doomed = await nodeContext();
    await doomed.run('l1', { pred, target });
    const seen = countDevice(doomed.device);
    doomed.device.destroy();
    await doomed.device.lost;
    // Fast: refused up front, before any buffer, submit or readback that a lost device might
    // never answer (a hang would be this test's timeout).
    await expect(doomed.run('l1', { pred, target })).rejects.toMatchObject({ code: 'device_lost' });
    await expect(doomed.runResident('l1', { pred, target })).rejects.toMatchObject({ code: 'device_lost' });
    expect(seen).toEqual({ submits: 0, maps: 0, buffers: 0, dispatches: 0 });
  });
  it('a device lost during a call rejects that call', async () => {
    const doomed = await nodeContext();
    await doomed.run('mse', { pred, target });
    const pending = doomed.run('mse', { pred, target });
    doomed.device.destroy();
    await expect(pending).rejects.toBeInstanceOf(DetlossError);
  });
});
