// The fuzzer's share of ops.md's rule "Non-finite input is never hidden": its generator puts NaN
// and infinities into the inputs of every op, and its runner catches a surface that hides them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DetlossContext } from '../../src/api';
import { cpu } from '../../src/cpu';
import { FUZZ_OPS, NONFINITE_SHARE, generateCase, type FuzzCase } from './cases';
import { checkCase, dlSurface, hasNonFinite, type Surface } from './runner';
import { TAL_OPS } from './tal';
import { nodeContext } from '../helpers/node-gpu';

/** The slice's seed and size (test/fuzz/fuzz.test.ts). */
const SEED = 9;
const CASES = 1102;

describe('the fuzz generator draws NaN and infinities', () => {
  it(`into every op, in about ${NONFINITE_SHARE * 100}% of the slice's cases, each kind of value`, () => {
    const perOp: Record<string, number> = Object.fromEntries(FUZZ_OPS.map((op) => [op, 0]));
    const values = new Set<string>();
    let total = 0;
    for (let i = 0; i < CASES; i++) {
      const c = generateCase(SEED, i);
      // an invalid case may have lost the input it was given (or been given one for check: true)
      if (c.tags.includes('invalid')) continue;
      if (!c.nonFinite) {
        expect(hasNonFinite(c), `case ${i}: a NaN or an infinity it was not given`).toBe(false);
        continue;
      }
      expect(hasNonFinite(c), `case ${i}: ${c.tags.join(', ')}`).toBe(true);
      perOp[c.op]++;
      values.add(String(c.nonFinite.value));
      total++;
    }
    for (const op of FUZZ_OPS) expect(perOp[op], op).toBeGreaterThanOrEqual(1);
    expect(total / CASES).toBeGreaterThan(NONFINITE_SHARE * 0.6);
    expect(total / CASES).toBeLessThan(NONFINITE_SHARE * 1.5);
    expect([...values].sort()).toEqual(['-Infinity', 'Infinity', 'NaN']);
  });

  it('leaves the other cases as they were drawn: a case differs from its finite draw only where it was given a value', () => {
    for (let i = 0; i < 200; i++) {
      const c = generateCase(SEED, i);
      if (!c.nonFinite) continue;
      // the same case with the share 0 is the same problem, finite
      const plain = generateCase(SEED, i, { nonFinite: 0 });
      expect(plain.nonFinite).toBeUndefined();
      expect(Object.keys(plain.inputs).sort()).toEqual(Object.keys(c.inputs).sort());
      let changed = 0;
      for (const [name, v] of Object.entries(c.inputs)) {
        const a = 'data' in v ? v.data : v;
        const pv = plain.inputs[name];
        const b = 'data' in pv ? pv.data : pv;
        for (let k = 0; k < a.length; k++) {
          if (Object.is(a[k], b[k])) continue;
          expect(name, `case ${i}`).toBe(c.nonFinite.input);
          expect(Object.is(a[k], c.nonFinite.value), `case ${i} ${name}[${k}]`).toBe(true);
          changed++;
        }
      }
      expect(changed, `case ${i}`).toBeGreaterThan(0);
    }
  });
});

describe('the fuzz runner holds a surface to the rule', () => {
  let dl: DetlossContext;
  let wg: DetlossContext;
  beforeAll(async () => {
    dl = await nodeContext();
    wg = await nodeContext({ rowThreshold: 0 });
  });
  afterAll(() => {
    dl?.destroy();
    wg?.destroy();
  });

  /** dl.run with its loss changed by `f`: a surface that hides or changes non-finite values. */
  const tampered = (f: (v: number) => number): Surface => {
    const real = dlSurface((c) => (c.rows === 'wg' ? wg : dl));
    return {
      name: 'tampered',
      run: async (c) => {
        const r = await real.run(c);
        return { ...r, loss: Float32Array.from(r.loss, f) };
      },
    };
  };

  /**
   * Up to `per` cases of each op from the slice whose reference loss holds a value `want` picks.
   * Not the assigner's (tal_assign, yolo_detection_loss): ops.md leaves their numbers unspecified
   * for unchecked non-finite input (the runner holds them to the assignment's invariants instead).
   */
  function casesWhere(want: (v: number) => boolean, per: number, count = CASES): FuzzCase[] {
    const out: FuzzCase[] = [];
    const taken: Record<string, number> = {};
    for (let i = 0; i < count; i++) {
      const c = generateCase(SEED, i);
      if (!c.nonFinite || c.dims.n > 65 || TAL_OPS.has(c.op) || (taken[c.op] ?? 0) >= per) continue;
      try {
        if (!Array.from(cpu.run(c.op, c.inputs as never, c.options as never).loss).some(want)) continue;
      } catch {
        continue;
      }
      taken[c.op] = (taken[c.op] ?? 0) + 1;
      out.push(c);
    }
    return out;
  }

  it('a NaN turned into 0 is caught in every case where the reference is NaN', async () => {
    const cases = casesWhere(Number.isNaN, 2);
    expect(cases.length).toBeGreaterThan(20);
    const hiding = tampered((v) => (Number.isNaN(v) ? 0 : v));
    for (const c of cases) expect(await checkCase(hiding, c), `case ${c.index} (${c.op}; ${c.tags.join(', ')})`).not.toBeNull();
  });

  it('an infinity turned into NaN or into the largest float32 is caught in most cases where the reference is infinite', async () => {
    // (the slice's seed over twice its cases: an infinite loss is rarer than a NaN one)
    const cases = casesWhere((v) => v === Infinity || v === -Infinity, 2, 2 * CASES);
    expect(cases.length).toBeGreaterThan(15);
    for (const f of [(v: number) => (Number.isFinite(v) ? v : NaN), (v: number) => (Number.isFinite(v) ? v : Math.sign(v) * 3.4e38)]) {
      let caught = 0;
      for (const c of cases) if (await checkCase(tampered(f), c)) caught++;
      // an infinity times what float32 cannot tell from 0 may be NaN there: the runner excuses it
      expect(caught / cases.length).toBeGreaterThan(0.8);
    }
  });
});
