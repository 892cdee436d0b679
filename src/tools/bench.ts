import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { cpus, freemem, totalmem } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { OPS } from '../ops/registry';
import { findChromium, openPage, serveStatic } from './browser';
import { exitCodeOf, importOptional, ToolError } from './errors';
import { nodeAdapterAdvice } from './parity';
import { median } from './stats';

/** One benchmark case, as the page takes it (bench/page.ts). */
export interface BenchCase {
  op: string;
  params: Record<string, unknown>;
  n: number;
  width?: number;
  tfjs: string;
  /** Ranking losses: the fraction of scores that are positives. */
  positives?: number;
}

/**
 * `detloss-gpu-rows`: the same call with a workgroup per row forced (row ops only), to measure the
 * choice. `detloss-gpu-pipelined`: 10 resident calls back to back and one wait, time per call.
 */
export const CONTENDERS = ['detloss-gpu', 'detloss-gpu-rows', 'detloss-gpu-resident', 'detloss-gpu-pipelined', 'detloss-cpu', 'tfjs-webgpu', 'tfjs-cpu', 'js-authors-loop', 'copy'] as const;
export type Contender = (typeof CONTENDERS)[number];
/** What each driver times: Chromium as before issue 10, Node with the pipelined calls and without the forced rows. */
export const DRIVER_CONTENDERS: Record<BenchDriverKind, readonly Contender[]> = {
  chromium: ['detloss-gpu', 'detloss-gpu-rows', 'detloss-gpu-resident', 'detloss-cpu', 'tfjs-webgpu', 'tfjs-cpu', 'js-authors-loop', 'copy'],
  node: ['detloss-gpu', 'detloss-gpu-resident', 'detloss-gpu-pipelined', 'detloss-cpu', 'tfjs-webgpu', 'tfjs-cpu', 'js-authors-loop', 'copy'],
};

export interface BenchRow {
  op: string;
  params: Record<string, unknown>;
  n: number;
  contender: Contender;
  medianMs: number;
  dispatches?: number;
  timesMs: number[];
  /** GPU time per call from timestamps (median, and each run that had one); absent where not measured. */
  gpuMedianMs?: number;
  gpuTimesMs?: number[];
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
  /** The copy kernel's GPU time over detloss resident's GPU time (both from timestamps). */
  gpuBandwidthFraction?: number;
  /** The launch plan the runtime reports for the case (`stats().plan`), where it does. */
  plan?: unknown;
  /** detloss's passes in its last resident call, with GPU times, where the runtime reports them. */
  passes?: { name: string; gpuMs: number }[];
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
    { op: 'iou_loss', params: { variant: 'shape' }, tfjs: 'shape' },
    { op: 'iou_loss', params: { variant: 'wiou' }, tfjs: 'wiou' },
    { op: 'sigmoid_focal', params: {}, tfjs: 'sigmoid_focal' },
    { op: 'quality_focal', params: {}, width: 80, tfjs: 'quality_focal' },
    { op: 'cross_entropy', params: {}, width: 80, tfjs: 'cross_entropy' },
    { op: 'softmax_focal', params: {}, width: 80, tfjs: 'softmax_focal' },
    { op: 'class_balanced_focal', params: {}, width: 80, tfjs: 'class_balanced_focal' },
    { op: 'distribution_focal', params: {}, width: 17, tfjs: 'distribution_focal' },
  ];
  const out: BenchCase[] = [];
  for (const r of rows) for (const n of ns) out.push({ ...r, n });
  for (const variant of ['iou', 'giou']) for (const n of pairwiseNs) out.push({ op: 'pairwise_iou', params: { variant }, n, tfjs: `pairwise:${variant}` });
  return out;
}

/** What a ranking case times. */
const RANKING_CONTENDERS: readonly Contender[] = ['detloss-gpu', 'detloss-cpu', 'js-authors-loop', 'copy'];

/** The ranking losses (issue 15), which have no TF.js peer: their baseline is the authors' loop in plain JavaScript. */
export const RANKING_BENCH_OPS: readonly string[] = ['ap_loss', 'rank_sort'];

/**
 * The ranking cases of issue 15: ap_loss and rank_sort at N = 1e5 and 1e6 scores with 0.1% and 1%
 * positives. Not in the quick preset: `--ops ap_loss,rank_sort` (or `--full --node`) runs them.
 */
