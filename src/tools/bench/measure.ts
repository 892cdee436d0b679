import { freemem, totalmem } from 'node:os';
import { getOp } from '../../ops/registry';
import { median } from '../stats';
import { type BenchCase, type BenchDriverKind, caseLabel, type Contender, DRIVER_CONTENDERS, RANKING_CONTENDERS, YOLO_BENCH_OPS } from './cases';
import { fmtX, msN, pct } from './format';

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
  /** Bytes detloss's pool allocated for the case's first call, and for the call after it. */
  allocated?: { first: number; later: number };
}

/** A case's failure caused by TF.js, not detloss: the runner retries the case without the TF.js contenders. */
export class TfjsFailure extends Error {}

/** What measuring a case needs of a driver (drivers.ts's BenchDriver has it): its kind, and a call of the harness. */
export interface CaseSession {
  readonly kind: BenchDriverKind;
  call<T>(fn: string, ...args: unknown[]): Promise<T>;
}

/** How a case is timed and logged. */
export interface MeasureOptions {
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
}

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

/** Prepares, checks and times one case in `session`. */
export async function measureCase(
  session: CaseSession,
  c: BenchCase,
  opts: MeasureOptions,
  tfjsSkip: string | undefined,
  withFirstCall: boolean,
): Promise<{ rows: BenchRow[]; summary: CaseSummary }> {
  const { log } = opts;
  const { call } = session;
  const label = caseLabel(c);
  const prep = await call<{ detlossDispatches: number; bytes: { read: number; write: number }; allocated?: { first: number; later: number }; plan?: unknown }>('prepare', c);
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
    else if (YOLO_BENCH_OPS.includes(c.op)) skipped['tfjs-cpu'] = "not timed for the YOLO cases (their baseline is TF.js's WebGPU backend)";
    else if (!tfjs.tfjsCpu) skipped['tfjs-cpu'] = `N > 1e${Math.round(Math.log10(tfjs.tfjsCpuMaxN ?? 1e5))}`;
    log(`  TF.js peer ${tfjs.check.ok ? 'agrees' : 'DISAGREES'} (${tfjs.check.detail}); dispatches per call: detloss ${prep.detlossDispatches}, TF.js ${tfjs.tfjsDispatches}`);
  }
  const elements = YOLO_BENCH_OPS.includes(c.op) || c.op === 'yolo_nms' || c.op === 'nms' ? 0 : (c.width ?? (c.op === 'iou_loss' ? 4 : c.op === 'rotated_iou_loss' ? 5 : 1)) * c.n * (c.op === 'pairwise_iou' ? c.n / 4 : 1);
  if (elements > opts.cpuMaxElements) skipped['detloss-cpu'] = `more than ${opts.cpuMaxElements.toExponential(0)} elements`;
  // The ranking losses' done criterion is the GPU against the CPU reference at N = 1e6: timed at every N.
  else if (opts.cpuMaxN !== undefined && c.n > opts.cpuMaxN && !ranking) skipped['detloss-cpu'] = `measured at N <= ${opts.cpuMaxN.toExponential(0)} only`;
  const rowOp = !!getOp(c.op).gpu?.rows;
  const offered = DRIVER_CONTENDERS[session.kind];
  if (rowOp && c.n > 100_000 && offered.includes('detloss-gpu-rows')) skipped['detloss-gpu-rows'] = 'measured at N <= 1e5 only';
  // NMS ends a detector's step once: back-to-back resident calls are a training loop's pattern.
  if (c.op === 'nms' || c.op === 'yolo_nms') skipped['detloss-gpu-pipelined'] = 'not timed for NMS (a post-process runs once per step)';
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
    ...(prep.allocated ? { allocated: prep.allocated } : {}),
  };
  if (prep.allocated) log(`  detloss's pool allocated ${(prep.allocated.first / 2 ** 20).toFixed(1)} MiB for the first call and ${(prep.allocated.later / 2 ** 20).toFixed(1)} MiB for the next`);
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
