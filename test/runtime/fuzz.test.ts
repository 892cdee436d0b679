/**
 * The differential fuzzing suite's bounded slice in `npm test`: a fixed seed and case count, under
 * a hard time cap, every op with a GPU kernel on the GPU (Node's Dawn) against `cpu.run`, with the
 * tolerance rule of test/fuzz/tolerance.ts. `npm run fuzz -- --minutes 30 --seed S` is the long run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DetlossContext } from '../../src/api';
import { FUZZ_OPS } from '../fuzz/cases';
import { failureClasses, fuzzRun } from '../fuzz/runner';
import { nodeContext } from '../helpers/node-gpu';

const SEED = 9;
/** Cases in the slice: tuned to about 60-90 s (70 s measured) on two cores with SwiftShader. */
const CASES = Number(process.env.FUZZ_SLICE_CASES ?? 1000);
/** Hard cap: the slice stops here whatever the case count. */
const CAP_MS = 100_000;
const MIN_PER_OP = 10;

let def: DetlossContext;
let wg: DetlossContext;
beforeAll(async () => {
  def = await nodeContext();
  wg = await nodeContext({ rowThreshold: 0 });
});
afterAll(() => {
  def?.destroy();
  wg?.destroy();
});

describe('differential fuzzing (GPU against cpu.run)', () => {
  it(`seed ${SEED}: ${CASES} cases over every op, nothing outside the tolerance rule`, async () => {
    const t0 = Date.now();
    const report = await fuzzRun({ default: def, wg }, { seed: SEED, count: CASES, deadline: t0 + CAP_MS, big: true });
    const classes = failureClasses(report.failures);
    console.log(
      `fuzz seed ${SEED}: ${report.ran} cases in ${((Date.now() - t0) / 1000).toFixed(1)} s; per op: ` +
        Object.entries(report.cases).map(([op, n]) => `${op} ${n}`).join(', '),
    );
    for (const k of classes) console.log(`FUZZ FAILURE (${k.count}x) ${k.key}\n${k.first.repro}\n`);
    for (const op of FUZZ_OPS) expect(report.cases[op], `cases of ${op}`).toBeGreaterThanOrEqual(MIN_PER_OP);
    expect(classes.map((k) => `${k.key} (${k.count}x): ${k.first.message}\n${k.first.repro}`)).toEqual([]);
  }, CAP_MS + 60_000);
});
