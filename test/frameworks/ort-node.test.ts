// detloss/ort on Node's WebGPU (Dawn): ort.Tensors made with onnxruntime-web's own Tensor class
// from GPUBuffers of the device, as ORT's WebGPU EP hands them out. No ORT session runs here (ORT's
// WebGPU EP needs a browser; test/frameworks/ort.test.ts runs one in Chromium): this file holds
// the adapter's shapes, dtypes, errors and buffer ownership against the CPU reference.
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cpu } from '../../src/cpu';
import { DetlossError } from '../../src/errors';
import { apLoss, ciou, crossEntropy, detlossFor, l1, marginRanking, qualityFocal, rankSort, runLoss, smoothL1, type OrtDetloss, type OrtTensor } from '../../src/frameworks/ort';
import { nodeContext } from '../helpers/node-gpu';
import { cannotAllocate, plant } from '../helpers/plant';

/** The slice of onnxruntime-web's API this file uses (the package is a devDependency). */
interface OrtModule {
  Tensor: {
    new (type: string, data: Float32Array | Int32Array | BigInt64Array, dims: number[]): OrtTensor & { getData(release?: boolean): Promise<Float32Array> };
    fromGpuBuffer(buffer: GPUBuffer, options: { dataType: string; dims: number[] }): OrtTensor & { getData(release?: boolean): Promise<Float32Array> };
  };
}
const ort = createRequire(import.meta.url)('onnxruntime-web') as OrtModule;
type T = OrtTensor & { getData(release?: boolean): Promise<Float32Array> };

let device: GPUDevice;
let dl: OrtDetloss;
const made: GPUBuffer[] = [];
beforeAll(async () => {
  const ctx = await nodeContext();
  device = ctx.device;
  dl = await detlossFor(device);
});
afterAll(() => {
  for (const b of made) b.destroy();
  dl?.destroy();
});

/** An ort.Tensor on the GPU, as ORT's WebGPU EP makes them (STORAGE | COPY_SRC | COPY_DST, 16-byte size). */
function onGpu(data: Float32Array | Int32Array, dims: number[]): T {
  const size = Math.max(16, Math.ceil(data.byteLength / 16) * 16);
  const buffer = device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
  made.push(buffer);
  return ort.Tensor.fromGpuBuffer(buffer, { dataType: data instanceof Int32Array ? 'int32' : 'float32', dims }) as T;
}

/** Boxes [n, 4] (xyxy) with positive width and height, varied by `seed`. */
function boxes(n: number, seed: number): Float32Array {
  const a = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) {
    const x = Math.sin(i * 1.7 + seed) * 3;
    const y = Math.cos(i * 0.9 + seed) * 2;
    a.set([x, y, x + 1 + ((i + seed) % 3) * 0.4, y + 0.5 + ((i * 7 + seed) % 5) * 0.3], i * 4);
  }
  return a;
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>) {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i]), `element ${i}: ${got[i]} vs ${want[i]}`).toBeLessThanOrEqual(1e-6 + 1e-5 * Math.abs(want[i]));
}

