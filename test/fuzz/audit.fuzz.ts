/**
 * The tolerance audit (`npm run fuzz -- --audit`): two measures of how much the fuzzer's rule
 * (./tolerance.ts) would excuse, printed as markdown tables.
 *
 * 1. Looseness: over the cases of the `npm test` slice (seed 9, the first 1,000 cases) and of the
 *    box ops in the far and thin regimes, the share of non-zero values whose allowed error is at
 *    least the value itself: where the rule would pass a 0. From the
 *    reference alone: no GPU needed.
 * 2. Planted defects (./planted.ts): the share of small relative errors on every element that the
 *    rule flags, per op and output, on the GPU's results.
 */
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, it } from 'vitest';
import type { DetlossContext } from '../../src/api';
import { nodeContext } from '../helpers/node-gpu';
import { FUZZ_OPS, generateCase, type FuzzCase } from './cases';
import { plantedTally, tallyTable } from './planted';
import { checkCase, referenceResult, type Surface } from './runner';
import { dataOf } from './tolerance';

const SLICE_SEED = 9;
const SLICE_CASES = Number(process.env.AUDIT_CASES ?? 1000);
const REGIME_CASES = 60;

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

/** The reference itself, rounded to float32, as the "GPU": the rule's bounds do not depend on it. */
const reference: Surface = { name: 'reference', run: async (c) => referenceResult(c) };

type Count = { values: number; loose: number; /** of those, in a row (or pair) of identical boxes */ same: number; sameLoose: number };
const zero = (): Count => ({ values: 0, loose: 0, same: 0, sameLoose: 0 });

/** Whether value i of `out` belongs to a pair of identical boxes (box ops, 'none' values and gradients). */
function identicalAt(c: FuzzCase, out: string, i: number): boolean {
  const box = (x: ArrayLike<number>, k: number) => Array.from({ length: 4 }, (_, q) => x[4 * k + q]);
  const same = (a: number[], b: number[]) => a.every((v, q) => v === b[q]);
  if (c.op === 'pairwise_iou') {
    const A = dataOf(c.inputs.a)!;
    const B = dataOf(c.inputs.b)!;
    return same(box(A, Math.floor(i / c.dims.m)), box(B, i % c.dims.m));
  }
  if (c.op !== 'iou_loss') return false;
  if (out === 'loss' && (c.options.reduction ?? 'mean') !== 'none') return false;
  const row = out === 'loss' ? i : Math.floor(i / 4);
  return same(box(dataOf(c.inputs.pred)!, row), box(dataOf(c.inputs.target)!, row));
}
async function looseness(cases: FuzzCase[], tally: Map<string, Record<string, Count>>, label: (c: FuzzCase) => string) {
  for (const c of cases) {
    if (c.tags.includes('invalid') || c.nonFinite) continue;
    const key = label(c);
    const row = tally.get(key) ?? { loss: zero(), grad: zero() };
    tally.set(key, row);
    await checkCase(reference, c, (out, i, v, tol, rounded) => {
      if (v === 0 || !Number.isFinite(v)) return;
      const o = out === 'loss' ? row.loss : row.grad;
      const same = identicalAt(c, out, i);
      o.values++;
      if (same) o.same++;
      // 0 would pass: within the allowed error of the reference, or of the rounded one
      if (tol >= Math.abs(v) || (rounded !== undefined && tol >= Math.abs(rounded))) {
        o.loose++;
        if (same) o.sameLoose++;
      }
    }).catch(() => null);
  }
}

const opKey = (c: FuzzCase) => (c.op === 'iou_loss' || c.op === 'pairwise_iou' ? `${c.op} ${String(c.options.variant ?? 'iou')}/${String(c.options.format ?? 'xyxy')}` : c.op);

it('tolerance audit', async () => {
  const lines: string[] = [];
  const tally = new Map<string, Record<string, Count>>();
  const slice = Array.from({ length: SLICE_CASES }, (_, i) => generateCase(SLICE_SEED, i, { big: true }));
  await looseness(slice, tally, opKey);
  for (const boxes of ['far', 'thin'] as const) {
    for (const op of ['iou_loss', 'pairwise_iou']) {
      const cs = Array.from({ length: REGIME_CASES }, (_, i) => generateCase(SLICE_SEED, i, { op, boxes, big: false }));
      await looseness(cs, tally, (c) => `${opKey(c)} [${boxes}]`);
    }
  }
  // the share, and the share among values of pairs that are not identical boxes (1 - iou and its
  // partials are cancellations there, below float32's resolution of 1)
  const pct = (x: Count) => {
    if (!x.values) return '-';
    const all = `${((100 * x.loose) / x.values).toFixed(1)}% of ${x.values}`;
    const rest = x.values - x.same;
    return x.same ? `${all} (${rest ? ((100 * (x.loose - x.sameLoose)) / rest).toFixed(1) : '-'}% of the ${rest} not of identical boxes)` : all;
  };
  lines.push(`## Values whose allowed error is at least the value (seed ${SLICE_SEED}, ${SLICE_CASES} cases; far and thin: ${REGIME_CASES} cases each)`, '', '| op | loss | gradient |', '| --- | --- | --- |');
  const byOp = new Map<string, { loss: Count; grad: Count }>();
  for (const [k, r] of [...tally].sort(([a], [b]) => a.localeCompare(b))) {
    lines.push(`| ${k} | ${pct(r.loss)} | ${pct(r.grad)} |`);
    const op = k.includes('[') ? `${k.split(' ')[0]} [${k.split('[')[1]}` : k.split(' ')[0];
    const t = byOp.get(op) ?? { loss: zero(), grad: zero() };
    for (const o of ['loss', 'grad'] as const) for (const f of ['values', 'loose', 'same', 'sameLoose'] as const) t[o][f] += r[o][f];
    byOp.set(op, t);
  }
  lines.push('', '| op (all variants and formats) | loss | gradient |', '| --- | --- | --- |');
  for (const [k, r] of byOp) lines.push(`| ${k} | ${pct(r.loss)} | ${pct(r.grad)} |`);

  const planted = await plantedTally({ default: def, wg }, FUZZ_OPS, { seed: SLICE_SEED + 1, perOp: Number(process.env.AUDIT_PLANTED ?? 30), boxes: ['far', 'thin'] });
  lines.push('', '## Planted defects flagged (8 to 64 K*u relative on every element of one output)', '', tallyTable(planted));
  lines.push('', '### Missed', '', ...planted.missed.slice(0, 200).map((m) => `- ${m}`));
  const text = lines.join('\n');
  console.log(text);
  if (process.env.AUDIT_REPORT) writeFileSync(process.env.AUDIT_REPORT, text);
}, 0);
