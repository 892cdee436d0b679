// The YOLO post-process on every surface: the core context (host array and GPU buffer),
// detloss/tfjs (TF.js's WebGPU backend over Node's Dawn, and its cpu backend) and detloss/ort
// (gpu-buffer and cpu ort.Tensors), each equal to the float64 reference on the same tensor, one
// readback per call, the same refusals, and the input read when the call is made.
import '../../bench/node-globals';
import '@tensorflow/tfjs-backend-webgpu';
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import '../helpers/tfjs-quiet';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectorOutput } from '../../bench/detector-output';
import { cpu } from '../../src/cpu';
import type { YoloDetections } from '../../src/ops/yolo-nms';
import * as dtf from '../../src/frameworks/tfjs';
import { detlossFor, yoloNms as ortYoloNms, type OrtDetloss, type OrtTensor } from '../../src/frameworks/ort';
import { nodeContext } from '../helpers/node-gpu';

interface OrtModule {
  Tensor: (new (type: string, data: Float32Array, dims: number[]) => OrtTensor) & { fromGpuBuffer(buffer: GPUBuffer, options: { dataType: string; dims: number[] }): OrtTensor };
}
const ort = createRequire(import.meta.url)('onnxruntime-web') as OrtModule;

const { data, shape } = detectorOutput({ b: 2, size: 320, c: 5, objects: 8, seed: 21 });
const options = { confThreshold: 0.2, iouThreshold: 0.5, maxDet: 50 };
const want = cpu.yoloNms({ data, shape }, options);

/** Equal to the reference: classes and images exactly, scores bit for bit, corners within f32 rounding of the decode. */
function same(got: YoloDetections, what: string) {
  expect(got.count, what).toBe(want.count);
  expect(Array.from(got.classes), what).toEqual(Array.from(want.classes));
  expect(Array.from(got.batchIndex), what).toEqual(Array.from(want.batchIndex));
  expect(Array.from(got.scores), what).toEqual(Array.from(want.scores));
  want.boxes.forEach((v, i) => expect(Math.abs(got.boxes[i] - v), `${what} boxes[${i}]`).toBeLessThanOrEqual(4e-5 * Math.max(1, Math.abs(v))));
}

let dl: Awaited<ReturnType<typeof nodeContext>>;
let odl: OrtDetloss;
beforeAll(async () => {
  dl = await nodeContext();
  odl = await detlossFor(dl.device);
  expect(await tf.setBackend('webgpu')).toBe(true);
});
afterAll(() => {
  odl?.destroy();
  dl?.destroy();
});

describe('yoloNms on every surface', () => {
  it('the reference finds detections in both images', () => {
    expect(want.count).toBeGreaterThan(4);
    expect(new Set(want.batchIndex).size).toBe(2);
  });

  it('core: a host array, and a GPU buffer with one readback', async () => {
    same(await dl.yoloNms({ data, shape }, options), 'core host');
    const buffer = dl.device.createBuffer({ size: data.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    dl.device.queue.writeBuffer(buffer, 0, data as Float32Array<ArrayBuffer>);
    same(await dl.yoloNms({ buffer, shape }, options), 'core gpu');
    const last = dl.stats().lastCall!;
    expect(last.op).toBe('yolo_nms');
    expect([last.submits, last.readbacks], 'one submit, one readback').toEqual([1, 1]);
    buffer.destroy();
  });

  it('TF.js: the webgpu backend (the tensor read at call time) and the cpu backend', async () => {
    const t = tf.tensor3d(data, shape as [number, number, number]);
    const p = dtf.yoloNms(t, options);
    t.dispose();
    same(await p, 'tfjs webgpu');
    // A float32 tensor cast from int32 shares the int32 words: it is read as its float values.
    const ints = [10, 12, 40, 100, 10, 12, 40, 100, 8, 8, 6, 6, 8, 8, 6, 6, 1, 1, 0, 1, 0, 0, 1, 0];
    const cast = tf.cast(tf.tensor3d(ints, [1, 6, 4], 'int32'), 'float32');
    const fromCast = await dtf.yoloNms(cast, { iouThreshold: 0.5 });
    expect(Array.from(fromCast.scores)).toEqual([1, 1, 1, 1]);
    expect(fromCast).toEqual(cpu.yoloNms({ data: Float32Array.from(ints), shape: [1, 6, 4] }, { iouThreshold: 0.5 }));
    cast.dispose();
    await tf.setBackend('cpu');
    try {
      const c = tf.tensor3d(data, shape as [number, number, number]);
      same(await dtf.yoloNms(c, options), 'tfjs cpu');
      c.dispose();
    } finally {
      await tf.setBackend('webgpu');
    }
  });

  it('ORT: a gpu-buffer tensor and a cpu tensor', async () => {
    const buffer = dl.device.createBuffer({ size: data.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    dl.device.queue.writeBuffer(buffer, 0, data as Float32Array<ArrayBuffer>);
    same(await odl.yoloNms(ort.Tensor.fromGpuBuffer(buffer, { dataType: 'float32', dims: shape }), options), 'ort gpu-buffer');
    same(await ortYoloNms(new ort.Tensor('float32', data, shape), options), 'ort cpu');
    buffer.destroy();
  });

  it('the same refusals on every surface', async () => {
    const flat = { data: new Float32Array(8), shape: [2, 4, 1] };
    await expect(dl.yoloNms(flat)).rejects.toMatchObject({ code: 'shape_mismatch', argument: 'output' });
    expect(() => cpu.yoloNms(flat)).toThrow(expect.objectContaining({ code: 'shape_mismatch', argument: 'output' }));
    await expect(dtf.yoloNms(tf.zeros([2, 4, 1]))).rejects.toMatchObject({ code: 'shape_mismatch', argument: 'output' });
    await expect(ortYoloNms(new ort.Tensor('float32', flat.data, flat.shape))).rejects.toMatchObject({ code: 'shape_mismatch', argument: 'output' });
    for (const bad of [{ confThreshold: NaN }, { iouThreshold: 1.5 }, { maxDet: 2.5 }, { multiLabel: 'yes' }]) {
      const name = Object.keys(bad)[0];
      await expect(dl.yoloNms({ data, shape }, bad as never), name).rejects.toMatchObject({ argument: name });
      expect(() => cpu.yoloNms({ data, shape }, bad as never), name).toThrow(expect.objectContaining({ argument: name }));
      await expect(dtf.yoloNms(tf.tensor3d(data, shape as [number, number, number]), bad as never), name).rejects.toMatchObject({ argument: name });
      await expect(ortYoloNms(new ort.Tensor('float32', data, shape), bad as never), name).rejects.toMatchObject({ argument: name });
    }
    await expect(dl.yoloNms({ data, shape }, { nope: 1 } as never)).rejects.toMatchObject({ code: 'unknown_param', argument: 'nope' });
    await expect(dtf.yoloNms(tf.zeros([1, 6, 2], 'int32'))).rejects.toMatchObject({ code: 'wrong_dtype', argument: 'output' });
  });
});
