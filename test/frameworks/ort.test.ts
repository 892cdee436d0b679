// detloss/ort with a real ONNX Runtime Web session on WebGPU, in headless Chromium (SwiftShader):
// ORT runs a model (Y = X + B) with its output left on the GPU, detloss takes ORT's device
// (`ort.env.webgpu.device`) and its output tensor, and returns ort.Tensors on that device; the
// gradient goes back into the session as an input. Both ORT builds: `onnxruntime-web/webgpu`
// (the native WebGPU EP) and `onnxruntime-web` (JSEP). Uses the built package (dist/ort.js).
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpu } from '../../src/cpu';
import { openPage, serveStatic, type GpuPage } from '../../src/tools/browser';

const dist = fileURLToPath(new URL('../../dist/', import.meta.url));
const ortDist = dirname(createRequire(import.meta.url).resolve('onnxruntime-web'));
const ENTRIES = { webgpu: 'ort.webgpu.bundle.min.mjs', jsep: 'ort.bundle.min.mjs' } as const;

// Protobuf by hand: varints, and length-delimited fields.
const varint = (n: number) => {
  const out: number[] = [];
  do {
    out.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
    n = Math.floor(n / 128);
  } while (n > 0);
  return out;
};
const num = (field: number, n: number) => [...varint(field << 3), ...varint(n)];
const bytes = (field: number, b: number[]) => [...varint((field << 3) | 2), ...varint(b.length), ...b];
const str = (field: number, s: string) => bytes(field, [...new TextEncoder().encode(s)]);

/** An ONNX model, written as protobuf by hand: Y = X + B, X and Y float [N, 4], B a [4] initializer. */
function addModel(bias: number[]): Uint8Array {
  // TypeProto.tensor_type { elem_type FLOAT, shape { dim N, dim 4 } }
  const dim = (d: string | number) => bytes(1, typeof d === 'string' ? str(2, d) : num(1, d));
  const valueInfo = (name: string) => [...str(1, name), ...bytes(2, bytes(1, [...num(1, 1), ...bytes(2, [...dim('N'), ...dim(4)])]))];
  const raw = [...new Uint8Array(Float32Array.from(bias).buffer)];
  const initializer = [...num(1, bias.length), ...num(2, 1), ...str(8, 'B'), ...bytes(9, raw)];
  const node = [...str(1, 'X'), ...str(1, 'B'), ...str(2, 'Y'), ...str(3, 'add'), ...str(4, 'Add')];
  const graph = [...bytes(1, node), ...str(2, 'g'), ...bytes(5, initializer), ...bytes(11, valueInfo('X')), ...bytes(12, valueInfo('Y'))];
  // ModelProto { ir_version 8, opset_import { version 13 }, graph }
  return Uint8Array.from([...num(1, 8), ...bytes(8, num(2, 13)), ...bytes(7, graph)]);
}

/** Z = Identity(S), S and Z int64 [K, 3]: a model that takes NonMaxSuppression's output as its input. */
function identityInt64Model(): Uint8Array {
  const dim = (d: string | number) => bytes(1, typeof d === 'string' ? str(2, d) : num(1, d));
  const valueInfo = (name: string) => [...str(1, name), ...bytes(2, bytes(1, [...num(1, 7), ...bytes(2, [...dim('K'), ...dim(3)])]))];
  const node = [...str(1, 'S'), ...str(2, 'Z'), ...str(3, 'identity'), ...str(4, 'Identity')];
  const graph = [...bytes(1, node), ...str(2, 'g'), ...bytes(11, valueInfo('S')), ...bytes(12, valueInfo('Z'))];
  return Uint8Array.from([...num(1, 8), ...bytes(8, num(2, 13)), ...bytes(7, graph)]);
}

const PAGE = `<!doctype html><meta charset="utf-8"><title>detloss ort</title>
<script type="module">
try {
  window.detlossOrt = await import('/ort.js');
  window.detloss = await import('/index.js');
  window.ortBuilds = {};
  for (const f of ${JSON.stringify(Object.values(ENTRIES))}) window.ortBuilds[f] = await import('/ort/' + f.replace(/[.]mjs$/, '.js'));
  window.ortReady = { ok: true, adapter: { vendor: '', architecture: '', device: '', description: '', isFallbackAdapter: false } };
} catch (e) {
  window.ortReady = { ok: false, code: e.code, message: String(e.message || e) };
}
</script>`;

