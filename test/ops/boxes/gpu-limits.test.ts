// iou_loss and pairwise_iou at their edges, on Node's WebGPU against the float64 reference:
// extreme params (innerRatio, Shape-IoU's scale, Wise-IoU's alpha and delta, the bounds of the rest),
// Alpha-IoU on inverted boxes (each base raised as given), and NaN and infinite inputs in every
// variant, format and reduction, from host arrays and from GPU buffers (ops.md, Conventions:
// non-finite input is never hidden). One pair per call as well as batched.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import type { DetlossContext } from '../../../src/api';
import { nodeContext } from '../../helpers/node-gpu';
import { ALL_IOU_CONFIGS, moreName } from '../../helpers/box-more-configs';
import { readGpu, toGpu } from '../../helpers/gpu-buffers';
import { moreLoss, type MoreParams } from '../../helpers/box-more';

let dl: DetlossContext;
beforeAll(async () => {
  dl = await nodeContext();
});
afterAll(() => dl?.destroy());

const F32_MAX = 3.4028234663852886e38;
type Params = Record<string, unknown>;

/**
 * 'ok' or the first entry that differs: NaN against NaN, an infinity against the same infinity, and
 * finite numbers within atol + rtol |want|; anything else (a finite number for a NaN) differs.
 */
function sameValues(got: ArrayLike<number>, want: ArrayLike<number>, rtol: number, atol: number): string {
  if (got.length !== want.length) return `length ${got.length} vs ${want.length}`;
  for (let i = 0; i < want.length; i++) {
    const g = got[i];
    const w = want[i];
    const ok = Number.isNaN(w) ? Number.isNaN(g) : Number.isFinite(w) ? Math.abs(g - w) <= atol + rtol * Math.abs(w) : g === w;
    if (!ok) return `[${i}] ${g} vs ${w}`;
  }
  return 'ok';
}

/** iou_loss on the GPU and the reference; the loss and gradient compared with the fixtures' tolerances. */
async function against(pred: number[], target: number[], params: Params, extra: Record<string, Float32Array> = {}) {
  const inputs = { pred: Float32Array.from(pred), target: Float32Array.from(target), ...extra };
  const gpu = await dl.run('iou_loss', inputs, params as never);
  const ref = cpu.run('iou_loss', inputs, params as never);
  return { gpu, ref, loss: sameValues(gpu.loss, ref.loss, 1e-4, 1e-4), grad: sameValues(gpu.grad.pred, ref.grad.pred, 1e-3, 2e-4) };
}

/** Rows 0..n-1 of `pred`/`target` one per call, and all in one call: each must match the reference. */
async function eachAndAll(pred: number[], target: number[], params: Params): Promise<string[]> {
  const bad: string[] = [];
  const all = await against(pred, target, params);
  if (all.loss !== 'ok' || all.grad !== 'ok') bad.push(`batched: loss ${all.loss}, grad ${all.grad}`);
  for (let i = 0; i < pred.length / 4; i++) {
    const one = await against(pred.slice(4 * i, 4 * i + 4), target.slice(4 * i, 4 * i + 4), params);
    if (one.loss !== 'ok' || one.grad !== 'ok') bad.push(`row ${i}: loss ${one.loss}, grad ${one.grad}`);
  }
  return bad;
}

// A 605 x 385 target (the reported one) and four more pairs, partly overlapping and disjoint.
const PRED = [10, 20, 300, 200, 100, 50, 400, 300, 0, 0, 605, 385, 3, 3, 5, 9, 200, 100, 210, 110];
const TARGET = [0, 0, 605, 385, 120, 40, 380, 330, 10, 10, 600, 400, 4, 2, 6, 8, 0, 0, 605, 385];
const none = { reduction: 'none' } as const;

