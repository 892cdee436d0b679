import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { runCpu } from '../cpu/run';
import { compareCase, caseInputs, caseOptions, parseFixtures, type Comparison, type FixtureCase } from '../fixtures';
import { OPS } from '../ops/registry';
import { openGpuPage, runInPage } from './browser';

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
  outcomes: CaseOutcome[];
  passed: number;
  failed: number;
  skipped: number;
}

/** Every fixture file under the given files or folders (recursively), in a stable order. */
export function fixtureFiles(paths: string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    if (!existsSync(p)) throw new Error(`${p}: no such file or folder`);
    if (statSync(p).isDirectory()) {
      const names = readdirSync(p).sort();
      out.push(...fixtureFiles(names.filter((n) => n.endsWith('.json') || statSync(join(p, n)).isDirectory()).map((n) => join(p, n))));
    } else out.push(p);
  }
  return out;
}

/**
 * Runs every case on the GPU in headless Chromium and on the CPU reference, and compares both
 * with the case's tolerance. `ops` selects ops; an op asked for explicitly that has no GPU kernel
 * fails, one merely present in the files is skipped.
 */
export async function runParity(opts: {
  files: string[];
  ops?: string[];
  distDir: string;
  onCase?: (o: CaseOutcome, index: number, total: number) => void;
  onAdapter?: (a: ParityReport['adapter']) => void;
}): Promise<ParityReport> {
  const cases: FixtureCase[] = [];
  for (const f of opts.files) cases.push(...parseFixtures(readFileSync(f, 'utf8'), f));
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
  const gp = await openGpuPage(opts.distDir);
  opts.onAdapter?.(gp.adapter);
  try {
    for (const [i, c] of selected.entries()) {
      const o = await runOne(gp.page, c, !!wanted);
      outcomes.push(o);
      opts.onCase?.(o, i, selected.length);
    }
  } finally {
    await gp.close();
  }
  const count = (s: CaseOutcome['status']) => outcomes.filter((o) => o.status === s).length;
  return { adapter: gp.adapter, outcomes, passed: count('passed'), failed: count('failed'), skipped: count('skipped') };
}

async function runOne(page: Parameters<typeof runInPage>[0], c: FixtureCase, explicit: boolean): Promise<CaseOutcome> {
  const base = { name: c.name, op: c.op };
  const desc = OPS[c.op];
  if (!desc || !desc.gpu) {
    const why = desc ? 'unsupported (no GPU kernel yet)' : 'unsupported (unknown op)';
    return { ...base, status: explicit ? 'failed' : 'skipped', note: why };
  }
  let cpu: Comparison;
  try {
    cpu = compareCase(c, runCpu(c.op, caseInputs(c), caseOptions(c)));
  } catch (e) {
    cpu = { pass: false, lossErr: Infinity, gradErr: Infinity, detail: `threw: ${(e as Error).message}` };
  }
  const r = await runInPage(page, c.op, c.inputs, caseOptions(c));
  let gpu: Comparison;
  if (!r.ok) gpu = { pass: false, lossErr: Infinity, gradErr: Infinity, detail: `threw ${r.code ?? ''}: ${r.message}` };
  else {
    gpu = compareCase(c, r);
    if (gpu.pass && JSON.stringify(r.shape) !== JSON.stringify(c.expected.loss.shape)) {
      gpu = { ...gpu, pass: false, detail: `loss shape [${r.shape}] instead of [${c.expected.loss.shape}]` };
    }
  }
  const pass = gpu.pass && cpu.pass;
  const note = pass ? undefined : [!gpu.pass && `gpu: ${gpu.detail}`, !cpu.pass && `cpu: ${cpu.detail}`].filter(Boolean).join('; ');
  return { ...base, status: pass ? 'passed' : 'failed', gpu, cpu, note };
}

const fmt = (x: number | undefined) => (x === undefined ? '-' : Number.isFinite(x) ? x.toExponential(2) : 'inf');

/** One line per case: status, name, max abs errors (loss, grad) on GPU and CPU. */
export function formatOutcome(o: CaseOutcome): string {
  const tag = o.status === 'passed' ? 'PASS' : o.status === 'failed' ? 'FAIL' : 'SKIP';
  const errs = o.gpu && o.cpu ? `  gpu loss ${fmt(o.gpu.lossErr)} grad ${fmt(o.gpu.gradErr)}  cpu loss ${fmt(o.cpu.lossErr)} grad ${fmt(o.cpu.gradErr)}` : '';
  return `${tag} ${o.name}${errs}${o.note ? `  ${o.note}` : ''}`;
}
