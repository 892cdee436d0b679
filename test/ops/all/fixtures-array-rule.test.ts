// The fixtures' array rule (test/fixtures/README.md): besides |got - want| <= atol + rtol |want| for
// each element, every f32 array of more than one element passes as a whole only when
// ||got - want||_2 <= l2 ||want||_2 + 1e-6 sqrt(n). The element rule's atol floors let a gradient
// of small values pass as zeros, or 20% off; these tests hold compareCase to rejecting both on
// every fixture case that has a gradient, and to the l2 a case gives itself.
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compareCase, DEFAULT_L2, L2_FLOOR, parseFixtures, type FixtureCase, type Tolerance } from '../../../src/fixtures';
import { note } from '../../helpers/note';

const dir = new URL('../../fixtures/', import.meta.url);
// The cases with a loss (the array rule's subject here; named outputs have tests of their own).
const cases = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .flatMap((f) => parseFixtures(readFileSync(new URL(f, dir), 'utf8'), f))
  .filter((c) => c.expected.loss !== undefined) as (FixtureCase & { expected: { loss: NonNullable<FixtureCase['expected']['loss']> }; tolerance: { loss: Tolerance } })[];

/** The case's own expected numbers as a result, with one gradient replaced. */
function expectedWith(c: FixtureCase, grad: string, data: number[]) {
  const g = Object.fromEntries(Object.entries(c.expected.grad ?? {}).map(([k, v]) => [k, k === grad ? data : v.data]));
  // The named outputs as expected, so that only the gradient under test can fail.
  const outputs = Object.fromEntries(Object.entries(c.expected.outputs ?? {}).map(([k, v]) => [k, v.data]));
  const outputShapes = Object.fromEntries(Object.entries(c.expected.outputs ?? {}).map(([k, v]) => [k, v.shape]));
  return { loss: c.expected.loss?.data ?? [], grad: g, outputs, outputShapes };
}

/** The same case with the array rule switched off (an l2 no error reaches): the element rule alone. */
function elementRuleOnly(c: (typeof cases)[number]): FixtureCase {
  const off = (t: Tolerance): Tolerance => ({ ...t, l2: Number.MAX_VALUE });
  const outputs = c.tolerance.outputs && Object.fromEntries(Object.entries(c.tolerance.outputs).map(([k, t]) => [k, off(t)]));
  return { ...c, tolerance: { loss: c.tolerance.loss && off(c.tolerance.loss), grad: c.tolerance.grad && off(c.tolerance.grad), ...(outputs ? { outputs } : {}) } };
}

const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
/** Gradients the array rule is about: more than one element, and not all (nearly) zero. */
const sized = (v: number[]) => v.length > 1 && norm(v) > 10 * L2_FLOOR * Math.sqrt(v.length);

/**
 * A case whose own l2 for the output is at least 0.2: float32 itself is that far off (identical or
 * nearly identical rotated boxes, test/fixtures/README.md), so zeros or a 1.2 scaling may pass there
 * by design.
 */
const ownWide = (t: Tolerance | undefined) => (t?.l2 ?? DEFAULT_L2) >= 0.2;

const withGrad = cases.filter((c) => Object.keys(c.expected.grad ?? {}).length > 0);
const gradients = withGrad.flatMap((c) => Object.entries(c.expected.grad!).map(([k, g]) => ({ c, k, want: g.data })));
const covered = gradients.filter((g) => sized(g.want) && !ownWide(g.c.tolerance.grad));

