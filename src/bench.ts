import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, freemem, totalmem } from 'node:os';
import { join } from 'node:path';
import { OPS } from './ops/registry';
import { findChromium, openPage, serveStatic } from './node/browser';

/** One benchmark case, as the page takes it (bench/page.ts). */
export interface BenchCase {
  op: string;
  params: Record<string, unknown>;
  n: number;
  width?: number;
  tfjs: string;
}

/** `detloss-gpu-rows`: the same call with a workgroup per row forced (row ops only), to measure the choice. */
export const CONTENDERS = ['detloss-gpu', 'detloss-gpu-rows', 'detloss-gpu-resident', 'detloss-cpu', 'tfjs-webgpu', 'tfjs-cpu', 'copy'] as const;
export type Contender = (typeof CONTENDERS)[number];

export interface BenchRow {
  op: string;
  params: Record<string, unknown>;
  n: number;
  contender: Contender;
  medianMs: number;
  dispatches?: number;
  timesMs: number[];
}

export interface CaseSummary {
  op: string;
  label: string;
  params: Record<string, unknown>;
  n: number;
  width?: number;
  check: { ok: boolean; detail: string };
  /** TF.js's is absent where TF.js could not run. */
  dispatches: { detloss: number; tfjs?: number };
  bytes: { read: number; write: number };
  speedup: Partial<Record<Contender, number>>;
  bandwidthFraction?: number;
  firstCall?: { coldMs: number; warmMs: number };
  /** Contenders not timed, and why; `<contender> runs` notes a contender timed fewer times. */
  skipped?: Record<string, string>;
}

/** The cases of issue 5: ops at N = 1e4, 1e5, 1e6 rows; pairwise at n = m = 1000 and 4000. */
export function defaultCases(ns = [1e4, 1e5, 1e6], pairwiseNs = [1000, 4000]): BenchCase[] {
  const rows: Omit<BenchCase, 'n'>[] = [
    { op: 'smooth_l1', params: {}, tfjs: 'smooth_l1' },
    { op: 'iou_loss', params: { variant: 'giou' }, tfjs: 'giou' },
    { op: 'iou_loss', params: { variant: 'ciou' }, tfjs: 'ciou' },
    { op: 'iou_loss', params: { variant: 'siou' }, tfjs: 'siou' },
    { op: 'sigmoid_focal', params: {}, tfjs: 'sigmoid_focal' },
    { op: 'quality_focal', params: {}, width: 80, tfjs: 'quality_focal' },
    { op: 'cross_entropy', params: {}, width: 80, tfjs: 'cross_entropy' },
    { op: 'distribution_focal', params: {}, width: 17, tfjs: 'distribution_focal' },
  ];
  const out: BenchCase[] = [];
  for (const r of rows) for (const n of ns) out.push({ ...r, n });
  for (const variant of ['iou', 'giou']) for (const n of pairwiseNs) out.push({ op: 'pairwise_iou', params: { variant }, n, tfjs: `pairwise:${variant}` });
  return out;
}

export const caseLabel = (c: BenchCase) => `${c.op}${c.params.variant ? `{${c.params.variant}}` : ''}${c.width ? ` c=${c.width}` : ''}`;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export type BenchResult = {
  adapter: Record<string, unknown>;
  machine: Record<string, unknown>;
  rows: BenchRow[];
  cases: CaseSummary[];
  skippedOps: string[];
  /** Cases that could not be measured at all, with the error. */
  failures: { label: string; n: number; error: string }[];
};

/** A case's failure caused by TF.js, not detloss: the case is retried without the TF.js contenders. */
class TfjsFailure extends Error {}

/** One headless Chromium with the bench page, initialised. */
async function openSession(benchDist: string) {
  const gp = await openPage(await serveStatic(benchDist), 'window.benchReady');
  const page = gp.page;
  const call = <T>(fn: string, ...args: unknown[]) =>
    page.evaluate((fn: string, args: unknown[]) => (window as unknown as Record<string, Record<string, (...a: unknown[]) => Promise<unknown>>>).bench[fn](...args), fn, args) as Promise<T>;
  try {
    const adapter = ((await call<{ adapter: Record<string, unknown> }>('init')).adapter ?? {}) as Record<string, unknown>;
    return { call, adapter, close: gp.close };
  } catch (e) {
    await gp.close();
    throw e;
  }
}
type Session = Awaited<ReturnType<typeof openSession>>;

