// rotated_iou_loss and pairwise_probiou on Node's WebGPU (Dawn): every fixture case under both
// plans, one-element launches of every variant, the angle's period pi far outside [-pi, pi], KFIoU's
// deltas, and finite outputs for every finite input (ops.md, "Finite everywhere"), extremes included.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { caseInputs, caseOptions, compareCase, parseFixtures } from '../../../src/fixtures';
import { rand } from '../../helpers/counting';
import { nodeContext } from '../../helpers/node-gpu';

type Detloss = Awaited<ReturnType<typeof nodeContext>>;
const fixtures = parseFixtures(readFileSync(new URL('../../fixtures/rotated.json', import.meta.url), 'utf8'), 'rotated');

export const VARIANT_CONFIGS: Record<string, unknown>[] = [
  { variant: 'probiou' },
  { variant: 'probiou', ciou: true },
  { variant: 'gwd' },
  { variant: 'gwd', fun: 'sqrt', tau: 1, alpha: 2, normalize: false },
  { variant: 'gwd', fun: 'none' },
  { variant: 'kld' },
  { variant: 'kld', tau: 1, fun: 'sqrt' },
  { variant: 'kld', sqrt: false, fun: 'none', alpha: 0.5 },
  { variant: 'jd' },
  { variant: 'kld_symmax' },
  { variant: 'kld_symmin', tau: 2 },
  { variant: 'kfiou' },
  { variant: 'kfiou', fun: 'ln' },
  { variant: 'kfiou', fun: 'exp' },
];

let soft: Detloss;
let hard: Detloss;
beforeAll(async () => {
  soft = await nodeContext({ plan: 'software' });
  hard = await nodeContext({ plan: 'hardware' });
});
afterAll(() => [soft, hard].forEach((d) => d?.destroy()));

const shaped = (rows: number[][], cols: number) => ({ data: Float32Array.from(rows.flat()), shape: [rows.length, cols] });

describe('rotated boxes on the GPU: the fixtures', () => {
  it.each(fixtures.map((c) => [c.name, c] as const))('%s, both plans', async (_, c) => {
    for (const dl of [soft, hard]) {
      const got = await dl.run(c.op, caseInputs(c), caseOptions(c));
      expect(compareCase(c, got).detail ?? 'ok').toBe('ok');
    }
  });
});