let gp: GpuPage;
let site: string;
beforeAll(async () => {
  // One folder with the built package and ORT's browser builds (the server serves one root).
  site = mkdtempSync(join(tmpdir(), 'detloss-ort-'));
  for (const f of readdirSync(dist)) if (f.endsWith('.js')) copyFileSync(join(dist, f), join(site, f));
  mkdirSync(join(site, 'ort'));
  // serveStatic gives .js files a JavaScript type (.mjs it serves as bytes, which import() refuses);
  // the bundles hold ORT's Emscripten glue and fetch only their .wasm, next to them.
  for (const f of Object.values(ENTRIES)) copyFileSync(join(ortDist, f), join(site, 'ort', f.replace(/\.mjs$/, '.js')));
  for (const f of ['ort-wasm-simd-threaded.asyncify.wasm', 'ort-wasm-simd-threaded.jsep.wasm']) copyFileSync(join(ortDist, f), join(site, 'ort', f));
  gp = await openPage(await serveStatic(site, PAGE), 'window.ortReady');
});
afterAll(async () => {
  await gp?.close();
  if (site) rmSync(site, { recursive: true, force: true });
});

interface PageResult {
  versions: Record<string, string>;
  sameDevice: boolean;
  y: number[];
  yLocation: string;
  ciou: { loss: number[]; grad: number[]; lossDims: number[]; gradDims: number[]; gradLocation: string; gradIsOrtTensor: boolean };
  smoothL1: { loss: number[]; grad: number[]; gradDims: number[] };
  roundTrip: number[];
  inUse: number[];
  errors: string[];
}

/** In the page: ORT session on WebGPU, then detloss on its output; plain data back. */
function runInPage(entry: string, n: number, bias: number[], x: number[], target: number[]): Promise<PageResult> {
  const model = Array.from(addModel(bias));
  return gp.page.evaluate(
    async (entry, n, model, x, target) => {
      const w = window as unknown as { detlossOrt: typeof import('../../src/frameworks/ort'); detloss: typeof import('../../src/index') };
      type Ort = {
        env: { versions: Record<string, string>; wasm: { numThreads: number }; webgpu: { device: unknown } };
        Tensor: new (type: string, data: Float32Array, dims: number[]) => { dims: number[] };
        InferenceSession: { create(model: Uint8Array, o: object): Promise<{ run(feeds: object): Promise<Record<string, import('../../src/frameworks/ort').OrtTensor & { getData(r?: boolean): Promise<Float32Array> }>>; release(): Promise<void> }> };
      };
      const ort = (window as unknown as { ortBuilds: Record<string, Ort> }).ortBuilds[entry];
      ort.env.wasm.numThreads = 1;
      const session = await ort.InferenceSession.create(Uint8Array.from(model), { executionProviders: ['webgpu'], preferredOutputLocation: 'gpu-buffer' });
      const device = (await ort.env.webgpu.device) as GPUDevice;
      const dl = await w.detlossOrt.detlossFor(device);
      const errors: string[] = [];
      device.addEventListener('uncapturederror', (e) => errors.push(String((e as GPUUncapturedErrorEvent).error.message)));
      const { Y } = await session.run({ X: new ort.Tensor('float32', Float32Array.from(x), [n, 4]) });
      const inUse = [dl.context.stats().bytesInUse];
      const c = await w.detlossOrt.ciou(Y, new ort.Tensor('float32', Float32Array.from(target), [n, 4]) as never);
      const s = await w.detlossOrt.smoothL1(Y, Float32Array.from(target), { beta: 0.5, reduction: 'sum' });
      inUse.push(dl.context.stats().bytesInUse);
      // the gradient is an ort.Tensor on ORT's device: feed it back as the model's input
      const back = await session.run({ X: c.grad });
      const roundTrip = Array.from(await back.Y.getData(true));
      const grad = c.grad as unknown as { getData(r?: boolean): Promise<Float32Array>; location: string; dims: number[] };
      const out = {
        versions: ort.env.versions,
        sameDevice: dl.device === device,
        yLocation: Y.location,
        y: Array.from(await (Y as unknown as { getData(r?: boolean): Promise<Float32Array> }).getData()),
        ciou: {
          lossDims: [...c.loss.dims],
          gradDims: [...grad.dims],
          gradLocation: grad.location,
          gradIsOrtTensor: c.grad instanceof (ort.Tensor as unknown as new () => unknown),
          loss: Array.from(await (c.loss as unknown as { getData(r?: boolean): Promise<Float32Array> }).getData(true)),
          grad: Array.from(await grad.getData(true)),
        },
        smoothL1: {
          gradDims: [...s.grad!.dims],
          loss: Array.from(await (s.loss as unknown as { getData(r?: boolean): Promise<Float32Array> }).getData(true)),
          grad: Array.from(await (s.grad as unknown as { getData(r?: boolean): Promise<Float32Array> }).getData(true)),
        },
        roundTrip,
        inUse: [...inUse, dl.context.stats().bytesInUse],
        errors,
      };
      Y.dispose();
      dl.destroy();
      // "No uncaptured errors" is decided after all of the above has reached the device: once the
      // queue's work is done, a marker error of ours (a device's errors arrive in order) is in.
      // Before session.release(): ORT's webgpu build loses its device then, and a lost one reports nothing.
      await device.queue.onSubmittedWorkDone();
      const marker = new Promise<void>((ok) => device.addEventListener('uncapturederror', (e) => (e as GPUUncapturedErrorEvent).error.message.includes('detloss-test-marker') && ok()));
      device.createBuffer({ label: 'detloss-test-marker', size: 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE });
      await device.queue.onSubmittedWorkDone();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const never = new Promise<void>((ok) => (timer = setTimeout(() => (errors.push('the marker error never arrived: uncaptured errors are not reported'), ok()), 20_000)));
      await Promise.race([marker, never]);
      clearTimeout(timer);
      out.errors = errors.filter((m) => !m.includes('detloss-test-marker'));
      await session.release();
      return out;
    },
    entry,
    n,
    model,
    x,
    target,
  ) as Promise<PageResult>;
}

