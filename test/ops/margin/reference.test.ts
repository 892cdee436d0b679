import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { DetlossError } from '../../../src/errors';
import { caseInputs, caseOptions, compareCase, parseFixtures } from '../../../src/fixtures';
import { rand } from '../../helpers/counting';
import { checkCentralDifferences, slopes } from '../../helpers/finite-differences';

/**
 * The float64 references of nll, hinge, hinge_embedding, margin_ranking and exponential (ops.md,
 * "More classification and ranking losses"): every fixture case, central differences away from
 * the kinks, the clamp_min rule at the kink, exponential's cap, nll's 'mean' rule, and the
 * refusal of targets other than -1 and +1.
 */

const OPS = ['nll', 'hinge', 'hinge_embedding', 'margin_ranking', 'exponential'] as const;
const fixtures = OPS.flatMap((op) => parseFixtures(readFileSync(new URL(`../../fixtures/${op}.json`, import.meta.url), 'utf8'), op));

const vec = (...v: number[]) => Float64Array.from(v);
const signs = (n: number, seed: number) => Float64Array.from(rand(n, seed, -1, 1), (v) => (v < 0 ? -1 : 1));

describe('margin losses: CPU reference against the fixtures', () => {
  it('has every case of the five fixture files', () => {
    for (const op of OPS) expect(fixtures.filter((c) => c.op === op).length, op).toBeGreaterThanOrEqual(8);
    expect(fixtures.length).toBe(27 + 11 + 10 + 11 + 8);
  });
  it.each(fixtures.map((c) => [c.name, c] as const))('%s', (_, c) => {
    const r = cpu.run(c.op, caseInputs(c), caseOptions(c));
    const cmp = compareCase(c, r);
    expect(cmp.detail ?? 'ok').toBe('ok');
    expect(r.shape).toEqual(c.expected.loss!.shape);
    expect(Object.keys(r.grad).sort()).toEqual(Object.keys(c.expected.grad ?? {}).sort());
  });
});