describe('extreme params: finite and equal to the reference', () => {
  it.each([1e19, 1e30, 3.4e38, 1e-30])('innerRatio %d (k^2 (w h + wg hg) overflowed float32 at 1e19: NaN gradient)', async (innerRatio) => {
    for (const variant of ['iou', 'ciou', 'siou', 'wiou']) {
      const bad = await eachAndAll(PRED, TARGET, { variant, innerRatio, ...none });
      expect(bad, `${variant}`).toEqual([]);
    }
  });

  it.each([14, 100, 1e10, 3.4e38])('Shape-IoU scale %d on a 605 x 385 target (605^14 overflowed: NaN loss and gradient)', async (scale) => {
    const bad = await eachAndAll(PRED, TARGET, { variant: 'shape', scale, ...none });
    expect(bad).toEqual([]);
    const tall = await eachAndAll([10, 20, 200, 300], [0, 0, 385, 605], { variant: 'shape', scale, ...none });
    expect(tall).toEqual([]);
  });

  it('Wise-IoU v3 with alpha near 1 and a large delta: within 1e-4 (alpha rounded to float32 erred by 0.2%)', async () => {
    for (const p of [
      { wiouAlpha: 1.0001, wiouDelta: 1e5, iouMean: 1 },
      { wiouAlpha: 1.001, wiouDelta: 1e4, iouMean: 1e-3 },
    ]) {
      const bad = await eachAndAll(PRED, TARGET, { variant: 'wiou', ...p, ...none });
      expect(bad, JSON.stringify(p)).toEqual([]);
    }
  });

  it('the accepted ends of the other params', async () => {
    const bad: string[] = [];
    for (const params of [
      { variant: 'giou', eps: 2 ** -126 },
      { variant: 'ciou', eps: 3.4e38 },
      { variant: 'siou', eps: 3.4e38 },
      { variant: 'iou', mode: 'log', eps: 3.4e38 },
      { variant: 'eiou', eps: 1e30 },
      { variant: 'ciou', power: 20 },
      { variant: 'giou', power: 20 },
      { variant: 'mpdiou', imageSize: [1e-6, 1e-6] },
      { variant: 'mpdiou', imageSize: [9e18, 1] },
      { variant: 'giou', focaler: [0.1, 0.11] },
      { variant: 'wiou', wiouVersion: 2, iouMean: 2 ** -126 },
      { variant: 'wiou', iouMean: 2 ** -126 },
      { variant: 'wiou', wiouAlpha: 1.9, wiouDelta: 1e-20 },
      { variant: 'wiou', wiouAlpha: 1e30, wiouDelta: 1e-3 },
    ]) {
      for (const b of await eachAndAll(PRED, TARGET, { ...params, ...none })) bad.push(`${JSON.stringify(params)} ${b}`);
    }
    expect(bad).toEqual([]);
  });

  it.each([
    [{ variant: 'mpdiou', imageSize: [1e-19, 1e-19] }, 'imageSize'],
    [{ variant: 'giou', power: 21 }, 'power'],
    [{ variant: 'iou', focaler: [0.5, 0.50000001] }, 'focaler'],
    [{ variant: 'wiou', wiouAlpha: 1.0001, wiouDelta: 1e-30 }, 'wiouDelta'],
  ] as const)('refuses %j before any GPU work (imageSize [1e-19, 1e-19] gave Infinity)', async (params, argument) => {
    await expect(dl.run('iou_loss', { pred: Float32Array.from(PRED), target: Float32Array.from(TARGET) }, params as never)).rejects.toMatchObject({ code: 'invalid_param', argument });
  });
});