function boxes(n: number, seed: number): number[] {
  const a: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = Math.sin(i * 1.3 + seed) * 4;
    const y = Math.cos(i * 0.7 + seed) * 3;
    a.push(x, y, x + 1 + ((i + seed) % 4) * 0.5, y + 0.75 + ((i * 5 + seed) % 3) * 0.6);
  }
  return a;
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string) {
  expect(got.length, what).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i]), `${what}[${i}]: ${got[i]} vs ${want[i]}`).toBeLessThanOrEqual(1e-6 + 1e-5 * Math.abs(want[i]));
}

describe.each(Object.entries(ENTRIES))('onnxruntime-web (%s build) on WebGPU', (_build, entry) => {
  it.each([1, 6])('ORT output [%i, 4] -> ciou and smooth L1 on ORT’s device, equal to cpu.run; gradient fed back into ORT', async (n) => {
    const bias = [0.25, -0.5, 0.125, 1];
    const x = boxes(n, 1);
    const target = boxes(n, 5);
    const r = await runInPage(entry, n, bias, x, target);
    expect(r.versions.web).toMatch(/^1\.\d+\.\d+/);
    expect(r.sameDevice).toBe(true);
    expect(r.yLocation).toBe('gpu-buffer');
    // ORT computed Y on the GPU
    const y = Float32Array.from(x, (v, i) => Math.fround(v) + bias[i % 4]); // X is float32 in ORT
    expect(r.y).toEqual(Array.from(y));

    const c = cpu.run('iou_loss', { pred: y, target: Float32Array.from(target) }, { variant: 'ciou' });
    expect([r.ciou.lossDims, r.ciou.gradDims, r.ciou.gradLocation, r.ciou.gradIsOrtTensor]).toEqual([[], [n, 4], 'gpu-buffer', true]);
    expectClose(r.ciou.loss, c.loss, 'ciou loss');
    expectClose(r.ciou.grad, c.grad.pred, 'ciou grad');

    const s = cpu.run('smooth_l1', { pred: y, target: Float32Array.from(target) }, { beta: 0.5, reduction: 'sum' });
    expect(r.smoothL1.gradDims).toEqual([n, 4]);
    expectClose(r.smoothL1.loss, s.loss, 'smooth L1 loss');
    expectClose(r.smoothL1.grad, s.grad.pred, 'smooth L1 grad');

    // Y2 = grad + B, computed by ORT from detloss's buffer
    expect(r.roundTrip).toEqual(Array.from(Float32Array.from(r.ciou.grad, (g, i) => g + bias[i % 4])));
    // both calls' buffers were held while their tensors lived, and all came back
    expect(r.inUse[1]).toBeGreaterThan(r.inUse[0]);
    expect(r.inUse[2]).toBe(r.inUse[0]);
    expect(r.errors).toEqual([]);
  });
});

