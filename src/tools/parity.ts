import { existsSync, lstatSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cpu as cpuRef, createDetloss } from '../index';
import { compareCase, caseInputs, caseOptions, parseFixtures, type Comparison, type FixtureCase } from '../fixtures';
import { OPS } from '../ops/registry';
import { findChromium, openGpuPage, runInPage, type PageResult } from './browser';
import { exitCodeOf, importOptional, ToolError } from './errors';
import { ensureRuntimeDir } from './runtime-dir';

export interface CaseOutcome {
  name: string;
  op: string;
  status: 'passed' | 'failed' | 'skipped';
  gpu?: Comparison;
  cpu?: Comparison;
  note?: string;
}

export interface ParityReport {
  adapter: { vendor: string; architecture: string; device: string; description: string; isFallbackAdapter: boolean };
  /** Where the GPU half ran. */
  runtime: 'chromium' | 'node';
  outcomes: CaseOutcome[];
  passed: number;
  failed: number;
  skipped: number;
}

/**
 * Every fixture file under the given files or folders (recursively), in a stable order, each once:
 * a folder or file reached again through a symbolic link (a link back to a parent, or two links to
 * one file) is not read twice. A missing path, or one that cannot be read, is a `bad_args` ToolError.
 */
export function fixtureFiles(paths: string[], seen = new Set<string>()): string[] {
  const out: string[] = [];
  for (const p of paths) {
    let real: string;
    let dir: boolean;
    try {
      if (!existsSync(p)) throw new ToolError('bad_args', `${p}: no such file or folder${lstatOrUndefined(p)?.isSymbolicLink() ? ' (a symbolic link to nothing)' : ''}`);
      real = realpathSync(p);
      dir = statSync(p).isDirectory();
    } catch (e) {
      if (e instanceof ToolError) throw e;
      throw new ToolError('bad_args', `${p}: cannot be read (${(e as Error).message})`, { cause: e });
    }
    if (seen.has(real)) continue;
    seen.add(real);
    if (dir) {
      let names: string[];
      try {
        names = readdirSync(p).sort();
      } catch (e) {
        throw new ToolError('bad_args', `${p}: cannot be listed (${(e as Error).message})`, { cause: e });
      }
      const isDir = (n: string) => {
        try {
          return statSync(join(p, n)).isDirectory();
        } catch {
          // A link to nothing inside a folder: named below if it ends in .json, else not a fixture.
          return false;
        }
      };
      out.push(...fixtureFiles(names.filter((n) => n.endsWith('.json') || isDir(n)).map((n) => join(p, n)), seen));
    } else out.push(p);
  }
  return out;
}

