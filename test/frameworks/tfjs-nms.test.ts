// detloss/tfjs's drop-ins for tf.image's NMS, held against tf.image itself on the same tensors:
// nonMaxSuppression against tf.image.nonMaxSuppressionAsync, nonMaxSuppressionWithScore against
// tf.image.nonMaxSuppressionWithScoreAsync, on TF.js's WebGPU backend over Node's Dawn (the GPU
// kernel) and on its CPU backend (the float64 reference). Indices must be equal; scores bit for bit
// for hard NMS (and on the CPU backend for Soft-NMS too), within the fixtures' tolerance for
// Soft-NMS on the GPU (f32 against TF.js's float64).
import '../../bench/node-globals';
import '@tensorflow/tfjs-backend-webgpu';
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import '../helpers/tfjs-quiet';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DetlossError } from '../../src/errors';
import { parseFixtures } from '../../src/fixtures';
import * as dt from '../../src/frameworks/tfjs';

const BACKENDS = ['webgpu', 'cpu'] as const;
type Args = [maxOutputSize: number, iouThreshold?: number | null, scoreThreshold?: number | null, softNmsSigma?: number | null];
type Input = tf.Tensor | tf.TensorLike;

/** Boxes on an integer grid (exact overlaps, far from any threshold but equal ones), some with their corners swapped. */
function gridBoxes(n: number, seed: number): number[][] {
  let s = seed >>> 0;
  const next = (k: number) => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % k);
  return Array.from({ length: n }, (_, i) => {
    const [y, x, h, w] = [next(16), next(16), 1 + next(6), 1 + next(6)];
    return i % 5 === 3 ? [y + h, x + w, y, x] : [y, x, y + h, x + w];
  });
}
/** Distinct scores in (0, 1), exact in float32, in a shuffled order. */
const gridScores = (n: number) => Array.from({ length: n }, (_, i) => ((i * 37) % n + 1) / (n + 1) - (((i * 37) % n) % 2) / 1024);

const bits = (a: ArrayLike<number>) => Array.from(new Uint32Array(Float32Array.from(a).buffer));

/** The fixtures' tolerance for Soft-NMS scores (test/fixtures/nms.json). */
const softClose = (got: ArrayLike<number>, want: ArrayLike<number>, what: string) => {
  expect(got.length, what).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i]), `${what}[${i}]: ${got[i]} vs ${want[i]}`).toBeLessThanOrEqual(1e-6 + 1e-4 * Math.abs(want[i]));
};

/**
 * Both drop-ins and tf.image's two async functions on the same inputs, on the current backend:
 * the same indices, dtypes and shapes, the scores as the header says; nothing left behind.
 */
async function same(boxes: Input, scores: Input, args: Args, what: string): Promise<number[]> {
  const backend = tf.getBackend();
  const before = tf.memory().numTensors;
  const [max, iou, score, sigma] = args;
  const want = await tf.image.nonMaxSuppressionWithScoreAsync(boxes as tf.Tensor2D, scores as tf.Tensor1D, max, iou as number, score as number, sigma as number);
  const got = await dt.nonMaxSuppressionWithScore(boxes as tf.Tensor2D, scores as tf.Tensor1D, max, iou as number, score as number, sigma as number);
  const at = `${what} on ${backend}`;
  for (const k of ['selectedIndices', 'selectedScores'] as const) {
    expect([got[k].dtype, got[k].rank, got[k].shape], `${at}: ${k}`).toEqual([want[k].dtype, 1, want[k].shape]);
  }
  const indices = Array.from(await want.selectedIndices.data());
  expect(Array.from(await got.selectedIndices.data()), `${at}: selectedIndices`).toEqual(indices);
  const [gs, ws] = [await got.selectedScores.data(), await want.selectedScores.data()];
  if ((sigma ?? 0) > 0 && backend === 'webgpu') softClose(gs, ws, `${at}: selectedScores`);
  else expect(bits(gs), `${at}: selectedScores, bit for bit`).toEqual(bits(ws));
  [...Object.values(got), ...Object.values(want)].forEach((t) => t.dispose());

  if ((sigma ?? 0) === 0 && sigma !== null) {
    const wantHard = await tf.image.nonMaxSuppressionAsync(boxes as tf.Tensor2D, scores as tf.Tensor1D, max, iou as number, score as number);
    const gotHard = await dt.nonMaxSuppression(boxes as tf.Tensor2D, scores as tf.Tensor1D, max, iou as number, score as number);
    expect([gotHard.dtype, gotHard.rank, gotHard.shape], `${at}: nonMaxSuppression`).toEqual([wantHard.dtype, 1, wantHard.shape]);
    expect(Array.from(await gotHard.data()), `${at}: nonMaxSuppression`).toEqual(Array.from(await wantHard.data()));
    gotHard.dispose();
    wantHard.dispose();
  }
  expect(tf.memory().numTensors, `${at}: tensors left behind`).toBe(before);
  return indices;
}

