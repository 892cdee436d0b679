import { HELPER_OPS, OPS } from '../../ops/registry';
import { type BenchCase, type BenchDriverKind, caseLabel } from './cases';
import { type BenchDriver, type DriverSpec, machineFacts, openDriver, openFirst } from './drivers';
import { adapterLine, nText } from './format';
import { type BenchRow, type CaseSummary, measureCase, type MeasureOptions, TfjsFailure } from './measure';

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


/**
 * Runs the benchmark in headless Chromium (or, with `driver.kind` 'node', on Node's WebGPU in this
 * process): for each case, uploads the inputs, checks the TF.js peer against detloss, then times
 * the contenders interleaved (A B C A B C ...) after warm-up. A case that fails (a GPU process out
 * of memory, a lost device) is logged, the driver is restarted, and the case is retried without
 * TF.js when TF.js was the cause; the run goes on, and `onProgress` gets the results so far after
 * every case, so an interrupted run keeps its work.
 */
export async function runBench(
  opts: MeasureOptions & {
    /** Where the harness runs; default: Chromium with the page in `benchDist`. */
    driver?: DriverSpec;
    benchDist?: string;
    cases: BenchCase[];
    onProgress?: (res: BenchResult) => void;
  },
): Promise<BenchResult> {
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
      if ((OPS[c.op] ?? HELPER_OPS.find((d) => d.name === c.op))?.gpu) return true;
      if (!res.skippedOps.includes(c.op)) res.skippedOps.push(c.op);
      return false;
    });
    if (res.skippedOps.length) log(`not benchmarked (no GPU kernel yet): ${res.skippedOps.join(', ')}`);
    const seenFirst = new Set<string>();
    for (const [ci, c] of cases.entries()) {
      const label = caseLabel(c);
      log(`[${ci + 1}/${cases.length}] ${label} n=${nText(c.n)}: preparing`);
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