describe('compareCase: the array rule on every fixture gradient', () => {
  it('the fixtures pass as they are; each gradient left out has nothing for the rule to catch', () => {
    for (const c of cases) expect(compareCase(c, expectedWith(c, '', [])).detail ?? 'ok', c.name).toBe('ok');
    // The gradients left out have no array rule (n = 0 or 1) or hold zeros, or values so near zero
    // (identical boxes: float64 rounding, ~1e-12) that zeros and a 1.2 scaling lie within the
    // rule's 1e-6 sqrt(n) floor: right answers, not errors to catch; or the case's own l2 is 0.2 or
    // more. Each left out for one of these.
    const left = gradients.filter((g) => !covered.includes(g));
    for (const g of left) {
      const rms = g.want.length ? norm(g.want) / Math.sqrt(g.want.length) : 0;
      expect(g.want.length <= 1 || rms <= 10 * L2_FLOOR || ownWide(g.c.tolerance.grad), `${g.c.name} grad.${g.k}`).toBe(true);
    }
    expect(left.filter((g) => ownWide(g.c.tolerance.grad)).length, 'gradients left out for their own l2').toBeLessThanOrEqual(3);
    expect(covered.length + left.length).toBe(gradients.length);
    expect(covered.length).toBeGreaterThan(800);
    note(`array rule: ${covered.length} gradients of ${new Set(covered.map((g) => g.c)).size} cases covered, of ${gradients.length} gradients in the ${withGrad.length} cases with one (${cases.length} cases in all)`);
  });

  it('a gradient of zeros fails every case, naming the gradient; the element rule alone passes some of them', () => {
    const passed: string[] = [];
    const elementOnly: string[] = [];
    for (const { c, k, want } of covered) {
      const got = expectedWith(c, k, want.map(() => 0));
      const cmp = compareCase(c, got);
      if (cmp.pass) passed.push(`${c.name} grad.${k}`);
      else expect(cmp.detail, c.name).toMatch(new RegExp(`^grad\\.${k}`));
      if (compareCase(elementRuleOnly(c), got).pass) elementOnly.push(c.name);
    }
    expect(passed).toEqual([]);
    expect(elementOnly.length).toBeGreaterThan(0);
    note(`array rule: zeros fail ${covered.length} of ${covered.length} gradients; the element rule alone would pass ${elementOnly.length}: ${elementOnly.join(', ')}`);
  });

  it('a gradient scaled by 1.2 fails every case, with the L2 error and bound in the detail where the element rule passes it', () => {
    const passed: string[] = [];
    let elementOnly = 0;
    for (const { c, k, want } of covered) {
      const got = expectedWith(c, k, want.map((x) => 1.2 * x));
      const cmp = compareCase(c, got);
      if (cmp.pass) passed.push(`${c.name} grad.${k}`);
      if (compareCase(elementRuleOnly(c), got).pass) {
        elementOnly++;
        expect(cmp.detail, c.name).toMatch(new RegExp(`^grad\\.${k}: L2 error \\S+ > bound \\S+ \\(l2 0\\.001 \\* `));
      }
      expect(cmp.l2Err, c.name).toBeCloseTo(0.2, 6);
    }
    expect(passed).toEqual([]);
    expect(elementOnly).toBeGreaterThan(0);
    note(`array rule: x1.2 fails ${covered.length} of ${covered.length} gradients; the element rule alone would pass ${elementOnly}`);
  });

  it("a 'none' loss scaled by 1.2 fails too", () => {
    const none = cases.filter((c) => sized(c.expected.loss.data) && !ownWide(c.tolerance.loss));
    expect(none.length).toBeGreaterThan(0);
    for (const c of none) {
      const got = { loss: c.expected.loss.data.map((x) => 1.2 * x), grad: Object.fromEntries(Object.entries(c.expected.grad ?? {}).map(([k, v]) => [k, v.data])) };
      expect(compareCase(c, got).pass, c.name).toBe(false);
    }
  });
});

