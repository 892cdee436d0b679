import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { caseInputs, caseOptions, compareCase, parseFixtures } from '../../../src/fixtures';
import { nodeContext } from '../../helpers/node-gpu';

/**
 * The three NMS ops on Node's WebGPU: every nms.json case (indices exactly, shapes
 * cut to the count), the edges of the score threshold and of the inputs, one-element launches,
 * and the count a resident call returns alone.
 */

const cases = parseFixtures(readFileSync(new URL('../../fixtures/nms.json', import.meta.url), 'utf8'), 'nms.json');

// Both plans: a software adapter runs nms_walk (the kept rows only), a hardware one the decision
// bits of every pair and the scan; the indices must be the same.
describe.each(['software', 'hardware'] as const)('nms, nms_onnx and nms_tfjs on the GPU, %s plan', (kind) => {
  let dl: Awaited<ReturnType<typeof nodeContext>>;
  beforeAll(async () => {
    dl = await nodeContext({ plan: kind });
  });

  it("runs its plan's passes: the sort, nms_walk or the decision bits and the scan, the gather", async () => {
    const b = new Float32Array([0, 0, 10, 10, 1, 1, 10, 10, 20, 20, 30, 30]);
    const r = await dl.run('nms', { boxes: b, scores: new Float32Array([0.9, 0.8, 0.7]) }, { iouThreshold: 0.5 });
    expect(Array.from(r.outputs!.keep)).toEqual([0, 2]);
    expect(dl.stats().lastCall!.dispatches).toBe(kind === 'software' ? 4 : 6);
  });
  afterAll(() => dl?.destroy());

  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const r = await dl.run(c.op as never, caseInputs(c) as never, caseOptions(c) as never);
    const cmp = compareCase(c, r);
    expect(cmp.detail ?? 'ok').toBe('ok');
    for (const [name, want] of Object.entries(c.expected.outputs!)) expect(r.outputShapes?.[name], name).toEqual(want.shape);
    expect(Array.from(r.outputs!.count)).toEqual([c.expected.outputs![Object.keys(c.expected.outputs!)[0]].shape[0]]);
  });

  /** GPU and CPU reference on the same call: every output equal. */
  const same = async (op: 'nms' | 'nms_tfjs' | 'nms_onnx', inputs: Record<string, unknown>, options: Record<string, unknown>) => {
    const g = await dl.run(op as never, inputs as never, options as never);
    const c = cpu.run(op as never, inputs as never, options as never);
    const what = `${op} ${JSON.stringify(options, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v))}`;
    for (const k of Object.keys(c.outputs!)) {
      const want = Array.from(c.outputs![k]);
      // Soft-NMS scores: f32 on the GPU, float64 rounded once on the CPU; within the fixtures'
      // tolerance for them (1e-6 + 1e-4 relative), and exact where nothing decayed (sigma 0).
      const soft = ((options.softNmsSigma as number | undefined) ?? 0) > 0;
      if (k === 'selectedScores' && soft) want.forEach((v, i) => expect(Math.abs(g.outputs![k][i] - v), `${what} ${k}[${i}]`).toBeLessThanOrEqual(1e-6 + 1e-4 * Math.abs(v)));
      else expect(Array.from(g.outputs![k]), `${what} ${k}`).toEqual(want);
    }
    expect(g.outputShapes).toEqual(c.outputShapes);
    return Array.from(g.outputs![op === 'nms' ? 'keep' : op === 'nms_onnx' ? 'selected' : 'selectedIndices']);
  };

  // Four far-apart boxes, then one on top of the first.
  const boxes = new Float32Array([0, 0, 1, 1, 10, 10, 11, 11, 20, 20, 21, 21, 30, 30, 31, 31, 0, 0, 1, 1]);
  const scores = new Float32Array([0.5, -Infinity, Infinity, -3.4028234663852886e38, 0.25]);

  it('score thresholds at ±Infinity and the lowest finite score, NaN scores, infinite scores', async () => {
    for (const scoreThreshold of [undefined, -Infinity, -3.4028234663852886e38, 0.25, 0.5, Infinity]) {
      await same('nms', { boxes, scores }, { iouThreshold: 0.5, ...(scoreThreshold === undefined ? {} : { scoreThreshold }) });
      await same('nms_tfjs', { boxes, scores }, { maxOutputSize: 5, iouThreshold: 0.5, ...(scoreThreshold === undefined ? {} : { scoreThreshold }) });
    }
    expect(await same('nms', { boxes, scores }, { iouThreshold: 0.5, scoreThreshold: -Infinity })).toEqual([2, 0, 3]);
    const withNaN = new Float32Array([NaN, 0.5, NaN, 0.25, 0.9]);
    expect(await same('nms', { boxes, scores: withNaN }, { iouThreshold: 0.5 })).toEqual([4, 1, 3]);
    expect(await same('nms_tfjs', { boxes, scores: withNaN }, { maxOutputSize: 5 })).toEqual([4, 1, 3]);
  });

  it('one box, no boxes, limits of 0 and past n, thresholds 0 and 1, classes', async () => {
    expect(await same('nms', { boxes: boxes.subarray(0, 4), scores: scores.subarray(0, 1) }, { iouThreshold: 0.5 })).toEqual([0]);
    expect(await same('nms', { boxes: new Float32Array(0), scores: new Float32Array(0) }, { iouThreshold: 0.5 })).toEqual([]);
    expect(await same('nms_tfjs', { boxes, scores }, { maxOutputSize: 0 })).toEqual([]);
    // The default threshold -Infinity drops the -Infinity score; box 4 lies on box 0.
    expect(await same('nms_tfjs', { boxes, scores }, { maxOutputSize: 2n ** 40n })).toEqual([2, 0, 3]);
    expect(await same('nms_tfjs', { boxes, scores }, { maxOutputSize: 9, iouThreshold: 0 })).toEqual([2]);
    expect(await same('nms', { boxes, scores }, { iouThreshold: 1 })).toEqual([2, 0, 4, 3, 1]);
    expect(await same('nms', { boxes, scores, classes: new Int32Array([0, 0, 0, 0, 7]) }, { iouThreshold: 0.5 })).toEqual([2, 0, 4, 3, 1]);
    expect(await same('nms', { boxes, scores, classes: new Int32Array([7, 0, 0, 0, 7]) }, { iouThreshold: 0.5 })).toEqual([2, 0, 3, 1]);
  });

  it('more than one block of 32 places and more than one word per row, with every box kept or all suppressed', async () => {
    const n = 100;
    const far = new Float32Array(4 * n).map((_, k) => (k % 4 < 2 ? 10 * Math.floor(k / 4) : 10 * Math.floor(k / 4) + 1));
    const stacked = new Float32Array(4 * n).map((_, k) => (k % 4 < 2 ? 0 : 1));
    const s = new Float32Array(n).map((_, k) => (k * 37) % n / n);
    expect((await same('nms', { boxes: far, scores: s }, { iouThreshold: 0.5 })).length).toBe(n);
    expect((await same('nms', { boxes: stacked, scores: s }, { iouThreshold: 0.5 })).length).toBe(1);
    // Identical boxes at iouThreshold 1: TF.js's >= drops them; shifted ones decay, and all stay.
    expect((await same('nms_tfjs', { boxes: stacked, scores: s }, { maxOutputSize: n, softNmsSigma: 0.5, iouThreshold: 1 })).length).toBe(1);
    const shifted = new Float32Array(4 * n).map((_, k) => [0, 0.25 * Math.floor(k / 4), 10, 10 + 0.25 * Math.floor(k / 4)][k % 4]);
    expect((await same('nms_tfjs', { boxes: shifted, scores: s }, { maxOutputSize: n, softNmsSigma: 0.5, iouThreshold: 1 })).length).toBe(n);
  });

  it('nms_onnx: limits 0, 1, past n and int64 max, empty batches and classes, centre boxes with negative sides', async () => {
    const b2 = { data: new Float32Array([...boxes, ...boxes.map((v) => v + 0.5)]), shape: [2, 5, 4] };
    const s2 = { data: new Float32Array([...scores, ...scores.map((v) => v / 2), ...scores.slice().reverse(), ...scores]), shape: [2, 2, 5] };
    for (const m of [0, 1, 3, 5, 100, 9223372036854775807n, -2n]) {
      await same('nms_onnx', { boxes: b2, scores: s2 }, { maxOutputBoxesPerClass: m, iouThreshold: 0.5 });
      await same('nms_onnx', { boxes: b2, scores: s2 }, { maxOutputBoxesPerClass: m, iouThreshold: 0.5, scoreThreshold: 0.25, centerPointBox: 1 });
    }
    expect(await same('nms_onnx', { boxes: { data: new Float32Array(0), shape: [0, 5, 4] }, scores: { data: new Float32Array(0), shape: [0, 2, 5] } }, { maxOutputBoxesPerClass: 5 })).toEqual([]);
    expect(await same('nms_onnx', { boxes: b2, scores: { data: new Float32Array(0), shape: [2, 0, 5] } }, { maxOutputBoxesPerClass: 5 })).toEqual([]);
    const negative = { data: new Float32Array([5, 5, -2, 4, 5, 5, 2, 4]), shape: [1, 2, 4] };
    expect(await same('nms_onnx', { boxes: negative, scores: { data: new Float32Array([0.9, 0.8]), shape: [1, 1, 2] } }, { maxOutputBoxesPerClass: 5, centerPointBox: 1 })).toEqual([0, 0, 0, 0, 0, 1]);
  });

  it('a resident call: the outputs at their capacity and the count in a buffer of its own', async () => {
    const r = await dl.runResident('nms' as never, { boxes, scores } as never, { iouThreshold: 0.5 } as never);
    expect(r.outputShapes!.keep).toEqual([5]);
    expect(r.outputBytes!.count).toBe(4);
    const staging = dl.device.createBuffer({ size: 4, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
    const enc = dl.device.createCommandEncoder();
    enc.copyBufferToBuffer(r.outputs!.count, 0, staging, 0, 4);
    dl.device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    expect(Array.from(new Int32Array(staging.getMappedRange()))).toEqual([4]);
    staging.unmap();
    staging.destroy();
    r.release();
  });
});

