import { execFileSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { findChromium, openPage, serveStatic } from '../browser';
import { exitCodeOf, importOptional, ToolError } from '../errors';
import { nodeAdapterAdvice } from '../parity';
import type { BenchDriverKind } from './cases';
import { ensureRuntimeDir } from '../runtime-dir';

/** Where the harness (bench/harness.ts) runs: one call of its API at a time, and a way to close it. */
export interface BenchDriver {
  readonly kind: BenchDriverKind;
  adapter: Record<string, unknown>;
  /** Facts of what runs it (Node's `webgpu` package version). */
  runtime: Record<string, unknown>;
  call<T>(fn: string, ...args: unknown[]): Promise<T>;
  close(): Promise<void>;
}

/**
 * Where the runner finds the harness: the built page (Chromium) or the built Node module, whose
 * `entry` opens it (default `openNodeBench`; `openPlanProbe` for the plan probe).
 */
export type DriverSpec = { kind: 'chromium'; benchDist: string } | { kind: 'node'; module: string; entry?: NodeEntry; onEvent?: NodeEvents };

/** The Node module's entries: the harness, the plan probe, or the tuned bench. */
export type NodeEntry = 'openNodeBench' | 'openPlanProbe' | 'openTunedBench';

/** What an entry tells the runner as it happens (the tuned bench: each of tune()'s measurements), as JSON. */
export type NodeEvents = (name: string, data: unknown) => void;

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
async function nodeDriver(modulePath: string, entry: NodeEntry = 'openNodeBench', onEvent?: NodeEvents): Promise<BenchDriver> {
  let mod: Record<NodeEntry, (hooks: { emit(name: string, data: unknown): void }) => Record<string, (...a: unknown[]) => unknown>>;
  try {
    mod = await import(/* @vite-ignore */ pathToFileURL(modulePath).href);
  } catch (e) {
    throw new Error(`could not load ${modulePath} (${(e as Error).message}); it needs the webgpu package (npm install webgpu) and its dawn.node`);
  }
  if (typeof mod[entry] !== 'function') throw new ToolError('no_build', `${modulePath} has no ${entry}: run npm run build:bench`);
  const api = mod[entry]({ emit: (name, data) => onEvent?.(name, data === undefined ? data : JSON.parse(JSON.stringify(data))) });
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

export const openDriver = (spec: DriverSpec) => {
  ensureRuntimeDir(); // before Dawn, in this process or in Chromium (which inherits it), starts
  return spec.kind === 'chromium' ? chromiumDriver(spec.benchDist) : nodeDriver(spec.module, spec.entry, spec.onEvent);
};

/**
 * The first driver of a run, with what it needs checked first: the built harness, the optional
 * package that runs it, Chromium. Failing to open it is the machine's fault (a ToolError): in
 * Chromium any failure, on Node one whose code says there is no adapter.
 */
export async function openFirst(spec: DriverSpec): Promise<BenchDriver> {
  ensureRuntimeDir();
  const built = spec.kind === 'chromium' ? join(spec.benchDist, 'index.html') : spec.module;
  if (!existsSync(built)) throw new ToolError('no_build', `${built} is missing: run npm run build:bench (npm run bench builds it)`);
  if (spec.kind === 'node') {
    await importOptional('webgpu', "npm install webgpu (Node's WebGPU, Dawn), or leave out --node to run in headless Chromium");
    try {
      return await nodeDriver(spec.module, spec.entry, spec.onEvent);
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

/** Facts of the machine a run measured on: the CPU, memory, Node, and the webgpu package or Chromium. */
export function machineFacts(kind: BenchDriverKind = 'chromium', runtime: Record<string, unknown> = {}) {
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
