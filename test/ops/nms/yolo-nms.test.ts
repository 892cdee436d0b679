import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectorOutput } from '../../../bench/detector-output';
import { cpu } from '../../../src/cpu';
import { yoloNms } from '../../../src/cpu/yolo-nms';
import { yoloNmsOp } from '../../../src/ops/yolo-nms';
import { nodeContext } from '../../helpers/node-gpu';

/**
 * The YOLO post-process (`yolo_nms`) on Node's WebGPU against its float64 reference on the same
 * tensor: every output equal (indices and classes exactly; corners and scores to f32 rounding of
 * the decode), on drawn detector outputs whose compared overlaps all lie clear of the threshold
 * (the reference reports the closest, and each case asserts it), and on hand-made edges.
 */
describe.each(['software', 'hardware'] as const)('yolo_nms on the GPU, %s plan', (kind) => {
  let dl: Awaited<ReturnType<typeof nodeContext>>;
  beforeAll(async () => {
    dl = await nodeContext({ plan: kind });
  });
  afterAll(() => dl?.destroy());

  const run = async (data: Float32Array, shape: number[], options: Record<string, unknown> = {}) => {
    const g = await dl.run(yoloNmsOp as never, { output: { data, shape } } as never, options as never);
    const c = cpu.run(yoloNmsOp as never, { output: { data, shape } } as never, options as never);
    const what = JSON.stringify(options);
    expect(g.outputShapes, what).toEqual(c.outputShapes);
    for (const k of ['classes', 'batchIndex']) expect(Array.from(g.outputs![k]), `${what} ${k}`).toEqual(Array.from(c.outputs![k]));
    for (const k of ['boxes', 'scores']) {
      const want = Array.from(c.outputs![k]);
      // The corners are the decode's x - w/2 in f32 against float64; the scores are inputs.
      want.forEach((v, i) => expect(g.outputs![k][i] === v ? 0 : Math.abs(g.outputs![k][i] - v), `${what} ${k}[${i}]`).toBeLessThanOrEqual(k === 'scores' ? 0 : 4e-5 * Math.max(1, Math.abs(v))));
    }
    expect(Array.from(g.outputs!.count)).toEqual([c.outputShapes!.scores[0]]);
    return g;
  };

  const margin = (data: Float32Array, shape: number[], p: Partial<Parameters<typeof yoloNms>[2]> = {}) =>
    yoloNms(data, { b: shape[0], f: shape[1], a: shape[2] }, { confThreshold: 0.25, iouThreshold: 0.45, maxDet: 300, maxNms: 30000, multiLabel: false, agnostic: false, ...p }).margin;

  it.each([
    ['one image, 80 classes, 640 px (the export shape)', { b: 1, size: 640, c: 80, objects: 12, seed: 3 }, {}],
    ['two images, multi-label, 3 classes', { b: 2, size: 320, c: 3, objects: 6, seed: 5 }, { multiLabel: true, confThreshold: 0.05 }],
    ['class-agnostic, a low threshold', { b: 1, size: 320, c: 5, objects: 8, seed: 7 }, { agnostic: true, confThreshold: 0.05, iouThreshold: 0.6 }],
    ['maxDet and maxNms below the candidates', { b: 2, size: 320, c: 4, objects: 8, seed: 11 }, { maxDet: 5, maxNms: 40, confThreshold: 0.05 }],
    ['multi-label with maxNms', { b: 1, size: 320, c: 6, objects: 10, seed: 13 }, { multiLabel: true, maxNms: 100, confThreshold: 0.01 }],
  ])('%s', async (_name, shape, options) => {
    const { data, shape: dims } = detectorOutput(shape);
    expect(margin(data, dims, options as never), 'the drawn case is clear of the IoU threshold').toBeGreaterThan(1e-4);
    const g = await run(data, dims, options);
    expect(g.outputs!.count[0]).toBeGreaterThan(0);
  });

  it('edges: no anchors, no images, maxDet 0, NaN and infinite scores, equal class scores, a one-anchor launch', async () => {
    await run(new Float32Array(0), [1, 6, 0]);
    await run(new Float32Array(0), [0, 6, 5]);
    const { data, shape } = detectorOutput({ b: 1, size: 64, c: 2, objects: 2, seed: 1 });
    expect((await run(data, shape, { maxDet: 0 })).outputs!.count[0]).toBe(0);
    // Anchor 0: a NaN class score drops it (even with another class above the threshold); anchor 1:
    // +Infinity first; anchor 2: equal maxima give the first class; anchor 3: -Infinity and 0.5.
    const A = 4;
    const out = new Float32Array(6 * A);
    const put = (k: number, vals: number[]) => vals.forEach((v, a) => (out[k * A + a] = v));
    put(0, [10, 100, 200, 300]);
    put(1, [10, 100, 200, 300]);
    put(2, [8, 8, 8, 8]);
    put(3, [8, 8, 8, 8]);
    put(4, [NaN, Infinity, 0.7, -Infinity]);
    put(5, [0.9, 0.1, 0.7, 0.5]);
    const g = await run(out, [1, 6, A]);
    expect(Array.from(g.outputs!.scores)).toEqual([Infinity, 0.699999988079071, 0.5]);
    expect(Array.from(g.outputs!.classes)).toEqual([0, 0, 1]);
    await run(out, [1, 6, A], { multiLabel: true });
    await run(out.subarray(0, 0), [1, 6, 0], { multiLabel: true });
    const one = new Float32Array([5, 5, 2, 2, 0.9]);
    expect(Array.from((await run(one, [1, 5, 1])).outputs!.boxes)).toEqual([4, 4, 6, 6]);
  });

  it('refuses an output with no class row, and a weight', async () => {
    await expect(dl.run(yoloNmsOp as never, { output: { data: new Float32Array(4), shape: [1, 4, 1] } } as never)).rejects.toMatchObject({ code: 'shape_mismatch', argument: 'output' });
    expect(() => cpu.run(yoloNmsOp as never, { output: { data: new Float32Array(4), shape: [1, 4, 1] } } as never)).toThrow(/at least one class/);
  });
});
