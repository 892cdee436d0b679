import { YOLO_BENCH_OPS, type Contender } from './cases';
import { adapterLine, fmtX, ms, msN, pct, nText } from './format';
import type { BenchResult } from './run';

/** Contenders not timed grouped by reason (TF.js's two backends usually share one), then the short-run notes. */
function skipNotes(skipped: Record<string, string>): string[] {
  const byReason = new Map<string, string[]>();
  const out: string[] = [];
  for (const [k, v] of Object.entries(skipped)) {
    if (k.endsWith(' runs')) out.push(`${k.slice(0, -5)}: ${v}`);
    else byReason.set(v, [...(byReason.get(v) ?? []), k]);
  }
  return [...[...byReason].map(([reason, who]) => `${who.join(' and ')} not timed (${reason})`), ...out];
}

/**
 * A markdown table without the columns that are `-` in every row: a contender this run did not time
 * (the workgroup-per-row kernel outside the row ops, TF.js when it was left out) adds nothing.
 */
function mdTable(head: string[], align: string[], rows: string[][]): string[] {
  const keep = head.map((_, i) => rows.length === 0 || rows.some((r) => r[i] !== '-'));
  const line = (cells: string[]) => `| ${cells.filter((_, i) => keep[i]).join(' | ')} |`;
  return [line(head), line(align), ...rows.map(line)];
}

/**
 * What a "× ..." column means, said under the table that has one: the ratio is the other
 * contender's median time divided by detloss's (measure.ts: `speedup[w] = median[w] / median['detloss-gpu']`),
 * so ×N means detloss takes 1/N of the other's time.
 */
export function ratioLegend(detlossColumn: string): string {
  return `×N: the other's median time divided by detloss's ("${detlossColumn}"): detloss takes 1/N of the time (above 1, detloss is faster; below 1, slower).`;
}

/** Whether a table kept a "×" column. */
const hasRatio = (table: string[]) => table[0].includes('| ×');

/** The results as a markdown table (the Node driver's has GPU times and the pipelined calls). */
export function benchTable(res: BenchResult): string {
  if (res.driver === 'node') return nodeBenchTable(res);
  const a = res.adapter;
  const m = res.machine;
  const head = [`Adapter: ${[a.vendor, a.architecture, a.description].filter(Boolean).join(' / ')}${a.isFallbackAdapter ? ' (software fallback)' : ''}; ${m.cores} × ${m.cpu}, ${m.memoryGiB} GiB; ${m.chromium}; Node ${m.node}.`, ''];
  const columns = ['op', 'N', 'detloss GPU ms', 'workgroup/row ms', 'GPU-resident ms', 'CPU ref ms', 'TF.js webgpu ms', 'TF.js cpu ms', 'copy ms', '× TF.js webgpu', '× CPU ref', '% of copy bandwidth', 'dispatches detloss / TF.js'];
  const rows = res.cases.map((c) => {
    const get = (w: Contender) => res.rows.find((r) => r.op === c.op && r.n === c.n && JSON.stringify(r.params) === JSON.stringify(c.params) && r.contender === w)?.medianMs;
    return [c.label, nText(c.n), ms(get('detloss-gpu')), ms(get('detloss-gpu-rows')), ms(get('detloss-gpu-resident')), ms(get('detloss-cpu')), ms(get('tfjs-webgpu')), ms(get('tfjs-cpu')), ms(get('copy')), fmtX(c.speedup['tfjs-webgpu']), fmtX(c.speedup['detloss-cpu']), pct(c.bandwidthFraction), `${c.dispatches.detloss} / ${c.dispatches.tfjs ?? '-'}`];
  });
  const table = mdTable(columns, ['---', ...columns.slice(1).map(() => '---:')], rows);
  return [...head, ...table, ...tableTail(res, ms, table, 'detloss GPU ms')].join('\n');
}

/**
 * What follows both tables' rows: the ranking table, the legend of the "×" columns (once, under the
 * ranking table where there is one: its ratios are over detloss's GPU time too), the first-call
 * table, then `extra` (the Node bench's plans and passes), the contenders not timed, the cases not
 * measured and the ops without a kernel.
 */