function lstatOrUndefined(p: string) {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

/** The fixtures shipped in the package: dist/fixtures, beside the built CLI in `distDir`. */
export const shippedFixtures = (distDir: string) => join(distDir, 'fixtures');

/** One GPU to run cases on: a page in headless Chromium, or a context on Node's WebGPU. */
interface GpuRunner {
  adapter: ParityReport['adapter'];
  run(op: string, c: FixtureCase): Promise<PageResult>;
  close(): Promise<void>;
}

const NODE_HINT = "npm install webgpu (Node's WebGPU, Dawn), or leave out --node to run in headless Chromium";
const CHROMIUM_HINT = "npm install puppeteer-core (it drives headless Chromium), or run on Node's WebGPU with --node (npm install webgpu)";
const SWIFTSHADER_DIR = '/usr/lib/chromium';

/**
 * What to do when Node's WebGPU has no adapter: Dawn finds Vulkan drivers through the loader, which
 * reads VK_ICD_FILENAMES (and the library path) as the process starts, so the fix is in the shell.
 * `orChromium`: the command can run in headless Chromium instead (not `detloss tune`).
 */
export function nodeAdapterAdvice(why: string, command = 'npx detloss parity --node', orChromium = true): string {
  const icd = `${SWIFTSHADER_DIR}/vk_swiftshader_icd.json`;
  const set = process.env.VK_ICD_FILENAMES ?? process.env.VK_DRIVER_FILES;
  return [
    `no WebGPU adapter on Node's WebGPU. Dawn needs a Vulkan driver, which the Vulkan loader finds through VK_ICD_FILENAMES${set ? ` (set to ${set} here)` : ' (not set here)'}, read as the process starts.`,
    existsSync(icd)
      ? `Chromium's software driver (SwiftShader) is on this machine: VK_ICD_FILENAMES=${icd} LD_LIBRARY_PATH=${SWIFTSHADER_DIR} ${command}`
      : `On a GPU: install its Vulkan driver and set VK_ICD_FILENAMES=/path/to/<vendor>_icd.json. Without one: apt-get install -y chromium, then VK_ICD_FILENAMES=${icd} LD_LIBRARY_PATH=${SWIFTSHADER_DIR} ${command}`,
    ...(orChromium ? ['Or leave out --node to run in headless Chromium.'] : []),
    `(${why})`,
  ].join('\n');
}

async function chromiumRunner(distDir: string): Promise<GpuRunner> {
  if (!existsSync(join(distDir, 'index.js'))) throw new ToolError('no_build', `${join(distDir, 'index.js')} is missing: run npm run build`);
  await importOptional('puppeteer-core', CHROMIUM_HINT);
  try {
    findChromium();
  } catch (e) {
    throw new ToolError('no_chromium', `${(e as Error).message} Or run on Node's WebGPU with --node.`, { cause: e });
  }
  let gp: Awaited<ReturnType<typeof openGpuPage>>;
  ensureRuntimeDir(); // Chromium inherits it
  try {
    gp = await openGpuPage(distDir);
  } catch (e) {
    throw new ToolError('no_adapter', `headless Chromium gave no WebGPU context: ${(e as Error).message}`, { cause: e });
  }
  return { adapter: gp.adapter, run: (op, c) => runInPage(gp.page, op, c.inputs, caseOptions(c)), close: gp.close };
}

async function nodeRunner(command?: string): Promise<GpuRunner> {
  ensureRuntimeDir();
  const webgpu = await importOptional<{ create(flags: string[]): unknown; globals: object }>('webgpu', NODE_HINT);
  Object.assign(globalThis, webgpu.globals);
  let dl: Awaited<ReturnType<typeof createDetloss>>;
  try {
    dl = await createDetloss({ gpu: webgpu.create([]) as GPU });
  } catch (e) {
    if (exitCodeOf(e) === 2) throw new ToolError('no_adapter', nodeAdapterAdvice((e as Error).message, command), { cause: e });
    throw e;
  }
  const { vendor, architecture, device, description, isFallbackAdapter } = dl.adapter;
  return {
    adapter: { vendor, architecture, device, description, isFallbackAdapter },
    async run(op, c) {
      try {
        const r = await dl.run(op, caseInputs(c), caseOptions(c));
        const named = r.outputs ? { outputs: Object.fromEntries(Object.entries(r.outputs).map(([k, v]) => [k, Array.from(v)])), outputShapes: r.outputShapes } : {};
        return { ok: true, loss: Array.from(r.loss), shape: r.shape, grad: Object.fromEntries(Object.entries(r.grad).map(([k, g]) => [k, Array.from(g as Float32Array)])), ...named };
      } catch (e) {
        return { ok: false, code: (e as { code?: string }).code, message: (e as Error).message };
      }
    },
    close: async () => dl.destroy(),
  };
}

/** Reads every case of the files; a file that is not in the fixture format is a `bad_args` ToolError. */
export function readCases(files: string[]): FixtureCase[] {
  const cases: FixtureCase[] = [];
  for (const f of files) {
    try {
      cases.push(...parseFixtures(readFileSync(f, 'utf8'), f));
    } catch (e) {
      throw new ToolError('bad_args', (e as Error).message, { cause: e });
    }
  }
  return cases;
}

/**
 * Runs every case on the GPU (in headless Chromium with the built package in `distDir`, or with
 * `node` on Node's WebGPU in this process) and on the CPU reference, and compares both with the
 * case's tolerance. `ops` selects ops; an op asked for explicitly that has no GPU kernel fails, one
 * merely present in the files is skipped. No Chromium, no package, no adapter: a ToolError.
 */
export async function runParity(opts: {
  files: string[];
  ops?: string[];
  distDir: string;
  /** Run on Node's WebGPU (the optional `webgpu` package) instead of headless Chromium. */
  node?: boolean;
  /** The command line to show in the advice when Node's WebGPU has no adapter. */
  command?: string;
  onCase?: (o: CaseOutcome, index: number, total: number) => void;
  onAdapter?: (a: ParityReport['adapter']) => void;
}): Promise<ParityReport> {
  const cases = readCases(opts.files);
  const wanted = opts.ops && new Set(opts.ops);
  const selected = wanted ? cases.filter((c) => wanted.has(c.op)) : cases;
  const outcomes: CaseOutcome[] = [];
  if (wanted) {
    for (const op of wanted) {
      if (!cases.some((c) => c.op === op)) {
        outcomes.push({ name: `${op} (no fixture case)`, op, status: 'failed', note: `no case for op ${op} in the given fixtures` });
      }
    }
  }
  const gpu = opts.node ? await nodeRunner(opts.command) : await chromiumRunner(opts.distDir);
  opts.onAdapter?.(gpu.adapter);
  try {
    for (const [i, c] of selected.entries()) {
      const o = await runOne(gpu, c, !!wanted);
      outcomes.push(o);
      opts.onCase?.(o, i, selected.length);
    }
  } finally {
    await gpu.close();
  }
  const count = (s: CaseOutcome['status']) => outcomes.filter((o) => o.status === s).length;
  return { adapter: gpu.adapter, runtime: opts.node ? 'node' : 'chromium', outcomes, passed: count('passed'), failed: count('failed'), skipped: count('skipped') };
}

async function runOne(gpuRunner: GpuRunner, c: FixtureCase, explicit: boolean): Promise<CaseOutcome> {
  const base = { name: c.name, op: c.op };
  const desc = Object.hasOwn(OPS, c.op) ? OPS[c.op] : undefined;
  // An op this package does not know is a failure (a misspelled op must not pass); a known op with
  // no GPU kernel yet is skipped, unless it was asked for by name.
  if (!desc) return { ...base, status: 'failed', note: `unknown op ${JSON.stringify(c.op)} (ops: ${Object.keys(OPS).join(', ')})` };
  if (!desc.gpu) return { ...base, status: explicit ? 'failed' : 'skipped', note: 'unsupported (no GPU kernel yet)' };
  const unknown = Object.keys(c.inputs).filter((k) => !Object.hasOwn(desc.inputs, k) && k !== 'weight' && k !== 'gradOutput');
  if (unknown.length) return { ...base, status: 'failed', note: `unknown input ${unknown.map((k) => JSON.stringify(k)).join(', ')} (inputs of ${c.op}: ${Object.keys(desc.inputs).join(', ')}, weight, gradOutput)` };
  let cpu: Comparison;
  try {
    cpu = compareCase(c, cpuRef.run(c.op, caseInputs(c), caseOptions(c)));
  } catch (e) {
    cpu = { pass: false, lossErr: Infinity, gradErr: Infinity, l2Err: Infinity, detail: `threw: ${(e as Error).message}` };
  }
  const r = await gpuRunner.run(c.op, c);
  let gpu: Comparison;
  if (!r.ok) gpu = { pass: false, lossErr: Infinity, gradErr: Infinity, l2Err: Infinity, detail: `threw ${r.code ?? ''}: ${r.message}` };
  else {
    gpu = compareCase(c, r);
    const want = c.expected.loss?.shape;
    if (gpu.pass && want && JSON.stringify(r.shape) !== JSON.stringify(want)) {
      gpu = { ...gpu, pass: false, detail: `loss shape [${r.shape}] instead of [${want}]` };
    }
  }
  const pass = gpu.pass && cpu.pass;
  const note = pass ? undefined : [!gpu.pass && `gpu: ${gpu.detail}`, !cpu.pass && `cpu: ${cpu.detail}`].filter(Boolean).join('; ');
  return { ...base, status: pass ? 'passed' : 'failed', gpu, cpu, note };
}

/** The case with the largest relative L2 error of an array on each side, over the cases that ran. */
export function largestL2(outcomes: CaseOutcome[]): { gpu?: { err: number; name: string }; cpu?: { err: number; name: string } } {
  const top = (side: 'gpu' | 'cpu') => {
    let best: { err: number; name: string } | undefined;
    for (const o of outcomes) {
      const e = o[side]?.l2Err;
      if (e !== undefined && (!best || e > best.err)) best = { err: e, name: o.name };
    }
    return best;
  };
  return { gpu: top('gpu'), cpu: top('cpu') };
}

const fmt = (x: number | undefined) => (x === undefined ? '-' : Number.isFinite(x) ? x.toExponential(2) : 'inf');

/**
 * One line per case: status, name, max abs errors (loss, grad) and the largest relative L2 error of
 * an array, on GPU and CPU.
 */
export function formatOutcome(o: CaseOutcome): string {
  const tag = o.status === 'passed' ? 'PASS' : o.status === 'failed' ? 'FAIL' : 'SKIP';
  // Named outputs besides: the largest error of the f32 ones, and how many i32 elements differ (0 to pass).
  const outs = (c: Comparison) => (c.outputErr !== undefined ? ` out ${fmt(c.outputErr)} i32 off ${c.mismatches ?? 0}` : '');
  const side = (c: Comparison) => `loss ${fmt(c.lossErr)} grad ${fmt(c.gradErr)} l2 ${fmt(c.l2Err)}${outs(c)}`;
  const errs = o.gpu && o.cpu ? `  gpu ${side(o.gpu)}  cpu ${side(o.cpu)}` : '';
  return `${tag} ${o.name}${errs}${o.note ? `  ${o.note}` : ''}`;
}
