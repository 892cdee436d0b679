#!/usr/bin/env node
// Measures detloss's launch plans against each other on this machine's GPU (Node's WebGPU), with
// GPU time from timestamps: for each case and plan, the median over reps of the fused pass, the
// reduction and their sum, beside a vec4 copy kernel moving the same bytes. Used to choose the
// hardware plan's defaults (src/runtime/plan.ts); not part of the test suite.
//
//   node scripts/plan-probe.mjs [--quick] [--out dir]      (after npm run build)
//   bash .gpu/run.sh node scripts/plan-probe.mjs --out $OUT (on a GPU server, see README)
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { create, globals } from 'webgpu';
import { createDetloss } from '../dist/index.js';

Object.assign(globalThis, globals);
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const outDir = args.includes('--out') ? args[args.indexOf('--out') + 1] : '.';
const REPS = quick ? 3 : 7;
const only = args.includes('--only') ? args[args.indexOf('--only') + 1].split(',') : undefined;

const gpu = create(['disable-dawn-features=timestamp_quantization']);
const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
if (!adapter) throw new Error('no adapter');
const features = ['timestamp-query', 'subgroups'].filter((f) => adapter.features.has(f));
const limits = {};
for (const k of ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupsPerDimension', 'maxStorageBuffersPerShaderStage', 'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupStorageSize']) limits[k] = adapter.limits[k];
const device = await adapter.requestDevice({ requiredFeatures: features, requiredLimits: limits });
const info = adapter.info;
console.log(`adapter: ${info.vendor} ${info.device} ${info.description} fallback=${info.isFallbackAdapter}; features ${features.join(',')}`);

let seed = 12345;
const rnd = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32);
const floats = (n, lo, hi) => {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + rnd() * (hi - lo);
  return a;
};
function boxes(n, jitterOf) {
  const b = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) {
    if (jitterOf) {
      for (let k = 0; k < 4; k++) b[i * 4 + k] = jitterOf[i * 4 + k] + (rnd() - 0.5) * 8;
      b[i * 4 + 2] = Math.max(b[i * 4 + 2], b[i * 4] + 1);
      b[i * 4 + 3] = Math.max(b[i * 4 + 3], b[i * 4 + 1] + 1);
    } else {
      const x = rnd() * 500;
      const y = rnd() * 500;
      b.set([x, y, x + 4 + rnd() * 60, y + 4 + rnd() * 60], i * 4);
    }
  }
  return b;
}
function upload(arr, shape) {
  const buffer = device.createBuffer({ size: Math.max(16, arr.byteLength), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(buffer, 0, arr.buffer, arr.byteOffset, arr.byteLength);
  return { buffer, shape, dtype: arr instanceof Int32Array ? 'i32' : 'f32', bytes: arr.byteLength };
}

const big = quick ? 0.1 : 1;
const CASES = [
  { op: 'l1', n: 1e4, make: (n) => ({ pred: upload(floats(n, -3, 3), [n]), target: upload(floats(n, -3, 3), [n]) }) },
  { op: 'smooth_l1', n: 4e7 * big, make: (n) => ({ pred: upload(floats(n, -3, 3), [n]), target: upload(floats(n, -3, 3), [n]) }) },
  ...['giou', 'ciou'].flatMap((variant) => [1e6, 1e7 * big].map((n) => ({
    op: 'iou_loss', params: { variant }, n, make: (n) => { const t = boxes(n); return { pred: upload(boxes(n, t), [n, 4]), target: upload(t, [n, 4]) }; },
  }))),
  { op: 'sigmoid_focal', n: 8e7 * big, make: (n) => ({ logits: upload(floats(n, -6, 6), [n]), targets: upload(Float32Array.from({ length: n }, () => (rnd() < 0.1 ? 1 : 0)), [n]) }) },
  ...[[1e6 * big, 80], [1e5, 80]].map(([n, c]) => ({
    op: 'quality_focal', n, rows: true, make: (n) => ({ logits: upload(floats(n * c, -6, 6), [n, c]), labels: upload(Int32Array.from({ length: n }, () => (rnd() < 0.2 ? Math.floor(rnd() * c) : c)), [n]), scores: upload(floats(n, 0, 1), [n]) }),
  })),
  ...[[1e6 * big, 80], [1e5, 80]].map(([n, c]) => ({
    op: 'cross_entropy', params: { avgFactor: n }, n, rows: true, make: (n) => ({ logits: upload(floats(n * c, -6, 6), [n, c]), labels: upload(Int32Array.from({ length: n }, () => Math.floor(rnd() * c)), [n]) }),
  })),
  { op: 'distribution_focal', n: 1e6 * big, rows: true, make: (n) => ({ logits: upload(floats(n * 17, -6, 6), [n, 17]), targets: upload(floats(n, 0, 15.9), [n]) }) },
  { op: 'pairwise_iou', n: quick ? 2000 : 1e4, reduction: 'none', make: (n) => ({ a: upload(boxes(n), [n, 4]), b: upload(boxes(n), [n, 4]) }) },
];
const PLANS = [
  { name: 'software', plan: 'software' },
  { name: 'hw 64k', plan: { kind: 'hardware', maxThreads: 65536 } },
  { name: 'hw 256k (default)', plan: { kind: 'hardware', maxThreads: 262144 } },
  { name: 'hw 1M', plan: { kind: 'hardware', maxThreads: 1 << 20 } },
  { name: 'hw 4M', plan: { kind: 'hardware', maxThreads: 1 << 22 } },
];
// Row ops: who computes a row (a thread, a subgroup, a workgroup), at several thread counts.
// The element-wise ops' scalar kernels, beside the vec4 ones the plans above take.
const VEC4_OPS = ['l1', 'mse', 'smooth_l1', 'huber', 'balanced_l1', 'sigmoid_focal', 'varifocal', 'bce_with_logits'];
const SCALAR_PLANS = [
  { name: 'software scalar', plan: { kind: 'software', vectorWidth: 1 } },
  { name: 'hw 256k scalar', plan: { kind: 'hardware', maxThreads: 262144, vectorWidth: 1 } },
  { name: 'hw 1M scalar', plan: { kind: 'hardware', maxThreads: 1 << 20, vectorWidth: 1 } },
];
const ROW_PLANS = [
  { name: 'hw 256k thread/row', plan: { kind: 'hardware', maxThreads: 262144, rowThreshold: Infinity } },
  { name: 'hw 1M thread/row', plan: { kind: 'hardware', maxThreads: 1 << 20, rowThreshold: Infinity } },
  { name: 'hw 1M subgroup/row', plan: { kind: 'hardware', maxThreads: 1 << 20, rowThreshold: 0, rowLanes: 'subgroup' } },
  { name: 'hw 4M subgroup/row', plan: { kind: 'hardware', maxThreads: 1 << 22, rowThreshold: 0, rowLanes: 'subgroup' } },
  { name: 'hw 1M wg/row', plan: { kind: 'hardware', maxThreads: 1 << 20, rowThreshold: 0, rowLanes: 'workgroup' } },
  { name: 'hw 4M wg/row', plan: { kind: 'hardware', maxThreads: 1 << 22, rowThreshold: 0, rowLanes: 'workgroup' } },
];

// The copy kernel: read the input bytes once, write the output bytes once, vec4s, grid-stride.
const copyCode = `
struct Copy { n_src: u32, n_dst: u32, threads: u32 }
@group(0) @binding(0) var<uniform> cp: Copy;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let tid = gid.x + gid.y * nwg.x * 256u;
  if (tid >= cp.threads) { return; }
  for (var i = tid; i < cp.n_src; i += cp.threads) {
    let v = src[i];
    if (i < cp.n_dst) { dst[i] = v; }
  }
  for (var i = cp.n_src + tid; i < cp.n_dst; i += cp.threads) { dst[i] = vec4(0.0); }
}`;
const copyPipe = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code: copyCode }), entryPoint: 'main' } });
const qs = device.createQuerySet({ type: 'timestamp', count: 2 });
const qbuf = device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
const qread = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
async function copyMs(readBytes, writeBytes) {
  const nSrc = Math.ceil(readBytes / 16);
  const nDst = Math.ceil(writeBytes / 16);
  const src = device.createBuffer({ size: nSrc * 16, usage: GPUBufferUsage.STORAGE });
  const dst = device.createBuffer({ size: Math.max(16, nDst * 16), usage: GPUBufferUsage.STORAGE });
  const uni = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  const threads = Math.min(Math.ceil(Math.max(nSrc, nDst) / 256) * 256, 1 << 20);
  device.queue.writeBuffer(uni, 0, new Uint32Array([nSrc, nDst, threads, 0]));
  const bind = device.createBindGroup({ layout: copyPipe.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: uni } }, { binding: 1, resource: { buffer: src } }, { binding: 2, resource: { buffer: dst } }] });
  const groups = threads / 256;
  const gx = Math.min(groups, 65535);
  const times = [];
  for (let r = 0; r < REPS + 2; r++) {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass({ timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } });
    pass.setPipeline(copyPipe);
    pass.setBindGroup(0, bind);
    pass.dispatchWorkgroups(gx, Math.ceil(groups / gx));
    pass.end();
    enc.resolveQuerySet(qs, 0, 2, qbuf, 0);
    enc.copyBufferToBuffer(qbuf, 0, qread, 0, 16);
    device.queue.submit([enc.finish()]);
    await qread.mapAsync(GPUMapMode.READ);
    const t = new BigUint64Array(qread.getMappedRange().slice(0));
    qread.unmap();
    if (r >= 2) times.push(Number(t[1] - t[0]) / 1e6);
  }
  src.destroy();
  dst.destroy();
  uni.destroy();
  return median(times);
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const results = [];
const contexts = new Map();
async function ctxFor(p) {
  const key = JSON.stringify(p.plan);
  if (!contexts.has(key)) contexts.set(key, await createDetloss({ device, plan: p.plan, timestamps: true }));
  return contexts.get(key);
}
for (const c of CASES.filter((k) => !only || only.includes(k.op))) {
  const t0 = performance.now();
  const inputs = c.make(c.n);
  const { avgFactor, ...params } = c.params ?? {};
  const options = { ...params, reduction: c.reduction ?? 'mean', ...(avgFactor ? { avgFactor } : {}) };
  const read = Object.values(inputs).reduce((a, t) => a + t.bytes, 0);
  const probeCtx = await ctxFor(PLANS[2]);
  const once = await probeCtx.runResident(c.op, inputs, options);
  const write = c.op === 'pairwise_iou' ? once.lossBytes : Object.values(once.gradBytes).reduce((a, b) => a + b, 0) + 4;
  once.release();
  const copy = await copyMs(read, write);
  const label = `${c.op}${params.variant ? `{${params.variant}}` : ''} n=${c.n}`;
  console.log(`${label}: read ${(read / 1e6).toFixed(1)} MB, write ${(write / 1e6).toFixed(1)} MB, copy ${copy.toFixed(3)} ms (${((read + write) / copy / 1e6).toFixed(0)} GB/s)`);
  for (const p of [...PLANS, ...(c.rows ? ROW_PLANS : []), ...(VEC4_OPS.includes(c.op) ? SCALAR_PLANS : [])]) {
    try {
      const dl = await ctxFor(p);
      const gpuMs = [];
      const wallMs = [];
      const passes = {};
      for (let r = 0; r < REPS + 2; r++) {
        const w0 = performance.now();
        const res = await dl.runResident(c.op, inputs, options);
        await device.queue.onSubmittedWorkDone();
        const w = performance.now() - w0;
        res.release();
        const last = dl.stats().lastCall;
        if (r >= 2) {
          gpuMs.push(last.gpuMs);
          wallMs.push(w);
          for (const ps of last.passes ?? []) (passes[ps.name] ??= []).push(ps.gpuMs);
        }
      }
      const g = median(gpuMs);
      const row = { case: label, plan: p.name, kernel: dl.stats().lastCall.kernel, gpuMs: g, wallMs: median(wallMs), passes: Object.fromEntries(Object.entries(passes).map(([k, v]) => [k, median(v)])), copyMs: copy, ofCopy: copy / g, bytes: read + write };
      results.push(row);
      console.log(`  ${p.name.padEnd(18)} ${row.kernel.padEnd(22)} gpu ${g.toFixed(3)} ms (${Object.entries(row.passes).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ')})  wall ${row.wallMs.toFixed(3)} ms  ${(100 * row.ofCopy).toFixed(1)}% of copy`);
    } catch (e) {
      console.log(`  ${p.name}: failed: ${e.message}`);
      results.push({ case: label, plan: p.name, error: e.message });
    }
  }
  for (const t of Object.values(inputs)) t.buffer.destroy();
  for (const dl of contexts.values()) dl.trim();
  writeFileSync(join(outDir, 'plan-probe.json'), JSON.stringify({ adapter: { vendor: info.vendor, device: info.device, description: info.description }, results }, null, 1));
  console.log(`  (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}
process.exit(0);
