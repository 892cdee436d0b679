// ap_loss and rank_sort on Node's WebGPU (Dawn over SwiftShader): every fixture case, one-element
// and empty launches, no positives, GPU-resident inputs, the refusals, determinism (the same
// bits twice), the conservation of the update on random inputs, and larger random cases
// against the float64 CPU reference.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { DetlossError } from '../../../src/errors';
import { caseInputs, caseOptions, compareCase, parseFixtures } from '../../../src/fixtures';
import { rand } from '../../helpers/counting';
import { nodeContext } from '../../helpers/node-gpu';
import { conservation, rankingInputs } from '../../helpers/ranking-inputs';

type Detloss = Awaited<ReturnType<typeof nodeContext>>;

const fixtures = parseFixtures(readFileSync(new URL('../../fixtures/ranking.json', import.meta.url), 'utf8'), 'ranking.json');
const OPS = ['ap_loss', 'rank_sort'] as const;

let dl: Detloss;
beforeAll(async () => {
  dl = await nodeContext();
});
afterAll(() => dl?.destroy());

/** Largest |a - b| / max(1e-3, |b|) (the scale of an update at these sizes). */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>, floor: number): number {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) / Math.max(floor, Math.abs(b[i])));
  return m;
}

describe('ranking losses on the GPU against the fixtures', () => {
  it('has the 22 cases of both ops', () => {
    expect(fixtures.length).toBe(22);
    expect(new Set(fixtures.map((c) => c.op))).toEqual(new Set(OPS));
  });
  it.each(fixtures.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const got = await dl.run(c.op, caseInputs(c), caseOptions(c));
    const cmp = compareCase(c, got);
    expect(cmp.detail ?? 'ok').toBe('ok');
    expect(got.shape).toEqual(c.expected.loss!.shape);
  });
  it('runs resident: the same numbers from GPU-resident inputs as from host arrays', async () => {
    for (const c of fixtures.filter((x) => x.name.includes('n=257'))) {
      const host = await dl.run(c.op, caseInputs(c), caseOptions(c));
      const inputs = caseInputs(c);
      const bufs: GPUBuffer[] = [];
      const onGpu = Object.fromEntries(
        Object.entries(inputs).map(([k, t]) => {
          const b = dl.device.createBuffer({ size: Math.max(4, t.data.byteLength), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
          dl.device.queue.writeBuffer(b, 0, t.data as Float32Array<ArrayBuffer>);
          bufs.push(b);
          return [k, { buffer: b, shape: t.shape }];
        }),
      );
      const res = await dl.runResident(c.op, onGpu, caseOptions(c));
      expect(res.shape).toEqual(host.shape);
      const loss = await readBuffer(dl, res.loss, res.lossBytes);
      const grad = await readBuffer(dl, res.grad.logits, res.gradBytes.logits);
      res.release();
      bufs.forEach((b) => b.destroy());
      expect(Array.from(loss)).toEqual(Array.from(host.loss));
      expect(Array.from(grad)).toEqual(Array.from(host.grad.logits));
    }
  });
});

async function readBuffer(d: Detloss, src: GPUBuffer, bytes: number): Promise<Float32Array> {
  const staging = d.device.createBuffer({ size: Math.max(4, bytes), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = d.device.createCommandEncoder();
  enc.copyBufferToBuffer(src, 0, staging, 0, bytes);
  d.device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = new Float32Array(staging.getMappedRange(0, bytes).slice(0));
  staging.destroy();
  return out;
}

describe('ranking losses: small launches', () => {
  it.each(OPS)('%s: one element (a positive, a negative, an ignored one) and no element', async (op) => {
    for (const t of [1, 0, -1]) {
      const logits = Float32Array.of(0.25);
      const targets = Float32Array.of(op === 'rank_sort' && t === 1 ? 0.6 : t);
      const got = await dl.run(op, { logits, targets });
      const want = cpu.run(op, { logits, targets });
      expect(got.shape).toEqual(want.shape);
      // WGSL has no signed zero: -0 and +0 are the same number here.
      const same = (a: ArrayLike<number>) => Array.from(a, (v) => Math.fround(v) + 0);
      expect(same(got.loss)).toEqual(same(want.loss));
      expect(same(got.grad.logits)).toEqual(same(want.grad.logits));
    }
    const empty = await dl.run(op, { logits: new Float32Array(0), targets: new Float32Array(0) });
    expect(Array.from(empty.loss)).toEqual(op === 'ap_loss' ? [0] : [0, 0]);
    expect(empty.shape).toEqual(op === 'ap_loss' ? [] : [2]);
    expect(empty.grad.logits.length).toBe(0);
  });
  it.each(OPS)('%s: no positive gives a zero loss and zero update, even over stale pooled buffers', async (op) => {
    const { logits, targets } = rankingInputs(op, 3000, 0.05, 7);
    await dl.run(op, { logits, targets });
    const none = targets.map((t) => (t > 0 ? 0 : t));
    const got = await dl.run(op, { logits, targets: none });
    expect(Array.from(got.loss).every((v) => v === 0)).toBe(true);
    expect(got.grad.logits.every((v) => v === 0)).toBe(true);
  });
  it.each(OPS)('%s: grad: false gives the same loss, and gradOutput scales the update', async (op) => {
    const { logits, targets } = rankingInputs(op, 2000, 0.02, 11);
    const full = await dl.run(op, { logits, targets });
    const lossOnly = await dl.run(op, { logits, targets }, { grad: false });
    expect(Array.from(lossOnly.loss)).toEqual(Array.from(full.loss));
    expect(Object.keys(lossOnly.grad)).toEqual([]);
    const scaled = await dl.run(op, { logits, targets, gradOutput: Float32Array.of(-2) });
    expect(relErr(scaled.grad.logits, full.grad.logits.map((v) => -2 * v), 1e-6)).toBeLessThan(1e-6);
  });
});

describe('ranking losses: refusals', () => {
  const logits = rand(8, 3);
  const targets = Float32Array.of(1, 0, 0, -1, 1, 0, 0, 0);
  const refusals: [string, Record<string, unknown>, Record<string, unknown>, string, string][] = [
    ['ap_loss', {}, { reduction: 'sum' }, 'invalid_param', 'reduction'],
    ['rank_sort', {}, { reduction: 'none' }, 'invalid_param', 'reduction'],
    ['ap_loss', { weight: new Float32Array(8).fill(1) }, {}, 'invalid_param', 'weight'],
    ['rank_sort', { weight: new Float32Array(8).fill(1) }, {}, 'invalid_param', 'weight'],
    ['ap_loss', {}, { avgFactor: 2 }, 'invalid_param', 'avgFactor'],
    ['rank_sort', {}, { avgFactor: 2 }, 'invalid_param', 'avgFactor'],
    ['ap_loss', { targets: Float32Array.of(1, 0, 0.5, 0, 0, 0, 0, 0) }, {}, 'invalid_value', 'targets'],
    ['ap_loss', { targets: Float32Array.of(1, 0, 0, 2, 0, 0, 0, 0) }, {}, 'invalid_value', 'targets'],
    ['rank_sort', { targets: Float32Array.of(1.5, 0, 0, 0, 0, 0, 0, 0) }, {}, 'invalid_value', 'targets'],
    ['rank_sort', { targets: Float32Array.of(0.5, 0, NaN, 0, 0, 0, 0, 0) }, {}, 'invalid_value', 'targets'],
    ['ap_loss', {}, { delta: 0 }, 'invalid_param', 'delta'],
  ];
  it.each(refusals)('%s %j %j: %s naming %s, on the GPU and the CPU', async (op, extra, options, code, argument) => {
    const inputs = { logits, targets, ...extra };
    const onGpu = await dl.run(op, inputs, options).then(
      () => undefined,
      (e: unknown) => e,
    );
    let onCpu: unknown;
    try {
      cpu.run(op, inputs, options);
    } catch (e) {
      onCpu = e;
    }
    for (const e of [onGpu, onCpu]) {
      expect(e).toBeInstanceOf(DetlossError);
      expect((e as DetlossError).code).toBe(code);
      expect((e as DetlossError).argument).toBe(argument);
    }
  });
  // The synchronous path (detloss/tfjs) runs program ops too: test/frameworks/tfjs-ranking.test.ts
  // holds it to dl.run; here it must refuse host arrays, which it cannot upload and wait for.
  it('the synchronous path refuses host arrays for a program op, naming them', async () => {
    const { runResidentSync } = await import('../../helpers/sync');
    expect(() => runResidentSync(dl, 'ap_loss', { logits: Float32Array.of(1, 2) as never, targets: Float32Array.of(1, 0) as never }, {})).toThrow(
      expect.objectContaining({ code: 'invalid_value', argument: 'inputs' }),
    );
  });
});

describe('ranking losses: determinism and larger cases against the CPU', () => {
  it.each(OPS)('%s: the same inputs give the same bits twice', async (op) => {
    const { logits, targets } = rankingInputs(op, 20000, 0.01, 5);
    const a = await dl.run(op, { logits, targets });
    const b = await dl.run(op, { logits, targets });
    expect(Buffer.from(a.loss.buffer).equals(Buffer.from(b.loss.buffer))).toBe(true);
    expect(Buffer.from(a.grad.logits.buffer).equals(Buffer.from(b.grad.logits.buffer))).toBe(true);
  });
  it.each(OPS)('%s: random cases up to 30000 scores match the float64 reference', async (op) => {
    for (const [n, frac, seed] of [
      [100, 0.1, 1],
      [5000, 0.01, 2],
      [30000, 0.005, 3],
      [4000, 0.3, 4],
    ] as const) {
      const { logits, targets } = rankingInputs(op, n, frac, seed);
      const got = await dl.run(op, { logits, targets });
      const want = cpu.run(op, { logits, targets });
      for (let i = 0; i < want.loss.length; i++) expect(Math.abs(got.loss[i] - want.loss[i]), `${op} n=${n} loss[${i}]`).toBeLessThan(1e-5 + 1e-4 * Math.abs(want.loss[i]));
      const scale = want.grad.logits.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      expect(relErr(got.grad.logits, want.grad.logits, scale * 1e-3), `${op} n=${n}`).toBeLessThan(1e-3);
    }
  });
});

describe('ranking losses: conservation of the update', () => {
  it.each(OPS)('%s: the negatives sum to the ranking loss, the positives to minus it, on GPU and CPU', async (op) => {
    for (const [n, frac, seed] of [
      [500, 0.05, 21],
      [8000, 0.01, 22],
      [3000, 0.2, 23],
    ] as const) {
      const { logits, targets } = rankingInputs(op, n, frac, seed);
      const c = cpu.run(op, { logits, targets });
      const cc = conservation(c.loss, c.grad.logits, targets);
      expect(Math.abs(cc.negatives - cc.ranking), `cpu ${op} n=${n}`).toBeLessThan(1e-12);
      expect(Math.abs(cc.positives + cc.ranking), `cpu ${op} n=${n}`).toBeLessThan(1e-12);
      const g = await dl.run(op, { logits, targets });
      const gc = conservation(g.loss, g.grad.logits, targets);
      expect(gc.ranking).toBeGreaterThan(0);
      expect(Math.abs(gc.negatives - gc.ranking), `gpu ${op} n=${n}`).toBeLessThan(1e-4 * gc.ranking);
      expect(Math.abs(gc.positives + gc.ranking), `gpu ${op} n=${n}`).toBeLessThan(1e-4 * gc.ranking);
    }
  });
});

describe('ranking losses through the typed wrappers', () => {
  it('dl.apLoss and dl.rankSortLoss give what dl.run gives, and refuse a weight', async () => {
    const ctx = await nodeContext();
    for (const [op, call] of [
      ['ap_loss', (l: Float32Array, t: Float32Array, o = {}) => ctx.apLoss(l, t, o)],
      ['rank_sort', (l: Float32Array, t: Float32Array, o = {}) => ctx.rankSortLoss(l, t, o)],
    ] as const) {
      const { logits, targets } = rankingInputs(op, 500, 0.05, 11);
      const got = await call(logits, targets, { delta: 0.7, gradOutput: Float32Array.of(2) });
      const want = await ctx.run(op, { logits, targets, gradOutput: Float32Array.of(2) }, { delta: 0.7 });
      expect(got.loss).toEqual(want.loss);
      expect(got.grad.logits).toEqual(want.grad.logits);
      await expect(call(logits, targets, { weight: new Float32Array(500) } as never)).rejects.toMatchObject({ code: 'invalid_param', argument: 'weight' });
    }
    ctx.destroy();
  });
});