describe('margin losses: gradients', () => {
  const n = 40;
  // Objective: sum(gradOutput * loss) with reduction 'none', so every element is checked through the wrapper.
  const objective = (op: string, inputs: Record<string, Float64Array | Int32Array>, params: Record<string, unknown>, up: Float64Array) => () => {
    const r = cpu.run(op as 'hinge', inputs as never, { ...params, reduction: 'none', grad: false } as never);
    let s = 0;
    for (let i = 0; i < r.loss.length; i++) s += up[i] * r.loss[i];
    return s;
  };
  const CASES: [string, string, () => Record<string, Float64Array | Int32Array>, Record<string, unknown>, string[]][] = [
    ['hinge', 'hinge', () => ({ logits: Float64Array.from(rand(n, 1, -3, 3)), targets: signs(n, 2) }), { margin: 0.7 }, ['logits']],
    ['hinge_embedding', 'hinge_embedding', () => ({ pred: Float64Array.from(rand(n, 3, -1, 4)), targets: signs(n, 4) }), { margin: 2 }, ['pred']],
    ['margin_ranking', 'margin_ranking', () => ({ input1: Float64Array.from(rand(n, 5)), input2: Float64Array.from(rand(n, 6)), targets: signs(n, 7) }), { margin: 0.3 }, ['input1', 'input2']],
    ['exponential', 'exponential', () => ({ logits: Float64Array.from(rand(n, 8, -5, 5)), targets: signs(n, 9) }), {}, ['logits']],
    [
      'nll with classWeight and an ignored row',
      'nll',
      () => ({ logProbs: Float64Array.from(rand(n * 3, 10, -6, 0)), labels: Int32Array.from({ length: n }, (_, i) => (i % 7 === 3 ? -100 : i % 3)), classWeight: vec(0.5, 2, 1.25) }),
      {},
      ['logProbs'],
    ],
  ];
  it.each(CASES)('%s: the analytic gradient is the central difference away from the kinks', (_, op, make, params, grads) => {
    const inputs = make();
    const shaped: Record<string, unknown> = { ...inputs };
    if (op === 'nll') shaped.logProbs = { data: inputs.logProbs, shape: [n, 3] };
    const up = Float64Array.from(rand(n, 11, 0.5, 2));
    const r = cpu.run(op as 'hinge', { ...shaped, gradOutput: up } as never, { ...params, reduction: 'none' } as never);
    expect(Object.keys(r.grad).sort()).toEqual([...grads].sort());
    for (const g of grads) {
      const x = inputs[g] as Float64Array;
      const f = objective(op, shaped as never, params, up);
      // shaped holds the same arrays: shifting x moves the objective's input.
      const checked = checkCentralDifferences(x, f, (i, central) =>
        expect(Math.abs(r.grad[g][i] - central), `${op} grad.${g}[${i}]: ${r.grad[g][i]} vs ${central}`).toBeLessThan(1e-5 * (1 + Math.abs(central))),
      );
      expect(checked, `${op} ${g}`).toBeGreaterThan(x.length * 0.9);
    }
  });

  it('at the kink z = 0 the gradient is that of z (clamp_min), on both sides checked by one-sided slopes', () => {
    // hinge: margin - y f = 0 at f = y * margin
    const h = cpu.run('hinge', { logits: vec(1, -1, 0.5), targets: vec(1, -1, 1) }, { reduction: 'none', margin: 1 });
    expect(Array.from(h.loss)).toEqual([0, 0, 0.5]);
    expect(Array.from(h.grad.logits)).toEqual([-1, 1, -1]);
    // hinge_embedding with y = -1 at pred = margin
    const e = cpu.run('hinge_embedding', { pred: vec(2, 2), targets: vec(-1, 1) }, { reduction: 'none', margin: 2 });
    expect(Array.from(e.loss)).toEqual([0, 2]);
    expect(Array.from(e.grad.pred)).toEqual([-1, 1]);
    // margin_ranking at input1 - input2 = margin / y
    const m = cpu.run('margin_ranking', { input1: vec(0.5, 3, 1), input2: vec(0.5, 3.25, 1.5), targets: vec(1, 1, -1) }, { reduction: 'none', margin: 0.25 });
    // z = -(0) + 0.25, -(-0.25) + 0.25 = 0.5, (1 - 1.5) + 0.25 = -0.25
    expect(Array.from(m.loss)).toEqual([0.25, 0.5, 0]);
    expect(Array.from(m.grad.input1).map((v) => v + 0)).toEqual([-1, -1, 0]);
    expect(Array.from(m.grad.input2).map((v) => v + 0)).toEqual([1, 1, 0]);
    const k = cpu.run('margin_ranking', { input1: vec(2, -1), input2: vec(2, -1), targets: vec(1, -1) }, { reduction: 'none' });
    expect(Array.from(k.loss)).toEqual([0, 0]);
    expect(Array.from(k.grad.input1)).toEqual([-1, 1]);
    expect(Array.from(k.grad.input2)).toEqual([1, -1]);
    // The kink is real: the one-sided slopes of hinge at f = 1, y = 1 differ, and the gradient is the left one.
    const x = vec(1);
    const s = slopes(x, 0, () => cpu.run('hinge', { logits: x, targets: vec(1) }, { reduction: 'sum' }).loss[0]);
    expect(s.left).toBeCloseTo(-1, 6);
    expect(s.right).toBeCloseTo(0, 6);
  });

  it('exponential caps its exponent at 80: finite loss, and no gradient past the cap', () => {
    const r = cpu.run('exponential', { logits: vec(-90, 90, 80, -80, 79.5, -1000), targets: vec(1, -1, -1, 1, -1, 1) }, { reduction: 'none' });
    const cap = Math.exp(80);
    expect(Array.from(r.loss)).toEqual([cap, cap, cap, cap, Math.exp(79.5), cap]);
    expect(Array.from(r.loss).every((v) => Number.isFinite(Math.fround(v)))).toBe(true);
    // past the cap: 0; at the cap exactly the gradient passes (clamp)
    expect(Array.from(r.grad.logits).map((v) => v + 0)).toEqual([0, 0, cap, -cap, Math.exp(79.5), 0]);
  });
});

