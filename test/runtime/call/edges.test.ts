// Issue 9's runtime defects, each pinned on Node's WebGPU (Dawn over SwiftShader): inputs taken at
// call time, the pool under large and failed allocations, integer parameters past int32, errors
// that were not DetlossErrors, destroy() with calls in flight, the chunk planner's row unit, and
// empty gradients on the resident path.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { DetlossError } from '../../../src/errors';
import { defineOp, num } from '../../../src/ops/types';
import type { Detloss } from '../../../src/runtime/context';
import { alignedRowUnit, planChunks } from '../../../src/runtime/call/chunks';
import { sizeClass } from '../../../src/runtime/memory/pool';
import { countDevice, maxRelErr, rand, reset } from '../../helpers/counting';
import { nodeContext } from '../../helpers/node-gpu';
import { afterSubmits, watchUncaptured } from '../../helpers/uncaptured';

let dl: Detloss;
beforeAll(async () => {
  dl = await nodeContext();
});
afterAll(() => dl?.destroy());

/** The rejection of a promise (or of a function's call), or undefined when it resolves. */
async function failure(p: Promise<unknown> | (() => unknown)): Promise<unknown> {
  try {
    await (typeof p === 'function' ? p() : p);
    return undefined;
  } catch (e) {
    return e;
  }
}

describe('inputs are taken when the call is made (defect 2)', () => {
  it('changing an array after run() returns does not change the result, on a cold and a warm context', async () => {
    const fresh = await nodeContext(); // its first call compiles: the upload must not wait for it
    for (const ctx of [fresh, fresh]) {
      const pred = Float32Array.of(1, 2, 3, 4);
      const target = new Float32Array(4);
      const p = ctx.run('l1', { pred, target }, { reduction: 'sum' });
      pred.fill(100);
      target.fill(-1);
      const r = await p;
      expect(r.loss[0]).toBe(10);
      expect(Array.from(r.grad.pred)).toEqual([1, 1, 1, 1]);
    }
    fresh.destroy();
  });
  it('three calls sharing one scratch array see 4, 8, 12', async () => {
    const fresh = await nodeContext();
    const scratch = new Float32Array(4);
    const zeros = new Float32Array(4);
    const calls: Promise<{ loss: Float32Array }>[] = [];
    for (const k of [1, 2, 3]) {
      scratch.fill(k);
      calls.push(fresh.run('l1', { pred: scratch, target: zeros }, { reduction: 'sum' }));
    }
    expect((await Promise.all(calls)).map((r) => r.loss[0])).toEqual([4, 8, 12]);
    fresh.destroy();
  });
  it('labels checked on the host and changed before the upload could happen are the ones used', async () => {
    const fresh = await nodeContext();
    const logits = rand(2 * 5, 7);
    const labels = Int32Array.of(1, 3);
    const want = cpu.run('cross_entropy', { logits, labels: Int32Array.of(1, 3) }, { reduction: 'none' });
    const p = fresh.run('cross_entropy', { logits, labels }, { reduction: 'none' });
    labels[0] = 99; // not a class: had it been read now, row 0 would be ignored (loss 0)
    labels[1] = 0;
    const r = await p;
    expect(maxRelErr(r.loss, want.loss)).toBeLessThan(1e-5);
    expect(maxRelErr(r.grad.logits, want.grad.logits)).toBeLessThan(1e-5);
    fresh.destroy();
  });
  it('a warm call submits before run() returns', async () => {
    const pred = rand(100, 1);
    const target = rand(100, 2);
    await dl.run('mse', { pred, target });
    const c = countDevice(dl.device);
    reset(c);
    const p = dl.run('mse', { pred, target });
    expect(c.submits).toBe(1);
    await p;
  });
});