describe('rotated boxes on the GPU: launches and angles', () => {
  const pred = [[10, 20, 30, 8, 0.4]];
  const target = [[12, 19, 26, 9, 0.7]];
  it.each(VARIANT_CONFIGS.map((p) => [JSON.stringify(p), p] as const))('one row, %s: the float64 reference within float32', async (_, params) => {
    const inputs = { pred: shaped(pred, 5), target: shaped(target, 5) };
    const want = cpu.run('rotated_iou_loss', inputs as never, { ...params, reduction: 'none' } as never);
    const got = await soft.run('rotated_iou_loss', inputs as never, { ...params, reduction: 'none' } as never);
    expect(got.loss[0]).toBeCloseTo(want.loss[0], 5);
    const scale = Math.max(...Array.from(want.grad.pred, Math.abs));
    for (let k = 0; k < 5; k++) expect(Math.abs(got.grad.pred[k] - want.grad.pred[k])).toBeLessThan(2e-4 * scale + 1e-7);
  });

  it('an infinite angle gives NaN, as the reference (cos and sin of it are not defined)', async () => {
    // The fuzzer's find (seed 2031, case 728): theta = -Infinity gave ProbIoU 0.907, the reference NaN.
    for (const th of [Infinity, -Infinity]) {
      const p = [[-0.0617, 0.3277, 1.2, 0.746, th], [1, 2, 3, 4, 0.5]];
      const t = [[-0.0617, 0.3277, 1.5587, 0.746, -0.785], [1, 2, 3, 4, th]];
      for (const variant of ['probiou', 'gwd', 'kld', 'jd', 'kld_symmax', 'kld_symmin', 'kfiou']) {
        const inputs = { pred: shaped(p, 5), target: shaped(t, 5) };
        const want = cpu.run('rotated_iou_loss', inputs as never, { variant, reduction: 'none' } as never);
        const got = await soft.run('rotated_iou_loss', inputs as never, { variant, reduction: 'none' } as never);
        for (let k = 0; k < 2; k++) {
          expect(Number.isNaN(want.loss[k]), `${variant} ${th} row ${k}: the reference`).toBe(true);
          expect(got.loss[k], `${variant} ${th} row ${k}`).toBeNaN();
        }
      }
      const got = await soft.run('pairwise_probiou', { a: shaped(p, 5), b: shaped(t, 5) } as never, {} as never);
      // (a[1] and b[0] have finite angles: that entry is a number)
      expect(Array.from(got.loss).map(Number.isNaN)).toEqual([true, true, false, true]);
    }
  });

  it('ProbIoU of boxes so small that 4r << eps (sides 1e-3 to 1e-8): the reference, not log1p(-1)', async () => {
    // The fuzzer's find (seed 101, case 1975): z = D/(4r + eps) near 0 made z - 1 round to -1 and
    // log1p(-1 + eps) -Inf, so boxes ~1 apart got ProbIoU 0.99996 (the reference: -5e-10).
    const a = [[0.9994210600852966, 0.9994944930076599, 9.999999974752427e-7, 0.0006850817590020597, -7221.603515625], [0, 0, 1e-3, 2e-3, 0.3], [5e-3, 0, 1e-3, 1e-3, 0]];
    const b = [[-0.0003479548613540828, 0.00021087961795274168, 0.0006546393851749599, 9.99999993922529e-9, -0.8095172643661499], [0.01, 0, 1e-3, 2e-3, 0.1]];
    for (const eps of [1e-9, 1e-7]) {
      const inputs = { a: shaped(a, 5), b: shaped(b, 5) };
      const want = cpu.run('pairwise_probiou', inputs as never, { eps } as never);
      const got = await soft.run('pairwise_probiou', inputs as never, { eps } as never);
      for (let k = 0; k < want.loss.length; k++) expect(Math.abs(got.loss[k] - want.loss[k]), `eps ${eps}, entry ${k}`).toBeLessThan(1e-5);
      const rows = { pred: shaped([a[0], a[1]], 5), target: shaped([b[0], b[1]], 5) };
      const wantL = cpu.run('rotated_iou_loss', rows as never, { variant: 'probiou', eps, reduction: 'none' } as never);
      const gotL = await soft.run('rotated_iou_loss', rows as never, { variant: 'probiou', eps, reduction: 'none' } as never);
      for (let k = 0; k < 2; k++) expect(Math.abs(gotL.loss[k] - wantL.loss[k]), `loss, eps ${eps}, row ${k}`).toBeLessThan(1e-5);
    }
  });

  it.each(VARIANT_CONFIGS.map((p) => [JSON.stringify(p), p] as const))('%s: theta + k pi, |k| up to 3000, gives the loss and gradient of theta', async (_, params) => {
    const n = 64;
    const base = Array.from({ length: n }, (_, i) => i);
    const r = Array.from(rand(6 * n, 5, -1, 1));
    const p = base.map((i) => [50 + 20 * r[i], 40 + 20 * r[n + i], 20 + 15 * r[2 * n + i], 12 + 8 * r[3 * n + i], 1.5 * r[4 * n + i]]);
    const t = base.map((i) => [p[i][0] + 5 * r[5 * n + i], p[i][1] - 3 * r[i], p[i][2] * 1.2, p[i][3] * 0.9, p[i][4] + 0.6 * r[2 * n + i]]);
    const ks = [1, -2, 7, 100, -3000];
    const wrapped = (rows: number[][], j: number) => rows.map((row, i) => [...row.slice(0, 4), Math.fround(row[4] + ks[(i + j) % ks.length] * Math.PI)]);
    const opts = { ...params, reduction: 'none' } as never;
    const pw = wrapped(p, 0), tw = wrapped(t, 2);
    const ref = cpu.run('rotated_iou_loss', { pred: shaped(pw, 5), target: shaped(tw, 5) } as never, opts);
    const got = await soft.run('rotated_iou_loss', { pred: shaped(pw, 5), target: shaped(tw, 5) } as never, opts);
    for (let i = 0; i < n; i++) {
      expect(Math.abs(got.loss[i] - ref.loss[i]), `row ${i}`).toBeLessThan(1e-4 * (1 + Math.abs(ref.loss[i])));
      const scale = Math.max(...Array.from(ref.grad.pred.slice(5 * i, 5 * i + 5), Math.abs));
      for (let k = 0; k < 5; k++) expect(Math.abs(got.grad.pred[5 * i + k] - ref.grad.pred[5 * i + k]), `row ${i}, component ${k}`).toBeLessThan(2e-3 * scale + 1e-6);
    }
  });

  it('kfiou with deltas: the centre term and its gradient come from the deltas, grad.pred[:, 0:2] is 0', async () => {
    const inputs = {
      pred: shaped([[10, 20, 30, 8, 0.4], [0, 0, 5, 5, 1]], 5),
      target: shaped([[40, 10, 26, 9, 0.7], [1, 1, 4, 6, 0]], 5),
      predDelta: shaped([[0.05, -0.3], [1, 0.01]], 2),
      targetDelta: shaped([[0, 0], [0.2, 0.02]], 2),
    };
    const want = cpu.run('rotated_iou_loss', inputs as never, { variant: 'kfiou', reduction: 'sum' });
    const got = await hard.run('rotated_iou_loss', inputs as never, { variant: 'kfiou', reduction: 'sum' });
    expect(got.loss[0]).toBeCloseTo(want.loss[0], 5);
    expect(Array.from(got.grad.predDelta)).toEqual(Array.from(want.grad.predDelta, (v) => Math.fround(v)));
    for (const i of [0, 1, 5, 6]) expect(got.grad.pred[i]).toBe(0);
    const none = await hard.run('rotated_iou_loss', { pred: inputs.pred, target: inputs.target } as never, { variant: 'kfiou' });
    expect(none.grad.predDelta).toBeUndefined();
  });
});