describe('NMS too large for the device', () => {
  it('a call whose scratch (the decision bits) passes one binding is refused before any work, naming the first input', async () => {
    const tight = await nodeContext({ limits: { maxStorageBufferBindingSize: 1 << 20 } });
    // One binding of 1 MiB: 100 boxes fit; 20,000 boxes' decision bits (20,000 x 625 words) do not,
    // nor do 8400 x 80 multi-label candidates' (max_nms 30,000).
    const boxes = new Float32Array(400).map((_, i) => (i % 4 < 2 ? i : i + 10));
    const scores = new Float32Array(100).map((_, i) => i / 100);
    const ok = await tight.nms(boxes, scores, { iouThreshold: 0.5 });
    expect(ok.outputs!.count[0]).toBeGreaterThan(0);
    const big = 20000;
    const err = await tight.nms(new Float32Array(4 * big), new Float32Array(big), { iouThreshold: 0.5 }).catch((e) => e);
    expect(err).toMatchObject({ code: 'too_large', argument: 'boxes' });
    expect(err.message).toMatch(/maxStorageBufferBindingSize/);
    const out = await tight.yoloNms({ data: new Float32Array(84 * 8400), shape: [1, 84, 8400] }, { multiLabel: true }).catch((e) => e);
    expect(out).toMatchObject({ code: 'too_large', argument: 'output' });
    expect(tight.stats().bytesInUse).toBe(0);
    tight.destroy();
  });
});

