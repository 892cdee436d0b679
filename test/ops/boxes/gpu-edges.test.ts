import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import type { DetlossContext } from '../../../src/api';
import { nodeContext } from '../../helpers/node-gpu';
import {
  EDGE_FORMATS,
  LOSS_VARIANTS,
  PAIR_VARIANTS,
  REPORTED,
  allPairs,
  compare,
  flipZeros,
  gridBoxes,
  showBox,
  rowScale,
  singlePairs,
} from '../../helpers/box-grid';

// Issue 9, defect 1: zero widths and heights and zeros of either sign in the box kernels. Some
// faults show only when a launch holds one pair, so every case runs one pair per call as well as
// batched.

let dl: DetlossContext;
beforeAll(async () => {
  dl = await nodeContext();
});
afterAll(() => dl?.destroy());

const lossName = (v: { variant: string; mode?: string }) => `${v.variant}${'mode' in v ? `/${v.mode}` : ''}`;

describe('the reported pairs, one per call', () => {
  it.each(REPORTED.map((r) => [r.what, r] as const))('%s', async (_what, r) => {
    const p = Float32Array.from(r.p);
    const t = Float32Array.from(r.t);
    if (r.op === 'iou_loss') {
      const params = { variant: 'ciou', format: r.format, reduction: 'none' } as const;
      const gpu = await dl.run('iou_loss', { pred: p, target: t }, params);
      const ref = cpu.run('iou_loss', { pred: p, target: t }, params);
      const scale = rowScale(ref.loss[0], ref.grad.pred);
      expect(compare(gpu.loss, ref.loss, scale)).toBe('ok');
      expect(compare(gpu.grad.pred, ref.grad.pred, scale)).toBe('ok');
    } else {
      const gpu = await dl.run('pairwise_iou', { a: p, b: t }, { variant: 'ciou', format: r.format });
      const ref = cpu.run('pairwise_iou', { a: p, b: t }, { variant: 'ciou', format: r.format });
      expect(compare(gpu.loss, ref.loss)).toBe('ok');
    }
  });

  it('match ops.md worked by hand', async () => {
    // pred [0,0,0,1] and target [0,1,0,0] (xyxy): no intersection and a zero union, so iou = 0;
    // equal centres, so rho2 = 0; A(0, 1) = A(0, -1) = 0, so v = 0. Loss 1, and every term's
    // gradient is 0 (no overlap, iou = 0, rho2 = 0, alpha = 0).
    const one = await dl.run('iou_loss', { pred: Float32Array.of(0, 0, 0, 1), target: Float32Array.of(0, 1, 0, 0) }, { variant: 'ciou', reduction: 'none' });
    expect(Array.from(one.loss)).toEqual([1]);
    expect(Array.from(one.grad.pred, (g) => g + 0)).toEqual([0, 0, 0, 0]);
    // The same boxes as xywh, the target's width -0: identical boxes of zero width, loss 1.
    const same = await dl.run('iou_loss', { pred: Float32Array.of(0, 0, 0, 1), target: Float32Array.of(0, 0, -0, 1) }, { variant: 'ciou', format: 'xywh', reduction: 'none' });
    expect(Array.from(same.loss)).toEqual([1]);
    // pairwise CIoU of a [0,1,0,0] and b [0,0,0,1]: iou 0, rho2 0, v 0, so 0.
    const pw = await dl.run('pairwise_iou', { a: Float32Array.of(0, 1, 0, 0), b: Float32Array.of(0, 0, 0, 1) }, { variant: 'ciou' });
    expect(pw.loss[0]).toBeCloseTo(0, 6);
    // pred [0,0,2,0] against [0,1,0,0]: A(2, 0) = pi/2 and A(0, -1) = 0, so v = 4/pi^2 (pi/2)^2 = 1
    // and alpha = 1/2; no union, so iou = 0; centre offsets (2, -1)/2 and enclosing box 2 x 0, so
    // rho2/c2 = 1.25/4. Loss 1 + 5/16 + 1/2. Gradient: alpha dv/dA = 1/2 * 4/pi, dA/dh = -w/(w^2+h^2)
    // = -1/2 and dA/dw = 0; rho2/c2 gives d/dx = 1/4 on x1 and x2, d/dy = -1/8 on y1 and y2, and
    // d/dcw = -5/16 shared 1/2 by x1 (a tie of min) and wholly by x2.
    const flip = await dl.run('iou_loss', { pred: Float32Array.of(0, 0, 2, 0), target: Float32Array.of(0, 1, 0, 0) }, { variant: 'ciou', reduction: 'none' });
    expect(flip.loss[0]).toBeCloseTo(1 + 5 / 16 + 1 / 2, 5);
    const want = [1 / 4 + 5 / 32, 1 / Math.PI - 1 / 8, 1 / 4 - 5 / 16, -1 / Math.PI - 1 / 8];
    want.forEach((w, k) => expect(flip.grad.pred[k], `grad[${k}]`).toBeCloseTo(w, 5));
  });
});

