#!/usr/bin/env node
// Times two builds of detloss against each other in one process, on one device, interleaved
// (A B B A A B ...: the order alternates, so that neither always runs second), so that the
// machine's noise falls on both alike. For changes that should not
// move speed (a restructured runtime, a rewritten shader loader): the ratio B/A per case is the
// figure, not the times themselves.
//
//   node scripts/ab-compare.mjs <dist A> <dist B> [--reps 15] [--n 1024,262144] [--only smooth_l1] [--json out.json]
//
// Each dist is a built `dist/` folder (npm run build). Node's WebGPU package (`webgpu`) runs it;
// without a GPU, start Node with LD_LIBRARY_PATH=/usr/lib/chromium
// VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json (SwiftShader).
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { reps: { type: 'string', default: '15' }, json: { type: 'string' }, only: { type: 'string' }, n: { type: 'string', default: '1024,262144' } } });
if (positionals.length !== 2) {
  console.error('usage: node scripts/ab-compare.mjs <dist A> <dist B> [--reps 15] [--json out.json]');
  process.exit(2);
}
const reps = Number(values.reps);
// Without a login session XDG_RUNTIME_DIR is unset, and libwayland (loaded by SwiftShader) prints
// "error: XDG_RUNTIME_DIR is invalid or not set" on runs that succeed: give Dawn an empty private
// one (mkdtemp: mode 0700) first, as src/tools/runtime-dir.ts does for the CLI.
if (process.platform === 'linux' && !(process.env.XDG_RUNTIME_DIR && isAbsolute(process.env.XDG_RUNTIME_DIR) && existsSync(process.env.XDG_RUNTIME_DIR))) {
  const dir = mkdtempSync(join(tmpdir(), 'detloss-runtime-'));
  process.env.XDG_RUNTIME_DIR = dir;
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
}
const { create, globals } = await import('webgpu');
Object.assign(globalThis, globals);
const builds = await Promise.all(positionals.map((d) => import(pathToFileURL(resolve(d, 'index.js')).href)));

const gpu = create([]);
const adapter = await gpu.requestAdapter();
const features = ['timestamp-query', 'subgroups'].filter((f) => adapter.features.has(f));
const limits = {};
for (const k of ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxStorageBuffersPerShaderStage', 'maxComputeWorkgroupsPerDimension']) limits[k] = adapter.limits[k];
const device = await adapter.requestDevice({ requiredFeatures: features, requiredLimits: limits });
const timed = features.includes('timestamp-query');
const ctx = await Promise.all(builds.map((b) => b.createDetloss({ device, timestamps: timed })));
console.log(`adapter: ${adapter.info?.description || adapter.info?.vendor || 'unknown'}${adapter.info?.isFallbackAdapter ? ' (fallback)' : ''}; GPU timestamps: ${timed}`);

let seed = 7;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const floats = (n, lo = -2, hi = 2) => Float32Array.from({ length: n }, () => lo + (hi - lo) * rand());
const boxes = (n) => {
  const a = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) {
    const x = rand() * 100, y = rand() * 100;
    a.set([x, y, x + 1 + rand() * 30, y + 1 + rand() * 30], i * 4);
  }
  return a;
};
const labels = (n, c) => Int32Array.from({ length: n }, () => Math.floor(rand() * c));

/** The cases: small ones show the host's cost per call, large ones the kernels'. */
const cases = [];
for (const n of values.n.split(',').map(Number)) {
  cases.push({ name: `smooth_l1 n=${n}`, op: 'smooth_l1', inputs: { pred: floats(n), target: floats(n) }, options: { reduction: 'mean' } });
  cases.push({ name: `iou_loss ciou n=${n / 4}`, op: 'iou_loss', inputs: { pred: boxes(n / 4), target: boxes(n / 4) }, options: { variant: 'ciou', reduction: 'mean' } });
  cases.push({ name: `sigmoid_focal n=${n}`, op: 'sigmoid_focal', inputs: { logits: floats(n, -4, 4), targets: floats(n, 0, 1).map(Math.round) }, options: { reduction: 'sum' } });
  cases.push({ name: `cross_entropy ${n / 64}x64`, op: 'cross_entropy', inputs: { logits: { data: floats(n, -4, 4), shape: [n / 64, 64] }, labels: labels(n / 64, 64) }, options: {} });
}
cases.push({ name: 'ap_loss n=4096', op: 'ap_loss', inputs: { logits: floats(4096, -3, 3), targets: floats(4096, 0, 1).map((v) => (v > 0.95 ? 1 : 0)) }, options: {} });

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const rows = [];
for (const c of cases.filter((x) => !values.only || x.name.startsWith(values.only))) {
  // Warm-up: pipelines compiled, pool filled, on both.
  for (const dl of ctx) for (let i = 0; i < 3; i++) await dl.run(c.op, c.inputs, c.options);
  const wall = [[], []];
  const gpuMs = [[], []];
  for (let r = 0; r < reps; r++) {
    for (const k of r % 2 ? [1, 0] : [0, 1]) {
      const t0 = performance.now();
      await ctx[k].run(c.op, c.inputs, c.options);
      wall[k].push(performance.now() - t0);
      const g = ctx[k].stats().lastCall?.gpuMs;
      if (g !== undefined) gpuMs[k].push(g);
    }
  }
  const row = { case: c.name, wallA: median(wall[0]), wallB: median(wall[1]), gpuA: gpuMs[0].length ? median(gpuMs[0]) : undefined, gpuB: gpuMs[1].length ? median(gpuMs[1]) : undefined };
  rows.push(row);
  const f = (x) => (x === undefined ? '-' : x.toFixed(3));
  console.log(`${c.name.padEnd(26)} wall ${f(row.wallA)} / ${f(row.wallB)} ms  B/A ${(row.wallB / row.wallA).toFixed(2)}   gpu ${f(row.gpuA)} / ${f(row.gpuB)} ms  B/A ${row.gpuA ? (row.gpuB / row.gpuA).toFixed(2) : '-'}`);
}
if (values.json) writeFileSync(values.json, JSON.stringify({ reps, timed, rows }, null, 2));
for (const dl of ctx) dl.destroy();
device.destroy();