describe('score thresholds float32 cannot hold, and +Infinity under Soft-NMS', () => {
  it('a score equal to fround(threshold) passes `score > threshold` as in float64, on every NMS op and the YOLO post-process', async () => {
    const dl = await nodeContext();
    const t = 0.3; // fround(0.3) > 0.3
    const boxes = new Float32Array([0, 0, 1, 1, 10, 10, 11, 11, 20, 20, 21, 21]);
    const scores = new Float32Array([Math.fround(t), 0.29999998, 0.9]);
    for (const [op, inputs, options] of [
      ['nms', { boxes, scores }, { iouThreshold: 0.5, scoreThreshold: t }],
      ['nms_onnx', { boxes: { data: boxes, shape: [1, 3, 4] }, scores: { data: scores, shape: [1, 1, 3] } }, { maxOutputBoxesPerClass: 5, scoreThreshold: t }],
      ['nms_tfjs', { boxes, scores }, { maxOutputSize: 5, scoreThreshold: t }],
    ] as const) {
      const g = await dl.run(op as never, inputs as never, options as never);
      const c = cpu.run(op as never, inputs as never, options as never);
      const key = Object.keys(c.outputs!)[0];
      expect(Array.from(g.outputs![key]), op).toEqual(Array.from(c.outputs![key]));
      expect(c.outputShapes![key][0], op).toBe(2);
    }
    const out = new Float32Array([5, 50, 5, 50, 2, 2, 2, 2, Math.fround(t), 0.9]);
    const y = await dl.yoloNms({ data: out, shape: [1, 5, 2] }, { confThreshold: t });
    expect(Array.from(y.scores)).toEqual([Math.fround(0.9), Math.fround(t)]);
    expect(cpu.yoloNms({ data: out, shape: [1, 5, 2] }, { confThreshold: t }).count).toBe(2);
    dl.destroy();
  });

  it('+Infinity scores are never decayed, even where float64 exp underflows to 0 (sigma 1e-4)', async () => {
    const dl = await nodeContext();
    const inputs = { boxes: new Float32Array([0, 0, 10, 10, 0, 0, 10, 5]), scores: new Float32Array([Infinity, Infinity]) };
    const options = { maxOutputSize: 2, iouThreshold: 0.9, softNmsSigma: 1e-4 };
    const c = cpu.run('nms_tfjs', inputs, options);
    const g = await dl.run('nms_tfjs', inputs, options);
    expect(Array.from(c.outputs!.selectedIndices)).toEqual([0, 1]);
    expect(Array.from(c.outputs!.selectedScores)).toEqual([Infinity, Infinity]);
    expect(Array.from(g.outputs!.selectedIndices)).toEqual([0, 1]);
    expect(Array.from(g.outputs!.selectedScores)).toEqual([Infinity, Infinity]);
    dl.destroy();
  });
});