function tableTail(res: BenchResult, fmt: (x: number | undefined) => string, main: string[], detlossColumn: string, extra: string[] = []): string[] {
  const first = res.cases.filter((c) => c.firstCall).map((c) => `| ${c.label} | ${fmt(c.firstCall!.coldMs)} | ${fmt(c.firstCall!.warmMs)} |`);
  const notes = res.cases.filter((c) => c.skipped).map((c) => `- ${c.label} N=${nText(c.n)}: ${skipNotes(c.skipped!).join('; ')}`);
  // The ranking losses (issue 15): the GPU against the CPU reference and the authors' loop in JavaScript.
  const rankingRows = res.cases
    .filter((c) => c.params.positives !== undefined)
    .map((c) => {
      const get = (w: Contender) => res.rows.find((r) => r.op === c.op && r.n === c.n && JSON.stringify(r.params) === JSON.stringify(c.params) && r.contender === w)?.medianMs;
      return [c.label, nText(c.n), fmt(get('detloss-gpu')), fmt(get('detloss-cpu')), fmt(get('js-authors-loop')), fmtX(c.speedup['detloss-cpu']), fmtX(c.speedup['js-authors-loop'])];
    });
  const ranking = rankingRows.length
    ? mdTable(['ranking op', 'N', 'detloss GPU ms', 'CPU ref ms', "authors' loop (JS) ms", '× CPU ref', "× authors' loop"], ['---', '---:', '---:', '---:', '---:', '---:', '---:'], rankingRows)
    : [];
  // The assigner and the YOLO loss: what detloss's pool allocates per call.
  const memory = res.cases
    .filter((c) => c.allocated && YOLO_BENCH_OPS.includes(c.op))
    .map((c) => `- ${c.label}: detloss's pool allocated ${(c.allocated!.first / 2 ** 20).toFixed(1)} MiB for the first call (scratch, outputs, readback) and ${(c.allocated!.later / 2 ** 20).toFixed(1)} MiB for each call after it.`);
  return [
    ...(ranking.length ? ['', ...ranking] : []),
    ...(memory.length ? ['', 'Memory per call:', '', ...memory] : []),
    ...(hasRatio(main) || (ranking.length && hasRatio(ranking)) ? ['', ratioLegend(detlossColumn)] : []),
    '',
    '| op | first call, cold (compile) ms | first call after warmup() ms |',
    '| --- | ---: | ---: |',
    ...first,
    ...extra,
    ...(notes.length ? ['', ...notes] : []),
    ...(res.failures.length ? ['', ...res.failures.map((f) => `- ${f.label} N=${nText(f.n)}: FAILED, not measured: ${f.error}`)] : []),
    ...(res.skippedOps.length ? ['', `Not benchmarked (no GPU kernel yet): ${res.skippedOps.join(', ')}.`] : []),
  ];
}

