import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DetlossError } from '../errors';
import { distDirOf } from './browser';
import { benchCases, benchTable, nodeBenchFiles, nodeBenchModule, probeCases, runBench, runPlanProbe, runTunedBench, tunedCases, tunedTable, writeBench, writeProbe, writeTuned, type TunedReport, type BenchResult } from './bench';
import { adapterLine, list, milliseconds, parse, positiveInts } from './command';
import { exitCodeOf, ToolError } from './errors';
import { fixtureFiles, formatOutcome, largestL2, runParity, shippedFixtures } from './parity';
import { tuneCommand } from './tune';
import { BENCH_USAGE, MAIN_USAGE, PARITY_USAGE, TUNE_USAGE } from './usage';

async function parity(args: string[], distDir: string): Promise<number> {
  const { values, positionals } = parse(args, { node: { type: 'boolean' }, ops: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, true);
  if (values.help) {
    console.log(PARITY_USAGE);
    return 0;
  }
  const ops = values.ops === undefined ? undefined : list('ops', values.ops);
  const paths = [...positionals];
  if (paths.length === 0) {
    const shipped = shippedFixtures(distDir);
    if (!existsSync(shipped)) throw new ToolError('no_build', `${shipped} is missing (the build ships its fixtures with node scripts/ship-fixtures.mjs); pass fixture files or folders instead`);
    paths.push(shipped);
  }
  const files = fixtureFiles(paths);
  if (files.length === 0) throw new ToolError('bad_args', `no fixture files under ${paths.join(', ')}`);
  const report = await runParity({
    files,
    ops,
    distDir,
    node: values.node,
    onAdapter: (a) => console.log(`adapter: ${adapterLine(a)}; ${values.node ? "Node's WebGPU (Dawn)" : 'headless Chromium'}`),
    onCase: (o) => console.log(formatOutcome(o)),
  });
  // Failures found before the GPU ran (an op asked for with no case) have no line yet.
  for (const o of report.outcomes) if (o.status === 'failed' && !o.gpu) console.log(formatOutcome(o));
  const l2 = largestL2(report.outcomes);
  if (l2.gpu && l2.cpu) console.log(`largest relative L2 error of an array: gpu ${l2.gpu.err.toExponential(2)} (${l2.gpu.name}), cpu ${l2.cpu.err.toExponential(2)} (${l2.cpu.name})`);
  console.log(`${report.passed} passed, ${report.failed} failed${report.skipped ? `, ${report.skipped} skipped` : ''}`);
  return report.failed > 0 ? 1 : 0;
}

/** The clone the bench runs from (the folder above dist/), or a `not_a_clone` ToolError. */
function cloneRoot(distDir: string): string {
  const root = resolve(distDir, '..');
  if (!existsSync(join(root, 'bench', 'harness.ts'))) {
    throw new ToolError(
      'not_a_clone',
      'the benchmark runs from a clone of the detloss repository (it builds a bench page with TF.js), not from the installed package: clone it, then run npm ci && npm run bench there. To check this machine\'s GPU against the fixtures from here: npx detloss parity (or parity --node).',
    );
  }
  return root;
}

/** `detloss bench --probe-plans`: the launch plans against each other on Node's WebGPU. */
async function probePlans(values: { full?: boolean; ops?: string; n?: string; reps?: string; out?: string; save?: boolean }, distDir: string): Promise<number> {
  if (values.n !== undefined || values.save) throw new ToolError('bad_args', `--probe-plans has its own sizes and writes to --out; leave out ${values.n !== undefined ? '--n' : '--save'}`);
  const ops = values.ops === undefined ? undefined : list('ops', values.ops);
  const repList = values.reps === undefined ? [values.full ? 7 : 3] : positiveInts('reps', values.reps);
  if (repList.length !== 1) throw new ToolError('bad_args', `--reps takes one positive integer, got "${values.reps}"`);
  const root = cloneRoot(distDir);
  const cases = probeCases({ quick: !values.full, ops });
  if (cases.length === 0) throw new ToolError('bad_args', `no plan-probe case for --ops ${values.ops}`);
  const out = values.out !== undefined ? resolve(values.out) : join(root, 'bench', 'results', 'local');
  console.log(`detloss bench --probe-plans: ${cases.length} cases${values.full ? '' : ' (a tenth of the sizes; --full runs them whole)'}, ${repList[0]} timed runs of each plan, on Node's WebGPU (Dawn)`);
  const report = await runPlanProbe({
    module: nodeBenchModule(distDir),
    cases,
    reps: repList[0],
    log: (l) => console.log(l),
    onProgress: (r) => void writeProbe(r, out),
  });
  console.log(`ran on ${adapterLine(report.adapter as Parameters<typeof adapterLine>[0])}; wrote ${writeProbe(report, out)}`);
  if (report.failures.length) {
    console.error(`detloss bench: ${report.failures.length} case(s) could not be probed: ${report.failures.map((f) => `${f.label} N=${f.n}`).join(', ')}`);
    return 1;
  }
  return 0;
}

/** The budget of `detloss bench --tuned` when `--budget` is not given: on a software adapter a cross-entropy candidate at 1e6 rows takes about 15 s. */
const TUNED_BENCH_BUDGET_MS = 120_000;

/** `detloss bench --node --tuned`: the default launch plan against the tuned ones, interleaved on one device. */
async function tunedBench(values: { node?: boolean; full?: boolean; ops?: string; n?: string; reps?: string; out?: string; save?: boolean; budget?: string }, distDir: string): Promise<number> {
  if (!values.node) throw new ToolError('bad_args', "--tuned runs on Node's WebGPU: add --node");
  if (values.full || values.ops !== undefined) throw new ToolError('bad_args', `--tuned times its own four cases (iou_loss{ciou}, smooth_l1, sigmoid_focal, cross_entropy c=80); leave out ${values.full ? '--full' : '--ops'}`);
  if (values.save && values.out !== undefined) throw new ToolError('bad_args', '--save writes to bench/results; give --out or --save, not both');
  const ns = values.n === undefined ? [1e6] : positiveInts('n', values.n);
  const repList = values.reps === undefined ? [7] : positiveInts('reps', values.reps);
  if (repList.length !== 1) throw new ToolError('bad_args', `--reps takes one positive integer, got "${values.reps}"`);
  const budgetMs = values.budget === undefined ? TUNED_BENCH_BUDGET_MS : milliseconds('budget', values.budget);
  const root = cloneRoot(distDir);
  const committed = resolve(root, 'bench', 'results');
  const local = join(committed, 'local');
  const out = values.save ? committed : values.out !== undefined ? resolve(values.out) : local;
  // As the bench: written after every case, to the committed folder only once the run is complete.
  const staged = out === committed;
  let files: { json: string; md: string } | undefined;
  const progress = (r: TunedReport) => writeTuned(r, (files ??= nodeBenchFiles(staged ? local : out, r.adapter, new Date(), '-tuned')));
  const cases = tunedCases(ns);
  const t0 = Date.now();
  console.log(`detloss bench --tuned: ${cases.length} cases, the default plan and the tuned plans interleaved, ${repList[0]} timed runs each, on Node's WebGPU (Dawn)`);
  const report = await runTunedBench({ module: nodeBenchModule(distDir), cases, reps: repList[0], warmup: 2, budgetMs, log: (l) => console.log(l), onProgress: (r) => void progress(r) });
  const wrote = staged ? writeTuned(report, nodeBenchFiles(committed, report.adapter, new Date(), '-tuned')) : progress(report);
  console.log(`\n${tunedTable(report)}\n`);
  console.log(`${report.cases.length} of ${cases.length} cases in ${((Date.now() - t0) / 1000).toFixed(0)} s; wrote ${wrote.join(', ')}${staged ? '' : ' (not committed; --save writes bench/results)'}`);
  if (report.failures.length) {
    console.error(`detloss bench: ${report.failures.length} case(s) could not be measured: ${report.failures.map((f) => `${f.label} N=${f.n}`).join(', ')}`);
    return 1;
  }
  return 0;
}

async function bench(args: string[], distDir: string): Promise<number> {
  const { values } = parse(
    args,
    {
      node: { type: 'boolean' },
      full: { type: 'boolean' },
      save: { type: 'boolean' },
      ops: { type: 'string' },
      n: { type: 'string' },
      reps: { type: 'string' },
      out: { type: 'string' },
      verbose: { type: 'boolean' },
      'probe-plans': { type: 'boolean' },
      tuned: { type: 'boolean' },
      budget: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    false,
  );
  if (values.help) {
    console.log(BENCH_USAGE);
    return 0;
  }
  if (values['probe-plans'] && values.tuned) throw new ToolError('bad_args', 'give --probe-plans or --tuned, not both');
  if (values.budget !== undefined && !values.tuned) throw new ToolError('bad_args', '--budget is the tuning budget of --tuned; leave it out without --tuned');
  if (values['probe-plans']) return probePlans(values, distDir);
  if (values.tuned) return tunedBench(values, distDir);
  const node = !!values.node;
  const ops = values.ops === undefined ? undefined : list('ops', values.ops);
  const ns = values.n === undefined ? undefined : positiveInts('n', values.n);
  const repList = values.reps === undefined ? [values.full ? 7 : 5] : positiveInts('reps', values.reps);
  if (repList.length !== 1) throw new ToolError('bad_args', `--reps takes one positive integer, got "${values.reps}"`);
  const reps = repList[0];
  if (values.save && values.out !== undefined) throw new ToolError('bad_args', '--save writes to bench/results; give --out or --save, not both');
  const root = cloneRoot(distDir);
  const cases = benchCases({ driver: node ? 'node' : 'chromium', full: values.full, ops, ns });
  if (cases.length === 0) throw new ToolError('bad_args', `no bench case for --ops ${values.ops}${ns ? ` at --n ${values.n}` : ''}`);

  const committed = resolve(root, 'bench', 'results');
  const local = join(committed, 'local');
  const out = values.save ? committed : values.out !== undefined ? resolve(values.out) : local;
  // Results are written after every case, so an interrupted run keeps what it measured; a folder of
  // committed results gets them only when the run is complete (Ctrl-C leaves it as it was).
  const staged = out === committed;
  const progressDir = staged ? local : out;
  let progressFiles: { json: string; md: string } | undefined;
  const writeProgress = (res: BenchResult) => {
    if (!node) return writeBench(res, progressDir, reps);
    progressFiles ??= nodeBenchFiles(progressDir, res.adapter);
    return writeBench(res, progressDir, reps, progressFiles);
  };
  const t0 = Date.now();
  console.log(`detloss bench: ${cases.length} cases${values.full ? '' : ' (the quick preset; --full runs the long set)'}, ${reps} timed runs each, ${node ? "on Node's WebGPU (Dawn)" : 'in headless Chromium'}`);
  const res = await runBench({
    driver: node ? { kind: 'node', module: nodeBenchModule(distDir) } : { kind: 'chromium', benchDist: join(root, 'bench', 'dist') },
    cases,
    reps,
    warmup: 2,
    cpuMaxElements: 2e7,
    // On Node the CPU reference is a yardstick at small N only (the GPU sizes reach 1e7).
    cpuMaxN: node ? 1e5 : undefined,
    slowMs: 5000,
    slowReps: 3,
    log: (l) => console.log(l),
    verbose: !!values.verbose,
    onProgress: (partial) => void writeProgress(partial),
  });
  const files = staged ? writeBench(res, committed, reps, node ? nodeBenchFiles(committed, res.adapter) : undefined) : writeProgress(res);
  console.log(`\n${benchTable(res)}\n`);
  const a = res.adapter as { vendor: string; architecture: string; description: string; isFallbackAdapter: boolean };
  console.log(`ran on ${adapterLine(a)}, ${node ? "Node's WebGPU (Dawn)" : 'headless Chromium'}; ${res.cases.length} of ${cases.length} cases in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  console.log(`wrote ${files.join(', ')}${staged ? '' : ' (not committed; --save writes bench/results)'}`);
  if (res.failures.length) {
    console.error(`detloss bench: ${res.failures.length} case(s) could not be measured: ${res.failures.map((f) => `${f.label} N=${f.n}`).join(', ')}`);
    return 1;
  }
  return 0;
}

const USAGES: Record<string, string> = { parity: PARITY_USAGE, bench: BENCH_USAGE, tune: TUNE_USAGE };

/** Runs the command line `argv` (without node and the script); returns the exit status. */
async function main(argv: string[], distDir = distDirOf(import.meta.url)): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(MAIN_USAGE);
    return 0;
  }
  if (cmd !== 'parity' && cmd !== 'bench' && cmd !== 'tune') {
    console.error(`detloss: ${cmd === undefined ? 'no command given' : `unknown command ${cmd}`}\n\n${MAIN_USAGE}`);
    return 2;
  }
  try {
    return await (cmd === 'parity' ? parity(rest, distDir) : cmd === 'bench' ? bench(rest, distDir) : tuneCommand(rest));
  } catch (e) {
    const code = exitCodeOf(e);
    const err = e as Error;
    if (e instanceof ToolError && e.code === 'bad_args') console.error(`detloss ${cmd}: ${err.message}\n\n${USAGES[cmd]}`);
    else if (e instanceof ToolError || e instanceof DetlossError) console.error(`detloss ${cmd}: ${err.message}`);
    else console.error(`detloss ${cmd}: ${err?.stack ?? String(e)}`);
    return code;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