describe('the pool under large and failed allocations (defect 3)', () => {
  it('rounds large sizes up by at most 1/16, small ones to powers of two', () => {
    expect(sizeClass(1)).toBe(256);
    expect(sizeClass(300)).toBe(512);
    expect(sizeClass(1 << 20)).toBe(1 << 20);
    for (let b = (1 << 20) + 1; b < 2 ** 32; b = Math.floor(b * 1.37) + 12345) {
      const s = sizeClass(b);
      expect(s).toBeGreaterThanOrEqual(b);
      expect(s).toBeLessThanOrEqual(b * (1 + 1 / 16));
      expect(s % 4).toBe(0);
    }
    expect(sizeClass(560_000_000)).toBeLessThan(600_000_000); // was 1 GiB
  });
  it('splits the readback when loss and gradients together pass maxBufferSize, and never creates a buffer above it', async () => {
    const small = await nodeContext({ limits: { maxBufferSize: 4096 } });
    const sizes: number[] = [];
    const create = small.device.createBuffer.bind(small.device);
    small.device.createBuffer = (d: GPUBufferDescriptor) => {
      sizes.push(d.size);
      return create(d);
    };
    const c = countDevice(small.device);
    const pred = rand(1000, 3); // loss and gradient 4000 bytes each: 8000 together
    const target = rand(1000, 4);
    reset(c);
    const r = await small.run('huber', { pred, target }, { reduction: 'none' });
    const ref = cpu.run('huber', { pred, target }, { reduction: 'none' });
    expect(maxRelErr(r.loss, ref.loss)).toBeLessThan(1e-5);
    expect(maxRelErr(r.grad.pred, ref.grad.pred)).toBeLessThan(1e-5);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(4096);
    expect(c.submits).toBe(1);
    expect(c.maps).toBe(2);
    small.destroy();
  });
  it('reports an allocation the device cannot make as gpu_out_of_memory, keeps its books, and works on', async () => {
    const ctx = await nodeContext();
    // Can this device make a buffer of maxBufferSize bytes? (SwiftShader here cannot: 1 GiB fails.)
    const big = ctx.limits.maxBufferSize;
    ctx.device.pushErrorScope('out-of-memory');
    ctx.device.createBuffer({ size: big, usage: GPUBufferUsage.STORAGE }).destroy();
    const deviceOom = await ctx.device.popErrorScope();
    // pairwise_iou's output is n*m floats from two small inputs: n*m*4 = maxBufferSize.
    const m = 4096;
    const n = Math.floor(big / 4 / m);
    const a = rand(n * 4, 5, 0, 100);
    const b = { data: rand(m * 4, 6, 0, 100), shape: [m, 4] };
    const before = ctx.stats();
    const err = await failure(async () => (await ctx.runResident('pairwise_iou', { a, b }, { grad: false })).release());
    if (deviceOom) {
      expect(err).toBeInstanceOf(DetlossError);
      expect((err as DetlossError).code).toBe('gpu_out_of_memory');
      expect((err as DetlossError).message).toMatch(/pairwise_iou: out of GPU memory/);
    } else {
      expect(err).toBeUndefined();
    }
    const after = ctx.stats();
    expect(after.bytesInUse).toBe(0);
    if (deviceOom) expect(after.bytesAllocated).toBeLessThanOrEqual(before.bytesAllocated + 2 ** 20); // the failed buffer is not counted
    const pred = rand(300, 7);
    const target = rand(300, 8);
    const r = await ctx.run('smooth_l1', { pred, target });
    expect(maxRelErr(r.loss, cpu.run('smooth_l1', { pred, target }).loss)).toBeLessThan(1e-5);
    ctx.destroy();
  });
});