/** A bar chart of detloss's speed-up over TF.js webgpu per case and N (log scale), as SVG. */
export function benchSvg(res: BenchResult): string {
  const cs = res.cases.filter((c) => c.speedup['tfjs-webgpu'] !== undefined);
  const barW = 18;
  const gap = 10;
  const left = 60;
  const top = 40;
  const h = 260;
  const maxX = Math.max(10, ...cs.map((c) => c.speedup['tfjs-webgpu']!));
  const logMax = Math.ceil(Math.log10(maxX));
  const y = (x: number) => top + h - (Math.max(0, Math.log10(Math.max(x, 1))) / logMax) * h;
  const width = left + cs.length * (barW + gap) + 40;
  const colors: Record<number, string> = { 1000: '#9ecae1', 4000: '#3182bd', 10000: '#c6dbef', 100000: '#6baed6', 1000000: '#08519c' };
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${top + h + 150}" font-family="sans-serif" font-size="11">`,
    `<text x="${left}" y="20" font-size="14">detloss GPU speed-up over TF.js webgpu (log scale), forward + backward</text>`,
  ];
  for (let k = 0; k <= logMax; k++) {
    const yy = y(10 ** k);
    parts.push(`<line x1="${left}" x2="${width - 20}" y1="${yy}" y2="${yy}" stroke="#ddd"/><text x="${left - 6}" y="${yy + 4}" text-anchor="end">${10 ** k}×</text>`);
  }
  parts.push(`<line x1="${left}" x2="${width - 20}" y1="${y(20)}" y2="${y(20)}" stroke="#d62728" stroke-dasharray="4 3"/><text x="${width - 20}" y="${y(20) - 4}" text-anchor="end" fill="#d62728">20× target</text>`);
  cs.forEach((c, i) => {
    const x = left + 10 + i * (barW + gap);
    const v = c.speedup['tfjs-webgpu']!;
    parts.push(`<rect x="${x}" y="${y(v)}" width="${barW}" height="${top + h - y(v)}" fill="${colors[c.n] ?? '#888'}"><title>${c.label} N=${c.n}: ${v.toFixed(1)}×</title></rect>`);
    parts.push(`<text x="${x + barW / 2}" y="${y(v) - 3}" text-anchor="middle" font-size="9">${fmtX(v)}</text>`);
    parts.push(`<text transform="translate(${x + barW / 2},${top + h + 8}) rotate(60)" font-size="10">${c.label} ${nText(c.n)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** The Node driver's table: wall and GPU time for detloss's three ways to call, TF.js, the copy kernel. */
function nodeBenchTable(res: BenchResult): string {
  const a = res.adapter;
  const m = res.machine;
  const feats = (a.features as string[] | undefined) ?? [];
  const head = [
    `Adapter: ${adapterLine(a)}; features: ${feats.join(', ') || 'none'}; ${m.cores} × ${m.cpu}, ${m.memoryGiB} GiB; Node ${m.node}, webgpu ${m.webgpu || '?'} (Dawn), no browser.`,
    '',
    'Wall time is the median per call including the wait for the queue; GPU time is from timestamps (sum over the passes of the call; for pipelined, the last of its calls), `-` where the device or runtime gave none. Pipelined: 10 resident calls, one wait, wall time per call.',
    '',
  ];
  const columns = ['op', 'N', 'host arrays ms', 'resident ms', 'resident GPU ms', 'pipelined ms', 'pipelined GPU ms', 'CPU ref ms', 'TF.js webgpu ms', 'TF.js cpu ms', 'copy ms', 'copy GPU ms', '× TF.js webgpu', '% of copy bandwidth (wall)', '% of copy bandwidth (GPU)', 'dispatches detloss / TF.js'];
  const rows = res.cases.map((c) => {
    const row = (w: Contender) => res.rows.find((r) => r.op === c.op && r.n === c.n && JSON.stringify(r.params) === JSON.stringify(c.params) && r.contender === w);
    const get = (w: Contender) => row(w)?.medianMs;
    const gpu = (w: Contender) => row(w)?.gpuMedianMs;
    return [c.label, nText(c.n), msN(get('detloss-gpu')), msN(get('detloss-gpu-resident')), msN(gpu('detloss-gpu-resident')), msN(get('detloss-gpu-pipelined')), msN(gpu('detloss-gpu-pipelined')), msN(get('detloss-cpu')), msN(get('tfjs-webgpu')), msN(get('tfjs-cpu')), msN(get('copy')), msN(gpu('copy')), fmtX(c.speedup['tfjs-webgpu']), pct(c.bandwidthFraction), pct(c.gpuBandwidthFraction), `${c.dispatches.detloss} / ${c.dispatches.tfjs ?? '-'}`];
  });
  const table = mdTable(columns, ['---', ...columns.slice(1).map(() => '---:')], rows);
  const plans = res.cases.filter((c) => c.plan !== undefined || c.passes).map((c) => {
    const passes = c.passes ? ` passes: ${c.passes.map((p) => `${p.name} ${msN(p.gpuMs)} ms`).join(', ')}` : '';
    return `- ${c.label} N=${nText(c.n)}:${c.plan !== undefined ? ` \`${JSON.stringify(c.plan)}\`` : ''}${passes}`;
  });
  const extra = plans.length ? ['', 'Launch plans (`stats().plan`) and the last resident call\'s passes:', '', ...plans] : [];
  return [...head, ...table, ...tableTail(res, msN, table, 'host arrays ms', extra)].join('\n');
}