const fixtures = parseFixtures(readFileSync(new URL('../fixtures/nms.json', import.meta.url), 'utf8'), 'nms.json').filter((c) => c.op === 'nms_tfjs');

describe.each(BACKENDS)('on the %s backend', (backend) => {
  it('every nms_tfjs fixture case equals tf.image', async () => {
    expect(await tf.setBackend(backend)).toBe(true);
    expect(fixtures.length).toBeGreaterThan(10);
    for (const c of fixtures) {
      const p = c.params as { maxOutputSize: number; iouThreshold?: number; scoreThreshold?: number; softNmsSigma?: number };
      const boxes = tf.tensor(c.inputs.boxes.data, c.inputs.boxes.shape, 'float32');
      const scores = tf.tensor(c.inputs.scores.data, c.inputs.scores.shape, 'float32');
      await same(boxes, scores, [p.maxOutputSize, p.iouThreshold, p.scoreThreshold, p.softNmsSigma], c.name);
      boxes.dispose();
      scores.dispose();
    }
  });

  it('thresholds 0 and 1, limits 0, 1, past n, ±Infinity and negative, the defaults and null for them', async () => {
    await tf.setBackend(backend);
    const n = 40;
    const boxes = tf.tensor2d(gridBoxes(n, 3));
    const scores = tf.tensor1d(gridScores(n));
    const lengths = new Set<number>();
    for (const iou of [0, 0.5, 1, undefined, null]) {
      for (const score of [undefined, null, -Infinity, 0.25, 0.75, Infinity]) {
        for (const max of [0, 1, 10, n, 1000, Infinity, -Infinity, -3]) {
          lengths.add((await same(boxes, scores, [max, iou, score], `max ${max}, iou ${iou}, score ${score}`)).length);
        }
      }
    }
    // The cases reach every kind of result: nothing, one box, and more.
    expect(Math.min(...lengths)).toBe(0);
    expect(lengths.has(1)).toBe(true);
    expect(Math.max(...lengths)).toBeGreaterThan(10);
    tf.dispose([boxes, scores]);
  });

  it('Soft-NMS: sigma 0.5 and 1 at thresholds 0.5 and 1, with score thresholds', async () => {
    await tf.setBackend(backend);
    const n = 24;
    const boxes = tf.tensor2d(gridBoxes(n, 11));
    const scores = tf.tensor1d(gridScores(n));
    for (const sigma of [0.5, 1]) {
      for (const [iou, score] of [[1, 0], [0.5, 0.25], [1, -Infinity]] as const) {
        const kept = await same(boxes, scores, [n, iou, score, sigma], `sigma ${sigma}, iou ${iou}, score ${score}`);
        expect(kept.length).toBeGreaterThan(0);
      }
    }
    tf.dispose([boxes, scores]);
  });

  it('n = 0 and n = 1', async () => {
    await tf.setBackend(backend);
    const none = [tf.zeros([0, 4]), tf.zeros([0])];
    for (const args of [[5], [0], [5, 0.5, 0, 0.5]] as Args[]) expect(await same(none[0], none[1], args, `n = 0, ${args}`)).toEqual([]);
    const one = [tf.tensor2d([[0, 0, 2, 2]]), tf.tensor1d([0.5])];
    for (const args of [[1], [5, 0], [5, 1, 0.5], [5, 0.5, 0.25, 0.5], [0]] as Args[]) await same(one[0], one[1], args, `n = 1, ${args}`);
    tf.dispose([...none, ...one]);
  });

  it('what else tf.image takes: TensorLikes, int32 and bool tensors, [x1, y1, x2, y2] boxes', async () => {
    await tf.setBackend(backend);
    const grid = gridBoxes(12, 5);
    const s = gridScores(12);
    expect((await same(grid, s, [12, 0.3], 'nested arrays')).length).toBeGreaterThan(1);
    await same(grid, Float32Array.from(s), [12, 0.3], 'a Float32Array of scores');
    const ints = tf.tensor2d(grid, undefined, 'int32');
    await same(ints, s, [12, 0.3], 'int32 boxes');
    const flags = tf.tensor1d(s.map((v) => v > 0.5), 'bool');
    await same(grid, flags, [12, 0.5], 'bool scores');
    const xy = tf.tensor2d(grid.map(([y1, x1, y2, x2]) => [x1, y1, x2, y2]));
    await same(xy, s, [12, 0.5], 'boxes as [x1, y1, x2, y2]');
    tf.dispose([ints, flags, xy]);
  });

  it('bad arguments tf.image refuses are refused by name, as DetlossErrors', async () => {
    await tf.setBackend(backend);
    const boxes = tf.tensor2d(gridBoxes(6, 1));
    const scores = tf.tensor1d(gridScores(6));
    const refusals: [string, Input | undefined, Input | undefined, Args, string, string][] = [
      ['boxes of rank 1', tf.tensor1d([0, 0, 1, 1]), tf.tensor1d([0.5]), [5], 'shape_mismatch', 'boxes'],
      ['boxes of rank 3', tf.zeros([1, 6, 4]), scores, [5], 'shape_mismatch', 'boxes'],
      ['boxes [n, 3]', tf.zeros([6, 3]), scores, [5], 'shape_mismatch', 'boxes'],
      ['scores [n, 1]', boxes, tf.zeros([6, 1]), [5], 'shape_mismatch', 'scores'],
      // n is the scores' length (as on the core): the boxes disagree with it.
      ['scores of another length', boxes, tf.zeros([5]), [5], 'shape_mismatch', 'boxes'],
      ['string boxes', tf.tensor([['a', 'b', 'c', 'd']]), scores, [5], 'wrong_dtype', 'boxes'],
      ['boxes an object', { not: 'a tensor' } as unknown as Input, scores, [5], 'invalid_value', 'boxes'],
      ['scores missing', boxes, undefined, [5], 'missing_input', 'scores'],
      ['iouThreshold -0.1', boxes, scores, [5, -0.1], 'invalid_param', 'iouThreshold'],
      ['iouThreshold 1.5', boxes, scores, [5, 1.5], 'invalid_param', 'iouThreshold'],
      ['iouThreshold NaN', boxes, scores, [5, NaN], 'invalid_param', 'iouThreshold'],
      ['softNmsSigma -0.1', boxes, scores, [5, 0.5, 0, -0.1], 'invalid_param', 'softNmsSigma'],
      ['softNmsSigma 1.5', boxes, scores, [5, 0.5, 0, 1.5], 'invalid_param', 'softNmsSigma'],
      ['softNmsSigma NaN', boxes, scores, [5, 0.5, 0, NaN], 'invalid_param', 'softNmsSigma'],
    ];
    for (const [what, b, s, [max, iou, score, sigma], code, argument] of refusals) {
      const theirs = await tf.image.nonMaxSuppressionWithScoreAsync(b as tf.Tensor2D, s as tf.Tensor1D, max, iou as number, score as number, sigma as number).then(
        (r) => (tf.dispose(Object.values(r)), 'accepted'),
        () => 'refused',
      );
      expect(theirs, `tf.image: ${what}`).toBe('refused');
      for (const call of [
        () => dt.nonMaxSuppressionWithScore(b as tf.Tensor2D, s as tf.Tensor1D, max, iou as number, score as number, sigma as number),
        ...(sigma === undefined ? [() => dt.nonMaxSuppression(b as tf.Tensor2D, s as tf.Tensor1D, max, iou as number, score as number)] : []),
      ]) {
        const before = tf.memory().numTensors;
        const e = await call().then(() => undefined, (x: unknown) => x);
        expect(e instanceof DetlossError, `${what}: ${String(e)}`).toBe(true);
        expect({ code: (e as DetlossError).code, argument: (e as DetlossError).argument }, what).toEqual({ code, argument });
        expect(tf.memory().numTensors, `${what}: tensors left behind`).toBe(before);
      }
    }
    // Where detloss is stricter than tf.image (which reads these as no output, or as a limit of
    // 3): a limit that is not an integer or missing, and a NaN score threshold.
    for (const [what, max, score, argument] of [
      ['maxOutputSize 2.5', 2.5, undefined, 'maxOutputSize'],
      ['maxOutputSize NaN', NaN, undefined, 'maxOutputSize'],
      ['maxOutputSize missing', undefined, undefined, 'maxOutputSize'],
      ['maxOutputSize a bigint', 5n, undefined, 'maxOutputSize'],
      ['scoreThreshold NaN', 5, NaN, 'scoreThreshold'],
    ] as const) {
      const e = await dt.nonMaxSuppression(boxes, scores, max as number, 0.5, score).then(() => undefined, (x: unknown) => x);
      expect({ code: (e as DetlossError).code, argument: (e as DetlossError).argument }, what).toEqual({ code: 'invalid_param', argument });
    }
    tf.dispose([boxes, scores]);
  });

  it('takes its inputs when called: a tensor disposed, or an array refilled, right after the call', async () => {
    await tf.setBackend(backend);
    const grid = gridBoxes(16, 9);
    const s = Float32Array.from(gridScores(16));
    const keep = tf.tensor2d(grid);
    const want = await tf.image.nonMaxSuppressionAsync(keep, s, 16, 0.4);
    const boxes = tf.tensor2d(grid);
    const call = dt.nonMaxSuppression(boxes, s, 16, 0.4);
    boxes.dispose();
    s.reverse();
    const got = await call;
    expect(Array.from(await got.data())).toEqual(Array.from(await want.data()));
    tf.dispose([keep, want, got]);
  });
});

