/**
 * `detloss bench --probe-plans`: the launch plans timed against each other on Node's WebGPU, case by
 * case, through the plan probe of the built Node module (bench/plan-probe.ts), beside the bench's
 * copy kernel over the same bytes. Used to choose the hardware plan's defaults.
 */
import { caseLabel, type ProbeCase } from './cases';
import { openFirst } from './drivers';
import { adapterLine, msN } from './format';

/** One plan's times on a case (medians over the timed runs), or why it could not run. */
export interface ProbeRow {
  plan: string;
  /** The module and entry that ran (`stats().lastCall.kernel`). */
  kernel?: string;
  gpuMs?: number;
  wallMs?: number;
  /** GPU time of each pass of the call (the fused pass, the reduction), by name. */
  passes?: Record<string, number>;
  /** The copy kernel's time over this plan's (GPU times where both have them, else wall times). */
  ofCopy?: number;
  error?: string;
}

/** One case: the bytes a call reads and writes, the copy kernel's time for them, and each plan's row. */
export interface ProbeResult {
  read: number;
  write: number;
  copyMs: number;
  /** Whether `copyMs` is GPU time (timestamps), else wall time. */
  copyGpu: boolean;
  rows: ProbeRow[];
}

export interface ProbeReport {
  adapter: Record<string, unknown>;
  runtime: Record<string, unknown>;
  reps: number;
  cases: (ProbeResult & { label: string; n: number })[];
  /** Cases that could not be measured at all, with the error. */
  failures: { label: string; n: number; error: string }[];
}

const mb = (bytes: number) => (bytes / 1e6).toFixed(1);

/** The log lines of one case: the bytes and the copy kernel, then a line per plan. */
function caseLines(c: ProbeReport['cases'][number]): string[] {
  const gbs = (c.read + c.write) / c.copyMs / 1e6;
  const copy = `copy ${msN(c.copyMs)} ms${c.copyGpu ? '' : ' (wall)'} (${gbs.toFixed(gbs < 10 ? 1 : 0)} GB/s)`;
  const lines = [`  read ${mb(c.read)} MB, write ${mb(c.write)} MB, ${copy}`];
  for (const r of c.rows) {
    if (r.error) {
      lines.push(`  ${r.plan.padEnd(20)} failed: ${r.error}`);
      continue;
    }
    const passes = Object.entries(r.passes ?? {}).map(([k, v]) => `${k} ${msN(v)}`).join(', ');
    const of = r.ofCopy === undefined ? '-' : `${(100 * r.ofCopy).toFixed(1)}%`;
    lines.push(`  ${r.plan.padEnd(20)} ${(r.kernel ?? '?').padEnd(24)} gpu ${msN(r.gpuMs)} ms${passes ? ` (${passes})` : ''}  wall ${msN(r.wallMs)} ms  ${of} of copy`);
  }
  return lines;
}

/**
 * Runs the plan probe over `cases` with `reps` timed runs of each plan (after two warm-ups), in this
 * process on Node's WebGPU (the module at `module`, bench/dist-node/node.js). A case that fails is
 * noted and the run goes on; `onProgress` gets the report after every case.
 */
export async function runPlanProbe(opts: {
  module: string;
  cases: ProbeCase[];
  reps: number;
  log: (line: string) => void;
  onProgress?: (report: ProbeReport) => void;
}): Promise<ProbeReport> {
  const { log } = opts;
  const session = await openFirst({ kind: 'node', module: opts.module, entry: 'openPlanProbe' });
  const report: ProbeReport = { adapter: session.adapter, runtime: session.runtime, reps: opts.reps, cases: [], failures: [] };
  log(`adapter: ${adapterLine(session.adapter)}; features: ${((session.adapter.features as string[] | undefined) ?? []).join(', ') || 'none'}`);
  try {
    for (const [i, c] of opts.cases.entries()) {
      const label = caseLabel(c);
      const t0 = Date.now();
      log(`[${i + 1}/${opts.cases.length}] ${label} n=${c.n.toExponential(0)}: ${c.plans.length} plans`);
      try {
        const r = await session.call<ProbeResult>('probe', c, opts.reps);
        const done = { label, n: c.n, ...r };
        report.cases.push(done);
        for (const l of caseLines(done)) log(l);
      } catch (e) {
        report.failures.push({ label, n: c.n, error: (e as Error).message });
        log(`  FAILED: ${(e as Error).message}`);
      }
      log(`  (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      opts.onProgress?.(report);
    }
  } finally {
    await session.close();
  }
  return report;
}
