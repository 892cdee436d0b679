import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import type { DetlossContext } from '../../../src/api';
import { rand } from '../../helpers/counting';
import { nodeContext } from '../../helpers/node-gpu';
import { EDGE_FORMATS, allPairs, boxIn, compare, rowScale, showBox, singlePairs } from '../../helpers/box-grid';
import { MORE_CONFIGS, moreName } from '../../helpers/box-more-configs';
import type { MoreParams } from '../../helpers/box-more';

// Issue 14: the kernel of ops.md's "More box losses" against the float64 reference on the box edge
// families (zero sizes of either sign, inverted, touching, nested, identical: the integer grid of
// issue 9), one pair per call and all pairs in one call, with the tolerances of iou-edges.test.ts;
// and on random boxes with weights, gradOutput and every reduction. Every value must be finite.

let dl: DetlossContext;
beforeAll(async () => {
  dl = await nodeContext();
});
afterAll(() => dl?.destroy());

const finite = (a: ArrayLike<number>) => Array.from(a).every(Number.isFinite);

type Params = MoreParams & { format: (typeof EDGE_FORMATS)[number]; reduction: 'none' };

/**
 * The row of the GPU against the reference: 'ok' or what differs. At a near tie of the IoU term and
 * a bound of Focaler's interval (float32 rounds eps away in `inter / (union + eps)`: 0.5 / 2.5 is
 * 0.2 there, just under it in float64), the gradient of either side holds: the reference with
 * the bound moved by 1e-6 either way gives it. The loss must match as it is.
 */
function rowMatches(gpuLoss: number, gpuGrad: ArrayLike<number>, refLoss: number, refGrad: ArrayLike<number>, pred: Float32Array, target: Float32Array, params: Params): string {
  const scale = rowScale(refLoss, refGrad);
  const fin = finite([gpuLoss, ...Array.from(gpuGrad), refLoss, ...Array.from(refGrad)]);
  const l = compare([gpuLoss], [refLoss], scale);
  const g = compare(gpuGrad, refGrad, scale);
  if (!fin || l !== 'ok') return `loss ${l}, grad ${g}${fin ? '' : ', not finite'}`;
  if (g === 'ok') return 'ok';
  if (!params.focaler) return `grad ${g}`;
  const [d, u] = params.focaler;
  for (const f of [[d - 1e-6, u], [d + 1e-6, u], [d, u - 1e-6], [d, u + 1e-6]] as [number, number][]) {
    if (f[0] < 0 || f[1] > 1) continue;
    const side = cpu.run('iou_loss', { pred, target }, { ...params, focaler: f });
    if (compare(gpuGrad, side.grad.pred, scale) === 'ok') return 'ok';
  }
  return `grad ${g}`;
}

describe('new variants and params on the integer grid equal the CPU reference', () => {
  for (const format of EDGE_FORMATS) {
    it(`${format}: every pair of the grid in one call`, async () => {
      const { p, t, n } = allPairs(format);
      const bad: string[] = [];
      for (const q of MORE_CONFIGS) {
        const params = { ...q, format, reduction: 'none' } as const;
        const gpu = await dl.run('iou_loss', { pred: p, target: t }, params);
        const ref = cpu.run('iou_loss', { pred: p, target: t }, params);
        for (let i = 0; i < n; i++) {
          const pred = p.subarray(4 * i, 4 * i + 4);
          const target = t.subarray(4 * i, 4 * i + 4);
          const row = (a: Float32Array | Float64Array) => a.subarray(4 * i, 4 * i + 4);
          const r = rowMatches(gpu.loss[i], row(gpu.grad.pred), ref.loss[i], row(ref.grad.pred), pred, target, params);
          if (r !== 'ok') bad.push(`${moreName(q)} ${showBox(pred)} ${showBox(target)}: ${r}`);
        }
      }
      expect(bad.slice(0, 10), `${bad.length} of ${n * MORE_CONFIGS.length} differ`).toEqual([]);
    });

    it(`${format}: one pair per call`, async () => {
      const pairs = singlePairs(format, 24, 5 + format.length);
      const bad: string[] = [];
      for (const q of MORE_CONFIGS) {
        const params = { ...q, format, reduction: 'none' } as const;
        for (const [pp, tt] of pairs) {
          const pred = Float32Array.from(pp);
          const target = Float32Array.from(tt);
          const gpu = await dl.run('iou_loss', { pred, target }, params);
          const ref = cpu.run('iou_loss', { pred, target }, params);
          const r = rowMatches(gpu.loss[0], gpu.grad.pred, ref.loss[0], ref.grad.pred, pred, target, params);
          if (r !== 'ok') bad.push(`${moreName(q)} ${showBox(pred)} ${showBox(target)}: ${r}`);
        }
      }
      expect(bad.slice(0, 10), `${bad.length} of ${pairs.length * MORE_CONFIGS.length} differ`).toEqual([]);
    });
  }
});