describe('rotated boxes on the GPU: finite everywhere', () => {
  // Rows from the edges of float32: zero, subnormal-free tiny, thin, huge and largest sides, centres
  // far apart, angles far outside [-pi, pi].
  const sides = [0, 1e-30, 1e-7, 1e-3, 1, 37, 1e4, 1e7, 3e10, 1e20, 3.4e38, -5];
  const centres = [0, 1e-3, 1e6, 1e20, -3.4e38, 3.4e38];
  const angles = [0, 1e-7, 1.5707964, 40, -1e5, 3e38];
  function rows(seed: number, n: number) {
    const r = Array.from(rand(10 * n, seed, 0, 1));
    const pick = <T,>(xs: T[], u: number) => xs[Math.floor(u * xs.length) % xs.length];
    const p: number[][] = [], t: number[][] = [];
    for (let i = 0; i < n; i++) {
      const u = r.slice(10 * i, 10 * i + 10);
      p.push([pick(centres, u[0]), pick(centres, u[1]), pick(sides, u[2]), pick(sides, u[3]), pick(angles, u[4])]);
      t.push([pick(centres, u[5]), pick(centres, u[6]), pick(sides, u[7]), pick(sides, u[8]), pick(angles, u[9])]);
    }
    // Pairs near each other too: the same box, and one at a large centre with a tiny offset.
    for (const s of sides) for (const a of angles) {
      p.push([1e6, -1e6, s, Math.abs(s) / 3, a]);
      // (held within float32: 1.01 times its largest value would be Infinity, a non-finite input)
      t.push([1e6 + 0.5, -1e6, Math.min(s * 1.01, 3.4e38), Math.abs(s) / 3, a + 0.01]);
      p.push([3, 4, s, 1e-3, a]);
      t.push([3, 4, s, 1e-3, a]);
    }
    return { p, t };
  }
  it.each(VARIANT_CONFIGS.map((p) => [JSON.stringify(p), p] as const))('%s: loss and gradient finite for every finite row', async (_, params) => {
    const { p, t } = rows(17, 400);
    expect([...p, ...t].flat().every((v) => Number.isFinite(Math.fround(v)))).toBe(true);
    const inputs: Record<string, unknown> = { pred: shaped(p, 5), target: shaped(t, 5) };
    const got = await soft.run('rotated_iou_loss', inputs as never, { ...params, reduction: 'none' } as never);
    const bad: string[] = [];
    for (let i = 0; i < p.length; i++) {
      const g = Array.from(got.grad.pred.slice(5 * i, 5 * i + 5));
      if (!Number.isFinite(got.loss[i]) || !g.every(Number.isFinite)) bad.push(`pred ${JSON.stringify(p[i])} target ${JSON.stringify(t[i])}: loss ${got.loss[i]}, grad ${JSON.stringify(g)}`);
    }
    expect(bad.slice(0, 5), `${bad.length} of ${p.length} rows not finite`).toEqual([]);
  });
  it('pairwise_probiou: finite for every finite pair', async () => {
    const { p, t } = rows(18, 60);
    const got = await soft.run('pairwise_probiou', { a: shaped(p, 5), b: shaped(t, 5) } as never);
    const bad = Array.from(got.loss).filter((v) => !Number.isFinite(v)).length;
    expect(bad).toBe(0);
  });
});
