import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import type { DetlossContext } from '../../../src/api';
import { countDevice, maxRelErr, rand, reset } from '../../helpers/counting';
import { nodeContext } from '../../helpers/node-gpu';

/** n random boxes in xyxy with positive sizes. */
function boxes(n: number, seed: number): Float32Array {
  const r = rand(n * 4, seed, 0, 1);
  const out = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) {
    const x = r[i * 4] * 200;
    const y = r[i * 4 + 1] * 200;
    out.set([x, y, x + 5 + r[i * 4 + 2] * 60, y + 5 + r[i * 4 + 3] * 60], i * 4);
  }
  return out;
}

let dl: DetlossContext;
beforeAll(async () => {
  dl = await nodeContext();
});
afterAll(() => dl?.destroy());

describe('pairwise_iou on the GPU', () => {
  it('n != m: entry (i, j) is a[i] against b[j]', async () => {
    const a = boxes(70, 1);
    const b = boxes(33, 2);
    for (const variant of ['iou', 'giou', 'diou', 'ciou'] as const) {
      const r = await dl.pairwiseIou(a, b, { variant });
      expect(r.shape).toEqual([70, 33]);
      const ref = cpu.run('pairwise_iou', { a, b }, { variant });
      expect(maxRelErr(r.values, ref.loss), variant).toBeLessThan(1e-5);
      // and the transpose problem gives the transposed matrix
      const t = await dl.pairwiseIou(b, a, { variant });
      expect(t.values[5 * 70 + 7]).toBeCloseTo(r.values[7 * 33 + 5], 5);
    }
  });
  it('an output larger than one binding is produced in row chunks', async () => {
    const small = await nodeContext({ limits: { maxStorageBufferBindingSize: 16384 } });
    const c = countDevice(small.device);
    const a = boxes(300, 3);
    const b = boxes(50, 4); // a row of the output is 200 bytes: 64 rows a chunk
    reset(c);
    const r = await small.pairwiseIou(a, b, { variant: 'ciou', format: 'xywh' });
    expect(c.dispatches).toBe(5);
    expect(c.submits).toBe(1);
    const ref = cpu.run('pairwise_iou', { a, b }, { variant: 'ciou', format: 'xywh' });
    expect(maxRelErr(r.values, ref.loss)).toBeLessThan(1e-5);
    small.destroy();
  });
  it('a result too large for the device is refused before any work, naming the limit', async () => {
    const tight = await nodeContext({ limits: { maxBufferSize: 1 << 20 } });
    const c = countDevice(tight.device);
    reset(c);
    const err = await tight.pairwiseIou(boxes(1000, 5), boxes(1000, 6)).catch((e) => e);
    expect(err).toMatchObject({ code: 'too_large' });
    expect(err.message).toMatch(/maxBufferSize \(1048576\)/);
    expect(c.submits).toBe(0);
    expect(tight.stats().bytesInUse).toBe(0);
    tight.destroy();
  });
  it('GPU-resident output stays on the device', async () => {
    const a = boxes(40, 7);
    const b = boxes(24, 8);
    const r = await dl.runResident('pairwise_iou', { a, b }, { variant: 'giou' });
    expect(r.shape).toEqual([40, 24]);
    expect(r.lossBytes).toBe(40 * 24 * 4);
    expect(Object.keys(r.grad)).toEqual([]);
    r.release();
  });
});

describe('iou_loss wrappers and options', () => {
  it('iouLoss equals cpu.run for each variant with weight and gradOutput', async () => {
    const target = boxes(129, 9);
    const pred = target.map((v, i) => v + (rand(1, i + 1, -6, 6)[0] as number));
    const weight = rand(129, 10, 0, 2);
    for (const variant of ['iou', 'giou', 'diou', 'ciou', 'eiou', 'siou'] as const) {
      const r = await dl.iouLoss(pred, target, { variant, reduction: 'sum', weight, gradOutput: Float32Array.of(0.5) });
      const ref = cpu.run('iou_loss', { pred, target, weight, gradOutput: Float32Array.of(0.5) }, { variant, reduction: 'sum' });
      expect(maxRelErr(r.loss, ref.loss), variant).toBeLessThan(1e-4);
      expect(maxRelErr(r.grad.pred, ref.grad.pred), variant).toBeLessThan(1e-4);
    }
  });
  it('check: true rejects a NaN coordinate naming the input; without it the GPU does not scan', async () => {
    const pred = boxes(4, 11);
    const target = boxes(4, 12);
    target[6] = NaN;
    await expect(dl.iouLoss(pred, target, { check: true })).rejects.toMatchObject({ code: 'invalid_value', argument: 'target' });
  });
  it('bad input: shape, variant, format, mode with a variant other than iou', async () => {
    const p = boxes(3, 13);
    await expect(dl.iouLoss(p.subarray(0, 7), p.subarray(0, 7))).rejects.toMatchObject({ code: 'shape_mismatch', argument: 'pred' });
    await expect(dl.iouLoss(p, p.subarray(0, 8))).rejects.toMatchObject({ code: 'shape_mismatch' });
    await expect(dl.iouLoss(p, p, { variant: 'yolo' as never })).rejects.toMatchObject({ code: 'invalid_param', argument: 'variant' });
    await expect(dl.iouLoss(p, p, { format: 'yxyx' as never })).rejects.toMatchObject({ code: 'invalid_param', argument: 'format' });
    await expect(dl.iouLoss(p, p, { variant: 'giou', mode: 'log' })).rejects.toMatchObject({ code: 'invalid_param', argument: 'mode' });
    await expect(dl.pairwiseIou(p, p, { variant: 'siou' as never })).rejects.toMatchObject({ code: 'invalid_param', argument: 'variant' });
    await expect(dl.run('pairwise_iou' as string, { a: p, b: p }, { reduction: 'mean' })).rejects.toMatchObject({ code: 'invalid_param', argument: 'reduction' });
  });
});