/** Runs `f` while sampling the memory in use on this machine; returns its peak in bytes with the result or error. */
async function watchMemory<T>(f: () => Promise<T>): Promise<{ peak: number; value?: T; error?: unknown }> {
  let peak = totalmem() - freemem();
  const timer = setInterval(() => (peak = Math.max(peak, totalmem() - freemem())), 250);
  try {
    const value = await f();
    return { peak, value };
  } catch (error) {
    return { peak, error };
  } finally {
    clearInterval(timer);
  }
}

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;

/**
 * Runs the benchmark in headless Chromium: for each case, uploads the inputs, checks the TF.js
 * peer against detloss, then times the contenders interleaved (A B C A B C ...) after warm-up.
 * A case that kills the page (a GPU process out of memory, a lost device) is logged, Chromium is
 * restarted, and the case is retried without TF.js when TF.js was the cause; the run goes on, and
 * `onProgress` gets the results so far after every case, so an interrupted run keeps its work.
 */
export async function runBench(opts: {
  benchDist: string;
  cases: BenchCase[];
  reps: number;
  warmup: number;
  cpuMaxElements: number;
  /** A contender slower than this per call (ms) is timed `slowReps` times after one warm-up. */
  slowMs: number;
  slowReps: number;
  log: (line: string) => void;
  onProgress?: (res: BenchResult) => void;
}): Promise<BenchResult> {
  const { log } = opts;
  if (!existsSync(join(opts.benchDist, 'index.html'))) throw new Error(`${opts.benchDist}/index.html is missing: run npm run build:bench`);
  const res: BenchResult = { adapter: {}, machine: machineFacts(), rows: [], cases: [], skippedOps: [], failures: [] };
  let session: Session | undefined = await openSession(opts.benchDist);
  const restart = async () => {
    await session?.close().catch(() => {});
    session = undefined;
    session = await openSession(opts.benchDist);
  };
  const adapter = (res.adapter = session.adapter);
  log(`adapter: ${[adapter.vendor, adapter.architecture, adapter.description].filter(Boolean).join(' / ')}${adapter.isFallbackAdapter ? ' (software fallback)' : ''}`);
  try {
    const cases = opts.cases.filter((c) => {
      if (OPS[c.op]?.gpu) return true;
      if (!res.skippedOps.includes(c.op)) res.skippedOps.push(c.op);
      return false;
    });
    if (res.skippedOps.length) log(`not benchmarked (no GPU kernel yet): ${res.skippedOps.join(', ')}`);
    const seenFirst = new Set<string>();
    for (const [ci, c] of cases.entries()) {
      const label = caseLabel(c);
      log(`[${ci + 1}/${cases.length}] ${label} n=${c.n.toExponential(0)}: preparing`);
      let tfjsSkip: string | undefined;
      for (let attempt = 0; ; attempt++) {
        try {
          const { rows, summary } = await measureCase(session!, c, opts, tfjsSkip, !seenFirst.has(label));
          if (summary.firstCall) seenFirst.add(label);
          res.rows.push(...rows);
          res.cases.push(summary);
          break;
        } catch (e) {
          const msg = (e as Error).message;
          log(`  FAILED: ${msg}; restarting Chromium`);
          await restart();
          if (e instanceof TfjsFailure && attempt === 0) {
            tfjsSkip = msg;
            log('  retrying without TF.js');
            continue;
          }
          res.failures.push({ label, n: c.n, error: msg });
          break;
        }
      }
      opts.onProgress?.(res);
    }
    await session!.call('dispose');
  } finally {
    await session?.close();
  }
  return res;
}

