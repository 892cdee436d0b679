// ap_loss and rank_sort with non-finite scores (ops.md, Conventions: "Non-finite input is never
// hidden") and with invalid targets already on the GPU. Each case runs from host arrays and from
// GPU-resident buffers (read back), against cpu.run: a loss the reference makes NaN is NaN, every
// other loss element is the reference's number. With infinite scores so is every update the
// reference gives as a finite number; with a NaN score the update is not specified (ops.md).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { readGpu } from '../../helpers/gpu-buffers';
import { nodeContext } from '../../helpers/node-gpu';
import { rankingInputs } from '../../helpers/ranking-inputs';

type Detloss = Awaited<ReturnType<typeof nodeContext>>;
type Op = 'ap_loss' | 'rank_sort';
interface Out {
  loss: Float32Array;
  grad: Float32Array;
}

let dl: Detloss;
beforeAll(async () => {
  dl = await nodeContext();
});
afterAll(() => dl?.destroy());

const readBuffer = (src: GPUBuffer, bytes: number) => readGpu(dl.device, src, bytes);

/** The op on GPU-resident copies of the arrays (which the host does not check), read back. */
async function resident(op: Op, logits: Float32Array, targets: Float32Array, options: Record<string, unknown> = {}): Promise<Out> {
  const upload = (a: Float32Array) => {
    const b = dl.device.createBuffer({ size: Math.max(4, a.byteLength), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    dl.device.queue.writeBuffer(b, 0, a as Float32Array<ArrayBuffer>);
    return b;
  };
  const bufs = [upload(logits), upload(targets)];
  const res = await dl.runResident(op, { logits: { buffer: bufs[0], shape: [logits.length] }, targets: { buffer: bufs[1], shape: [targets.length] } }, options);
  const loss = await readBuffer(res.loss, res.lossBytes);
  const grad = await readBuffer(res.grad.logits, res.gradBytes.logits);
  res.release();
  bufs.forEach((b) => b.destroy());
  return { loss, grad };
}

/** The op from host arrays and from resident buffers. */
async function bothPaths(op: Op, logits: Float32Array, targets: Float32Array, options: Record<string, unknown> = {}): Promise<[string, Out][]> {
  const host = await dl.run(op, { logits, targets }, options);
  return [
    ['host', { loss: host.loss, grad: host.grad.logits }],
    ['resident', await resident(op, logits, targets, options)],
  ];
}

/** The GPU's numbers against the float64 reference's, as the header says. */
function expectReference(got: Out, want: { loss: ArrayLike<number>; grad: Record<string, ArrayLike<number> | undefined> }, label: string, updates: boolean) {
  expect(got.loss.length, label).toBe(want.loss.length);
  for (let i = 0; i < want.loss.length; i++) {
    if (Number.isNaN(want.loss[i])) expect(got.loss[i], `${label} loss[${i}]`).toBeNaN();
    else expect(Math.abs(got.loss[i] - want.loss[i]), `${label} loss[${i}] = ${got.loss[i]}, reference ${want.loss[i]}`).toBeLessThan(1e-6 + 1e-5 * Math.abs(want.loss[i]));
  }
  if (!updates) return;
  const w = want.grad.logits!;
  let scale = 0;
  for (let i = 0; i < w.length; i++) if (Number.isFinite(w[i])) scale = Math.max(scale, Math.abs(w[i]));
  for (let i = 0; i < w.length; i++) {
    if (!Number.isFinite(w[i])) continue;
    const err = Math.abs(got.grad[i] - w[i]);
    expect(err <= 1e-5 * Math.max(scale, 1e-30) + 1e-5 * Math.abs(w[i]), `${label} update[${i}] = ${got.grad[i]}, reference ${w[i]}`).toBe(true);
  }
}

async function expectLikeCpu(op: Op, logits: Float32Array, targets: Float32Array, options: Record<string, unknown> = {}) {
  const want = cpu.run(op, { logits, targets }, options);
  const updates = !logits.some(Number.isNaN);
  for (const [path, got] of await bothPaths(op, logits, targets, options)) expectReference(got, want, `${op} ${path}`, updates);
  return want;
}

/** rank_sort's targets from ap_loss's: a positive gets an IoU. */
const asOp = (op: Op, t: number[]) => Float32Array.from(t, (v, i) => (op === 'rank_sort' && v === 1 ? [0.9, 0.4, 0.7][i % 3] : v));

describe('ranking losses: infinite scores give the reference numbers', () => {
  it.each(['ap_loss', 'rank_sort'] as const)('%s: a -Inf negative among 6 scores is a certain negative', async (op) => {
    const logits = Float32Array.of(-Infinity, 0.3, 1.2, -0.4, 0.9, 0.1);
    const targets = asOp(op, [0, 1, 0, 0, 1, 0]);
    const want = await expectLikeCpu(op, logits, targets);
    // Not a trivial case: the reference's loss and the positives' updates are nonzero.
    expect(want.loss[0]).toBeGreaterThan(0.1);
    expect(want.grad.logits[1]).toBeLessThan(0);
  });
  it.each(['ap_loss', 'rank_sort'] as const)('%s: a -Inf and a +Inf negative among 10,000 scores', async (op) => {
    for (const value of [-Infinity, Infinity]) {
      const { logits, targets } = rankingInputs(op, 10000, 0.01, 31);
      const j = targets.findIndex((t, i) => t === 0 && i > 4500);
      logits[j] = value;
      const want = await expectLikeCpu(op, logits, targets);
      expect(Number.isFinite(want.loss[0])).toBe(true);
    }
  });
  it('ap_loss: one +Inf positive, one -Inf positive: their rank from the reference', async () => {
    for (const value of [Infinity, -Infinity]) {
      const { logits, targets } = rankingInputs('ap_loss', 3000, 0.02, 32);
      const i = targets.findIndex((t, k) => t === 1 && k > 1000);
      logits[i] = value;
      const want = await expectLikeCpu('ap_loss', logits, targets);
      expect(Number.isFinite(want.loss[0])).toBe(true);
      expect(Number.isFinite(want.grad.logits[i])).toBe(true);
    }
    // One element: a lone infinite positive ranks first.
    await expectLikeCpu('ap_loss', Float32Array.of(Infinity), Float32Array.of(1));
    await expectLikeCpu('ap_loss', Float32Array.of(-Infinity, 0, 2), Float32Array.of(1, 0, 0));
  });
  it('ap_loss: an infinite positive meeting the same infinity (H(inf - inf)) makes the loss NaN', async () => {
    const cases: [number[], number[]][] = [
      [[Infinity, Infinity, 0.5, 0.2], [1, 0, 0, 1]],
      [[-Infinity, -Infinity, 0.5, 0.2], [1, 0, 0, 1]],
      [[Infinity, 0.1, Infinity, 0.2], [1, 0, 1, 0]],
      [[-Infinity, 0.1, -Infinity, 0.2], [1, 0, 1, 0]],
    ];
    for (const [l, t] of cases) {
      const want = await expectLikeCpu('ap_loss', Float32Array.from(l), Float32Array.from(t));
      expect(want.loss[0]).toBeNaN();
    }
  });
  it('rank_sort: an infinite positive makes both losses NaN (its own H(inf - inf))', async () => {
    for (const value of [Infinity, -Infinity]) {
      const want = await expectLikeCpu('rank_sort', Float32Array.of(value, 0.1, 0.5, -0.2), Float32Array.of(0.8, 0, 0.6, 0));
      expect(Array.from(want.loss).every(Number.isNaN)).toBe(true);
    }
  });
  it.each(['ap_loss', 'rank_sort'] as const)('%s: the largest finite scores, far from the rest, stay finite and right', async (op) => {
    const { logits, targets } = rankingInputs(op, 5000, 0.02, 33);
    const big = [3.4e38, -3.4e38, 1e30, -1e30, 2e36];
    let k = 0;
    for (let i = 0; i < 5000 && k < big.length; i += 997) logits[i] = big[k++];
    await expectLikeCpu(op, logits, targets);
  });
});

describe('ranking losses: a NaN score makes the loss it reaches NaN', () => {
  it.each(['ap_loss', 'rank_sort'] as const)('%s: NaN positive, NaN negative, NaN ignored', async (op) => {
    const base = rankingInputs(op, 2000, 0.03, 34);
    const pick = (pred: (t: number) => boolean) => base.targets.findIndex((t, i) => pred(t) && i > 700);
    for (const [what, at] of [
      ['positive', pick((t) => t > 0)],
      ['negative', pick((t) => t === 0)],
      ['ignored', pick((t) => t < 0)],
    ] as const) {
      const logits = base.logits.slice();
      logits[at] = NaN;
      const want = await expectLikeCpu(op, logits, base.targets);
      // The reference: a NaN positive reaches every loss element, a NaN negative the ranking
      // part (rank_sort's sorting part stays finite), an ignored one none.
      if (what === 'positive') expect(Array.from(want.loss).every(Number.isNaN), what).toBe(true);
      if (what === 'negative') expect([Number.isNaN(want.loss[0]), op === 'rank_sort' && Number.isFinite(want.loss[1])]).toEqual([true, op === 'rank_sort']);
      if (what === 'ignored') expect(Array.from(want.loss).every(Number.isFinite), what).toBe(true);
    }
  });
  it.each(['ap_loss', 'rank_sort'] as const)('%s: one element, two, and a NaN negative with no positive', async (op) => {
    // A lone NaN positive: AP's precision is 1 whatever its score (the reference's loss is 0);
    // Rank & Sort's own H(NaN - NaN) makes both NaN.
    const lone = await expectLikeCpu(op, Float32Array.of(NaN), asOp(op, [1]));
    expect(Array.from(lone.loss).map(Number.isNaN)).toEqual(op === 'ap_loss' ? [false] : [true, true]);
    for (const t of [[1, 1], [1, 0], [0, 1]]) {
      const two = await expectLikeCpu(op, Float32Array.of(NaN, 0.25), asOp(op, t));
      expect(Number.isNaN(two.loss[0]), `targets ${t}`).toBe(true);
    }
    await expectLikeCpu(op, Float32Array.of(NaN), Float32Array.of(0));
    // No positive: the loss is 0, NaN negative or not (the reference's rule).
    const want = await expectLikeCpu(op, Float32Array.of(NaN, 0.5, 0.2), Float32Array.of(0, 0, -1));
    expect(Array.from(want.loss)).toEqual(op === 'ap_loss' ? [0] : [0, 0]);
  });
  it.each(['ap_loss', 'rank_sort'] as const)('%s: a NaN in the sort does not disturb the same bits twice, and n beyond one sort block', async (op) => {
    const { logits, targets } = rankingInputs(op, 9000, 0.01, 35);
    for (let i = 3; i < 9000; i += 1013) logits[i] = NaN;
    const a = await dl.run(op, { logits, targets });
    const b = await dl.run(op, { logits, targets });
    const want = cpu.run(op, { logits, targets });
    expect(Number.isNaN(want.loss[0])).toBe(true);
    expectReference({ loss: a.loss, grad: a.grad.logits }, want, op, false);
    expect(Buffer.from(a.grad.logits.buffer).equals(Buffer.from(b.grad.logits.buffer))).toBe(true);
  });
});

describe('ranking losses: invalid targets on the GPU poison the loss', () => {
  // runResident's check pass refuses such targets after the call (flush() throws it); the
  // numbers handed over in the meantime must not be finite.
  const refusedLate = async () => {
    const e = await dl.flush().then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toMatchObject({ code: 'invalid_value', argument: 'targets' });
  };
  const logits = Float32Array.of(0.5, -0.2, 1.1, 0.3, -1, 0.8, 0.05, 2);
  it.each([
    ['ap_loss', 0.5],
    ['ap_loss', 2],
    ['ap_loss', -0.5],
    ['ap_loss', NaN],
    ['ap_loss', Infinity],
    ['ap_loss', -Infinity],
    ['rank_sort', 1.5],
    ['rank_sort', NaN],
    ['rank_sort', Infinity],
  ] as const)('%s target %d: NaN loss from resident targets (the host refuses them)', async (op, bad) => {
    const t = op === 'ap_loss' ? [1, 0, 1, 0, 0, -1, 0, 0] : [0.7, 0, 1, 0, 0, -1, 0, 0.2];
    const valid = Float32Array.from(t);
    const good = await resident(op, logits, valid);
    expect(Array.from(good.loss).every(Number.isFinite)).toBe(true);
    for (const at of [1, 2, 5]) {
      const targets = valid.slice();
      targets[at] = bad;
      expect(() => cpu.run(op, { logits, targets })).toThrow(expect.objectContaining({ code: 'invalid_value', argument: 'targets' }));
      const got = await resident(op, logits, targets);
      expect(Array.from(got.loss).every(Number.isNaN), `${op} targets[${at}] = ${bad}: loss ${Array.from(got.loss)}`).toBe(true);
      await refusedLate();
    }
    // Also with no valid positive, where the loss would otherwise be 0.
    const none = Float32Array.from(t, (v) => (v > 0 ? 0 : v));
    none[3] = bad;
    expect(Array.from((await resident(op, logits, none)).loss).every(Number.isNaN)).toBe(true);
    await refusedLate();
  });
  it('rank_sort: any negative target is ignored, -Inf and -0 included, as on the host', async () => {
    await expectLikeCpu('rank_sort', logits, Float32Array.of(0.7, -Infinity, 1, -0, 0, -1e-30, 0, 0.2));
  });
});