describe("compareCase: a case's own l2", () => {
  // Four gradient elements of 1: ||want|| = 2. One element off by 0.01: ||got - want|| = 0.01,
  // within the element rule (atol 0.1), over the default bound (1e-3 * 2 + 2e-6), under 0.01 * 2.
  const base: FixtureCase = {
    name: 'synthetic/l2',
    op: 'l1',
    params: { reduction: 'none' },
    inputs: {},
    expected: { loss: { shape: [4], data: [1, 2, 3, 4] }, grad: { pred: { shape: [4], data: [1, 1, 1, 1] } } },
    tolerance: { loss: { atol: 0.1, rtol: 0 }, grad: { atol: 0.1, rtol: 0 } },
  };
  const off = { loss: [1, 2, 3, 4], grad: { pred: [1.01, 1, 1, 1] } };
  const offLoss = { loss: [1.01, 2, 3, 4], grad: { pred: [1, 1, 1, 1] } };
  const withL2 = (loss?: number, grad?: number): FixtureCase => ({
    ...base,
    tolerance: { loss: { ...base.tolerance.loss!, ...(loss === undefined ? {} : { l2: loss }) }, grad: { ...base.tolerance.grad!, ...(grad === undefined ? {} : { l2: grad }) } },
  });

  it(`takes l2 = ${DEFAULT_L2} where the tolerance gives none`, () => {
    const cmp = compareCase(base, off);
    expect(cmp.pass).toBe(false);
    expect(cmp.detail).toBe('grad.pred: L2 error 1.000e-2 > bound 2.002e-3 (l2 0.001 * ||want|| 2.000e+0 + 0.000001 * sqrt(4); relative L2 error 5.000e-3)');
    expect(compareCase(base, offLoss).detail).toMatch(/^loss: L2 error 1\.000e-2 > bound 5\.479e-3 /);
  });

  it("uses the l2 of the output's own tolerance, and only for that output", () => {
    expect(compareCase(withL2(undefined, 0.01), off).pass).toBe(true);
    expect(compareCase(withL2(undefined, 0.01), off).l2Err).toBeCloseTo(0.005, 12);
    expect(compareCase(withL2(undefined, 0.004), off).pass).toBe(false);
    // The loss's l2 does not widen the gradient's bound, nor the gradient's the loss's.
    expect(compareCase(withL2(0.01, undefined), off).pass).toBe(false);
    expect(compareCase(withL2(undefined, 0.01), offLoss).pass).toBe(false);
    expect(compareCase(withL2(0.01, undefined), offLoss).pass).toBe(true);
    // l2 = 0 leaves only the 1e-6 sqrt(n) floor.
    expect(compareCase(withL2(undefined, 0), { loss: [1, 2, 3, 4], grad: { pred: [1 + 1e-6, 1, 1, 1] } }).pass).toBe(true);
    expect(compareCase(withL2(undefined, 0), { loss: [1, 2, 3, 4], grad: { pred: [1 + 3e-6, 1, 1, 1] } }).pass).toBe(false);
  });

  it('a single element is held by the element rule only', () => {
    const one: FixtureCase = { ...base, expected: { loss: { shape: [], data: [1] } }, tolerance: { loss: { atol: 0.1, rtol: 0 } } };
    expect(compareCase(one, { loss: [1.05], grad: {} }).pass).toBe(true);
  });

  it('parseFixtures takes an l2 >= 0 and refuses one that is not a finite number >= 0', () => {
    const file = (t: unknown) =>
      JSON.stringify({ format: 'detloss-fixture/1', cases: [{ name: 'c', op: 'l1', params: {}, inputs: {}, expected: { loss: { shape: [], data: [0] } }, tolerance: { loss: t } }] });
    expect(parseFixtures(file({ atol: 0, rtol: 0, l2: 0.453 }))[0].tolerance.loss!.l2).toBe(0.453);
    expect(parseFixtures(file({ atol: 0, rtol: 0, l2: 0 }))[0].tolerance.loss!.l2).toBe(0);
    for (const bad of [-1, '1e-3', null, 1e999, {}]) {
      expect(() => parseFixtures(file({ atol: 0, rtol: 0, l2: bad }), 'f.json'), JSON.stringify(bad)).toThrow(/f\.json: case 0 \(c\): tolerance\.loss\.l2 must be a finite number >= 0/);
    }
  });
});