/** Prepares, checks and times one case in `session`. */
async function measureCase(
  session: Session,
  c: BenchCase,
  opts: Parameters<typeof runBench>[0],
  tfjsSkip: string | undefined,
  withFirstCall: boolean,
): Promise<{ rows: BenchRow[]; summary: CaseSummary }> {
  const { log } = opts;
  const { call } = session;
  const label = caseLabel(c);
  const prep = await call<{ detlossDispatches: number; bytes: { read: number; write: number } }>('prepare', c);
  const skipped: Record<string, string> = {};
  let tfjs = { check: { ok: false, detail: 'not run' }, tfjsDispatches: 0, tfjsCpu: false };
  if (tfjsSkip) {
    skipped['tfjs-webgpu'] = skipped['tfjs-cpu'] = tfjsSkip;
  } else {
    const watched = await watchMemory(() => call<typeof tfjs>('prepareTfjs'));
    if (watched.error) {
      throw new TfjsFailure(
        `TF.js's first call failed (${(watched.error as Error).message}); memory in use on this machine peaked at ${gib(watched.peak)} of ${gib(totalmem())}`,
      );
    }
    tfjs = watched.value!;
    if (!tfjs.check.ok) skipped['tfjs-webgpu'] = skipped['tfjs-cpu'] = `disagrees with detloss: ${tfjs.check.detail}`;
    else if (!tfjs.tfjsCpu) skipped['tfjs-cpu'] = 'N > 1e5';
    log(`  TF.js peer ${tfjs.check.ok ? 'agrees' : 'DISAGREES'} (${tfjs.check.detail}); dispatches per call: detloss ${prep.detlossDispatches}, TF.js ${tfjs.tfjsDispatches}`);
  }
  const elements = (c.width ?? (c.op === 'iou_loss' ? 4 : 1)) * c.n * (c.op === 'pairwise_iou' ? c.n / 4 : 1);
  if (elements > opts.cpuMaxElements) skipped['detloss-cpu'] = `more than ${opts.cpuMaxElements.toExponential(0)} elements`;
  const rowOp = !!OPS[c.op].gpu?.rows;
  if (rowOp && c.n > 100_000) skipped['detloss-gpu-rows'] = 'measured at N <= 1e5 only';
  const who = CONTENDERS.filter((x) => !skipped[x] && (x !== 'detloss-gpu-rows' || rowOp));
  const times: Record<string, number[]> = {};
  // A contender whose first call takes over slowMs gets one warm-up and fewer timed runs, so a
  // run of the whole benchmark stays within an hour on a software adapter; the report says so.
  const slow = new Set<string>();
  for (let r = -opts.warmup; r < opts.reps; r++) {
    const line: string[] = [];
    for (const w of who) {
      if (slow.has(w) && (r < 0 || r >= opts.slowReps)) continue;
      const ms = await call<number>('time', w);
      if (r >= 0) (times[w] ??= []).push(ms);
      else if (r === -opts.warmup && ms > opts.slowMs) slow.add(w);
      line.push(`${w} ${ms.toFixed(2)}`);
    }
    if (line.length) log(`  ${r < 0 ? 'warm-up' : `run ${r + 1}/${opts.reps}`}: ${line.join(', ')} ms`);
  }
  for (const w of slow) skipped[`${w} runs`] = `${times[w].length} timed runs (one call takes over ${opts.slowMs / 1000} s here)`;
  const med: Partial<Record<Contender, number>> = {};
  const rows: BenchRow[] = [];
  for (const w of who) {
    med[w] = median(times[w]);
    rows.push({ op: c.op, params: c.params, n: c.n, contender: w, medianMs: med[w]!, timesMs: times[w], dispatches: w.startsWith('detloss-gpu') ? prep.detlossDispatches : w === 'tfjs-webgpu' ? tfjs.tfjsDispatches : undefined });
  }
  const g = med['detloss-gpu']!;
  const speedup: Partial<Record<Contender, number>> = {};
  for (const w of ['detloss-cpu', 'tfjs-webgpu', 'tfjs-cpu', 'detloss-gpu-rows'] as const) if (med[w] !== undefined) speedup[w] = med[w]! / g;
  const s: CaseSummary = {
    op: c.op,
    label,
    params: c.params,
    n: c.n,
    width: c.width,
    check: tfjs.check,
    dispatches: { detloss: prep.detlossDispatches, tfjs: tfjsSkip ? undefined : tfjs.tfjsDispatches },
    bytes: prep.bytes,
    speedup,
    bandwidthFraction: med.copy !== undefined ? med.copy / med['detloss-gpu-resident']! : undefined,
    skipped: Object.keys(skipped).length ? skipped : undefined,
  };
  if (withFirstCall) {
    s.firstCall = await call<{ coldMs: number; warmMs: number }>('firstCalls', c);
    log(`  first call: cold ${s.firstCall.coldMs.toFixed(1)} ms, after warmup() ${s.firstCall.warmMs.toFixed(1)} ms`);
  }
  log(`  median: detloss-gpu ${g.toFixed(2)} ms; x${fmtX(speedup['tfjs-webgpu'])} vs TF.js webgpu, x${fmtX(speedup['detloss-cpu'])} vs CPU reference; ${pct(s.bandwidthFraction)} of copy bandwidth`);
  return { rows, summary: s };
}

