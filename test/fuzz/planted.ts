/**
 * Planted defects: how much of a small error the tolerance rule (./tolerance.ts) sees. A surface
 * runs each case once, then hands back its result with every element of one output moved by a
 * relative 8 to 64 units of K*u (K the op's factor of the rule, u = 2^-24), each element its own
 * size and sign. A rule that models the kernel's error flags such a case; one that excuses errors
 * many times the kernel's does not. Counted per op and per output (the loss, the gradients), over
 * cases of every op and, for the box ops, the far and thin regimes as well.
 */
import type { DetlossContext } from '../../src/api';
import { generateCase, type BOX_RECIPES, type FuzzCase } from './cases';
import { Rng } from './prng';
import { checkCase, dlSurface, hasNonFinite, type Surface } from './runner';
import { NMS_OPS } from './nms';
import { dataOf, kOf, U } from './tolerance';

type Res = Awaited<ReturnType<Surface['run']>>;
/** The loss, the gradients, or the named outputs of the ops that have them (their float ones: boxes, targetScores, components). */
export type Output = 'loss' | 'grad' | 'outputs';

/** The result with every element of `out` moved by s * r * K * u relative (r in [8, 64], s = +-1); null when that moves nothing (all zeros). */
export function plant(c: FuzzCase, res: Res, out: Output, seed: number): Res | null {
  const rng = new Rng(seed);
  if (NMS_OPS.has(c.op)) return out === 'outputs' ? plantNms(c, res, rng) : null;
  const ku = kOf(c) * U;
  let moved = false;
  const move = (a: ArrayLike<number>) =>
    Float64Array.from(a, (v) => {
      const d = (rng.chance(0.5) ? 1 : -1) * rng.uniform(8, 64) * ku * v;
      if (d !== 0 && Number.isFinite(d)) moved = true;
      return v + d;
    });
  let r: Res;
  if (out === 'loss') r = { ...res, loss: move(res.loss) };
  else if (out === 'grad') r = { ...res, grad: Object.fromEntries(Object.entries(res.grad).map(([k, g]) => [k, move(g)])) };
  // (an integer output has no small error: the assigner's labels, foreground and gtIndex stay, and
  // so do its boxes, copies of gtBoxes held bit for bit: a defect there is always flagged, and would
  // hide how much of one the rule sees in targetScores)
  else r = { ...res, outputs: Object.fromEntries(Object.entries(res.outputs ?? {}).map(([k, o]) => [k, o instanceof Int32Array || k === 'boxes' ? o : move(o)])) };
  return moved ? r : null;
}

/**
 * An NMS result with one small defect in its selections (an NMS output has no small numeric
 * error, but one index more or less, or two in the wrong order): the last selection dropped, two
 * neighbouring selections of a group swapped, or a candidate that was not selected added at the
 * end; nms_tfjs's scores go with their indices (an added one with its input score). Null where the
 * result has too few selections (or no candidate is left out) for the drawn defect.
 */
function plantNms(c: FuzzCase, res: Res, rng: Rng): Res | null {
  const idx = c.op === 'nms' ? 'keep' : c.op === 'nms_onnx' ? 'selected' : 'selectedIndices';
  const w = c.op === 'nms_onnx' ? 3 : 1;
  const rows: number[][] = [];
  const sel = res.outputs![idx];
  for (let r = 0; r < sel.length / w; r++) rows.push(Array.from({ length: w }, (_, k) => sel[r * w + k]));
  const scores = c.op === 'nms_tfjs' ? Array.from(res.outputs!.selectedScores) : [];
  const kind = rng.pick(['drop', 'swap', 'add']);
  if (kind === 'drop') {
    if (!rows.length) return null;
    rows.pop();
    scores.pop();
  } else if (kind === 'swap') {
    // neighbours of one group (nms_onnx: the same batch and class)
    const at = rows.flatMap((row, r) => (r + 1 < rows.length && (w === 1 || (row[0] === rows[r + 1][0] && row[1] === rows[r + 1][1])) ? [r] : []));
    if (!at.length) return null;
    const r = rng.pick(at);
    [rows[r], rows[r + 1]] = [rows[r + 1], rows[r]];
    if (scores.length) [scores[r], scores[r + 1]] = [scores[r + 1], scores[r]];
  } else {
    // a box whose score passes, of the last group, not selected there
    const s = dataOf(c.inputs.scores)!;
    const n = c.op === 'nms_onnx' ? (c.inputs.scores as { shape: number[] }).shape[2] : s.length;
    const last = rows.length ? rows[rows.length - 1] : w === 3 ? [0, 0] : [];
    const g = w === 3 ? last[0] * (c.inputs.scores as { shape: number[] }).shape[1] + last[1] : 0;
    if (w === 3 && !rows.length) return null;
    const taken = new Set(rows.filter((row) => w === 1 || (row[0] === last[0] && row[1] === last[1])).map((row) => row[w - 1]));
    const free = Array.from({ length: n }, (_, i) => i).filter((i) => !taken.has(i) && s[g * n + i] > -Infinity);
    if (!free.length) return null;
    const i = rng.pick(free);
    rows.push(w === 3 ? [last[0], last[1], i] : [i]);
    scores.push(s[i]);
  }
  const outputs: Record<string, ArrayLike<number>> = { ...res.outputs, [idx]: Int32Array.from(rows.flat()), count: Int32Array.of(rows.length) };
  if (c.op === 'nms_tfjs') outputs.selectedScores = Float32Array.from(scores);
  return { ...res, outputs };
}