describe('integer parameters past int32 (defect 4) and values past float32', () => {
  const logits = rand(2 * 3, 9);
  const labels = Int32Array.of(0, 2);
  it.each([2 ** 32, 1e300, -(2 ** 31) - 1, 2 ** 31])('ignoreIndex %s is invalid_param on the GPU and the CPU', async (ignoreIndex) => {
    for (const call of [() => dl.run('cross_entropy', { logits, labels }, { ignoreIndex }), () => cpu.run('cross_entropy', { logits, labels }, { ignoreIndex })]) {
      const e = await failure(call);
      expect(e).toBeInstanceOf(DetlossError);
      expect(e).toMatchObject({ code: 'invalid_param', argument: 'ignoreIndex' });
    }
  });
  it('ignoreIndex at the ends of int32 works', async () => {
    for (const ignoreIndex of [-(2 ** 31), 2 ** 31 - 1]) {
      const r = await dl.run('cross_entropy', { logits, labels }, { ignoreIndex });
      expect(maxRelErr(r.loss, cpu.run('cross_entropy', { logits, labels }, { ignoreIndex }).loss)).toBeLessThan(1e-5);
    }
  });
  it('an iou_loss eps below float32 normals is invalid_param on the GPU and the CPU', async () => {
    const inputs = { pred: Float32Array.of(0, 0, 1, 1), target: Float32Array.of(2, 2, 3, 3) };
    for (const call of [() => dl.run('iou_loss', inputs, { mode: 'log', eps: 1e-40 }), () => cpu.run('iou_loss', inputs, { mode: 'log', eps: 1e-40 })]) {
      expect(await failure(call)).toMatchObject({ code: 'invalid_param', argument: 'eps' });
    }
  });
  it('a parameter past float32 is invalid_param, not an infinite uniform', async () => {
    const e = await failure(() => dl.run('smooth_l1', { pred: rand(3, 1), target: rand(3, 2) }, { beta: 1e39 }));
    expect(e).toMatchObject({ code: 'invalid_param', argument: 'beta' });
  });
});

describe('every failure is a DetlossError (defect 5)', () => {
  it.each([1e-310, 1e-39])('avgFactor %s is invalid_param on the GPU and the CPU', async (avgFactor) => {
    const inputs = { pred: rand(3, 1), target: rand(3, 2) };
    for (const call of [() => dl.run('l1', inputs, { avgFactor }), () => cpu.run('l1', inputs, { avgFactor })]) {
      expect(await failure(call)).toMatchObject({ code: 'invalid_param', argument: 'avgFactor' });
    }
  });
  it('an input given as null is missing, in run and in cpu.run', async () => {
    for (const call of [() => dl.run('l1', { pred: null as never, target: rand(3, 2) }), () => cpu.run('l1', { pred: null as never, target: rand(3, 2) })]) {
      const e = await failure(call);
      expect(e).toBeInstanceOf(DetlossError);
      expect(e).toMatchObject({ code: 'missing_input', argument: 'pred' });
    }
  });
  it('a SharedArrayBuffer-backed array simply works', async () => {
    const plain = rand(1000, 11);
    const shared = new Float32Array(new SharedArrayBuffer(4 * 1010), 40, 1000); // and a byte offset
    shared.set(plain);
    const target = rand(1000, 12);
    const r = await dl.run('huber', { pred: shared, target }, { reduction: 'sum' });
    const want = await dl.run('huber', { pred: plain, target }, { reduction: 'sum' });
    expect(r.loss[0]).toBe(want.loss[0]);
    expect(Array.from(r.grad.pred)).toEqual(Array.from(want.grad.pred));
  });
  it.each([
    ['maxThreads', NaN],
    ['maxThreads', 0],
    ['maxThreads', 1.5],
    ['maxThreads', 'x'],
    ['rowThreshold', NaN],
    ['rowThreshold', -1],
    ['limits', 5],
  ])('createDetloss({ %s: %s }) is invalid_param', async (name, value) => {
    const e = await failure(() => nodeContext({ [name]: value } as never));
    expect(e).toBeInstanceOf(DetlossError);
    expect(e).toMatchObject({ code: 'invalid_param', argument: name });
  });
  it('a bad limit is named', async () => {
    expect(await failure(() => nodeContext({ limits: { maxBufferSize: -4 } }))).toMatchObject({ code: 'invalid_param', argument: 'limits.maxBufferSize' });
  });
  it('a custom op whose WGSL does not compile is a pipeline error, and the context works on', async () => {
    const broken = defineOp({
      name: 'broken',
      family: 'custom',
      inputs: { pred: { dtype: 'f32', shape: ['n'], grad: true } },
      params: { k: num(1) },
      rows: 'n',
      output: ['n'],
      cpu: (i) => ({ loss: Float64Array.from(i.pred as Float64Array), backward: (up) => ({ pred: up }) }),
      gpu: { shader: 'fn element_loss(i: u32) -> f32 { return this is not wgsl; }', shaderId: 'broken', entry: 'main' },
    });
    const e = await failure(() => dl.run(broken, { pred: rand(4, 1) }));
    expect(e).toBeInstanceOf(DetlossError);
    expect((e as DetlossError).code).toBe('pipeline');
    const pred = rand(50, 2);
    const target = rand(50, 3);
    const r = await dl.run('mse', { pred, target });
    expect(maxRelErr(r.loss, cpu.run('mse', { pred, target }).loss)).toBeLessThan(1e-5);
  });
});