/**
 * In the page: detloss/ort's nonMaxSuppression on gpu-buffer tensors of ORT's device, its int64
 * output read back directly and fed to an ORT session as an input (ORT takes detloss's buffer).
 */
function nmsInPage(entry: string, boxes: number[], scores: number[], dims: { b: number; c: number; n: number }): Promise<{ direct: number[]; viaOrt: number[]; type: string; location: string; dims: number[]; errors: string[] }> {
  const model = Array.from(identityInt64Model());
  return gp.page.evaluate(
    async (entry, model, boxes, scores, { b, c, n }) => {
      const w = window as unknown as { detlossOrt: typeof import('../../src/frameworks/ort') };
      type T = import('../../src/frameworks/ort').OrtTensor & { getData(r?: boolean): Promise<BigInt64Array> };
      type Ort = {
        env: { wasm: { numThreads: number }; webgpu: { device: unknown } };
        Tensor: { fromGpuBuffer(buffer: GPUBuffer, o: { dataType: string; dims: number[] }): T };
        InferenceSession: { create(model: Uint8Array, o: object): Promise<{ run(feeds: object): Promise<Record<string, { data: BigInt64Array }>>; release(): Promise<void> }> };
      };
      const ort = (window as unknown as { ortBuilds: Record<string, Ort> }).ortBuilds[entry];
      ort.env.wasm.numThreads = 1;
      const session = await ort.InferenceSession.create(Uint8Array.from(model), { executionProviders: ['webgpu'] });
      const device = (await ort.env.webgpu.device) as GPUDevice;
      const dl = await w.detlossOrt.detlossFor(device);
      const errors: string[] = [];
      device.addEventListener('uncapturederror', (e) => errors.push(String((e as GPUUncapturedErrorEvent).error.message)));
      const onGpu = (data: Float32Array<ArrayBuffer>, dims: number[]) => {
        const buffer = device.createBuffer({ size: Math.max(16, Math.ceil(data.byteLength / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
        device.queue.writeBuffer(buffer, 0, data);
        return ort.Tensor.fromGpuBuffer(buffer, { dataType: 'float32', dims });
      };
      const selected = (await w.detlossOrt.nonMaxSuppression(onGpu(Float32Array.from(boxes), [b, n, 4]), onGpu(Float32Array.from(scores), [b, c, n]), 10n, 0.5, 0.2)) as T;
      // What it is, then ORT reads it as it is (getData() makes a tensor a CPU one), then detloss's download.
      const [type, location, dims] = [selected.type, selected.location, [...selected.dims]];
      const { Z } = await session.run({ S: selected });
      const direct = Array.from(await selected.getData(true), Number);
      const out = { direct, viaOrt: Array.from(Z.data, Number), type, location, dims, errors };
      dl.destroy();
      await device.queue.onSubmittedWorkDone();
      await session.release();
      return out;
    },
    entry,
    model,
    boxes,
    scores,
    dims,
  );
}

describe.each(Object.entries(ENTRIES))('onnxruntime-web (%s build): nonMaxSuppression on ORT’s device', (_build, entry) => {
  it('gives int64 [k, 3] rows on the GPU, equal to cpu.run, that an ORT session takes as its input', async () => {
    const [b, c, n] = [2, 2, 9];
    const boxes = Array.from({ length: b * n }, (_, i) => [i % 3, (i * 5) % 7, (i % 3) + 2, ((i * 5) % 7) + 3]).flat();
    const scores = Array.from({ length: b * c * n }, (_, i) => ((i * 11) % 17) / 17);
    const want = cpu.run('nms_onnx', { boxes: { data: Float32Array.from(boxes), shape: [b, n, 4] }, scores: { data: Float32Array.from(scores), shape: [b, c, n] } }, { maxOutputBoxesPerClass: 10, iouThreshold: 0.5, scoreThreshold: 0.2 });
    const r = await nmsInPage(entry, boxes, scores, { b, c, n });
    expect([r.type, r.location, r.dims]).toEqual(['int64', 'gpu-buffer', want.outputShapes!.selected]);
    expect(r.dims[0]).toBeGreaterThan(2);
    expect(r.direct).toEqual(Array.from(want.outputs!.selected));
    expect(r.viaOrt).toEqual(r.direct);
    expect(r.errors).toEqual([]);
  });
});
