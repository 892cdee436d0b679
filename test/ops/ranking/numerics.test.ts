// The ranking losses' float32 numerics on the GPU against the float64 reference: the whole range
// of delta the op takes (and its refusal below it), scores centred far from 0 or spread widely
// (the error depends on the pair differences, not on |score| / delta), ties where |score| / delta
// passes 2^24, from host arrays and from GPU-resident buffers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { DetlossError } from '../../../src/errors';
import { MIN_DELTA } from '../../../src/ops/ranking';
import { readGpu } from '../../helpers/gpu-buffers';
import { nodeContext } from '../../helpers/node-gpu';
import { rankingInputs } from '../../helpers/ranking-inputs';

type Detloss = Awaited<ReturnType<typeof nodeContext>>;
type Op = 'ap_loss' | 'rank_sort';
const OPS = ['ap_loss', 'rank_sort'] as const;
const F32_MAX = 3.4028234663852886e38;

let dl: Detloss;
beforeAll(async () => {
  dl = await nodeContext();
});
afterAll(() => dl?.destroy());

/**
 * The update's error: `norm`, the largest |a - b| over the largest |b|; `element`, the largest
 * |a - b| / max(|b|, 1e-3 of the largest |b|) (an update that is a small difference of larger
 * terms, as some of Rank & Sort's positives' are, is good to float32 of those terms).
 */
function updateErr(a: ArrayLike<number>, b: ArrayLike<number>): { norm: number; element: number } {
  let scale = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  let worst = 0;
  let element = 0;
  for (let i = 0; i < b.length; i++) {
    const e = Math.abs(a[i] - b[i]);
    worst = Math.max(worst, e);
    element = Math.max(element, e / Math.max(1e-3 * scale, Math.abs(b[i]), 1e-30));
  }
  return { norm: worst / Math.max(scale, 1e-30), element };
}

const readBuffer = (src: GPUBuffer, bytes: number) => readGpu(dl.device, src, bytes);