describe('losses on gpu-buffer ort.Tensors', () => {
  it('ciou on one pair and on a [2, 3, 4] batch: loss and gradient equal cpu.run; outputs are ort.Tensors on the GPU', async () => {
    for (const dims of [[1, 4], [2, 3, 4]]) {
      const n = dims.slice(0, -1).reduce((a, b) => a * b, 1);
      const p = boxes(n, 1);
      const t = boxes(n, 2);
      const pred = onGpu(p, dims);
      const { loss, grad } = await ciou(pred, onGpu(t, dims));
      const want = cpu.run('iou_loss', { pred: p, target: t }, { variant: 'ciou' });
      expect(loss).toBeInstanceOf(ort.Tensor);
      expect([loss.location, loss.type, loss.dims]).toEqual(['gpu-buffer', 'float32', []]);
      expect([grad!.location, grad!.dims]).toEqual(['gpu-buffer', dims]);
      expectClose(await (loss as T).getData(true), want.loss);
      expectClose(await (grad as T).getData(true), want.grad.pred);
      // the caller's input is left alone
      expect(pred.location).toBe('gpu-buffer');
    }
  });

  it("smooth L1 'none' on a [3, 5] tensor keeps the input's dims; weight and gradOutput as tensors", async () => {
    const p = Float32Array.from({ length: 15 }, (_, i) => Math.sin(i) * 2);
    const t = Float32Array.from({ length: 15 }, (_, i) => Math.cos(i));
    const w = Float32Array.from({ length: 15 }, (_, i) => 0.5 + (i % 3));
    const go = Float32Array.from({ length: 15 }, (_, i) => (i % 2 ? -1 : 2));
    const { loss, grad } = await smoothL1(onGpu(p, [3, 5]), onGpu(t, [3, 5]), { beta: 0.5, reduction: 'none', weight: onGpu(w, [3, 5]), gradOutput: new ort.Tensor('float32', go, [3, 5]) });
    const want = cpu.run('smooth_l1', { pred: p, target: t, weight: w, gradOutput: go }, { beta: 0.5, reduction: 'none' });
    expect(loss.dims).toEqual([3, 5]);
    expect(grad!.dims).toEqual([3, 5]);
    expectClose(await (loss as T).getData(true), want.loss);
    expectClose(await (grad as T).getData(true), want.grad.pred);
  });

  it("iou 'none' on [2, 3, 4] boxes gives [2, 3]; quality focal with int32 labels on the CPU", async () => {
    const r = await ciou(onGpu(boxes(6, 3), [2, 3, 4]), onGpu(boxes(6, 4), [2, 3, 4]), { reduction: 'none' });
    expect(r.loss.dims).toEqual([2, 3]);
    expectClose(await (r.loss as T).getData(true), cpu.run('iou_loss', { pred: boxes(6, 3), target: boxes(6, 4) }, { variant: 'ciou', reduction: 'none' }).loss);
    r.grad!.dispose();

    const logits = Float32Array.from({ length: 12 }, (_, i) => Math.sin(i * 1.3));
    const labels = Int32Array.of(0, 3, 2, 1);
    const scores = Float32Array.of(0.9, 0, 0.4, 0.7);
    const q = await qualityFocal(onGpu(logits, [4, 3]), new ort.Tensor('int32', labels, [4]), onGpu(scores, [4]));
    const want = cpu.run('quality_focal', { logits: { data: logits, shape: [4, 3] }, labels, scores });
    expect(q.grad!.dims).toEqual([4, 3]);
    expectClose(await (q.loss as T).getData(true), want.loss);
    expectClose(await (q.grad as T).getData(true), want.grad.logits);
  });
});

describe('the ranking and two-gradient wrappers', () => {
  it("rankSort's loss is [ranking, sorting] whatever the logits' dims, apLoss's a scalar; the update has the logits' dims", async () => {
    const logits = Float32Array.of(0.3, -0.2);
    const targets = Float32Array.of(0.7, 0);
    const want = cpu.run('rank_sort', { logits, targets });
    for (const dims of [[2], [1, 2]]) {
      const { loss, grad } = await rankSort(onGpu(logits, dims), onGpu(targets, dims));
      expect([loss.dims, grad!.dims]).toEqual([[2], dims]);
      expectClose(await (loss as T).getData(true), want.loss);
      expectClose(await (grad as T).getData(true), want.grad.logits);
    }
    const ap = await apLoss(onGpu(logits, [1, 2]), Float32Array.of(1, 0));
    expect(ap.loss.dims).toEqual([]);
    expectClose(await (ap.loss as T).getData(true), cpu.run('ap_loss', { logits, targets: Float32Array.of(1, 0) }).loss);
    ap.grad!.dispose();
  });

  it('marginRanking returns both gradients, and its buffers return to the pool once all three tensors are disposed', async () => {
    const [a, b, y] = [Float32Array.of(0.5, -1, 2), Float32Array.of(0, 0.5, 2.5), Float32Array.of(1, -1, 1)];
    const first = await marginRanking(onGpu(a, [3]), onGpu(b, [3]), y, { margin: 0.1 });
    [first.loss, ...Object.values(first.grad)].forEach((t) => t.dispose());
    const base = dl.context.stats().bytesInUse;
    const { loss, grad } = await marginRanking(onGpu(a, [3]), onGpu(b, [3]), y, { margin: 0.1 });
    const want = cpu.run('margin_ranking', { input1: a, input2: b, targets: y }, { margin: 0.1 });
    expect(Object.keys(grad).sort()).toEqual(['input1', 'input2']);
    expectClose(await (loss as T).getData(true), want.loss);
    expectClose(await (grad.input1 as T).getData(true), want.grad.input1);
    expect(dl.context.stats().bytesInUse).toBeGreaterThan(base);
    expectClose(await (grad.input2 as T).getData(true), want.grad.input2);
    expect(dl.context.stats().bytesInUse).toBe(base);
  });
});