export function rankingCases(ns = [1e5, 1e6]): BenchCase[] {
  const out: BenchCase[] = [];
  for (const op of RANKING_BENCH_OPS) for (const n of ns) for (const positives of [0.001, 0.01]) out.push({ op, params: {}, n, tfjs: '', positives });
  return out;
}

/**
 * The cases of `detloss bench --node` (issue 10): element-wise and box ops at N = 1e4 to 1e7,
 * row ops (c = 80 logits, k = 17 bins; sigmoid_focal shaped [N, 80]) at 1e4 to 1e6 rows, pairwise
 * at n = m = 1e3, 4e3, 1e4. `ns` replaces every list (pairwise keeps the N <= 1e4 of it).
 */
export function nodeCases(ns?: number[]): BenchCase[] {
  const flat = ns ?? [1e4, 1e5, 1e6, 1e7];
  const rowNs = ns ?? [1e4, 1e5, 1e6];
  const pairNs = ns ? ns.filter((n) => n <= 1e4) : [1e3, 4e3, 1e4];
  const rows: [Omit<BenchCase, 'n'>, number[]][] = [
    [{ op: 'smooth_l1', params: {}, tfjs: 'smooth_l1' }, flat],
    [{ op: 'iou_loss', params: { variant: 'giou' }, tfjs: 'giou' }, flat],
    [{ op: 'iou_loss', params: { variant: 'ciou' }, tfjs: 'ciou' }, flat],
    [{ op: 'iou_loss', params: { variant: 'siou' }, tfjs: 'siou' }, flat],
    [{ op: 'iou_loss', params: { variant: 'shape' }, tfjs: 'shape' }, flat],
    [{ op: 'iou_loss', params: { variant: 'wiou' }, tfjs: 'wiou' }, flat],
    [{ op: 'sigmoid_focal', params: {}, width: 80, tfjs: 'sigmoid_focal' }, rowNs],
    [{ op: 'quality_focal', params: {}, width: 80, tfjs: 'quality_focal' }, rowNs],
    [{ op: 'cross_entropy', params: {}, width: 80, tfjs: 'cross_entropy' }, rowNs],
    [{ op: 'softmax_focal', params: {}, width: 80, tfjs: 'softmax_focal' }, rowNs],
    [{ op: 'class_balanced_focal', params: {}, width: 80, tfjs: 'class_balanced_focal' }, rowNs],
    [{ op: 'distribution_focal', params: {}, width: 17, tfjs: 'distribution_focal' }, rowNs],
  ];
  const out: BenchCase[] = [];
  for (const [r, list] of rows) for (const n of list) out.push({ ...r, n });
  for (const variant of ['iou', 'giou']) for (const n of pairNs) out.push({ op: 'pairwise_iou', params: { variant }, n, tfjs: `pairwise:${variant}` });
  out.push(...rankingCases(ns));
  return out;
}

/** The ops of the quick preset (`detloss bench` without `--full`): one of each family. */
export const QUICK_OPS: readonly { op: string; variant?: string }[] = [{ op: 'iou_loss', variant: 'ciou' }, { op: 'smooth_l1' }, { op: 'sigmoid_focal' }, { op: 'cross_entropy' }];

/**
 * The cases `detloss bench` runs. `full`: {@link defaultCases} (Chromium) or {@link nodeCases}
 * (Node). Otherwise the quick preset, which finishes in a couple of minutes on a software adapter:
 * the {@link QUICK_OPS} at N = 1e4 and 1e5 (row ops, c = 80: 1e4 rows). `ops` picks ops from the
 * whole list instead (every variant of each, at the preset's sizes); `ns` replaces every size
 * (pairwise keeps those up to 4e3 in Chromium, 1e4 on Node).
 */