describe('on the webgpu backend, the boxes and scores stay on the GPU', () => {
  it('no input is read back: only the 4-byte count is', async () => {
    await tf.setBackend('webgpu');
    const backend = tf.backend() as unknown as { read(id: object): Promise<unknown>; readSync(id: object): unknown };
    const boxes = tf.tensor2d(gridBoxes(30, 2));
    const scores = tf.tensor1d(gridScores(30));
    // Uploaded first, as they would be as the output of a model.
    tf.dispose([tf.add(boxes, 0), tf.add(scores, 0)]);
    const read: object[] = [];
    const [r, rs] = [backend.read, backend.readSync];
    backend.read = function (id) {
      read.push(id);
      return r.call(this, id);
    };
    backend.readSync = function (id) {
      read.push(id);
      return rs.call(this, id);
    };
    try {
      const out = await dt.nonMaxSuppressionWithScore(boxes, scores, 30, 0.5, 0, 0.5);
      expect(out.selectedIndices.shape[0]).toBeGreaterThan(0);
      expect(read).not.toContain(boxes.dataId);
      expect(read).not.toContain(scores.dataId);
      expect(read.length).toBe(1);
      tf.dispose(Object.values(out));
      // The check above would see tf.image's reads.
      read.length = 0;
      tf.dispose(await tf.image.nonMaxSuppressionAsync(boxes, scores, 30));
      expect(read).toContain(boxes.dataId);
    } finally {
      backend.read = r;
      backend.readSync = rs;
      tf.dispose([boxes, scores]);
    }
  });
});