function machineFacts() {
  let chromium = '';
  try {
    chromium = execFileSync(findChromium(), ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    /* unknown */
  }
  return { cpu: cpus()[0]?.model ?? '', cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, chromium };
}

const fmtX = (x: number | undefined) => (x === undefined ? '-' : x >= 10 ? x.toFixed(0) : x.toFixed(1));
const pct = (x: number | undefined) => (x === undefined ? '-' : `${(100 * x).toFixed(0)}%`);
const ms = (x: number | undefined) => (x === undefined ? '-' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

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

/** The results as a markdown table. */
export function benchTable(res: BenchResult): string {
  const a = res.adapter;
  const m = res.machine;
  const head = [
    `Adapter: ${[a.vendor, a.architecture, a.description].filter(Boolean).join(' / ')}${a.isFallbackAdapter ? ' (software fallback)' : ''}; ${m.cores} × ${m.cpu}, ${m.memoryGiB} GiB; ${m.chromium}; Node ${m.node}.`,
    '',
    '| op | N | detloss GPU ms | workgroup/row ms | GPU-resident ms | CPU ref ms | TF.js webgpu ms | TF.js cpu ms | copy ms | × TF.js webgpu | × CPU ref | % of copy bandwidth | dispatches detloss / TF.js |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  const lines = res.cases.map((c) => {
    const get = (w: Contender) => res.rows.find((r) => r.op === c.op && r.n === c.n && JSON.stringify(r.params) === JSON.stringify(c.params) && r.contender === w)?.medianMs;
    return `| ${c.label} | ${c.n.toExponential(0)} | ${ms(get('detloss-gpu'))} | ${ms(get('detloss-gpu-rows'))} | ${ms(get('detloss-gpu-resident'))} | ${ms(get('detloss-cpu'))} | ${ms(get('tfjs-webgpu'))} | ${ms(get('tfjs-cpu'))} | ${ms(get('copy'))} | ${fmtX(c.speedup['tfjs-webgpu'])} | ${fmtX(c.speedup['detloss-cpu'])} | ${pct(c.bandwidthFraction)} | ${c.dispatches.detloss} / ${c.dispatches.tfjs ?? '-'} |`;
  });
  const first = res.cases.filter((c) => c.firstCall).map((c) => `| ${c.label} | ${ms(c.firstCall!.coldMs)} | ${ms(c.firstCall!.warmMs)} |`);
  const notes = res.cases
    .filter((c) => c.skipped)
    .map((c) => `- ${c.label} N=${c.n.toExponential(0)}: ${skipNotes(c.skipped!).join('; ')}`);
  return [
    ...head,
    ...lines,
    '',
    '| op | first call, cold (compile) ms | first call after warmup() ms |',
    '| --- | ---: | ---: |',
    ...first,
    ...(notes.length ? ['', ...notes] : []),
    ...(res.failures.length ? ['', ...res.failures.map((f) => `- ${f.label} N=${f.n.toExponential(0)}: FAILED, not measured: ${f.error}`)] : []),
    ...(res.skippedOps.length ? ['', `Not benchmarked (no GPU kernel yet): ${res.skippedOps.join(', ')}.`] : []),
  ].join('\n');
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
    parts.push(`<text transform="translate(${x + barW / 2},${top + h + 8}) rotate(60)" font-size="10">${c.label} ${c.n.toExponential(0)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** Writes latest.json, latest.svg and latest.md under `outDir`. */
export function writeBench(res: BenchResult, outDir: string, reps: number): string[] {
  mkdirSync(outDir, { recursive: true });
  const json = { adapter: res.adapter, machine: res.machine, date: new Date().toISOString(), reps, rows: res.rows, cases: res.cases, failures: res.failures, skippedOps: res.skippedOps };
  const files = [join(outDir, 'latest.json'), join(outDir, 'latest.svg'), join(outDir, 'latest.md')];
  writeFileSync(files[0], `${JSON.stringify(json, null, 1)}\n`);
  writeFileSync(files[1], benchSvg(res));
  writeFileSync(files[2], `${benchTable(res)}\n`);
  return files;
}