export function benchCases(opts: { driver: BenchDriverKind; full?: boolean; ops?: string[]; ns?: number[] }): BenchCase[] {
  const { driver, ns } = opts;
  const pairMax = driver === 'node' ? 1e4 : 4000;
  let cases: BenchCase[];
  if (opts.full) cases = driver === 'node' ? nodeCases(ns) : defaultCases(ns, ns ? ns.filter((n) => n <= pairMax) : undefined);
  else {
    // The shapes of the driver's full list, one case per op and variant, at the quick sizes.
    const base = driver === 'node' ? nodeCases([1]) : [...defaultCases([1], [1]), ...rankingCases([1])];
    const shapes = base.filter((c, i, all) => all.findIndex((d) => caseLabel(d) === caseLabel(c)) === i);
    const picked = opts.ops ? shapes : shapes.filter((c) => QUICK_OPS.some((q) => q.op === c.op && q.variant === c.params.variant));
    cases = [];
    for (const c of picked) {
      const sizes = ns ? (c.op === 'pairwise_iou' ? ns.filter((n) => n <= pairMax) : ns) : c.op === 'pairwise_iou' ? [1000] : c.positives ? [1e5, 1e6] : c.width ? [1e4] : [1e4, 1e5];
      for (const n of sizes) cases.push({ ...c, n });
    }
  }
  return opts.ops ? cases.filter((c) => opts.ops!.includes(c.op)) : cases;
}

export const caseLabel = (c: BenchCase) => `${c.op}${c.params.variant ? `{${c.params.variant}}` : ''}${c.width ? ` c=${c.width}` : ''}${c.positives ? ` p=${+(c.positives * 100).toFixed(2)}%` : ''}`;