describe('ownership', () => {
  it("the call's buffers return to the pool when both tensors are disposed, not before; a second dispose does nothing", async () => {
    const pred = onGpu(boxes(4, 5), [4, 4]);
    const target = onGpu(boxes(4, 6), [4, 4]);
    await ciou(pred, target).then((r) => (r.loss.dispose(), r.grad!.dispose()));
    const base = dl.context.stats().bytesInUse;
    const { loss, grad } = await ciou(pred, target);
    const held = dl.context.stats().bytesInUse;
    expect(held).toBeGreaterThan(base);
    loss.dispose();
    loss.dispose();
    expect(dl.context.stats().bytesInUse).toBe(held);
    await (grad as T).getData(true); // download, then release
    expect(dl.context.stats().bytesInUse).toBe(base);
    expect(grad!.location).toBe('cpu');
  });

  it('runLoss returns a gradient per differentiable input; detlossFor reuses one context per device', async () => {
    expect(await detlossFor(device)).toBe(dl);
    const r = await runLoss('l1', { pred: onGpu(Float32Array.of(1, -2, 3), [3]), target: Float32Array.of(0, 0, 0) }, { reduction: 'sum' });
    expect(Object.keys(r.grad)).toEqual(['pred']);
    expect(Array.from(await (r.loss as T).getData(true))).toEqual([6]);
    expect(Array.from(await (r.grad.pred as T).getData(true))).toEqual([1, -1, 1]);
  });
});

describe('the free functions take their inputs when they are called, as the context\'s methods do', () => {
  it('a host target refilled right after the call does not change the loss', async () => {
    const pred = onGpu(Float32Array.of(1, -2, 3), [3]);
    await l1(pred, Float32Array.of(0, 0, 0), { reduction: 'sum' }).then((r) => (r.loss.dispose(), r.grad!.dispose()));
    const target = Float32Array.of(0, 0, 0);
    const call = l1(pred, target, { reduction: 'sum' });
    target.fill(10);
    const { loss, grad } = await call;
    expect(Array.from(await (loss as T).getData(true))).toEqual([6]);
    grad!.dispose();
  });
  it('an input tensor disposed right after the call: the call still works and equals cpu.run', async () => {
    const data = boxes(3, 11);
    const goal = boxes(3, 12);
    await ciou(onGpu(data, [3, 4]), goal).then((r) => (r.loss.dispose(), r.grad!.dispose()));
    const pred = onGpu(data, [3, 4]);
    const call = ciou(pred, goal);
    pred.dispose();
    const { loss, grad } = await call;
    const want = cpu.run('iou_loss', { pred: data, target: goal }, { variant: 'ciou' });
    expectClose(await (loss as T).getData(true), want.loss);
    expectClose(await (grad as T).getData(true), want.grad.pred);
  });
});

describe('a GPU failure after the call was made is a DetlossError, and no tensors come back', () => {
  const CODE = { pipeline: 'pipeline', validation: 'gpu_validation', oom: 'gpu_out_of_memory' } as const;
  for (const fault of ['pipeline', 'validation', 'oom'] as const) {
    it(`a planted ${fault} fault: the free function rejects with ${CODE[fault]}; the next call works`, async () => {
      // A context of its own, on a device of its own: its pipelines are not compiled yet.
      const own = await nodeContext();
      const ctx = await detlossFor(own.device);
      let bytes = 0;
      if (fault === 'oom') {
        bytes = ctx.context.limits.maxBufferSize;
        const oom = await cannotAllocate(own.device, bytes);
        if (ctx.context.adapter.isFallbackAdapter) expect(oom).toBe(true);
        if (!oom) return;
      }
      const mk = (a: Float32Array) => {
        const b = own.device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
        own.device.queue.writeBuffer(b, 0, a.buffer as ArrayBuffer, a.byteOffset, a.byteLength);
        return ort.Tensor.fromGpuBuffer(b, { dataType: 'float32', dims: [4] }) as T;
      };
      const planted = plant(own.device, fault, bytes);
      const e = await l1(mk(Float32Array.of(1, 2, 3, 4)), Float32Array.of(0, 0, 0, 0), { reduction: 'sum' }).then(
        (r) => ({ returned: r }),
        (x: unknown) => x,
      );
      expect(planted.fired()).toBe(true);
      expect(e instanceof DetlossError, String(JSON.stringify(e))).toBe(true);
      expect((e as DetlossError).code).toBe(CODE[fault]);
      const { loss, grad } = await l1(mk(Float32Array.of(1, 2, 3, 4)), Float32Array.of(0, 0, 0, 0), { reduction: 'sum' });
      expect(Array.from(await (loss as T).getData(true))).toEqual([10]);
      grad!.dispose();
      ctx.destroy();
      own.destroy();
      await detlossFor(device);
    });
  }
});