/** n random pairs in `format`: targets with centres in [0, 100], sides in [2, 40]; preds moved and resized around them. */
function randomPairs(n: number, seed: number, format: (typeof EDGE_FORMATS)[number]): { pred: Float32Array; target: Float32Array } {
  const r = rand(8 * n, seed, 0, 1);
  const pred = new Float32Array(4 * n);
  const target = new Float32Array(4 * n);
  const put = (out: Float32Array, i: number, cx: number, cy: number, w: number, h: number) => out.set(boxIn(format, cx, cy, w, h), 4 * i);
  for (let i = 0; i < n; i++) {
    const [a, b, c, d, e, f, g, h] = Array.from(r.subarray(8 * i, 8 * i + 8));
    const wg = 2 + 38 * c;
    const hg = 2 + 38 * d;
    put(target, i, 100 * a, 100 * b, wg, hg);
    put(pred, i, 100 * a + wg * (e - 0.5), 100 * b + hg * (f - 0.5), wg * (0.5 + g), hg * (0.5 + h));
  }
  return { pred, target };
}

describe('new variants and params on random boxes: weights, gradOutput, reductions', () => {
  for (const format of EDGE_FORMATS) {
    it(`${format}: 'none', 'mean' and 'sum', batched and one row`, async () => {
      const n = 97;
      const { pred, target } = randomPairs(n, 40 + format.length, format);
      const weight = rand(n, 3, 0, 2);
      const bad: string[] = [];
      for (const q of MORE_CONFIGS) {
        for (const reduction of ['none', 'mean', 'sum'] as const) {
          const gradOutput = reduction === 'none' ? rand(n, 4, -2, 2) : Float32Array.of(0.75);
          const params = { ...q, format, reduction } as const;
          const gpu = await dl.run('iou_loss', { pred, target, weight, gradOutput }, params);
          const ref = cpu.run('iou_loss', { pred, target, weight, gradOutput }, params);
          const l = compare(gpu.loss, ref.loss, 0, 1e-5, 1e-4);
          const g = compare(gpu.grad.pred, ref.grad.pred, 0, 1e-5, 1e-3);
          if (l !== 'ok' || g !== 'ok') bad.push(`${moreName(q)} ${reduction}: loss ${l}, grad ${g}`);
        }
        const one = { pred: pred.subarray(0, 4), target: target.subarray(0, 4) };
        const params = { ...q, format, reduction: 'mean' } as const;
        const gpu = await dl.run('iou_loss', one, params);
        const ref = cpu.run('iou_loss', one, params);
        const l = compare(gpu.loss, ref.loss, 0, 1e-5, 1e-4);
        const g = compare(gpu.grad.pred, ref.grad.pred, 0, 1e-5, 1e-3);
        if (l !== 'ok' || g !== 'ok') bad.push(`${moreName(q)} one row: loss ${l}, grad ${g}`);
      }
      expect(bad).toEqual([]);
    });
  }
});

