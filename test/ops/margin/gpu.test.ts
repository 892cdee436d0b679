// nll, hinge, hinge_embedding, margin_ranking and exponential on Node's WebGPU (Dawn): every
// fixture case under both plans and both vector widths (and nll with a workgroup and a subgroup
// per row), the vec4 kernels on fixture data cut to a multiple of four, one-element launches,
// margin_ranking's two gradients, exponential's cap, nll's 'mean' denominator summed on the GPU,
// and the refusal of targets other than -1 and +1.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { DetlossError } from '../../../src/errors';
import { caseInputs, caseOptions, compareCase, parseFixtures, type FixtureCase } from '../../../src/fixtures';
import { rand } from '../../helpers/counting';
import { nodeContext } from '../../helpers/node-gpu';
import { note } from '../../helpers/note';

type Detloss = Awaited<ReturnType<typeof nodeContext>>;

const OPS = ['nll', 'hinge', 'hinge_embedding', 'margin_ranking', 'exponential'] as const;
const ELEMENT_OPS = ['hinge', 'hinge_embedding', 'margin_ranking', 'exponential'] as const;
const fixtures = OPS.flatMap((op) => parseFixtures(readFileSync(new URL(`../../fixtures/${op}.json`, import.meta.url), 'utf8'), op));

let soft: Detloss;
let hard: Detloss;
let scalar: Detloss;
let vec: Detloss;
let wgRows: Detloss;
let sgRows: Detloss;
beforeAll(async () => {
  soft = await nodeContext({ plan: 'software' });
  hard = await nodeContext({ plan: 'hardware' });
  scalar = await nodeContext({ plan: { vectorWidth: 1 } });
  vec = await nodeContext({ plan: { vectorWidth: 4 } });
  wgRows = await nodeContext({ rowThreshold: 0 });
  sgRows = await nodeContext({ plan: { kind: 'hardware', rowThreshold: 0, rowLanes: 'subgroup' } });
});
afterAll(() => [soft, hard, scalar, vec, wgRows, sgRows].forEach((d) => d?.destroy()));