describe('destroy() with calls in flight (defect 9)', () => {
  it('rejects every call in flight with destroyed, resident ones included, with no uncaptured GPU error', async () => {
    const ctx = await nodeContext();
    const uncaptured = watchUncaptured(ctx.device);
    const pred = rand(5000, 1);
    const target = rand(5000, 2);
    await ctx.run('l1', { pred, target }); // l1 warm, the others cold
    const calls = [
      ctx.run('l1', { pred, target }),
      ctx.run('mse', { pred, target }, { reduction: 'none' }),
      ctx.runResident('huber', { pred, target }),
      ctx.runResident('l1', { pred, target }),
      ctx.run('iou_loss', { pred: rand(400, 3, 0, 9), target: rand(400, 4, 0, 9) }, { variant: 'giou' }),
    ];
    ctx.destroy();
    const results = await Promise.allSettled(calls);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(DetlossError);
      expect((r as PromiseRejectedResult).reason.code).toBe('destroyed');
    }
    // Decided after everything the calls set going has happened: the resident calls' value checks
    // (flush() waits for them), the GPU's work, and every error that work raised.
    await failure(() => ctx.flush());
    expect(await uncaptured.settled()).toEqual([]);
    expect(await failure(() => ctx.run('l1', { pred, target }))).toMatchObject({ code: 'destroyed' });
  });
  it('rejects calls whose work is already submitted (mapping, or resident and not yet resolved) with destroyed', async () => {
    const ctx = await nodeContext();
    const uncaptured = watchUncaptured(ctx.device);
    const pred = rand(20000, 1);
    const target = rand(20000, 2);
    await ctx.run('l1', { pred, target });
    await ctx.run('huber', { pred, target }, { reduction: 'none' });
    (await ctx.runResident('mse', { pred, target })).release();
    // Destroyed once all three have submitted their work (each submits once, warm).
    const { calls, submitted } = afterSubmits(ctx.device, 3, () => [ctx.run('l1', { pred, target }), ctx.run('huber', { pred, target }, { reduction: 'none' }), ctx.runResident('mse', { pred, target })]);
    await submitted;
    ctx.destroy();
    const results = await Promise.allSettled(calls);
    expect(results.map((r) => (r.status === 'rejected' ? (r.reason as DetlossError).code : 'resolved'))).toEqual(['destroyed', 'destroyed', 'destroyed']);
    await failure(() => ctx.flush());
    expect(await uncaptured.settled()).toEqual([]);
  });
});

describe('the chunk planner aligns offsets, not rows (defect 10)', () => {
  it('finds the fewest rows that keep every offset aligned', () => {
    expect(alignedRowUnit([4], 256)).toBe(64);
    expect(alignedRowUnit([32768], 256)).toBe(1);
    expect(alignedRowUnit([16, 32768], 256)).toBe(16);
    expect(alignedRowUnit([320, 4], 256)).toBe(64);
    expect(alignedRowUnit([320], 256)).toBe(4);
    const limits = { maxStorageBufferBindingSize: 1 << 20, maxComputeWorkgroupsPerDimension: 65535, minStorageBufferOffsetAlignment: 256 };
    const chunks = planChunks({ rows: 100, maxBytesPerRow: 32768, rowBytes: [32768, 16], outPerRow: 8192, wg: 64, maxThreads: 16384, limits, label: 't' });
    expect(chunks.map((c) => c.rows)).toEqual([32, 32, 32, 4]);
    for (const c of chunks) expect((c.rowStart * 16) % 256).toBe(0);
  });
  it('runs pairwise_iou 100 x 8192 with a 1 MiB binding', async () => {
    const ctx = await nodeContext({ limits: { maxStorageBufferBindingSize: 1 << 20 } });
    const a = rand(100 * 4, 13, 0, 50);
    const b = { data: rand(8192 * 4, 14, 0, 50), shape: [8192, 4] };
    const r = await ctx.run('pairwise_iou', { a, b }, { variant: 'giou' });
    const ref = cpu.run('pairwise_iou', { a, b }, { variant: 'giou' });
    expect(r.shape).toEqual([100, 8192]);
    // Random corners make some boxes inverted, and their GIoU reaches the thousands: a relative bound.
    let worst = 0;
    for (let i = 0; i < ref.loss.length; i++) worst = Math.max(worst, Math.abs(r.loss[i] - ref.loss[i]) / (1 + Math.abs(ref.loss[i])));
    expect(worst).toBeLessThan(1e-5);
    ctx.destroy();
  });
});

