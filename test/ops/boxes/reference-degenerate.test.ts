import { describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { pairwiseValue } from '../../../src/cpu/iou';
import { rand } from '../../helpers/counting';
import { LOSS_VARIANTS } from '../../helpers/box-grid';

/** Degenerate pred/target pairs, xyxy. */
const PAIRS: Record<string, [number[], number[]]> = {
  identical: [[1, 2, 4, 6], [1, 2, 4, 6]],
  'disjoint, far apart': [[0, 0, 1, 1], [9000, -9000, 9001, -8999]],
  'nested, sharing two edges': [[0, 0, 2, 2], [0, 0, 4, 4]],
  'nested strictly': [[1, 1, 2, 2], [0, 0, 4, 4]],
  'touching on an edge': [[0, 0, 1, 1], [1, 0, 2, 1]],
  'touching at a corner': [[0, 0, 1, 1], [1, 1, 2, 2]],
  'zero width pred': [[1, 1, 1, 3], [0, 0, 2, 2]],
  'zero height pred': [[0, 1, 3, 1], [0, 0, 2, 2]],
  'zero width and height, both': [[1, 1, 1, 1], [1, 1, 1, 1]],
  'zero-area target': [[0, 0, 2, 2], [1, 1, 1, 1]],
  'points apart': [[0, 0, 0, 0], [3, 4, 3, 4]],
  tiny: [[1e-4, 1e-4, 3e-4, 2e-4], [1.5e-4, 1e-4, 3.5e-4, 2.5e-4]],
  'tiny and identical': [[0, 0, 1e-6, 1e-6], [0, 0, 1e-6, 1e-6]],
  'coordinates ~1e4': [[10000, 12000, 10050, 12080], [10010, 12005, 10070, 12090]],
  'coordinates ~1e4, identical': [[10000, 12000, 10050, 12080], [10000, 12000, 10050, 12080]],
  'centres aligned vertically (SIoU: sin_beta = 0)': [[0, 0, 2, 2], [0, 5, 2, 7]],
  'centres aligned horizontally (SIoU: sin_alpha = 0)': [[0, 0, 2, 2], [5, 0, 7, 2]],
  'centres on the diagonal (SIoU: 45 degrees)': [[0, 0, 2, 2], [1, 1, 3, 3]],
  'same centre, different shape': [[0, 0, 4, 2], [1, -1, 3, 3]],
  'x2 < x1 pred': [[3, 0, 1, 2], [0, 0, 2, 2]],
  'x2 < x1 and y2 < y1 pred': [[3, 3, 1, 1], [0, 0, 2, 2]],
  'both inverted': [[3, 3, 1, 1], [2, 2, 0, 0]],
  'inverted, same corners': [[2, 2, 0, 0], [0, 0, 2, 2]],
  'negative height target': [[0, 0, 2, 2], [0, 2, 2, 0]],
};

const VARIANTS: Record<string, unknown>[] = [...LOSS_VARIANTS];

const name = (p: Record<string, unknown>) => `${p.variant}${p.mode ? `-${p.mode}` : ''}`;
const allFinite = (a: ArrayLike<number>) => Array.from(a).every(Number.isFinite);

describe('iou_loss: degenerate boxes give finite losses and gradients', () => {
  const pred = Float32Array.from(Object.values(PAIRS).flatMap(([p]) => p));
  const target = Float32Array.from(Object.values(PAIRS).flatMap(([, t]) => t));
  const labels = Object.keys(PAIRS);

  it.each(VARIANTS.map((v) => [name(v), v] as const))('%s', (_n, v) => {
    for (const format of ['xyxy', 'cxcywh', 'xywh'] as const) {
      // The same numbers read in another format are other degenerate boxes (zero or negative sides).
      const r = cpu.run('iou_loss', { pred, target }, { ...v, format, reduction: 'none' });
      labels.forEach((label, i) => {
        expect(Number.isFinite(r.loss[i]), `${format} ${label}: loss ${r.loss[i]}`).toBe(true);
        expect(allFinite(r.grad.pred.subarray(4 * i, 4 * i + 4)), `${format} ${label}: grad ${r.grad.pred.subarray(4 * i, 4 * i + 4)}`).toBe(true);
      });
    }
  });

  it('identical boxes have loss 0 (within eps) for every variant', () => {
    const p = Float32Array.of(1, 2, 4, 6, 10000, 12000, 10050, 12080);
    for (const v of VARIANTS) {
      const r = cpu.run('iou_loss', { pred: p, target: p }, { ...v, reduction: 'none' });
      for (const l of r.loss) expect(Math.abs(l), name(v)).toBeLessThan(1e-6);
    }
  });

  it('touching boxes: the intersection contributes no gradient', () => {
    const pred = Float32Array.of(0, 0, 1, 1, 0, 0, 1, 1);
    const target = Float32Array.of(1, 0, 2, 1, 1, 1, 2, 2);
    const r = cpu.run('iou_loss', { pred, target }, { variant: 'iou', reduction: 'none' });
    expect(Array.from(r.loss)).toEqual([1, 1]);
    expect(Array.from(r.grad.pred)).toEqual(new Array(8).fill(0));
  });

  it('identical boxes split the min/max gradient evenly', () => {
    // d(1 - iou)/dx2 at identical boxes: inter and union both move, each through a tie.
    // iw = min(x2, X2) - max(x1, X1): pred gets half; union = w*h + wg*hg - inter: full w.
    // With w = h = 2: d inter/dx2 = 0.5*2 = 1, d union/dx2 = 2 - 1 = 1, so d iou/dx2 = (1 - 1)/4 = 0.
    const b = Float32Array.of(0, 0, 2, 2);
    const g = cpu.run('iou_loss', { pred: b, target: b }, { variant: 'iou', reduction: 'sum', eps: 1e-30 }).grad.pred;
    for (const x of g) expect(Math.abs(x)).toBeLessThan(1e-12);
    // GIoU adds (C - union)/C with C = cw*ch: cw's max/min split too, so still 0 at identity.
    const gg = cpu.run('iou_loss', { pred: b, target: b }, { variant: 'giou', reduction: 'sum', eps: 1e-30 }).grad.pred;
    for (const x of gg) expect(Math.abs(x)).toBeLessThan(1e-12);
  });

  it('CIoU with a zero-height pred uses atan2: finite, and the side h > 0 gradient', () => {
    // Above the target, so the intersection is empty at both heights.
    const pred = Float32Array.of(0, 5, 3, 5);
    const target = Float32Array.of(0, 0, 2, 2);
    const r = cpu.run('iou_loss', { pred, target }, { variant: 'ciou', reduction: 'sum' });
    expect(Number.isFinite(r.loss[0])).toBe(true);
    // Compare with a pred of tiny positive height: the gradient is continuous from that side.
    const near = cpu.run('iou_loss', { pred: Float64Array.of(0, 5 - 1e-9, 3, 5), target }, { variant: 'ciou', reduction: 'sum' });
    for (let k = 0; k < 4; k++) expect(r.grad.pred[k]).toBeCloseTo(near.grad.pred[k], 5);
  });

  it('random garbage (any signs, any order) stays finite', () => {
    const n = 500;
    const pred = rand(4 * n, 21, -50, 50);
    const target = rand(4 * n, 22, -50, 50);
    for (const v of VARIANTS) {
      for (const format of ['xyxy', 'cxcywh', 'xywh'] as const) {
        const r = cpu.run('iou_loss', { pred, target }, { ...v, format, reduction: 'none' });
        expect(allFinite(r.loss), `${name(v)} ${format}`).toBe(true);
        expect(allFinite(r.grad.pred), `${name(v)} ${format}`).toBe(true);
      }
    }
  });

  it("'mean' of no boxes is 0 with an empty gradient", () => {
    const r = cpu.run('iou_loss', { pred: new Float32Array(0), target: new Float32Array(0) }, { variant: 'siou' });
    expect(r.loss[0]).toBe(0);
    expect(r.grad.pred.length).toBe(0);
  });
});

describe('pairwise_iou: degenerate boxes and orientation', () => {
  const a = Float32Array.from(Object.values(PAIRS).flatMap(([p]) => p));
  const b = Float32Array.from(Object.values(PAIRS).flatMap(([, t]) => t));

  it.each(['iou', 'giou', 'diou', 'ciou'] as const)('%s is finite for every degenerate pair', (variant) => {
    for (const format of ['xyxy', 'cxcywh', 'xywh'] as const) {
      const r = cpu.run('pairwise_iou', { a, b }, { variant, format, reduction: 'none' });
      expect(r.shape).toEqual([a.length / 4, b.length / 4]);
      expect(allFinite(r.loss), `${variant} ${format}`).toBe(true);
      expect(r.grad).toEqual({});
    }
  });

  it('entry (i, j) is a[i] against b[j] when n != m', () => {
    const n = 7;
    const m = 3;
    const A = rand(4 * n, 31, 0, 10).map((x, k) => (k % 4 >= 2 ? x + 1 : x));
    const B = rand(4 * m, 32, 0, 10).map((x, k) => (k % 4 >= 2 ? x + 1 : x));
    // In cxcywh every box is valid: the last two numbers are sizes.
    const r = cpu.run('pairwise_iou', { a: A, b: B }, { variant: 'iou', format: 'cxcywh', reduction: 'none' });
    expect(r.shape).toEqual([n, m]);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < m; j++) {
        // 1 - iou_loss(linear) with eps ~0 is the IoU of the same pair.
        const l = cpu.run(
          'iou_loss',
          { pred: A.subarray(4 * i, 4 * i + 4), target: B.subarray(4 * j, 4 * j + 4) },
          { variant: 'iou', format: 'cxcywh', eps: 2 ** -126, reduction: 'sum', grad: false }, // the smallest eps iou_loss takes
        ).loss[0];
        expect(r.loss[i * m + j]).toBeCloseTo(1 - l, 12);
      }
    }
  });

  it('known values: IoU 1/7, GIoU 1/7 - 2/9 for [0,0,2,2] and [1,1,3,3]', () => {
    expect(pairwiseValue([0, 0, 2, 2], [1, 1, 3, 3], 'iou')).toBeCloseTo(1 / 7, 14);
    expect(pairwiseValue([0, 0, 2, 2], [1, 1, 3, 3], 'giou')).toBeCloseTo(1 / 7 - 2 / 9, 14);
    // DIoU: centres (1,1) and (2,2), rho2 = 2, c2 = 18 + 1e-7; CIoU: same aspect, v = 0.
    expect(pairwiseValue([0, 0, 2, 2], [1, 1, 3, 3], 'diou')).toBeCloseTo(1 / 7 - 2 / (18 + 1e-7), 14);
    expect(pairwiseValue([0, 0, 2, 2], [1, 1, 3, 3], 'ciou')).toBeCloseTo(1 / 7 - 2 / (18 + 1e-7), 14);
  });

  it('zero-area pairs give 0 rather than NaN', () => {
    expect(pairwiseValue([1, 1, 1, 1], [1, 1, 1, 1], 'iou')).toBe(0);
    expect(pairwiseValue([1, 1, 1, 1], [1, 1, 1, 1], 'giou')).toBe(0);
    expect(Number.isFinite(pairwiseValue([1, 1, 1, 1], [2, 2, 2, 2], 'ciou'))).toBe(true);
  });
});