/** The comparison with the case, and the largest |got - want| / max(1, |want|) over loss and gradients. */
async function runCase(dl: Detloss, c: FixtureCase) {
  const got = await dl.run(c.op, caseInputs(c), caseOptions(c));
  let rel = 0;
  const pairs: [ArrayLike<number>, number[]][] = [[got.loss, c.expected.loss!.data], ...Object.entries(c.expected.grad ?? {}).map(([k, g]) => [got.grad[k] ?? [], g.data] as [ArrayLike<number>, number[]])];
  for (const [a, b] of pairs) for (let i = 0; i < b.length; i++) rel = Math.max(rel, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  return { ...compareCase(c, got), rel };
}

/** A fixture case of an element-wise op cut to its first `m` elements, and the CPU's numbers for it as the expected ones. */
function cut(c: FixtureCase, m: number): FixtureCase {
  const inputs = Object.fromEntries(
    Object.entries(c.inputs).map(([k, t]) => [k, k === 'gradOutput' && t.shape.length === 0 ? t : { ...t, shape: [m], data: t.data.slice(0, m) }]),
  );
  const ref = cpu.run(c.op, caseInputs({ ...c, inputs }), caseOptions(c));
  return {
    ...c,
    name: `${c.name} cut to ${m}`,
    inputs,
    expected: {
      loss: { shape: ref.shape, data: Array.from(ref.loss) },
      grad: Object.fromEntries(Object.entries(ref.grad).map(([k, g]) => [k, { shape: [m], data: Array.from(g) }])),
    },
  };
}

describe('margin losses on the GPU against the fixtures', () => {
  it('every case passes under the software and the hardware plan, and the max errors are those reported', async () => {
    const worst: Record<string, { loss: number; grad: number; rel: number }> = {};
    const bad: string[] = [];
    for (const [plan, dl] of [['software', soft], ['hardware', hard]] as const) {
      for (const c of fixtures) {
        const cmp = await runCase(dl, c);
        if (!cmp.pass) bad.push(`${plan} ${c.name}: ${cmp.detail}`);
        const w = (worst[c.op] ??= { loss: 0, grad: 0, rel: 0 });
        w.rel = Math.max(w.rel, cmp.rel);
        w.loss = Math.max(w.loss, cmp.lossErr);
        w.grad = Math.max(w.grad, cmp.gradErr);
      }
    }
    expect(bad).toEqual([]);
    expect(Object.keys(worst).sort()).toEqual([...OPS].sort());
    for (const [op, w] of Object.entries(worst)) {
      expect(Number.isFinite(w.loss) && Number.isFinite(w.grad), op).toBe(true);
      note(`max abs error vs fixtures, ${op}: loss ${w.loss.toExponential(2)}, grad ${w.grad.toExponential(2)} (relative ${w.rel.toExponential(2)})`);
    }
  });

  it('every element-wise case passes with the scalar and the vec4 kernels; vec4 runs on the cases cut to 128 elements', async () => {
    const cases = fixtures.filter((c) => (ELEMENT_OPS as readonly string[]).includes(c.op) && c.inputs.targets.shape[0] > 0);
    for (const [width, dl] of [[1, scalar], [4, vec]] as const) {
      const bad: string[] = [];
      const kernels = new Set<string>();
      for (const c of [...cases, ...cases.map((c) => cut(c, 128)), ...cases.map((c) => cut(c, 4))]) {
        const cmp = await runCase(dl, c);
        if (!cmp.pass) bad.push(`${c.name}: ${cmp.detail}`);
        kernels.add(dl.stats().lastCall!.kernel);
      }
      expect(bad, `vectorWidth ${width}`).toEqual([]);
      const vec4 = [...kernels].filter((k) => k.includes('+vec4:'));
      // 129 elements stay scalar; 128 and 4 take vec4 under width 4, for each of the three modules.
      expect(vec4.sort(), [...kernels].join(', ')).toEqual(width === 4 ? ['hinge_embedding+vec4:main', 'margin+vec4:main', 'margin_ranking+vec4:main'] : []);
    }
  });

  it('every nll case passes with a thread, a workgroup and a subgroup per row', async () => {
    expect(sgRows.device.features.has('subgroups')).toBe(true);
    const cases = fixtures.filter((c) => c.op === 'nll');
    for (const [how, dl, kernel] of [['thread', soft, 'nll:main'], ['workgroup', wgRows, 'nll:main_rows'], ['subgroup', sgRows, 'nll+subgroup:main_rows']] as const) {
      const bad: string[] = [];
      for (const c of cases) {
        const cmp = await runCase(dl, c);
        if (!cmp.pass) bad.push(`${how} ${c.name}: ${cmp.detail}`);
        if (c.inputs.labels.shape[0] > 0) expect(dl.stats().lastCall!.kernel, `${how} ${c.name}`).toBe(kernel);
      }
      expect(bad).toEqual([]);
    }
  });
});

describe('margin losses on the GPU: edges', () => {
  const f32 = (...v: number[]) => Float32Array.from(v);

  it.each(['none', 'mean', 'sum'] as const)('one-element launches match the CPU (%s), for every op and both widths', async (reduction) => {
    const one: [string, Record<string, unknown>, Record<string, unknown>][] = [
      ['hinge', { logits: f32(0.25), targets: f32(-1) }, { margin: 0.5 }],
      ['hinge', { logits: f32(1), targets: f32(1) }, {}],
      ['hinge_embedding', { pred: f32(0.75), targets: f32(-1) }, {}],
      ['hinge_embedding', { pred: f32(-2), targets: f32(1) }, {}],
      ['margin_ranking', { input1: f32(0.5), input2: f32(1.5), targets: f32(1) }, { margin: 0.1 }],
      ['exponential', { logits: f32(-1.5), targets: f32(1) }, {}],
      ['nll', { logProbs: { data: f32(-0.5, -1.5, -3), shape: [1, 3] }, labels: Int32Array.of(1), classWeight: f32(1, 2.5, 1) }, {}],
    ];
    for (const dl of [scalar, vec, wgRows]) {
      for (const [op, inputs, params] of one) {
        const opts = { ...params, reduction };
        const ref = cpu.run(op as 'hinge', inputs as never, opts);
        const got = await dl.run(op as 'hinge', inputs as never, opts);
        expect(got.loss.length).toBe(1);
        expect(got.loss[0], `${op} ${reduction}`).toBeCloseTo(ref.loss[0], 5);
        expect(Object.keys(got.grad).sort()).toEqual(Object.keys(ref.grad).sort());
        for (const [k, g] of Object.entries(ref.grad)) {
          expect(Array.from(got.grad[k]).map((v) => Math.fround(v)), `${op} grad.${k}`).toEqual(Array.from(g).map((v) => Math.fround(v)));
        }
      }
    }
  });

  it('margin_ranking returns both gradients, opposite, with weight and gradOutput, scalar and vec4', async () => {
    const n = 4096;
    const input1 = rand(n, 1);
    const input2 = rand(n, 2);
    const targets = rand(n, 3, -1, 1).map((v) => (v < 0 ? -1 : 1));
    const weight = rand(n, 4, 0, 2);
    const gradOutput = rand(n, 5, -1, 1);
    for (const dl of [scalar, vec, hard]) {
      for (const [opts, extra] of [
        [{ reduction: 'none', margin: 0.2 }, { weight, gradOutput }],
        [{ reduction: 'mean', margin: 0.2 }, { weight }],
        [{ reduction: 'sum' }, { gradOutput: f32(-0.5) }],
      ] as const) {
        const inputs = { input1, input2, targets, ...extra };
        const ref = cpu.run('margin_ranking', inputs, opts);
        const got = await dl.run('margin_ranking', inputs, opts);
        expect(Object.keys(got.grad).sort()).toEqual(['input1', 'input2']);
        let active = 0;
        for (let i = 0; i < n; i++) {
          expect(got.grad.input2[i] + got.grad.input1[i]).toBe(0);
          expect(got.grad.input1[i]).toBeCloseTo(ref.grad.input1[i], 6);
          expect(got.grad.input2[i]).toBeCloseTo(ref.grad.input2[i], 6);
          if (got.grad.input1[i] !== 0) active++;
        }
        // both sides of the hinge are present
        expect(active).toBeGreaterThan(n / 4);
        expect(active).toBeLessThan(n);
        expect(Math.abs(got.loss.length === 1 ? got.loss[0] - ref.loss[0] : 0)).toBeLessThan(1e-4 * (1 + Math.abs(ref.loss[0])));
      }
    }
  });

  it('exponential past the cap: finite loss exp(80) and zero gradient, scalar and vec4', async () => {
    const logits = f32(90, -90, 1e30, -1e30, 80, 79, 0.5, -3e38);
    const targets = f32(-1, 1, -1, 1, -1, -1, 1, 1);
    for (const dl of [scalar, vec]) {
      const r = await dl.run('exponential', { logits, targets }, { reduction: 'none' });
      const cap = Math.fround(Math.exp(80));
      for (let i = 0; i < 4; i++) {
        expect(r.loss[i] / cap).toBeCloseTo(1, 4);
        expect(r.grad.logits[i]).toBe(0);
      }
      expect(r.loss[4] / cap).toBeCloseTo(1, 4);
      // exactly at the cap the gradient passes (clamp)
      expect(r.grad.logits[4] / cap).toBeCloseTo(1, 4);
      expect(r.grad.logits[5] / Math.exp(79)).toBeCloseTo(1, 4);
      expect(r.loss[7] / cap).toBeCloseTo(1, 4);
      expect(Array.from(r.loss).every(Number.isFinite)).toBe(true);
      expect(Array.from(r.grad.logits).every(Number.isFinite)).toBe(true);
      const s = await dl.run('exponential', { logits, targets }, { reduction: 'sum' });
      expect(Number.isFinite(s.loss[0])).toBe(true);
    }
  });

  it("nll 'mean' on resident inputs sums its denominator on the GPU (classWeight, ignored rows)", async () => {
    const n = 1001;
    const c = 6;
    const logProbs = rand(n * c, 1, -6, 0);
    const labels = Int32Array.from({ length: n }, (_, i) => (i % 9 === 4 ? -1 : (i * 5) % c));
    const classWeight = rand(c, 3, 0.2, 2);
    const weight = rand(n, 4, 0, 2);
    const ref = cpu.run('nll', { logProbs: { data: logProbs, shape: [n, c] }, labels, classWeight, weight }, { ignoreIndex: -1 });
    const upload = (dl: Detloss, a: Float32Array | Int32Array) => {
      const b = dl.device.createBuffer({ size: Math.max(16, a.byteLength), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
      dl.device.queue.writeBuffer(b, 0, a.buffer, a.byteOffset, a.byteLength);
      return b;
    };
    for (const dl of [soft, hard, wgRows]) {
      const got = await dl.run(
        'nll',
        {
          logProbs: { buffer: upload(dl, logProbs), shape: [n, c] },
          labels: { buffer: upload(dl, labels), shape: [n] },
          classWeight: { buffer: upload(dl, classWeight), shape: [c] },
          weight: { buffer: upload(dl, weight), shape: [n] },
        },
        { ignoreIndex: -1 },
      );
      expect(got.loss[0]).toBeCloseTo(ref.loss[0], 5);
      let worst = 0;
      for (let i = 0; i < n * c; i++) worst = Math.max(worst, Math.abs(got.grad.logProbs[i] - ref.grad.logProbs[i]));
      expect(worst).toBeLessThan(1e-7);
    }
  });

  it.each(ELEMENT_OPS.flatMap((op) => [0, 2, NaN].map((bad) => [op, bad] as const)))('%s refuses a target of %s with invalid_value naming targets', async (op, bad) => {
    const n = 6;
    const targets = f32(1, -1, -1, 1, bad, 1);
    const inputs =
      op === 'margin_ranking' ? { input1: new Float32Array(n), input2: new Float32Array(n), targets } : { [op === 'hinge_embedding' ? 'pred' : 'logits']: new Float32Array(n), targets };
    let err: unknown;
    try {
      await soft.run(op as 'hinge', inputs as never, {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DetlossError);
    expect((err as DetlossError).code).toBe('invalid_value');
    expect((err as DetlossError).argument).toBe('targets');
    expect((err as DetlossError).message).toContain('targets[4]');
  });

  it('the typed wrappers run the ops with their inputs and params', async () => {
    const x = f32(0.5, -1, 2, 0.25);
    const x2 = f32(1, -0.5, 0.5, 0.25);
    const y = f32(1, -1, -1, 1);
    const lp = { data: f32(-0.2, -1.8, -2.5, -0.1), shape: [2, 2] };
    const labels = Int32Array.of(1, -1);
    const pairs: [Promise<{ loss: Float32Array; grad: Record<string, Float32Array> }>, string, Record<string, unknown>, Record<string, unknown>][] = [
      [vec.nllLoss(lp, labels, { ignoreIndex: -1, classWeight: f32(1, 3), reduction: 'sum' }), 'nll', { logProbs: lp, labels, classWeight: f32(1, 3) }, { ignoreIndex: -1, reduction: 'sum' }],
      [vec.hingeLoss(x, y, { margin: 0.5, reduction: 'none' }), 'hinge', { logits: x, targets: y }, { margin: 0.5, reduction: 'none' }],
      [vec.hingeEmbeddingLoss(x, y, { margin: 2, reduction: 'none' }), 'hinge_embedding', { pred: x, targets: y }, { margin: 2, reduction: 'none' }],
      [vec.marginRankingLoss(x, x2, y, { margin: 0.3, reduction: 'none' }), 'margin_ranking', { input1: x, input2: x2, targets: y }, { margin: 0.3, reduction: 'none' }],
      [vec.exponentialLoss(x, y, { reduction: 'none' }), 'exponential', { logits: x, targets: y }, { reduction: 'none' }],
    ];
    for (const [p, op, inputs, opts] of pairs) {
      const got = await p;
      const ref = cpu.run(op as 'hinge', inputs as never, opts as never);
      expect(got.loss.length, op).toBe(ref.loss.length);
      for (let i = 0; i < ref.loss.length; i++) expect(got.loss[i], op).toBeCloseTo(ref.loss[i], 5);
      expect(Object.keys(got.grad).sort(), op).toEqual(Object.keys(ref.grad).sort());
      for (const [k, g] of Object.entries(ref.grad)) for (let i = 0; i < g.length; i++) expect(got.grad[k][i], `${op} grad.${k}[${i}]`).toBeCloseTo(g[i], 5);
    }
  });
});
