import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { distDirOf } from './browser';
import { fixtureFiles, formatOutcome, runParity } from './parity';
import { benchTable, defaultCases, nodeBenchFiles, nodeBenchModule, nodeCases, runBench, writeBench, type BenchResult } from './bench';

const USAGE = `usage: detloss parity [files or folders of fixtures...] [--ops op1,op2]
       detloss bench [--node] [--ops op1,op2] [--n 1e4,1e5] [--reps 7] [--out bench/results]

  Runs every fixture case on the GPU in headless Chromium and on the CPU
  reference, compares both with the case's tolerance, prints one line per case
  and closes with "N passed, M failed". Default fixtures: test/fixtures.
  --ops     only these ops; an op named here without a GPU kernel fails
  --help    this text

  bench times detloss (GPU, GPU-resident, CPU reference) against TF.js
  (webgpu, cpu) and a copy kernel of the same bytes, interleaved, median of
  --reps runs after warm-up, in headless Chromium; needs the bench page
  (npm run build:bench); writes latest.json, latest.svg, latest.md to --out.
  --node    the same on Node's WebGPU (the webgpu package, Dawn), no browser:
            adds 10 resident calls with one wait, GPU time from timestamps
            and the launch plan; N up to 1e7 (rows 1e6 x 80); needs
            bench/dist-node (npm run build:bench); writes
            node-<vendor>-<device>.json and .md to --out (a committed file
            is never overwritten: the new one gets a timestamp suffix).

Exit status: 0 when every case passed, 1 on a failure, 2 when no WebGPU
adapter (or no Chromium) was found or the arguments are wrong.`;

async function bench(args: string[]): Promise<number> {
  let ops: string[] | undefined;
  let ns: number[] | undefined;
  let reps = 7;
  let out = 'bench/results';
  let node = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const v = args[i + 1];
    if (a === '--node') node = true;
    else if (a === '--ops' && v) (ops = v.split(',')), i++;
    else if (a === '--n' && v) (ns = v.split(',').map(Number)), i++;
    else if (a === '--reps' && v) (reps = Number(v)), i++;
    else if (a === '--out' && v) (out = v), i++;
    else {
      console.error(`detloss bench: unknown or incomplete option ${a}\n${USAGE}`);
      return 2;
    }
  }
  if (!Number.isInteger(reps) || reps < 1 || (ns && ns.some((n) => !Number.isInteger(n) || n < 1))) {
    console.error('detloss bench: --reps and --n take positive integers');
    return 2;
  }
  let cases = node ? nodeCases(ns) : defaultCases(ns, ns ? ns.filter((n) => n <= 4000) : undefined);
  if (ops) cases = cases.filter((c) => ops!.includes(c.op));
  const t0 = Date.now();
  // The Node results go to a file named after the adapter, chosen once (on the first write).
  let nodeFiles: { json: string; md: string } | undefined;
  const write = (res: BenchResult) => {
    if (!node) return writeBench(res, out, reps);
    nodeFiles ??= nodeBenchFiles(out, res.adapter);
    return writeBench(res, out, reps, nodeFiles);
  };
  try {
    const res = await runBench({
      driver: node ? { kind: 'node', module: nodeBenchModule(distDirOf(import.meta.url)) } : { kind: 'chromium', benchDist: 'bench/dist' },
      cases,
      reps,
      warmup: 2,
      cpuMaxElements: 2e7,
      // On Node the CPU reference is a yardstick at small N only (the GPU sizes reach 1e7).
      cpuMaxN: node ? 1e5 : undefined,
      slowMs: 5000,
      slowReps: 3,
      log: (l) => console.log(l),
      // The results so far are on disk after every case: an interrupted run keeps what it measured.
      onProgress: (partial) => write(partial),
    });
    const files = write(res);
    console.log(`\n${benchTable(res)}\n`);
    console.log(`wrote ${files.join(', ')} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    if (res.failures.length) {
      console.error(`detloss bench: ${res.failures.length} case(s) could not be measured: ${res.failures.map((f) => `${f.label} N=${f.n}`).join(', ')}`);
      return 1;
    }
    return 0;
  } catch (e) {
    const msg = (e as Error).message;
    console.error(`detloss bench: ${msg}`);
    return /adapter|Chromium|CHROME_PATH|Could not start|dawn\.node|Vulkan/i.test(msg) ? 2 : 1;
  }
}

async function parity(args: string[]): Promise<number> {
  const paths: string[] = [];
  let ops: string[] | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--help' || a === '-h') {
      console.log(USAGE);
      return 0;
    } else if (a === '--ops' || a.startsWith('--ops=')) {
      const v = a === '--ops' ? args[++i] : a.slice(6);
      if (!v) {
        console.error('detloss parity: --ops needs a comma-separated list of ops');
        return 2;
      }
      ops = v.split(',').map((s) => s.trim()).filter(Boolean);
    } else if (a.startsWith('-')) {
      console.error(`detloss parity: unknown option ${a}\n${USAGE}`);
      return 2;
    } else paths.push(a);
  }
  if (paths.length === 0) {
    const local = 'test/fixtures';
    const bundled = join(distDirOf(import.meta.url), '..', 'test', 'fixtures');
    paths.push(existsSync(local) ? local : bundled);
  }
  let files: string[];
  try {
    files = fixtureFiles(paths);
  } catch (e) {
    console.error(`detloss parity: ${(e as Error).message}`);
    return 2;
  }
  if (files.length === 0) {
    console.error(`detloss parity: no fixture files under ${paths.join(', ')}`);
    return 2;
  }
  let report;
  try {
    report = await runParity({
      files,
      ops,
      distDir: distDirOf(import.meta.url),
      onAdapter: (a) => console.log(`adapter: ${[a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ')}${a.isFallbackAdapter ? ' (software fallback)' : ''}`),
      onCase: (o) => console.log(formatOutcome(o)),
    });
  } catch (e) {
    const msg = (e as Error).message;
    console.error(`detloss parity: ${msg}`);
    return /adapter|Chromium|CHROME_PATH|Could not start/i.test(msg) ? 2 : 1;
  }
  for (const o of report.outcomes) if (o.status === 'failed' && !o.gpu) console.log(formatOutcome(o));
  console.log(`${report.passed} passed, ${report.failed} failed${report.skipped ? `, ${report.skipped} skipped` : ''}`);
  return report.failed > 0 ? 1 : 0;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === 'parity') return parity(rest);
  if (cmd === 'bench') return bench(rest);
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(USAGE);
    return cmd ? 0 : 2;
  }
  console.error(`detloss: unknown command ${cmd}\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