describe('found by the fuzzer and the grid (issue 14), one pair per call', () => {
  const one = async (p: number[], t: number[], options: Record<string, unknown>, weight?: number) => {
    const inputs = { pred: Float32Array.from(p), target: Float32Array.from(t), ...(weight === undefined ? {} : { weight: Float32Array.of(weight) }) };
    const params = { ...options, reduction: 'none' } as const;
    return { gpu: await dl.run('iou_loss', inputs, params), ref: cpu.run('iou_loss', inputs, params) };
  };
  const near = (got: ArrayLike<number>, want: ArrayLike<number>, rtol: number, atol = 1e-6) => {
    for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i]), `[${i}] ${got[i]} vs ${want[i]}`).toBeLessThanOrEqual(atol + rtol * Math.abs(want[i]));
  };

  it("wiou: an inverted target with the centres apart and c2 = eps (exp(rho2/c2) was Infinity, its gradient NaN)", async () => {
    // pred the point (0, 0), target [0, 1, 0, 0] (height -1): cw = ch = 0, rho2 = 1/4. The exponent
    // is capped at 2; iou = 0, so beta = 1 and v3's factor is 1.9^2 / 3. No gradient reaches the boxes.
    const { gpu, ref } = await one([0, 0, 0, 0], [0, 1, 0, 0], { variant: 'wiou' });
    expect(ref.loss[0]).toBeCloseTo((Math.exp(2) * 1.9 ** 2) / 3, 12);
    near(gpu.loss, ref.loss, 1e-6);
    expect(Array.from(gpu.grad.pred, (g) => g + 0)).toEqual([0, 0, 0, 0]);
  });

  it('innerRatio: a box 0.005 wide at x = 1e4 (the inner corners were formed at the coordinates and lost the width)', async () => {
    const b = [9999.66015625, 10000.908203125, 9999.6650390625, 10002.5078125];
    const { gpu, ref } = await one(b, b, { variant: 'mpdiou', eps: 0.001, innerRatio: 0.9, imageSize: [0.001, 0.001] });
    near(gpu.loss, ref.loss, 1e-4);
    const moved = [99999.65625, 100000.9609375, 99999.8046875, 100002.1953125];
    const target = [100000.2890625, 100000.2421875, 100002.0859375, 100001.6328125];
    const r = await one(moved, target, { variant: 'mpdiou', innerRatio: 1.5, imageSize: [640, 640] });
    near(r.gpu.loss, r.ref.loss, 1e-4);
    near(r.gpu.grad.pred, r.ref.grad.pred, 1e-3, 1e-4);
  });

  it('shape: a target side < 0 weighs 0 at scale 2 too (pow0 squared it)', async () => {
    const { gpu, ref } = await one([2, -1, -1, -1], [0, 0, -1, -2], { variant: 'shape', format: 'xywh', scale: 2 });
    near(gpu.loss, ref.loss, 1e-5);
    near(gpu.grad.pred, ref.grad.pred, 1e-5);
  });

  it('power: an inverted box makes GIoU/DIoU penalties near 1/eps; their power stays finite (it was NaN)', async () => {
    for (const [p, t, options] of [
      [[4, 2, 4, 0], [2, 2, 3, -1], { variant: 'giou', format: 'cxcywh', power: 5 }],
      [[1, 4, -2, -1], [2, 3, 0, -1], { variant: 'diou', format: 'cxcywh', power: 5 }],
      [[1, 1, 1, -1], [3, 0, -2, 0], { variant: 'ciou', power: 5, innerRatio: 1.25 }],
    ] as const) {
      for (const weight of [1, 0]) {
        const { gpu, ref } = await one([...p], [...t], options, weight);
        expect(finite(gpu.loss) && finite(gpu.grad.pred), JSON.stringify({ p, t, options, weight })).toBe(true);
        near(gpu.loss, ref.loss, 1e-5);
        near(gpu.grad.pred, ref.grad.pred, 1e-5);
      }
    }
  });
});