export type BenchResult = {
  /** Where it ran: headless Chromium (the default) or Node's WebGPU. */
  driver?: BenchDriverKind;
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

export type BenchDriverKind = 'chromium' | 'node';

/** Where the harness (bench/harness.ts) runs: one call of its API at a time, and a way to close it. */
export interface BenchDriver {
  readonly kind: BenchDriverKind;
  adapter: Record<string, unknown>;
  /** Facts of what runs it (Node's `webgpu` package version). */
  runtime: Record<string, unknown>;
  call<T>(fn: string, ...args: unknown[]): Promise<T>;
  close(): Promise<void>;
}

/** Where the runner finds the harness: the built page (Chromium) or the built Node module. */
export type DriverSpec = { kind: 'chromium'; benchDist: string } | { kind: 'node'; module: string };

/** One headless Chromium with the bench page (bench/dist), initialised. */
async function chromiumDriver(benchDist: string): Promise<BenchDriver> {
  const gp = await openPage(await serveStatic(benchDist), 'window.benchReady');
  const page = gp.page;
  const call = <T>(fn: string, ...args: unknown[]) =>
    page.evaluate((fn: string, args: unknown[]) => (window as unknown as Record<string, Record<string, (...a: unknown[]) => Promise<unknown>>>).bench[fn](...args), fn, args) as Promise<T>;
  try {
    const init = await call<{ adapter?: Record<string, unknown> }>('init');
    return { kind: 'chromium', call, adapter: init.adapter ?? {}, runtime: {}, close: gp.close };
  } catch (e) {
    await gp.close();
    throw e;
  }
}

/**
 * The harness in this process on Node's WebGPU: bench/dist-node/node.js, imported. Arguments and
 * results go through JSON as they do through page.evaluate, so both drivers see the same data.
 */
async function nodeDriver(modulePath: string): Promise<BenchDriver> {
  let mod: { openNodeBench(): Record<string, (...a: unknown[]) => unknown> };
  try {
    mod = await import(/* @vite-ignore */ pathToFileURL(modulePath).href);
  } catch (e) {
    throw new Error(`could not load ${modulePath} (${(e as Error).message}); it needs the webgpu package (npm install webgpu) and its dawn.node`);
  }
  const api = mod.openNodeBench();
  const call = async <T>(fn: string, ...args: unknown[]) => {
    const v = await api[fn](...(JSON.parse(JSON.stringify(args)) as unknown[]));
    return (v === undefined ? v : JSON.parse(JSON.stringify(v))) as T;
  };
  try {
    const init = await call<{ adapter?: Record<string, unknown>; runtime?: Record<string, unknown> }>('init');
    return { kind: 'node', call, adapter: init.adapter ?? {}, runtime: init.runtime ?? {}, close: async () => void api.close() };
  } catch (e) {
    try {
      api.close();
    } catch {
      /* nothing opened */
    }
    throw e;
  }
}

const openDriver = (spec: DriverSpec) => (spec.kind === 'chromium' ? chromiumDriver(spec.benchDist) : nodeDriver(spec.module));

/**
 * The first driver of a run, with what it needs checked first: the built harness, the optional
 * package that runs it, Chromium. Failing to open it is the machine's fault (a ToolError): in
 * Chromium any failure, on Node one whose code says there is no adapter.
 */
async function openFirst(spec: DriverSpec): Promise<BenchDriver> {
  const built = spec.kind === 'chromium' ? join(spec.benchDist, 'index.html') : spec.module;
  if (!existsSync(built)) throw new ToolError('no_build', `${built} is missing: run npm run build:bench (npm run bench builds it)`);
  if (spec.kind === 'node') {
    await importOptional('webgpu', "npm install webgpu (Node's WebGPU, Dawn), or leave out --node to run in headless Chromium");
    try {
      return await nodeDriver(spec.module);
    } catch (e) {
      if (exitCodeOf(e) === 2 && !(e instanceof ToolError)) throw new ToolError('no_adapter', nodeAdapterAdvice((e as Error).message, 'npm run bench -- --node'), { cause: e });
      throw e;
    }
  }
  await importOptional('puppeteer-core', "npm install puppeteer-core (it drives headless Chromium), or run on Node's WebGPU with --node");
  try {
    findChromium();
  } catch (e) {
    throw new ToolError('no_chromium', (e as Error).message, { cause: e });
  }
  try {
    return await chromiumDriver(spec.benchDist);
  } catch (e) {
    throw new ToolError('no_adapter', `headless Chromium gave no WebGPU context for the bench page: ${(e as Error).message}`, { cause: e });
  }
}

/** Where `detloss bench --node` finds its module: bench/dist-node/node.js beside the package's dist/. */
export const nodeBenchModule = (distDir: string) => join(distDir, '..', 'bench', 'dist-node', 'node.js');

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
 * Runs the benchmark in headless Chromium (or, with `driver.kind` 'node', on Node's WebGPU in this
 * process): for each case, uploads the inputs, checks the TF.js peer against detloss, then times
 * the contenders interleaved (A B C A B C ...) after warm-up. A case that fails (a GPU process out
 * of memory, a lost device) is logged, the driver is restarted, and the case is retried without
 * TF.js when TF.js was the cause; the run goes on, and `onProgress` gets the results so far after
 * every case, so an interrupted run keeps its work.
 */
export async function runBench(opts: {
  /** Where the harness runs; default: Chromium with the page in `benchDist`. */
  driver?: DriverSpec;
  benchDist?: string;
  cases: BenchCase[];
  reps: number;
  warmup: number;
  cpuMaxElements: number;
  /** The CPU reference is timed only up to this N (default: any). */
  cpuMaxN?: number;
  /** A contender slower than this per call (ms) is timed `slowReps` times after one warm-up. */
  slowMs: number;
  slowReps: number;
  log: (line: string) => void;
  /** Log every warm-up and timed run, and the launch plan, besides a case's summary lines. */
  verbose?: boolean;
  onProgress?: (res: BenchResult) => void;
}): Promise<BenchResult> {
  const { log } = opts;
  const spec: DriverSpec = opts.driver ?? { kind: 'chromium', benchDist: opts.benchDist ?? 'bench/dist' };
  let session: BenchDriver | undefined = await openFirst(spec);
  const res: BenchResult = { driver: spec.kind, adapter: {}, machine: machineFacts(spec.kind, session.runtime), rows: [], cases: [], skippedOps: [], failures: [] };
  const restart = async () => {
    await session?.close().catch(() => {});
    session = undefined;
    session = await openDriver(spec);
  };
  const adapter = (res.adapter = session.adapter);
  log(`adapter: ${adapterLine(adapter)}`);
  if (spec.kind === 'node') log(`device features: ${((adapter.features as string[] | undefined) ?? []).join(', ') || 'none'}`);
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
          log(`  FAILED: ${msg}; restarting ${spec.kind === 'chromium' ? 'Chromium' : 'the devices'}`);
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
  session: BenchDriver,
  c: BenchCase,
  opts: Parameters<typeof runBench>[0],
  tfjsSkip: string | undefined,
  withFirstCall: boolean,
): Promise<{ rows: BenchRow[]; summary: CaseSummary }> {
  const { log } = opts;
  const { call } = session;
  const label = caseLabel(c);
  const prep = await call<{ detlossDispatches: number; bytes: { read: number; write: number }; plan?: unknown }>('prepare', c);
  if (prep.plan !== undefined && opts.verbose !== false) log(`  plan: ${JSON.stringify(prep.plan)}`);
  const skipped: Record<string, string> = {};
  let tfjs: { check: { ok: boolean; detail: string }; tfjsDispatches: number; tfjsCpu: boolean; tfjsCpuMaxN?: number } = { check: { ok: false, detail: 'not run' }, tfjsDispatches: 0, tfjsCpu: false };
  const ranking = c.positives !== undefined;
  if (ranking) tfjsSkip ??= 'no TF.js peer (an error-driven update, not an autodiff loss): the baseline is js-authors-loop';
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
    else if (!tfjs.tfjsCpu) skipped['tfjs-cpu'] = `N > 1e${Math.round(Math.log10(tfjs.tfjsCpuMaxN ?? 1e5))}`;
    log(`  TF.js peer ${tfjs.check.ok ? 'agrees' : 'DISAGREES'} (${tfjs.check.detail}); dispatches per call: detloss ${prep.detlossDispatches}, TF.js ${tfjs.tfjsDispatches}`);
  }
  const elements = (c.width ?? (c.op === 'iou_loss' ? 4 : 1)) * c.n * (c.op === 'pairwise_iou' ? c.n / 4 : 1);
  if (elements > opts.cpuMaxElements) skipped['detloss-cpu'] = `more than ${opts.cpuMaxElements.toExponential(0)} elements`;
  // The ranking losses' done criterion is the GPU against the CPU reference at N = 1e6: timed at every N.
  else if (opts.cpuMaxN !== undefined && c.n > opts.cpuMaxN && !ranking) skipped['detloss-cpu'] = `measured at N <= ${opts.cpuMaxN.toExponential(0)} only`;
  const rowOp = !!OPS[c.op].gpu?.rows;
  const offered = DRIVER_CONTENDERS[session.kind];
  if (rowOp && c.n > 100_000 && offered.includes('detloss-gpu-rows')) skipped['detloss-gpu-rows'] = 'measured at N <= 1e5 only';
  // A ranking case times the GPU, the CPU reference, the authors' loop and the copy kernel (each call takes seconds).
  const who = offered.filter((x) => !skipped[x] && (x !== 'detloss-gpu-rows' || rowOp) && (ranking ? RANKING_CONTENDERS.includes(x) : x !== 'js-authors-loop'));
  const times: Record<string, number[]> = {};
  const gpuTimes: Record<string, number[]> = {};
  // A contender whose first call takes over slowMs gets one warm-up and fewer timed runs, so a
  // run of the whole benchmark stays within an hour on a software adapter; the report says so.
  const slow = new Set<string>();
  for (let r = -opts.warmup; r < opts.reps; r++) {
    const line: string[] = [];
    for (const w of who) {
      if (slow.has(w) && (r < 0 || r >= opts.slowReps)) continue;
      const { ms, gpuMs } = await call<{ ms: number; gpuMs?: number }>('time', w);
      if (r >= 0) {
        (times[w] ??= []).push(ms);
        if (gpuMs !== undefined) (gpuTimes[w] ??= []).push(gpuMs);
      } else if (r === -opts.warmup && ms > opts.slowMs) slow.add(w);
      line.push(`${w} ${ms.toFixed(2)}${gpuMs !== undefined ? ` (GPU ${gpuMs.toFixed(3)})` : ''}`);
    }
    if (line.length && opts.verbose !== false) log(`  ${r < 0 ? 'warm-up' : `run ${r + 1}/${opts.reps}`}: ${line.join(', ')} ms`);
  }
  for (const w of slow) skipped[`${w} runs`] = `${times[w].length} timed runs (one call takes over ${opts.slowMs / 1000} s here)`;
  const med: Partial<Record<Contender, number>> = {};
  const rows: BenchRow[] = [];
  // A ranking case's rows and summary name its fraction of positives among the params.
  const params = ranking ? { ...c.params, positives: c.positives } : c.params;
  for (const w of who) {
    med[w] = median(times[w]);
    const row: BenchRow = { op: c.op, params, n: c.n, contender: w, medianMs: med[w]!, timesMs: times[w], dispatches: w.startsWith('detloss-gpu') ? prep.detlossDispatches : w === 'tfjs-webgpu' ? tfjs.tfjsDispatches : undefined };
    if (gpuTimes[w]?.length) Object.assign(row, { gpuMedianMs: median(gpuTimes[w]), gpuTimesMs: gpuTimes[w] });
    rows.push(row);
  }
  const gpuMed = (w: Contender) => rows.find((r) => r.contender === w)?.gpuMedianMs;
  const g = med['detloss-gpu']!;
  const speedup: Partial<Record<Contender, number>> = {};
  for (const w of ['detloss-cpu', 'tfjs-webgpu', 'tfjs-cpu', 'detloss-gpu-rows', 'js-authors-loop'] as const) if (med[w] !== undefined) speedup[w] = med[w]! / g;
  const s: CaseSummary = {
    op: c.op,
    label,
    params,
    n: c.n,
    width: c.width,
    check: tfjs.check,
    dispatches: { detloss: prep.detlossDispatches, tfjs: tfjsSkip ? undefined : tfjs.tfjsDispatches },
    bytes: prep.bytes,
    speedup,
    bandwidthFraction: med.copy !== undefined && med['detloss-gpu-resident'] !== undefined ? med.copy / med['detloss-gpu-resident'] : undefined,
    skipped: Object.keys(skipped).length ? skipped : undefined,
  };
  const copyGpu = gpuMed('copy');
  const residentGpu = gpuMed('detloss-gpu-resident');
  if (copyGpu !== undefined && residentGpu !== undefined && residentGpu > 0) s.gpuBandwidthFraction = copyGpu / residentGpu;
  if (prep.plan !== undefined) s.plan = prep.plan;
  if (session.kind === 'node') {
    // The passes of detloss's last call (the last detloss contender timed: resident calls).
    const passes = await call<{ name: string; gpuMs: number }[] | undefined>('lastPasses');
    if (passes) {
      s.passes = passes;
      log(`  passes: ${passes.map((p) => `${p.name} ${p.gpuMs.toFixed(3)} ms`).join(', ')}`);
    }
  }
  if (withFirstCall) {
    s.firstCall = await call<{ coldMs: number; warmMs: number }>('firstCalls', c);
    log(`  first call: cold ${s.firstCall.coldMs.toFixed(1)} ms, after warmup() ${s.firstCall.warmMs.toFixed(1)} ms`);
  }
  log(`  median: detloss-gpu ${g.toFixed(2)} ms; x${fmtX(speedup['tfjs-webgpu'])} vs TF.js webgpu, x${fmtX(speedup['detloss-cpu'])} vs CPU reference; ${pct(s.bandwidthFraction)} of copy bandwidth`);
  if (ranking) log(`  median: x${fmtX(speedup['detloss-cpu'])} vs the CPU reference, x${fmtX(speedup['js-authors-loop'])} vs the authors' loop in JavaScript`);
  if (session.kind === 'node') {
    log(
      `  median: resident ${msN(med['detloss-gpu-resident'])} ms (GPU ${msN(residentGpu)}), pipelined ${msN(med['detloss-gpu-pipelined'])} ms/call (GPU ${msN(gpuMed('detloss-gpu-pipelined'))}), copy ${msN(med.copy)} ms (GPU ${msN(copyGpu)}); ${pct(s.gpuBandwidthFraction)} of copy bandwidth in GPU time`,
    );
  }
  return { rows, summary: s };
}