describe('Alpha-IoU on inverted boxes: PyTorch value and gradient', () => {
  it.each([
    [3, 9, [18, -18, -12, 18]],
    [2, 5, [6, -6, -4, 6]],
  ])('GIoU at power %d, worked by hand (test/ops/boxes/reference-limits.test.ts): loss %d, the box pushed back', async (a, loss, grad) => {
    const r = await against([0, 0, -2, 1], [0, 0, 1, 1], { variant: 'giou', power: a, ...none });
    expect(r.gpu.loss[0]).toBeCloseTo(loss, 4);
    grad.forEach((g, k) => expect(r.gpu.grad.pred[k], `grad[${k}]`).toBeCloseTo(g, 3));
  });

  // The inverted pairs of test/ops/boxes/reference-limits.test.ts (penalties above 1), the worked pair, and
  // two ordinary pairs, in each format.
  const XYXY = [
    [[4.1, 0.2, 1.3, 1.4], [0, 0.1, 1.2, 1.1]],
    [[0.3, 3.9, 1.7, 0.4], [0.1, 0, 1.1, 1.3]],
    [[2.2, 1.9, 0.1, -0.4], [1.6, 1.2, -0.3, 0.2]],
    [[0.2, 0.3, 1.9, 1.1], [3.1, 2.6, 0.7, 1.5]],
    [[0.1, 4.3, 1.2, 1.1], [0, 0.2, 1.3, 0.9]],
    [[2.9, 3.1, 1.2, 0.3], [0.1, 0.2, 0.8, 0.7]],
    [[0, 0, -2, 1], [0, 0, 1, 1]],
    [[10, 20, 300, 200], [0, 0, 605, 385]],
    [[3, 3, 5, 9], [4, 2, 6, 8]],
  ];
  const toFormat = (b: number[], format: string) =>
    format === 'cxcywh' ? [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1]] : format === 'xywh' ? [b[0], b[1], b[2] - b[0], b[3] - b[1]] : b;
  it('the GPU loss is the contract\'s, written a second time in test/helpers/box-more.ts', async () => {
    const bad: string[] = [];
    for (const [p, t] of XYXY) {
      for (const variant of ['iou', 'giou', 'diou', 'ciou'] as const) {
        for (const power of [2, 3]) {
          const got = (await dl.run('iou_loss', { pred: Float32Array.from(p), target: Float32Array.from(t) }, { variant, power, ...none })).loss[0];
          // The contract on the float32 boxes the GPU was given.
          const want = moreLoss(Array.from(Float32Array.from(p)), Array.from(Float32Array.from(t)), { variant, power });
          if (!(Math.abs(got - want) <= 1e-4 * (1 + Math.abs(want)))) bad.push(`${JSON.stringify(p)} ${variant} ${power}: ${got} vs ${want}`);
        }
      }
    }
    expect(bad).toEqual([]);
  });

  for (const format of ['xyxy', 'cxcywh', 'xywh']) {
    it(`${format}: iou, giou, diou, ciou at powers 2 and 3, one pair per call and batched`, async () => {
      const pred = XYXY.flatMap(([p]) => toFormat(p, format));
      const target = XYXY.flatMap(([, t]) => toFormat(t, format));
      const bad: string[] = [];
      for (const variant of ['iou', 'giou', 'diou', 'ciou']) {
        for (const power of [2, 3]) {
          for (const b of await eachAndAll(pred, target, { variant, power, format, ...none })) bad.push(`${variant} ${power}: ${b}`);
        }
      }
      expect(bad).toEqual([]);
    });
  }

  it("past float32: the value cap (p^a > 3.4e38) and a gradient past float32 pass no gradient, as the reference", async () => {
    // Penalty 1e13 at power 3 (capped value), and 3e7 at power 5 (value 2.4e37, gradient about 1e46).
    const capped = await against([0, 0, 1, 0], [0, 1, 1e6, 0], { variant: 'giou', power: 3, ...none });
    expect(capped.gpu.loss[0]).toBe(Math.fround(F32_MAX));
    expect(Array.from(capped.gpu.grad.pred, (g) => g + 0)).toEqual([0, 0, 0, 0]);
    const steep = await against([4, 2, 4, 0], [2, 2, 3, -1], { variant: 'giou', format: 'cxcywh', power: 5, ...none });
    expect(steep.loss).toBe('ok');
    expect(steep.gpu.loss[0]).toBeGreaterThan(2e37);
    expect(Array.from(steep.gpu.grad.pred, (g) => g + 0)).toEqual([0, 0, 0, 0]);
    // The same penalty at power 2 keeps its gradient (about 2e22).
    const two = await against([4, 2, 4, 0], [2, 2, 3, -1], { variant: 'giou', format: 'cxcywh', power: 2, ...none });
    expect([two.loss, two.grad]).toEqual(['ok', 'ok']);
    expect(Math.max(...Array.from(two.gpu.grad.pred, Math.abs))).toBeGreaterThan(1e20);
  });
});