describe('after the device is lost', () => {
  it("an output's getData() and the free functions say device_lost, as DetlossErrors", async () => {
    const other = await nodeContext();
    const lost = other.device;
    other.destroy();
    const mine = await detlossFor(lost);
    const pred = ort.Tensor.fromGpuBuffer(
      (() => {
        const b = lost.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
        lost.queue.writeBuffer(b, 0, Float32Array.of(1, 2, 3, 4));
        return b;
      })(),
      { dataType: 'float32', dims: [4] },
    ) as T;
    const { loss, grad } = await mine.l1(pred, Float32Array.of(0, 0, 0, 0), { reduction: 'sum' });
    lost.destroy();
    await lost.lost;
    const err = await (loss as T).getData().then(() => undefined, (e: unknown) => e);
    expect(err instanceof DetlossError, String(err)).toBe(true);
    expect((err as DetlossError).code).toBe('device_lost');
    // The free functions run on the last context made (this one): device_lost, not no_webgpu.
    const free = await l1(pred, Float32Array.of(0, 0, 0, 0)).then(() => undefined, (e: unknown) => e);
    expect(free instanceof DetlossError, String(free)).toBe(true);
    expect((free as DetlossError).code).toBe('device_lost');
    grad!.dispose();
    loss.dispose();
    // detlossFor on a live device gives the free functions a working context again.
    expect(await detlossFor(device)).toBe(dl);
  });
});

describe('bad input is a DetlossError', () => {
  const code = async (p: Promise<unknown>) => {
    const e = await p.then(() => undefined, (x: unknown) => x);
    // by name: the module reloaded below has its own copy of the class
    expect(e instanceof DetlossError || (e as Error).name === 'DetlossError', String(e)).toBe(true);
    return [(e as DetlossError).code, (e as DetlossError).argument];
  };
  it('int64 labels, float labels, a texture tensor, a plain object, a short buffer', async () => {
    const logits = onGpu(new Float32Array(6), [2, 3]);
    expect(await code(crossEntropy(logits, new ort.Tensor('int64', BigInt64Array.of(0n, 1n), [2])))).toEqual(['wrong_dtype', 'labels']);
    expect(await code(crossEntropy(logits, onGpu(new Float32Array(2), [2])))).toEqual(['wrong_dtype', 'labels']);
    const texture = { location: 'texture', type: 'float32', dims: [2, 4], gpuBuffer: undefined, data: undefined, dispose() {} } as unknown as OrtTensor;
    expect(await code(ciou(texture, onGpu(new Float32Array(8), [2, 4])))).toEqual(['invalid_value', 'pred']);
    expect(await code(ciou({ data: new Float32Array(4) } as unknown as OrtTensor, onGpu(new Float32Array(4), [1, 4])))).toEqual(['wrong_dtype', 'pred']);
    // dims that promise more than the buffer holds
    const short = ort.Tensor.fromGpuBuffer(onGpu(new Float32Array(4), [1, 4]).gpuBuffer, { dataType: 'float32', dims: [64, 4] });
    expect(await code(ciou(short, new ort.Tensor('float32', new Float32Array(256), [64, 4])))).toEqual(['shape_mismatch', 'pred']);
  });

  it('a free function before any detlossFor, and detlossFor without a device', async () => {
    vi.resetModules();
    const fresh = await import('../../src/frameworks/ort');
    expect(await code(fresh.ciou(onGpu(new Float32Array(4), [1, 4]), new Float32Array(4)))).toEqual(['no_webgpu', 'device']);
    expect(await code(fresh.detlossFor(undefined as unknown as GPUDevice))).toEqual(['invalid_param', 'device']);
  });
});