describe('small gaps (defect 11)', () => {
  it('runResident gives an empty input an empty gradient, as run does', async () => {
    const empty = new Float32Array(0);
    const run = await dl.run('l1', { pred: empty, target: empty });
    expect(run.grad.pred).toEqual(new Float32Array(0));
    const res = await dl.runResident('l1', { pred: empty, target: empty });
    expect(Object.keys(res.grad)).toEqual(['pred']);
    expect(res.gradBytes.pred).toBe(0);
    res.release();
  });
  it('a DetlossError of the built package prints under its own name', () => {
    // In a plain Node process, as a user of the package sees it (not through vitest's transform).
    const dist = new URL('../../../dist/index.js', import.meta.url).href;
    const script = `import(${JSON.stringify(dist)}).then((m) => { try { m.cpu.run('l1', { pred: new Float32Array(3), target: new Float32Array(2) }); } catch (e) {
      console.log(JSON.stringify({ inspected: require('node:util').inspect(e), text: String(e), isError: e instanceof m.DetlossError })); } })`;
    const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }));
    expect(out.isError).toBe(true);
    expect(out.inspected).toMatch(/^DetlossError: l1: /);
    expect(out.text).toMatch(/^DetlossError: l1: /);
  });
});

describe('a device made with the default limits (as TF.js makes its own)', () => {
  it('an op whose kernel binds more storage buffers than the device allows is refused by name at the call, on run, runResident and the sync path; the others run', async () => {
    const { createDetloss } = await import('../../../src/api');
    const { runResidentSync } = await import('../../helpers/sync');
    const { create } = await import('webgpu');
    const gpu = create([]) as unknown as GPU;
    const adapter = await gpu.requestAdapter();
    const device = await adapter!.requestDevice();
    expect(device.limits.maxStorageBuffersPerShaderStage).toBe(8);
    const ctx = await createDetloss({ device });
    const inputs = { input1: rand(4, 1), input2: rand(4, 2), targets: Float32Array.of(1, -1, 1, -1) };
    const refusals = [
      await ctx.run('margin_ranking', inputs).then(() => undefined, (e: unknown) => e),
      await ctx.runResident('margin_ranking', inputs).then(() => undefined, (e: unknown) => e),
    ];
    const buf = (a: Float32Array) => {
      const b = device.createBuffer({ size: a.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
      device.queue.writeBuffer(b, 0, a.buffer as ArrayBuffer);
      return { buffer: b, shape: [a.length] };
    };
    try {
      runResidentSync(ctx, 'margin_ranking', { input1: buf(inputs.input1), input2: buf(inputs.input2), targets: buf(inputs.targets) }, {});
      refusals.push(undefined);
    } catch (e) {
      refusals.push(e);
    }
    for (const e of refusals) {
      expect(e instanceof DetlossError, String(e)).toBe(true);
      expect({ code: (e as DetlossError).code, argument: (e as DetlossError).argument }).toEqual({ code: 'too_large', argument: 'device' });
      expect((e as DetlossError).message).toMatch(/margin_ranking: its kernel binds 9 storage buffers, more than this device allows per shader stage \(maxStorageBuffersPerShaderStage 8\)/);
    }
    const ok = await ctx.run('hinge', { logits: inputs.input1, targets: inputs.targets });
    expect(maxRelErr(ok.loss, cpu.run('hinge', { logits: inputs.input1, targets: inputs.targets }).loss)).toBeLessThan(1e-6);
    ctx.destroy();
    device.destroy();
    expect(gpu).toBeDefined(); // held to here: Dawn must not collect the instance of a live device
  });
});
