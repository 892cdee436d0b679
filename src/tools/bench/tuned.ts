/**
 * `detloss bench --node --tuned`: the default launch plan against the plans `tune()` chooses, on one
 * device, through the tuned bench of the built Node module (bench/tuned-bench.ts): first the tuning
 * (its progress logged as it goes), then each case timed on both contexts, interleaved.
 */
import { loadavg } from 'node:os';
import type { PlanRecord, TuneOp, TuneProgress } from '../../runtime/public';
import { choicesTable, progressLine, seconds } from '../tune-report';
import { type BenchCase, caseLabel } from './cases';
import { machineFacts, openFirst } from './drivers';
import { adapterLine, ms, nText } from './format';

/** A case of the tuned bench: a bench case, and the op as `tune()` takes it. */
export interface TunedCase extends BenchCase {
  tune: TuneOp;
}

/** The four cases: one op of each family the quick preset times (sigmoid focal over N logits, cross-entropy N rows of 80). */
export function tunedCases(ns: readonly number[] = [1e6]): TunedCase[] {
  const shapes: Omit<TunedCase, 'n'>[] = [
    { op: 'iou_loss', params: { variant: 'ciou' }, tfjs: 'ciou', tune: { op: 'iou_loss', options: { variant: 'ciou' } } },
    { op: 'smooth_l1', params: {}, tfjs: 'smooth_l1', tune: 'smooth_l1' },
    { op: 'sigmoid_focal', params: {}, tfjs: 'sigmoid_focal', tune: 'sigmoid_focal' },
    { op: 'cross_entropy', params: {}, width: 80, tfjs: 'cross_entropy', tune: { op: 'cross_entropy', dims: { c: 80 } } },
  ];
  return ns.flatMap((n) => shapes.map((s) => ({ ...s, n })));
}

/** One context's side of a case: medians of the timed runs, and the plans its calls ran. */
export interface TunedSide {
  wallMs: number;
  /** GPU time from timestamps, where every timed call has one. */
  gpuMs?: number;
  timesMs: number[];
  gpuTimesMs: number[];
  /** The module and entry of the last call (`stats().lastCall.kernel`). */
  kernel?: string;
  /** The tuned plans the calls ran (`stats().lastCall.tunedPlan`, e.g. `'ce 1e6/1e2'`); none: the context's plan. */
  tunedPlans: string[];
  /** Calls (warm-up included) that ran a tuned plan, of all calls. */
  tunedCalls: number;
  calls: number;
}

/** Both sides of a case, as the tuned bench measures them. */
export interface TunedCaseResult {
  default: TunedSide;
  tuned: TunedSide;
}

/** The tuning before the cases: its time, the time compiling the default plan took before it, the record. */
export interface TuningResult {
  ms: number;
  warmMs: number;
  record: PlanRecord;
  warnings: string[];
}

/** A case's row of the report: both sides, their ratio and the timer it is in. */
export interface TunedRow extends TunedCaseResult {
  label: string;
  op: string;
  params: Record<string, unknown>;
  n: number;
  width?: number;
  /** default / tuned, in GPU time where both sides have it, else wall time: above 1 the tuned plan is faster. */
  ratio: number;
  timer: 'gpu' | 'wall';
}

export interface TunedReport {
  driver: 'node';
  adapter: Record<string, unknown>;
  machine: Record<string, unknown> & { load: { before: number[]; after?: number[] } };
  reps: number;
  warmup: number;
  budgetMs: number;
  /** The context's own launch plan (the default side's). */
  plan?: Record<string, unknown>;
  tuning?: TuningResult;
  cases: TunedRow[];
  failures: { label: string; n: number; error: string }[];
}

const load = () => loadavg().map((x) => Math.round(x * 100) / 100);

/** A case's log line: both times, the ratio, and the plan the tuned context's calls ran. */
function caseLine(r: TunedRow): string {
  const t = (s: TunedSide) => ms(r.timer === 'gpu' ? s.gpuMs : s.wallMs);
  const ran = r.tuned.tunedPlans.length ? `ran ${r.tuned.tunedPlans.join(', ')} on ${r.tuned.tunedCalls} of ${r.tuned.calls} calls` : 'ran no tuned plan';
  return `  default ${t(r.default)} ms, tuned ${t(r.tuned)} ms (${r.timer === 'gpu' ? 'GPU' : 'wall'}): default / tuned ${r.ratio.toFixed(2)}; the tuned context ${ran}`;
}

/**
 * Tunes the cases' ops at their sizes within `budgetMs`, then times each case with the default
 * plan and the tuned one interleaved, in this process on Node's WebGPU (the module at `module`,
 * bench/dist-node/node.js). A case that fails is noted and the run goes on; `onProgress` gets the
 * report after the tuning and after every case.
 */
export async function runTunedBench(opts: {
  module: string;
  cases: TunedCase[];
  reps: number;
  warmup: number;
  budgetMs: number;
  log: (line: string) => void;
  onProgress?: (report: TunedReport) => void;
}): Promise<TunedReport> {
  const { log, cases } = opts;
  const before = load();
  const session = await openFirst({
    kind: 'node',
    module: opts.module,
    entry: 'openTunedBench',
    onEvent: (name, data) => name === 'tune-progress' && log(`  ${progressLine(data as TuneProgress)}`),
  });
  const init = session.adapter;
  const report: TunedReport = { driver: 'node', adapter: init, machine: { ...machineFacts('node', session.runtime), load: { before } }, reps: opts.reps, warmup: opts.warmup, budgetMs: opts.budgetMs, cases: [], failures: [] };
  log(`adapter: ${adapterLine(init)}; load average ${before.join(', ')}`);
  try {
    report.plan = await session.call<Record<string, unknown>>('plan');
    const ops = cases.filter((c, i) => cases.findIndex((d) => d.op === c.op) === i).map((c) => c.tune);
    const sizes = [...new Set(cases.map((c) => c.n))];
    log(`tuning ${ops.length} ops at ${sizes.map(nText).join(', ')} within ${seconds(opts.budgetMs)}:`);
    const tuning = await session.call<TuningResult>('tune', ops, sizes, opts.budgetMs);
    report.tuning = tuning;
    log(`\n${choicesTable(tuning.record.plans).join('\n')}\n`);
    log(`tuning took ${seconds(tuning.ms)} of a ${seconds(opts.budgetMs)} budget (after ${seconds(tuning.warmMs)} compiling the default plan's pipelines)`);
    for (const w of tuning.warnings) log(`warning: ${w}`);
    opts.onProgress?.(report);
    for (const [i, c] of cases.entries()) {
      const label = caseLabel(c);
      log(`[${i + 1}/${cases.length}] ${label} n=${nText(c.n)}: default and tuned plans, interleaved`);
      try {
        const r = await session.call<TunedCaseResult>('measure', c, opts.reps, opts.warmup);
        const timer = r.default.gpuMs !== undefined && r.tuned.gpuMs !== undefined ? 'gpu' : 'wall';
        const ratio = timer === 'gpu' ? r.default.gpuMs! / r.tuned.gpuMs! : r.default.wallMs / r.tuned.wallMs;
        const row: TunedRow = { label, op: c.op, params: c.params, n: c.n, ...(c.width ? { width: c.width } : {}), ...r, ratio, timer };
        report.cases.push(row);
        log(caseLine(row));
      } catch (e) {
        report.failures.push({ label, n: c.n, error: (e as Error).message });
        log(`  FAILED: ${(e as Error).message}`);
      }
      opts.onProgress?.(report);
    }
  } finally {
    await session.close();
    report.machine.load.after = load();
  }
  return report;
}