describe('the CPU reference does not read the sign of a zero', () => {
  it.each(EDGE_FORMATS)('%s: every variant, pairs with their zeros flipped give the same numbers', (format) => {
    const bad: string[] = [];
    for (const [p, t] of singlePairs(format, 400, 11)) {
      const pred = Float32Array.from(p);
      const target = Float32Array.from(t);
      const pred2 = Float32Array.from(flipZeros(p));
      const target2 = Float32Array.from(flipZeros(t));
      for (const v of LOSS_VARIANTS) {
        const params = { ...v, format, reduction: 'none' } as const;
        const a = cpu.run('iou_loss', { pred, target }, params);
        const b = cpu.run('iou_loss', { pred: pred2, target: target2 }, params);
        if (compare(b.loss, a.loss, 0, 0, 1e-12) !== 'ok' || compare(b.grad.pred, a.grad.pred, 0, 0, 1e-12) !== 'ok') {
          bad.push(`${lossName(v)} ${showBox(pred)} ${showBox(target)}: ${a.loss[0]} vs ${b.loss[0]}`);
        }
      }
      for (const variant of PAIR_VARIANTS) {
        const a = cpu.run('pairwise_iou', { a: pred, b: target }, { variant, format });
        const b = cpu.run('pairwise_iou', { a: pred2, b: target2 }, { variant, format });
        if (compare(b.loss, a.loss, 0, 0, 1e-12) !== 'ok') bad.push(`pairwise ${variant} ${showBox(pred)} ${showBox(target)}: ${a.loss[0]} vs ${b.loss[0]}`);
      }
    }
    expect(bad.slice(0, 10)).toEqual([]);
  });
});

describe('iou_loss on the integer grid equals the CPU reference', () => {
  for (const format of EDGE_FORMATS) {
    it(`${format}: every variant, one pair per call`, async () => {
      const pairs = singlePairs(format, 96, 3 + format.length);
      const bad: string[] = [];
      for (const v of LOSS_VARIANTS) {
        const params = { ...v, format, reduction: 'none' } as const;
        for (const [p, t] of pairs) {
          const pred = Float32Array.from(p);
          const target = Float32Array.from(t);
          const gpu = await dl.run('iou_loss', { pred, target }, params);
          const ref = cpu.run('iou_loss', { pred, target }, params);
          const scale = rowScale(ref.loss[0], ref.grad.pred);
          const l = compare(gpu.loss, ref.loss, scale);
          const g = compare(gpu.grad.pred, ref.grad.pred, scale);
          if (l !== 'ok' || g !== 'ok') bad.push(`${lossName(v)} ${showBox(pred)} ${showBox(target)}: loss ${l}, grad ${g}`);
        }
      }
      expect(bad.slice(0, 10), `${bad.length} of ${pairs.length * LOSS_VARIANTS.length} differ`).toEqual([]);
    });

    it(`${format}: every variant, every ordered pair of the grid in one call`, async () => {
      const { p, t, n } = allPairs(format);
      const bad: string[] = [];
      for (const v of LOSS_VARIANTS) {
        const params = { ...v, format, reduction: 'none' } as const;
        const gpu = await dl.run('iou_loss', { pred: p, target: t }, params);
        const ref = cpu.run('iou_loss', { pred: p, target: t }, params);
        for (let i = 0; i < n; i++) {
          const want = ref.grad.pred.subarray(4 * i, 4 * i + 4);
          const scale = rowScale(ref.loss[i], want);
          const l = compare([gpu.loss[i]], [ref.loss[i]], scale);
          const g = compare(gpu.grad.pred.subarray(4 * i, 4 * i + 4), want, scale);
          if (l !== 'ok' || g !== 'ok') bad.push(`${lossName(v)} ${showBox(p.subarray(4 * i, 4 * i + 4))} ${showBox(t.subarray(4 * i, 4 * i + 4))}: loss ${l}, grad ${g}`);
        }
      }
      expect(bad.slice(0, 10), `${bad.length} of ${n * LOSS_VARIANTS.length} differ`).toEqual([]);
    });
  }
});