/** Every variant and mode, and each "More box losses" param. */
const CONFIGS = ALL_IOU_CONFIGS as Params[];
const name = (q: Params) => moreName(q as unknown as MoreParams);
const BASE: Record<string, number[]> = { xyxy: [1, 2, 4, 6, 2, 1, 5, 4], cxcywh: [2, 3, 3, 4, 3, 2, 3, 3], xywh: [1, 2, 3, 4, 2, 1, 3, 3] };

/** Pairs (pred ++ target, 8 numbers) with NaN or +-Inf: in each coordinate, in pairs of coordinates, and on an inverted base. */
function nonFiniteRows(format: string): number[][] {
  const base = BASE[format];
  const rows: number[][] = [];
  const put = (changes: [number, number][]) => {
    const r = [...base];
    for (const [k, v] of changes) r[k] = v;
    rows.push(r);
  };
  for (let k = 0; k < 8; k++) for (const v of [NaN, Infinity, -Infinity]) put([[k, v]]);
  for (let k = 0; k < 8; k++) for (let l = k + 1; l < 8; l++) for (const [v, w] of [[Infinity, Infinity], [Infinity, -Infinity], [-Infinity, -Infinity]]) put([[k, v], [l, w]]);
  const inverted = [base[2], base[3], base[0], base[1], ...base.slice(4)];
  for (let k = 0; k < 8; k++) for (const v of [Infinity, -Infinity]) {
    const r = [...inverted];
    r[k] = v;
    rows.push(r);
  }
  rows.push([...base]);
  return rows;
}

const upload = (data: Float32Array) => toGpu(dl.device, data);
const readBack = (buffer: GPUBuffer, bytes: number) => readGpu(dl.device, buffer, bytes);

/** `op` through runResident with `pred`/`target` (or `a`/`b`) in GPU buffers, the outputs read back. */
async function resident(op: 'iou_loss' | 'pairwise_iou', inputs: Record<string, Float32Array | { data: Float32Array; shape: number[] }>, params: Params) {
  const bufs: GPUBuffer[] = [];
  const onDevice: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(inputs)) {
    const data = v instanceof Float32Array ? v : v.data;
    const b = upload(data);
    bufs.push(b);
    onDevice[k] = { buffer: b, shape: v instanceof Float32Array ? (k === 'weight' || k === 'gradOutput' ? [data.length] : [data.length / 4, 4]) : v.shape };
  }
  const r = await dl.runResident(op, onDevice as never, params as never);
  try {
    const grad = r.grad.pred ? await readBack(r.grad.pred, r.gradBytes.pred) : new Float32Array(0);
    const aux = r.aux?.batchIouMean ? (await readBack(r.aux.batchIouMean, 4))[0] : undefined;
    return { loss: await readBack(r.loss, r.lossBytes), grad, aux };
  } finally {
    r.release();
    for (const b of bufs) b.destroy();
  }
}