describe('nll', () => {
  const logProbs = { data: vec(-0.1, -2.5, -3, -1.2, -0.4, -2, -0.7, -0.9, -1.9, -4, -0.05, -3.5), shape: [4, 3] };
  const labels = Int32Array.of(0, 2, -100, 1);
  const classWeight = vec(0.5, 2, 1.5);
  const weight = vec(1, 3, 7, 0.5);

  it("'mean' divides by the summed weight * classWeight of the rows not ignored (cross_entropy's rule)", () => {
    const none = cpu.run('nll', { logProbs, labels, classWeight }, { reduction: 'none' });
    expect(Array.from(none.loss)).toEqual([0.5 * 0.1, 1.5 * 2, 0, 2 * 0.05]);
    const mean = cpu.run('nll', { logProbs, labels, classWeight, weight }, { reduction: 'mean' });
    const num = 1 * 0.5 * 0.1 + 3 * 1.5 * 2 + 0.5 * 2 * 0.05;
    const den = 1 * 0.5 + 3 * 1.5 + 0.5 * 2;
    expect(mean.loss[0]).toBeCloseTo(num / den, 14);
    // the ignored row gets no gradient; the others -w[y] weight / den at their label only
    expect(Array.from(mean.grad.logProbs.slice(6, 9)).map((v) => v + 0)).toEqual([0, 0, 0]);
    expect(mean.grad.logProbs[5]).toBeCloseTo((-1.5 * 3) / den, 14);
    expect(mean.grad.logProbs[3] + 0).toBe(0);
  });
  it('on log_softmax of logits it is cross_entropy, loss and gradient by the chain rule', () => {
    const x = Float64Array.from(rand(5 * 4, 3, -4, 4));
    const lab = Int32Array.of(3, 0, -100, 2, 1);
    const lp = new Float64Array(x.length);
    for (let i = 0; i < 5; i++) {
      const row = x.subarray(i * 4, i * 4 + 4);
      const m = Math.max(...row);
      const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
      for (let j = 0; j < 4; j++) lp[i * 4 + j] = row[j] - lse;
    }
    const cw = vec(1, 0.5, 2, 3);
    const ce = cpu.run('cross_entropy', { logits: { data: x, shape: [5, 4] }, labels: lab, classWeight: cw }, { reduction: 'mean' });
    const nl = cpu.run('nll', { logProbs: { data: lp, shape: [5, 4] }, labels: lab, classWeight: cw }, { reduction: 'mean' });
    expect(nl.loss[0]).toBeCloseTo(ce.loss[0], 12);
  });
  it('refuses a label that is no class nor ignoreIndex, naming the first', () => {
    const bad = () => cpu.run('nll', { logProbs, labels: Int32Array.of(0, 3, 1, 1) }, {});
    expect(bad).toThrow(DetlossError);
    expect(bad).toThrow(/labels\[1\] = 3/);
    try {
      bad();
    } catch (e) {
      expect((e as DetlossError).code).toBe('invalid_value');
      expect((e as DetlossError).argument).toBe('labels');
    }
  });
});

describe('targets other than -1 and +1 are refused', () => {
  const n = 5;
  const inputsOf = (op: string, targets: Float64Array): Record<string, Float64Array> =>
    op === 'margin_ranking'
      ? { input1: new Float64Array(n), input2: new Float64Array(n), targets }
      : { [op === 'hinge_embedding' ? 'pred' : 'logits']: new Float64Array(n), targets };
  const CASES = ['hinge', 'hinge_embedding', 'margin_ranking', 'exponential'].flatMap((op) =>
    [0, 2, NaN, -0.5].map((bad) => [op, bad] as const),
  );
  it.each(CASES)('%s with a target of %s: invalid_value naming targets and the index', (op, bad) => {
    const t = vec(1, -1, 1, bad, bad);
    let err: unknown;
    try {
      cpu.run(op as 'hinge', inputsOf(op, t) as never, {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DetlossError);
    expect((err as DetlossError).code).toBe('invalid_value');
    expect((err as DetlossError).argument).toBe('targets');
    expect((err as DetlossError).message).toContain(`targets[3] = ${bad}`);
  });
  it.each(['hinge', 'hinge_embedding', 'margin_ranking', 'exponential'])('%s accepts -1 and +1 (and -0 is not a target)', (op) => {
    expect(() => cpu.run(op as 'hinge', inputsOf(op, vec(1, -1, 1, -1, 1)) as never, {})).not.toThrow();
    expect(() => cpu.run(op as 'hinge', inputsOf(op, vec(1, -1, 1, -1, -0)) as never, {})).toThrow(/targets\[4\]/);
  });
});
