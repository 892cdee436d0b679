/** The tuned bench's report as markdown: the cases, default against tuned, and the tuner's choices. */
import type { PlanChoice } from '../../runtime/public';
import { choicesTable, defaultPlanOf, planChanges, seconds } from '../tune-report';
import { adapterLine, ms, nText } from './format';
import type { TunedReport, TunedRow, TunedSide } from './tuned';

/** What the ratio column means, said under the table. */
export const TUNED_RATIO_LEGEND = 'default / tuned: the default plan\'s median time divided by the tuned plan\'s, in the same run: above 1 the tuned plan is faster, below 1 slower.';

/** The choice a tuned plan's name (`'ce 1e6/1e2'`, as `stats().lastCall.tunedPlan` gives it) stands for. */
const choiceNamed = (plans: readonly PlanChoice[], name: string) => plans.find((c) => `${c.family} ${c.size}` === name);

/** The plans the tuned side ran, each with what differs from the default. */
function ranText(r: TunedRow, plans: readonly PlanChoice[]): string {
  if (!r.tuned.tunedPlans.length) return 'none (the default plan)';
  return r.tuned.tunedPlans
    .map((name) => {
      const c = choiceNamed(plans, name);
      return `${name}: ${c ? planChanges(c.plan, defaultPlanOf(c)) : '?'}`;
    })
    .join('; ');
}

/** The report as a markdown table, with the machine, the method, the legend and the tuner's choices. */
export function tunedTable(report: TunedReport): string {
  const m = report.machine;
  const plans = report.tuning?.record.plans ?? [];
  const timer = report.cases.some((c) => c.timer === 'gpu') ? 'GPU time from timestamps' : 'wall time';
  const lines = [
    `Adapter: ${adapterLine(report.adapter)}; ${m.cores} × ${m.cpu}, ${m.memoryGiB} GiB; Node ${m.node}, webgpu ${m.webgpu}; load average (1, 5, 15 min) ${m.load.before.join(', ')} before, ${m.load.after?.join(', ') ?? '-'} after.`,
    '',
    `The default launch plan against the tuned plans, on one device: resident calls on the same inputs, default and tuned interleaved, ${report.warmup} warm-up rounds, then the median of ${report.reps} timed runs each (${timer}; wall time beside it).`,
    report.tuning ? `Tuning took ${seconds(report.tuning.ms)} of a ${seconds(report.budgetMs)} budget, after ${seconds(report.tuning.warmMs)} compiling the default plan's pipelines.` : 'Tuning did not finish.',
    '',
  ];
  const head = ['case', 'N', 'default ms', 'tuned ms', 'default / tuned', 'default wall ms', 'tuned wall ms', 'tuned plan run (what differs from the default)', 'calls on it'];
  const t = (r: TunedRow, s: TunedSide) => ms(r.timer === 'gpu' ? s.gpuMs : s.wallMs);
  const rows = report.cases.map((r) => [r.label, nText(r.n), t(r, r.default), t(r, r.tuned), r.ratio.toFixed(2), ms(r.default.wallMs), ms(r.tuned.wallMs), ranText(r, plans), `${r.tuned.tunedCalls} of ${r.tuned.calls}`]);
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  lines.push(line(head), line(['---', '---:', '---:', '---:', '---:', '---:', '---:', '---', '---:']), ...rows.map(line), '', TUNED_RATIO_LEGEND);
  const strays = report.cases.filter((r) => r.default.tunedCalls > 0);
  if (strays.length) lines.push('', `The default context ran a tuned plan in: ${strays.map((r) => r.label).join(', ')} (it should not).`);
  if (plans.length) lines.push('', "The tuner's choices (tune() on the tuned context before the cases, on inputs of its own; ms is the fastest of the candidate's timed calls):", '', ...choicesTable(plans));
  if (report.plan) lines.push('', `Default plan: \`${JSON.stringify(report.plan)}\``);
  if (report.tuning?.warnings.length) lines.push('', ...report.tuning.warnings.map((w) => `- warning: ${w}`));
  if (report.failures.length) lines.push('', 'Not measured:', '', ...report.failures.map((f) => `- ${f.label} N=${nText(f.n)}: ${f.error}`));
  return lines.join('\n');
}