describe('NaN and infinite inputs: the reference\'s value, NaN never hidden', () => {
  for (const format of ['xyxy', 'cxcywh', 'xywh']) {
    it(`${format}: every variant and param, each placement, host arrays and GPU buffers, 'none'`, async () => {
      const rows = nonFiniteRows(format);
      const pred = Float32Array.from(rows.flatMap((r) => r.slice(0, 4)));
      const target = Float32Array.from(rows.flatMap((r) => r.slice(4)));
      const bad: string[] = [];
      for (const q of CONFIGS) {
        const params = { ...q, format, ...none };
        const ref = cpu.run('iou_loss', { pred, target }, params as never);
        const host = await dl.run('iou_loss', { pred, target }, params as never);
        const dev = await resident('iou_loss', { pred, target }, params);
        for (const [how, got] of [['host', { loss: host.loss, grad: host.grad.pred, aux: host.aux?.batchIouMean }], ['resident', dev]] as const) {
          const l = sameValues(got.loss, ref.loss, 1e-4, 1e-4);
          const g = sameValues(got.grad, ref.grad.pred, 1e-3, 2e-4);
          if (l !== 'ok' || g !== 'ok') bad.push(`${name(q)} ${how}: loss ${l} (row ${JSON.stringify(rows[Number(/\[(\d+)\]/.exec(l)?.[1] ?? -1)] ?? null)}), grad ${g}`);
          if (q.variant === 'wiou' && sameValues([got.aux!], [ref.aux!.batchIouMean], 1e-4, 1e-6) !== 'ok') bad.push(`${name(q)} ${how}: batchIouMean ${got.aux} vs ${ref.aux!.batchIouMean}`);
        }
      }
      expect(bad.slice(0, 8), `${bad.length} differ`).toEqual([]);
    });
  }

  it("a NaN box or weight makes 'mean' and 'sum' NaN, an infinite loss makes them infinite; host and GPU buffers, weights and gradOutput", async () => {
    // Rows: ordinary pairs, then a NaN coordinate (row 3); in the second batch a GIoU penalty of +Inf (x1 = +Inf, row 2).
    const ok = [1, 2, 4, 6, 2, 1, 5, 4, 0, 0, 2, 2, 1, 1, 3, 3, 3, 3, 5, 9, 4, 2, 6, 8];
    const batches: [string, number[], Params[]][] = [
      ['NaN box', [...ok, NaN, 2, 4, 6, 2, 1, 5, 4], CONFIGS],
      ['+Inf penalty', [...ok, Infinity, 2, 4, 6, 2, 1, 5, 4], [{ variant: 'giou' }, { variant: 'mpdiou', imageSize: [4, 3] }, { variant: 'diou', innerRatio: 0.8 }]],
    ];
    const bad: string[] = [];
    for (const [what, flat, configs] of batches) {
      const n = flat.length / 8;
      const pred = Float32Array.from(Array.from({ length: n }, (_, i) => flat.slice(8 * i, 8 * i + 4)).flat());
      const target = Float32Array.from(Array.from({ length: n }, (_, i) => flat.slice(8 * i + 4, 8 * i + 8)).flat());
      for (const q of configs) {
        for (const reduction of ['mean', 'sum'] as const) {
          for (const weight of [Float32Array.from({ length: n }, (_, i) => 0.5 + i), Float32Array.from({ length: n }, (_, i) => (i === 1 ? NaN : 1))]) {
            const inputs = { pred, target, weight, gradOutput: Float32Array.of(0.75) };
            const params = { ...q, reduction };
            const ref = cpu.run('iou_loss', inputs, params as never);
            expect(Number.isFinite(ref.loss[0]), `${what} ${name(q)}: the reference is not finite`).toBe(false);
            const host = await dl.run('iou_loss', inputs, params as never);
            const dev = await resident('iou_loss', inputs, params);
            for (const [how, got] of [['host', { loss: host.loss, grad: host.grad.pred }], ['resident', dev]] as const) {
              const l = sameValues(got.loss, ref.loss, 1e-4, 1e-4);
              const g = sameValues(got.grad, ref.grad.pred, 1e-3, 2e-4);
              if (l !== 'ok' || g !== 'ok') bad.push(`${what} ${name(q)} ${reduction} ${how}: loss ${l}, grad ${g}`);
            }
          }
        }
      }
    }
    expect(bad.slice(0, 8), `${bad.length} differ`).toEqual([]);
  });

  it('one pair per call: a NaN or infinite coordinate in each position', async () => {
    const bad: string[] = [];
    for (const format of ['xyxy', 'cxcywh']) {
      for (const r of nonFiniteRows(format).slice(0, 24)) {
        for (const q of [{ variant: 'iou', mode: 'log' }, { variant: 'siou' }, { variant: 'shape', scale: 0.7 }, { variant: 'wiou' }, { variant: 'ciou', power: 3 }]) {
          const x = await against(r.slice(0, 4), r.slice(4), { ...q, format, ...none });
          if (x.loss !== 'ok' || x.grad !== 'ok') bad.push(`${format} ${name(q)} ${JSON.stringify(r)}: loss ${x.loss}, grad ${x.grad}`);
        }
      }
    }
    expect(bad.slice(0, 8), `${bad.length} differ`).toEqual([]);
  });

  for (const format of ['xyxy', 'cxcywh', 'xywh']) {
    it(`pairwise_iou, ${format}: NaN and infinite boxes, host arrays and GPU buffers`, async () => {
      const rows = nonFiniteRows(format);
      const a = Float32Array.from(rows.flatMap((r) => r.slice(0, 4)));
      const b = Float32Array.from(rows.slice(0, 40).flatMap((r) => r.slice(4)));
      const bad: string[] = [];
      for (const variant of ['iou', 'giou', 'diou', 'ciou']) {
        const inputs = { a, b: { data: b, shape: [40, 4] } };
        const ref = cpu.run('pairwise_iou', inputs, { variant, format } as never).loss;
        const host = (await dl.run('pairwise_iou', inputs, { variant, format } as never)).loss;
        const dev = (await resident('pairwise_iou', inputs, { variant, format })).loss;
        for (const [how, got] of [['host', host], ['resident', dev]] as const) {
          const s = sameValues(got, ref, 1e-4, 1e-5);
          if (s !== 'ok') bad.push(`${variant} ${how}: ${s}`);
        }
      }
      expect(bad).toEqual([]);
    });
  }

  it('pairwise_iou applies its weight: a NaN weight makes its entry NaN (it was ignored: a finite entry)', async () => {
    const a = Float32Array.of(0, 0, 2, 1, 0, 0, 2, 2);
    const b = Float32Array.of(0, 0, 1, 1, 5, 5, 6, 6, 1, 1, 3, 3);
    const bad: string[] = [];
    for (const variant of ['iou', 'giou', 'diou', 'ciou']) {
      for (const weight of [Float32Array.of(2, 0.5, -1, 1, 3, 0), Float32Array.of(NaN, 1, 1, 1, NaN, 1)]) {
        const inputs = { a, b: { data: b, shape: [3, 4] }, weight };
        const ref = cpu.run('pairwise_iou', inputs, { variant } as never).loss;
        const host = (await dl.run('pairwise_iou', inputs, { variant } as never)).loss;
        const dev = (await resident('pairwise_iou', inputs, { variant })).loss;
        for (const [how, got] of [['host', host], ['resident', dev]] as const) {
          const s = sameValues(got, ref, 1e-5, 1e-6);
          if (s !== 'ok') bad.push(`${variant} ${JSON.stringify(Array.from(weight))} ${how}: ${s}`);
        }
      }
      // One pair, one weight.
      const one = await dl.run('pairwise_iou', { a: a.subarray(0, 4), b: b.subarray(0, 4), weight: Float32Array.of(NaN) }, { variant } as never);
      if (!Number.isNaN(one.loss[0])) bad.push(`${variant} one pair: ${one.loss[0]}`);
    }
    expect(bad).toEqual([]);
  });
});