function machineFacts(kind: BenchDriverKind = 'chromium', runtime: Record<string, unknown> = {}) {
  const base = { cpu: cpus()[0]?.model ?? '', cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version };
  if (kind === 'node') return { ...base, webgpu: runtime.webgpu ?? '' };
  let chromium = '';
  try {
    chromium = execFileSync(findChromium(), ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    /* unknown */
  }
  return { ...base, chromium };
}

const adapterLine = (a: Record<string, unknown>) => `${[a.vendor, a.architecture, a.description].filter(Boolean).join(' / ')}${a.isFallbackAdapter ? ' (software fallback)' : ''}`;

const fmtX = (x: number | undefined) => (x === undefined ? '-' : x >= 10 ? x.toFixed(0) : x.toFixed(1));
const pct = (x: number | undefined) => (x === undefined ? '-' : `${(100 * x).toFixed(0)}%`);
const ms = (x: number | undefined) => (x === undefined ? '-' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
/** As `ms`, with microseconds below 1 ms (GPU times on hardware). */
const msN = (x: number | undefined) => (x === undefined ? '-' : x >= 1 ? ms(x) : x.toFixed(3));

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

/** The results as a markdown table (the Node driver's has GPU times and the pipelined calls). */
export function benchTable(res: BenchResult): string {
  if (res.driver === 'node') return nodeBenchTable(res);
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
  return [...head, ...lines, ...tableTail(res, ms)].join('\n');
}

/**
 * What follows both tables' rows: the first-call table, then `extra` (the Node bench's plans and
 * passes), the contenders not timed, the cases not measured and the ops without a kernel.
 */
function tableTail(res: BenchResult, fmt: (x: number | undefined) => string, extra: string[] = []): string[] {
  const first = res.cases.filter((c) => c.firstCall).map((c) => `| ${c.label} | ${fmt(c.firstCall!.coldMs)} | ${fmt(c.firstCall!.warmMs)} |`);
  const notes = res.cases.filter((c) => c.skipped).map((c) => `- ${c.label} N=${c.n.toExponential(0)}: ${skipNotes(c.skipped!).join('; ')}`);
  // The ranking losses (issue 15): the GPU against the CPU reference and the authors' loop in JavaScript.
  const ranking = res.cases
    .filter((c) => c.params.positives !== undefined)
    .map((c) => {
      const get = (w: Contender) => res.rows.find((r) => r.op === c.op && r.n === c.n && JSON.stringify(r.params) === JSON.stringify(c.params) && r.contender === w)?.medianMs;
      return `| ${c.label} | ${c.n.toExponential(0)} | ${fmt(get('detloss-gpu'))} | ${fmt(get('detloss-cpu'))} | ${fmt(get('js-authors-loop'))} | ${fmtX(c.speedup['detloss-cpu'])} | ${fmtX(c.speedup['js-authors-loop'])} |`;
    });
  return [
    ...(ranking.length
      ? ['', "| ranking op | N | detloss GPU ms | CPU ref ms | authors' loop (JS) ms | × CPU ref | × authors' loop |", '| --- | ---: | ---: | ---: | ---: | ---: | ---: |', ...ranking]
      : []),
    '',
    '| op | first call, cold (compile) ms | first call after warmup() ms |',
    '| --- | ---: | ---: |',
    ...first,
    ...extra,
    ...(notes.length ? ['', ...notes] : []),
    ...(res.failures.length ? ['', ...res.failures.map((f) => `- ${f.label} N=${f.n.toExponential(0)}: FAILED, not measured: ${f.error}`)] : []),
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
    parts.push(`<text transform="translate(${x + barW / 2},${top + h + 8}) rotate(60)" font-size="10">${c.label} ${c.n.toExponential(0)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/**
 * Writes latest.json, latest.svg and latest.md under `outDir`; with `files` (from
 * {@link nodeBenchFiles}), the JSON and the table to those paths instead.
 */
export function writeBench(res: BenchResult, outDir: string, reps: number, files?: { json: string; md: string }): string[] {
  mkdirSync(outDir, { recursive: true });
  // Whole files only: an interrupted write leaves the old file, never half of a new one.
  const writeWhole = (file: string, text: string) => {
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, text);
    renameSync(tmp, file);
  };
  const json = { driver: res.driver ?? 'chromium', adapter: res.adapter, machine: res.machine, date: new Date().toISOString(), reps, rows: res.rows, cases: res.cases, failures: res.failures, skippedOps: res.skippedOps };
  if (files) {
    writeWhole(files.json, `${JSON.stringify(json, null, 1)}\n`);
    writeWhole(files.md, `${benchTable(res)}\n`);
    return [files.json, files.md];
  }
  const out = [join(outDir, 'latest.json'), join(outDir, 'latest.svg'), join(outDir, 'latest.md')];
  writeWhole(out[0], `${JSON.stringify(json, null, 1)}\n`);
  writeWhole(out[1], benchSvg(res));
  writeWhole(out[2], `${benchTable(res)}\n`);
  return out;
}

const slug = (x: unknown) =>
  String(x ?? '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');

/**
 * The file stem for an adapter's Node results: `node-<vendor>-<device>` (the description where the
 * device is empty or a bare PCI id), the vendor not repeated, e.g. node-nvidia-h200,
 * node-google-swiftshader-device-subzero.
 */
export function adapterStem(a: Record<string, unknown>): string {
  const vendor = slug(a.vendor) || 'unknown';
  let dev = slug(a.device);
  if (!dev || /^(0x)?[0-9a-f]+$/.test(dev)) dev = slug(a.description) || slug(a.architecture) || 'adapter';
  if (dev === vendor || dev.startsWith(`${vendor}-`)) dev = dev.slice(vendor.length + 1) || dev;
  return `node-${vendor}-${dev}`;
}

/**
 * Whether git tracks `file`: true, false, or undefined when git cannot say (not installed, or no
 * repository: a copy of the tree carried without .git may hold committed results all the same).
 */
function gitTracks(file: string): boolean | undefined {
  const r = spawnSync('git', ['ls-files', '--error-unmatch', '--', basename(file)], { cwd: dirname(file), stdio: 'ignore' });
  if (r.error || (r.status !== 0 && r.status !== 1)) return undefined;
  return r.status === 0;
}

/**
 * Where `detloss bench --node` writes: `<out>/<stem>.json` and `.md`. A committed result is never
 * overwritten: when either file exists and git tracks it (or git cannot tell), both get a
 * timestamp suffix instead (`<stem>-20260101T120000.json`). Chosen once per run.
 */
export function nodeBenchFiles(outDir: string, adapter: Record<string, unknown>, now = new Date()): { json: string; md: string } {
  const stem = join(outDir, adapterStem(adapter));
  const taken = ['.json', '.md'].some((ext) => existsSync(stem + ext) && gitTracks(stem + ext) !== false);
  const base = taken ? `${stem}-${now.toISOString().slice(0, 19).replace(/[-:]/g, '')}` : stem;
  return { json: `${base}.json`, md: `${base}.md` };
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
    '| op | N | host arrays ms | resident ms | resident GPU ms | pipelined ms | pipelined GPU ms | CPU ref ms | TF.js webgpu ms | TF.js cpu ms | copy ms | copy GPU ms | × TF.js webgpu | % of copy bandwidth (wall) | % of copy bandwidth (GPU) | dispatches detloss / TF.js |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  const lines = res.cases.map((c) => {
    const row = (w: Contender) => res.rows.find((r) => r.op === c.op && r.n === c.n && JSON.stringify(r.params) === JSON.stringify(c.params) && r.contender === w);
    const get = (w: Contender) => row(w)?.medianMs;
    const gpu = (w: Contender) => row(w)?.gpuMedianMs;
    return `| ${c.label} | ${c.n.toExponential(0)} | ${msN(get('detloss-gpu'))} | ${msN(get('detloss-gpu-resident'))} | ${msN(gpu('detloss-gpu-resident'))} | ${msN(get('detloss-gpu-pipelined'))} | ${msN(gpu('detloss-gpu-pipelined'))} | ${msN(get('detloss-cpu'))} | ${msN(get('tfjs-webgpu'))} | ${msN(get('tfjs-cpu'))} | ${msN(get('copy'))} | ${msN(gpu('copy'))} | ${fmtX(c.speedup['tfjs-webgpu'])} | ${pct(c.bandwidthFraction)} | ${pct(c.gpuBandwidthFraction)} | ${c.dispatches.detloss} / ${c.dispatches.tfjs ?? '-'} |`;
  });
  const plans = res.cases.filter((c) => c.plan !== undefined || c.passes).map((c) => {
    const passes = c.passes ? ` passes: ${c.passes.map((p) => `${p.name} ${msN(p.gpuMs)} ms`).join(', ')}` : '';
    return `- ${c.label} N=${c.n.toExponential(0)}:${c.plan !== undefined ? ` \`${JSON.stringify(c.plan)}\`` : ''}${passes}`;
  });
  const extra = plans.length ? ['', 'Launch plans (`stats().plan`) and the last resident call\'s passes:', '', ...plans] : [];
  return [...head, ...lines, ...tableTail(res, msN, extra)].join('\n');
}
