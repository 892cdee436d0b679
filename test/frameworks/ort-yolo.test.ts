// detloss/ort's talAssign and yoloLoss on Node's WebGPU (Dawn): gpu-buffer ort.Tensors in, made
// with onnxruntime-web's own Tensor class; int32 and float32 ort.Tensors out, in the outputs'
// shapes, equal to the fixtures; each output owns its buffer until disposed.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareCase, parseFixtures, type FixtureCase } from '../../src/fixtures';
import { detlossFor, makeAnchors, talAssign, yoloLoss, type OrtDetloss, type OrtTensor } from '../../src/frameworks/ort';
import { nodeContext } from '../helpers/node-gpu';

interface OrtModule {
  Tensor: { fromGpuBuffer(buffer: GPUBuffer, options: { dataType: string; dims: number[] }): OrtTensor };
}
const ort = createRequire(import.meta.url)('onnxruntime-web') as OrtModule;
type T = OrtTensor & { getData(release?: boolean): Promise<Float32Array | Int32Array>; type: string };

const cases = parseFixtures(readFileSync(new URL('../fixtures/tal.json', import.meta.url), 'utf8'), 'tal.json');

let device: GPUDevice;
let dl: OrtDetloss;
const made: GPUBuffer[] = [];
beforeAll(async () => {
  device = (await nodeContext()).device;
  dl = await detlossFor(device);
});
afterAll(() => {
  for (const b of made) b.destroy();
  dl?.destroy();
});

function onGpu(c: FixtureCase, k: string): T {
  const t = c.inputs[k];
  const data = t.dtype === 'i32' ? Int32Array.from(t.data) : Float32Array.from(t.data);
  const buffer = device.createBuffer({ size: Math.max(16, Math.ceil(data.byteLength / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
  made.push(buffer);
  return ort.Tensor.fromGpuBuffer(buffer, { dataType: t.dtype === 'i32' ? 'int32' : 'float32', dims: t.shape }) as T;
}

describe('detloss/ort talAssign and yoloLoss on gpu-buffer tensors', () => {
  it.each(cases.filter((c) => c.op === 'tal_assign').map((c) => [c.name, c] as const))('%s: the five outputs, int32 ones exactly', async (_n, c) => {
    const g = (k: string) => onGpu(c, k);
    const r = (await talAssign(g('scores'), g('predBoxes'), g('anchors'), g('gtLabels'), g('gtBoxes'), g('gtMask'), c.params)) as unknown as Record<string, T>;
    expect(Object.keys(r).sort()).toEqual(Object.keys(c.expected.outputs!).sort());
    const outputs: Record<string, number[]> = {};
    const outputShapes: Record<string, number[]> = {};
    for (const [k, t] of Object.entries(r)) {
      expect(t.location).toBe('gpu-buffer');
      expect(t.type, k).toBe(c.expected.outputs![k].dtype === 'i32' ? 'int32' : 'float32');
      const data = await t.getData(true);
      expect(data, k).toBeInstanceOf(c.expected.outputs![k].dtype === 'i32' ? Int32Array : Float32Array);
      outputs[k] = Array.from(data);
      outputShapes[k] = [...t.dims];
    }
    const cmp = compareCase(c, { loss: [], grad: {}, outputs, outputShapes });
    expect(cmp.detail ?? 'ok').toBe('ok');
  });

  it.each(cases.filter((c) => c.op === 'yolo_detection_loss').map((c) => [c.name, c] as const))('%s: loss, components and both gradients', async (_n, c) => {
    const g = (k: string) => onGpu(c, k);
    const opts = { ...c.params, ...(c.inputs.gradOutput ? { gradOutput: g('gradOutput') } : {}), device };
    const r = (await yoloLoss(g('predDist'), g('predScores'), g('anchors'), g('strides'), g('gtLabels'), g('gtBoxes'), g('gtMask'), opts)) as unknown as { loss: T; components: T; grad: Record<string, T> };
    expect(r.loss.dims).toEqual([]);
    expect(r.components.dims).toEqual([3]);
    expect(r.grad.predDist.dims).toEqual(c.inputs.predDist.shape);
    const got = {
      loss: Array.from(await r.loss.getData(true)),
      outputs: { components: Array.from(await r.components.getData(true)) },
      grad: { predDist: Array.from(await r.grad.predDist.getData(true)), predScores: Array.from(await r.grad.predScores.getData(true)) },
    };
    expect(compareCase(c, got).detail ?? 'ok').toBe('ok');
  });

  it('every buffer of a call goes back to the pool once each of its tensors is disposed; makeAnchors is the core helper', async () => {
    const c = cases.find((x) => x.op === 'tal_assign')!;
    const g = (k: string) => onGpu(c, k);
    const before = dl.context.stats().bytesInUse;
    const r = (await talAssign(g('scores'), g('predBoxes'), g('anchors'), g('gtLabels'), g('gtBoxes'), g('gtMask'))) as unknown as Record<string, T>;
    expect(dl.context.stats().bytesInUse).toBeGreaterThan(before);
    const all = Object.values(r);
    all.slice(0, -1).forEach((t) => t.dispose());
    expect(dl.context.stats().bytesInUse).toBeGreaterThan(before);
    all[all.length - 1].dispose();
    expect(dl.context.stats().bytesInUse).toBe(before);
    expect(makeAnchors([[1, 2]], [32]).count).toBe(2);
  });
});