describe('pairwise_iou on the integer grid equals the CPU reference', () => {
  for (const format of EDGE_FORMATS) {
    it(`${format}: every variant, one pair per call`, async () => {
      const pairs = singlePairs(format, 64, 7 + format.length);
      const bad: string[] = [];
      for (const variant of PAIR_VARIANTS) {
        for (const [p, t] of pairs) {
          const a = Float32Array.from(p);
          const b = Float32Array.from(t);
          const gpu = await dl.run('pairwise_iou', { a, b }, { variant, format });
          const ref = cpu.run('pairwise_iou', { a, b }, { variant, format });
          const l = compare(gpu.loss, ref.loss, rowScale(ref.loss[0]));
          if (l !== 'ok') bad.push(`${variant} ${showBox(a)} ${showBox(b)}: ${l}`);
        }
      }
      expect(bad.slice(0, 10), `${bad.length} of ${pairs.length * PAIR_VARIANTS.length} differ`).toEqual([]);
    });

    it(`${format}: every variant, the whole grid against itself in one call`, async () => {
      const boxes = gridBoxes(format);
      const a = Float32Array.from(boxes.flat());
      const bad: string[] = [];
      for (const variant of PAIR_VARIANTS) {
        const gpu = await dl.run('pairwise_iou', { a, b: a }, { variant, format });
        const ref = cpu.run('pairwise_iou', { a, b: a }, { variant, format });
        for (let k = 0; k < ref.loss.length; k++) {
          const l = compare([gpu.loss[k]], [ref.loss[k]], rowScale(ref.loss[k]));
          const i = Math.floor(k / boxes.length);
          if (l !== 'ok') bad.push(`${variant} ${showBox(boxes[i])} ${showBox(boxes[k % boxes.length])}: ${l}`);
        }
      }
      expect(bad.slice(0, 10), `${bad.length} of ${boxes.length ** 2 * PAIR_VARIANTS.length} differ`).toEqual([]);
    });
  }
});

describe('small boxes far from the origin: the kernels work relative to the target box', () => {
  // Found by the fuzzer: at x = 1e5 a float32 step is 0.0078, so converting a box 0.008 wide to
  // corners made a box of another size, and the gradient was 1467 where it is -16.75.
  const pred = Float32Array.of(100000.859375, 100000.9375, 0.008379973471164703, 0.24363966286182404);
  const target = Float32Array.of(100000.859375, 100000.9375, 0.008530938997864723, 0.24283528327941895);
  const near = (got: ArrayLike<number>, want: ArrayLike<number>, rtol: number) => {
    for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i]), `[${i}] ${got[i]} vs ${want[i]}`).toBeLessThanOrEqual(rtol * (1 + Math.abs(want[i])));
  };
  it.each(['iou', 'giou', 'diou', 'ciou', 'eiou', 'siou'] as const)('iou_loss %s, cxcywh and xywh, one pair', async (variant) => {
    for (const format of ['cxcywh', 'xywh'] as const) {
      const options = { variant, format, reduction: 'none' as const };
      const r = await dl.run('iou_loss', { pred, target }, options);
      const ref = cpu.run('iou_loss', { pred, target }, options);
      near(r.loss, ref.loss, 1e-4);
      near(r.grad.pred, ref.grad.pred, 1e-3);
    }
  });
  it('and a box near the origin stays where it is (pairwise giou, cxcywh; also from the fuzzer)', async () => {
    const a = Float32Array.of(-1, 1, -2, 1);
    const b = { data: Float32Array.of(0.0006762402481399477, 0.0006189412088133395, 0.0007774056284688413, 0.000011875248674186878), shape: [1, 4] };
    const r = await dl.run('pairwise_iou', { a, b }, { variant: 'giou', format: 'cxcywh' });
    const ref = cpu.run('pairwise_iou', { a, b }, { variant: 'giou', format: 'cxcywh' });
    near(r.loss, ref.loss, 1e-5);
  });
  it('an inverted box around 0 does not swamp a small centre offset (pairwise diou, xyxy; from the fuzzer)', async () => {
    // (x1 - x1g) + (x2 - x2g) rounds at the size of the corners, 2; (x1 + x2) - (x1g + x2g) does not.
    const a = Float32Array.of(-0.0004200513940304518, -0.0006554941646754742, 0.0010548339923843741, 0.00027676307945512235);
    const b = { data: Float32Array.of(2, 2, -2, -2), shape: [1, 4] };
    for (const variant of ['diou', 'ciou'] as const) {
      const r = await dl.run('pairwise_iou', { a, b }, { variant });
      const ref = cpu.run('pairwise_iou', { a, b }, { variant });
      near(r.loss, ref.loss, 1e-5);
    }
  });
  it.each(['iou', 'giou', 'diou', 'ciou'] as const)('pairwise_iou %s, cxcywh and xywh', async (variant) => {
    for (const format of ['cxcywh', 'xywh'] as const) {
      const options = { variant, format };
      const r = await dl.run('pairwise_iou', { a: pred, b: { data: target, shape: [1, 4] } }, options);
      const ref = cpu.run('pairwise_iou', { a: pred, b: { data: target, shape: [1, 4] } }, options);
      near(r.loss, ref.loss, 1e-4);
    }
  });
});