/** The op from host arrays and from GPU-resident copies. */
async function bothPaths(op: Op, logits: Float32Array, targets: Float32Array, options: Record<string, unknown> = {}) {
  const host = await dl.run(op, { logits, targets }, options);
  const bufs = [logits, targets].map((a) => {
    const b = dl.device.createBuffer({ size: Math.max(4, a.byteLength), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    dl.device.queue.writeBuffer(b, 0, a as Float32Array<ArrayBuffer>);
    return b;
  });
  const res = await dl.runResident(op, { logits: { buffer: bufs[0], shape: [logits.length] }, targets: { buffer: bufs[1], shape: [targets.length] } }, options);
  const resident = { loss: await readBuffer(res.loss, res.lossBytes), grad: await readBuffer(res.grad.logits, res.gradBytes.logits) };
  res.release();
  bufs.forEach((b) => b.destroy());
  return [
    ['host', { loss: host.loss, grad: host.grad.logits }],
    ['resident', resident],
  ] as const;
}

/** Loss to `lossTol` absolute, the update to `normTol` of the largest and 1e-4 per element, both paths. */
async function expectClose(op: Op, logits: Float32Array, targets: Float32Array, options: Record<string, unknown>, lossTol: number, normTol: number, label: string) {
  const want = cpu.run(op, { logits, targets }, options);
  for (const [path, got] of await bothPaths(op, logits, targets, options)) {
    for (let i = 0; i < want.loss.length; i++) expect(Math.abs(got.loss[i] - want.loss[i]), `${label} ${path} loss[${i}] ${got.loss[i]} vs ${want.loss[i]}`).toBeLessThanOrEqual(lossTol);
    const e = updateErr(got.grad, want.grad.logits);
    expect(e.norm, `${label} ${path} update, of the largest`).toBeLessThanOrEqual(normTol);
    expect(e.element, `${label} ${path} update, per element`).toBeLessThanOrEqual(1e-4);
  }
  return want;
}

/** rank_sort's targets from ap_loss's: a positive gets an IoU. */
const asOp = (op: Op, t: number[]) => Float32Array.from(t, (v, i) => (op === 'rank_sort' && v === 1 ? [0.9, 0.4, 0.7][i % 3] : v));

describe('ranking losses: delta over the whole range the op takes', () => {
  const logits = Float32Array.of(0.4, -0.3, 1.5, 0.1, -1.2, 0.9, 0.2);
  const t = [1, 0, 0, 1, 0, 1, 0];
  it.each(OPS)('%s: delta 4e37, 5e37 and float32\'s largest (1/(2 delta) is subnormal past 4.25e37)', async (op) => {
    for (const delta of [4e37, 5e37, 1e38, F32_MAX]) {
      const want = await expectClose(op, logits, asOp(op, t), { delta }, 1e-6, 1e-6, `delta ${delta}`);
      // Every pair is on the ramp near its middle: a loss strictly between 0 and 1.
      expect(want.loss[0]).toBeGreaterThan(0.1);
      expect(want.loss[0]).toBeLessThan(0.9);
    }
    // Scores as far apart as float32 holds, with delta of their size.
    const far = Float32Array.of(3e38, -3e38, 1e38, -2e38, 2.5e38, 0);
    for (const delta of [1e38, F32_MAX]) await expectClose(op, far, asOp(op, [1, 0, 1, 0, 0, 1]), { delta }, 1e-6, 1e-6, `far, delta ${delta}`);
  });
  it.each(OPS)('%s: delta at its lower bound, 1e-18, with scores on its scale', async (op) => {
    const tiny = Float32Array.from(logits, (v) => v * 2e-18);
    for (const delta of [MIN_DELTA, 3e-18]) {
      const want = await expectClose(op, tiny, asOp(op, t), { delta }, 1e-6, 1e-6, `delta ${delta}`);
      expect(want.loss[0]).toBeGreaterThan(0);
    }
    // And with ordinary scores: every pair off the ramp, ties exactly 1/2.
    const tied = Float32Array.of(0.5, 0.5, 1, -1, 0.5, 2, 0.5);
    await expectClose(op, tied, asOp(op, t), { delta: MIN_DELTA }, 1e-7, 1e-6, 'ties at delta 1e-18');
  });
  it.each(OPS)('%s: below 1e-18 delta is refused (invalid_param, naming delta and the bound) by the GPU and the CPU alike', async (op) => {
    expect(MIN_DELTA).toBe(1e-18);
    for (const delta of [9.99e-19, 1e-30, 0, -1]) {
      const onGpu = await dl.run(op, { logits, targets: asOp(op, t) }, { delta }).then(
        () => undefined,
        (e: unknown) => e,
      );
      let onCpu: unknown;
      try {
        cpu.run(op, { logits, targets: asOp(op, t) }, { delta });
      } catch (e) {
        onCpu = e;
      }
      for (const e of [onGpu, onCpu]) {
        expect(e, `delta ${delta}`).toBeInstanceOf(DetlossError);
        expect((e as DetlossError).code).toBe('invalid_param');
        expect((e as DetlossError).argument).toBe('delta');
        expect((e as DetlossError).message).toContain('1e-18');
      }
    }
  });
});

describe('ranking losses: the error depends on the pair differences, not on |score| / delta', () => {
  // The bound the README states: each update within 1e-6 of the largest update (1e-4 of itself),
  // the loss within 1e-6, wherever the scores sit and however widely they spread. Before, a centre
  // of 1e4 already cost 3e-3 of an update, 1e5 0.1, 1e6 and beyond the whole update.
  it.each(OPS)('%s: 10,000 scores, 1 in 100 positive, a few delta wide, centred at +-1e4 to 1e7', async (op) => {
    const delta = op === 'ap_loss' ? 1 : 0.5;
    const { logits: x, targets } = rankingInputs(op, 10000, 0.01, 41);
    for (const centre of [1e4, -1e5, 1e5, 1e6, -1e6, 1e7]) {
      const logits = Float32Array.from(x, (v) => centre + v * delta);
      await expectClose(op, logits, targets, {}, 1e-6, 1e-6, `centre ${centre}`);
    }
  });
  it.each(OPS)('%s: scores spread over 1e3 to 1e6 delta, centred at 0 and 1e6', async (op) => {
    const delta = op === 'ap_loss' ? 1 : 0.5;
    const { logits: x, targets } = rankingInputs(op, 10000, 0.01, 42);
    for (const centre of [0, 1e6]) {
      for (const spread of [1e3, 1e6]) {
        const logits = Float32Array.from(x, (v) => centre + v * delta * spread);
        await expectClose(op, logits, targets, {}, 1e-6, 1e-6, `centre ${centre}, spread ${spread}`);
      }
    }
  });
  it.each(OPS)('%s: 100,000 scores centred at 1e6, over many sort blocks and tiles', async (op) => {
    const delta = op === 'ap_loss' ? 1 : 0.5;
    const { logits: x, targets } = rankingInputs(op, 100000, 0.005, 43);
    const logits = Float32Array.from(x, (v) => 1e6 + v * delta);
    await expectClose(op, logits, targets, {}, 1e-6, 1e-6, 'n 1e5');
  });
  it('ap_loss: more than 4096 positives on one ramp, centred at 1e6 (rank+ over the positives)', async () => {
    const { logits: x, targets } = rankingInputs('ap_loss', 12000, 0.7, 44);
    const logits = Float32Array.from(x, (v) => 1e6 + v * 0.2);
    await expectClose('ap_loss', logits, targets, {}, 1e-6, 1e-6, 'dense positives');
  });
  it.each(OPS)('%s: ties past |score| / delta = 2^24 count 1/2 exactly', async (op) => {
    // float32 spacing at 2^25 is 4, at 3e38 2e31: every pair here is a tie or off the ramp.
    for (const [base, step, delta] of [
      [2 ** 25, 4, 1],
      [2 ** 25, 4, 0.5],
      [2 ** 30, 64, 1],
      [3e38, 2 ** 104, 1],
      [-(2 ** 26), 8, 1],
    ]) {
      const logits = Float32Array.from([0, 0, 1, 0, -1, 1, 0, 2, 1], (k) => base + k * step);
      const targets = asOp(op, [1, 0, 0, 1, 0, 1, 0, 0, 1]);
      const want = cpu.run(op, { logits, targets }, { delta });
      for (const [path, got] of await bothPaths(op, logits, targets, { delta })) {
        // Counts of halves: float32 rounding of the ratios only (a tie counted 1 moves the loss by ~0.05).
        for (let i = 0; i < want.loss.length; i++) expect(Math.abs(got.loss[i] - want.loss[i]), `${path} base ${base} loss[${i}]`).toBeLessThanOrEqual(1e-6);
        const e = updateErr(got.grad, want.grad.logits);
        expect(e.element, `${path} base ${base} update`).toBeLessThanOrEqual(1e-6);
      }
    }
  });
});
