import type { PlanChoice, TunedPlan, TuneProgress } from '../runtime/public';

// How the CLI shows tuned launch plans: a plan as text, the line `tune()`'s progress prints, and the
// table of the choices. Shared by `detloss tune` and `detloss bench --tuned`.

/** Milliseconds with three significant figures or so. */
const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toFixed(3));
/** Seconds with one decimal. */
export const seconds = (msTime: number) => `${(msTime / 1000).toFixed(1)} s`;

/**
 * A tuned plan as one short line: `16384 threads, wg 64, vec4, reduce 64×auto, rows thread`
 * (`reducePer` 0 is "as many partials a lane as one level needs").
 */
export function planText(p: TunedPlan): string {
  return `${p.maxThreads} threads, wg ${p.workgroupSize}, ${p.vectorWidth === 4 ? 'vec4' : 'scalar'}, reduce ${p.reduceLanes}×${p.reducePer || 'auto'}, rows ${p.rows}`;
}

/** The fields of `p` that differ from `from` (`maxThreads 16384→4096`), or `the default plan`. */
export function planChanges(p: TunedPlan, from: TunedPlan | undefined): string {
  if (!from) return planText(p);
  const changed = (Object.keys(p) as (keyof TunedPlan)[]).filter((k) => p[k] !== from[k]).map((k) => `${k} ${from[k]}→${p[k]}`);
  return changed.length ? changed.join(', ') : 'the default plan';
}

/**
 * The default plan a choice was measured against: its first candidate (the tuner times the
 * context's own plan first).
 */
export const defaultPlanOf = (c: PlanChoice): TunedPlan | undefined => c.candidates[0]?.plan;

/** One measurement of a `tune()` run as a progress line: family, size class, count, time of the budget, plan, ms. */
export function progressLine(p: TuneProgress): string {
  return `${p.family} ${p.size}  #${p.measured}  ${seconds(p.elapsedMs)} of ${seconds(p.budgetMs)}  ${planText(p.plan)}: ${ms(p.ms)} ms`;
}

/**
 * The choices as a markdown table: family, size class, the op timed, the chosen plan (what differs
 * from the default), its time, the default's, their ratio and how many candidates were timed.
 */
export function choicesTable(choices: readonly PlanChoice[]): string[] {
  const head = ['family', 'size', 'op', 'chosen plan', 'ms', 'default ms', 'default / chosen', 'candidates'];
  const rows = choices.map((c) => [c.family, c.size, c.op, planChanges(c.plan, defaultPlanOf(c)), ms(c.ms), ms(c.defaultMs), c.ms > 0 ? (c.defaultMs / c.ms).toFixed(2) : '-', String(c.candidates.length)]);
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(['---', '---', '---', '---', '---:', '---:', '---:', '---:']), ...rows.map(line)];
}