export interface PlantedTally {
  /** `op` or `op/regime` -> output -> cases tried and flagged. */
  rows: Map<string, Record<Output, { tried: number; flagged: number }>>;
  /** The case and output of each unflagged plant (for reading). */
  missed: string[];
}

/**
 * Runs `perOp` valid, finite cases of each op (seed `seed`) on `ctx` (`wg` for the cases that ask
 * for a workgroup per row) once each, plants a defect in each output and counts the flags. `boxes`
 * adds `perOp` cases of `iou_loss` and `pairwise_iou` in each of those regimes, counted apart.
 */
export async function plantedTally(
  ctx: { default: DetlossContext; wg: DetlossContext; hw?: DetlossContext },
  ops: readonly string[],
  o: { seed: number; perOp: number; boxes?: readonly (typeof BOX_RECIPES)[number][]; big?: boolean },
): Promise<PlantedTally> {
  const tally: PlantedTally = { rows: new Map(), missed: [] };
  const base = dlSurface((c) => (c.rows === 'wg' ? ctx.wg : c.rows === 'hw' ? (ctx.hw ?? ctx.default) : ctx.default));
  const groups: { key: string; op: string; boxes?: (typeof BOX_RECIPES)[number] }[] = ops.map((op) => ({ key: op, op }));
  for (const b of o.boxes ?? []) for (const op of ['iou_loss', 'pairwise_iou']) if (ops.includes(op)) groups.push({ key: `${op}/${b}`, op, boxes: b });
  for (const g of groups) {
    const row = { loss: { tried: 0, flagged: 0 }, grad: { tried: 0, flagged: 0 }, outputs: { tried: 0, flagged: 0 } };
    tally.rows.set(g.key, row);
    let found = 0;
    for (let i = 0; found < o.perOp && i < 40 * o.perOp; i++) {
      const c = generateCase(o.seed, i, { op: g.op, boxes: g.boxes, big: o.big ?? false, nonFinite: 0 });
      // A planted error in a NaN loss is still NaN, and a refusal has no numbers.
      if (c.tags.includes('invalid') || c.nonFinite || hasNonFinite(c)) continue;
      let res: Res;
      try {
        res = await base.run(c);
      } catch {
        continue;
      }
      if (!Array.from(res.loss).every(Number.isFinite)) continue;
      found++;
      for (const out of ['loss', 'grad', 'outputs'] as const) {
        const planted = plant(c, res, out, o.seed * 7919 + i * 31 + (out === 'loss' ? 1 : out === 'grad' ? 2 : 3));
        if (!planted) continue;
        const surface: Surface = { name: 'planted', run: async () => planted };
        row[out].tried++;
        if (await checkCase(surface, c)) row[out].flagged++;
        else tally.missed.push(`${g.key} ${out}: seed ${o.seed} case ${i} (${c.tags.join(', ')}; ${JSON.stringify(c.options)})`);
      }
    }
  }
  return tally;
}

/** The tally as a markdown table: op, then the share flagged per output (tried in brackets). */
export function tallyTable(t: PlantedTally): string {
  const cell = (x: { tried: number; flagged: number }) => (x.tried ? `${((100 * x.flagged) / x.tried).toFixed(0)}% (${x.flagged}/${x.tried})` : '-');
  const lines = ['| op | loss flagged | gradient flagged | outputs flagged |', '| --- | --- | --- | --- |'];
  for (const [k, r] of t.rows) lines.push(`| ${k} | ${cell(r.loss)} | ${cell(r.grad)} | ${cell(r.outputs)} |`);
  return lines.join('\n');
}
