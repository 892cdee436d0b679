import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import commonWgsl from '../../../shaders/common.wgsl?raw';
import fusedHeaderWgsl from '../../../shaders/fused-header.wgsl?raw';
import fusedWgsl from '../../../shaders/fused.wgsl?raw';
import { cpu } from '../../../src/cpu';
import type { CpuInputsOf } from '../../../src/ops/op-types';
import { openPage } from '../../../src/tools/browser';
import { useBrowserPage } from '../../helpers/browser-page';
import { maxRelErr, rand } from '../../helpers/counting';
import { GOOD as HOST_GOOD, outputsMismatch } from '../../helpers/misuse-cases';
import { OPS } from '../../../src/ops/registry';

/**
 * The misuse suite in headless Chromium (issue 9), a representative subset of
 * test/runtime/call/misuse.test.ts on the built package: one page.evaluate per group. Every bad call
 * must be a DetlossError (by class and by name) with the expected code and argument, and the good
 * call made after it must equal the CPU reference. The page is served cross-origin isolated, so
 * SharedArrayBuffer exists there as it does in an app that uses it.
 */

const dist = fileURLToPath(new URL('../../../dist/', import.meta.url));
const PAGE = `<!doctype html><meta charset="utf-8"><title>detloss misuse</title>
<script type="module">
import * as detloss from '/index.js';
window.detloss = detloss;
try {
  window.dl = await detloss.createDetloss();
  window.detlossReady = { ok: true, adapter: window.dl.adapter };
} catch (e) {
  window.detlossReady = { ok: false, code: e.code, message: String(e.message || e) };
}
</script>`;

/** Serves dist/ with COOP/COEP headers (crossOriginIsolated, so SharedArrayBuffer is defined). */
async function isolatedServer(): Promise<{ url: string; close(): Promise<void> }> {
  if (!existsSync(join(dist, 'index.js'))) throw new Error(`${dist}index.js is missing: run npm run build first`);
  const headers = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    if (path === '/') return void res.writeHead(200, { ...headers, 'content-type': 'text/html' }).end(PAGE);
    const file = normalize(join(dist, path));
    if (!file.startsWith(dist) || !existsSync(file) || !statSync(file).isFile()) return void res.writeHead(404).end();
    res.writeHead(200, { ...headers, 'content-type': extname(file) === '.js' ? 'text/javascript' : 'application/octet-stream' }).end(readFileSync(file));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as { port: number }).port;
  return { url: `http://localhost:${port}/`, close: () => new Promise<void>((ok) => server.close(() => ok())) };
}

const gp = useBrowserPage(async () => openPage(await isolatedServer(), 'window.detlossReady'));

// ---- inputs as they cross into the page: { t: kind, d: data, s?: shape } or a raw value
type Enc = { t: string; d?: number[]; s?: unknown; v?: unknown } | null;
const F = (d: ArrayLike<number>, s?: unknown): Enc => ({ t: 'f32', d: Array.from(d), ...(s !== undefined ? { s } : {}) });
const I = (d: number[], s?: unknown): Enc => ({ t: 'i32', d, ...(s !== undefined ? { s } : {}) });
const as = (t: string, e: Enc): Enc => ({ ...e!, t });
const raw = (v: unknown): Enc => ({ t: 'raw', v });

function boxes(n: number, seed: number): number[] {
  const r = rand(4 * n, seed, 0, 1);
  const out: number[] = [];
  for (let k = 0; k < n; k++) {
    const [x, y] = [r[4 * k] * 10, r[4 * k + 1] * 10];
    out.push(x, y, x + 1 + r[4 * k + 2] * 4, y + 1 + r[4 * k + 3] * 4);
  }
  return Array.from(Float32Array.from(out));
}
const GOOD: Record<string, { inputs: Record<string, Enc>; options: Record<string, unknown> }> = {
  l1: { inputs: { pred: F(rand(3, 1), [3]), target: F(rand(3, 2), [3]) }, options: {} },
  iou_loss: { inputs: { pred: F(boxes(3, 1), [3, 4]), target: F(boxes(3, 2), [3, 4]) }, options: { variant: 'ciou' } },
  pairwise_iou: { inputs: { a: F(boxes(3, 1), [3, 4]), b: F(boxes(2, 2), [2, 4]) }, options: { variant: 'giou' } },
  cross_entropy: { inputs: { logits: F(rand(12, 3), [3, 4]), labels: I([0, 3, -100], [3]) }, options: { labelSmoothing: 0.1 } },
  kl_div: { inputs: { student: F(rand(12, 4), [3, 4]), teacher: F(rand(12, 5), [3, 4]) }, options: { temperature: 2 } },
  balanced_l1: { inputs: { pred: F(rand(3, 1), [3]), target: F(rand(3, 2), [3]) }, options: {} },
  // the assigner's good calls of the misuse suite (one image, 10 anchors, 3 gt rows, one padding)
  tal_assign: encoded('tal_assign'),
  yolo_detection_loss: encoded('yolo_detection_loss'),
};
/** A good call of test/helpers/misuse-cases.ts, as it crosses into the page. */
function encoded(op: string): { inputs: Record<string, Enc>; options: Record<string, unknown> } {
  const g = HOST_GOOD[op]();
  return { inputs: Object.fromEntries(Object.entries(g.inputs).map(([k, t]) => [k, t.data instanceof Int32Array ? I(Array.from(t.data), t.shape) : F(t.data, t.shape)])), options: g.options };
}
const host = (inputs: Record<string, Enc>) =>
  Object.fromEntries(Object.entries(inputs).map(([k, e]) => [k, { data: e!.t === 'i32' ? Int32Array.from(e!.d!) : Float32Array.from(e!.d!), shape: e!.s as number[] }]));

interface Case {
  what: string;
  op: string;
  inputs: unknown;
  options: unknown;
  /** 'resident' runs it through runResident. */
  method?: 'run' | 'runResident';
}
interface Outcome {
  what: string;
  op: string;
  ok: boolean;
  isDetlossError?: boolean;
  name?: string;
  code?: string;
  argument?: string;
  message?: string;
  loss?: number[];
  grad?: Record<string, number[]>;
  /** The named outputs (tal_assign, yolo_detection_loss), as numbers. */
  outputs?: Record<string, number[]>;
  good: { loss: number[]; grad: Record<string, number[]>; outputs?: Record<string, number[]> } | { error: string };
}

/** Non-finite numbers as `{ $n: 'NaN' }`: page.evaluate would send them as null. */
const wire = <X>(x: X): X => JSON.parse(JSON.stringify(x, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? { $n: String(v) } : v)));
/** The page's inverse of `wire` (a source string, so that it runs in the page as written). */
const UNWIRE = `(function unwire(x) {
  if (Array.isArray(x)) return x.map(unwire);
  if (x && typeof x === 'object') return '$n' in x ? Number(x.$n) : Object.fromEntries(Object.entries(x).map(([k, v]) => [k, unwire(v)]));
  return x;
})`;

/** Runs the cases in the page, each followed by the good call of its op. */
async function inPage(cases: Case[]): Promise<Outcome[]> {
  return gp.page.evaluate(
    async (wiredCases: Case[], wiredGood: typeof GOOD, unwire: string) => {
      const cases = (0, eval)(unwire)(wiredCases) as Case[];
      const good = (0, eval)(unwire)(wiredGood) as typeof GOOD;
      type W = { dl: { run: Function; runResident: Function; device: GPUDevice }; detloss: { DetlossError: Function } };
      const w = window as unknown as W;
      const ARR: Record<string, new (x: number | ArrayBufferLike) => ArrayLike<number> & { set(a: ArrayLike<number>, at?: number): void; subarray(a: number, b: number): unknown }> = {
        f32: Float32Array, i32: Int32Array, f64: Float64Array, u8: Uint8Array,
      };
      const dec = (x: unknown): unknown => {
        if (x === null || typeof x !== 'object' || !('t' in (x as object))) return x;
        const e = x as { t: string; d?: number[]; s?: unknown; v?: unknown };
        if (e.t === 'raw') return e.v;
        const [kind, base = 'f32'] = e.t.split('-');
        let data: unknown;
        if (ARR[kind]) data = (ARR[kind] as unknown as { from(a: number[]): unknown }).from(e.d!);
        else if (kind === 'plain') data = e.d;
        else if (kind === 'dv') data = new DataView(new ArrayBuffer(4 * e.d!.length));
        else if (kind === 'sab') {
          const a = new ARR[base](new SharedArrayBuffer(4 * e.d!.length));
          a.set(e.d!);
          data = a;
        } else if (kind === 'view') {
          const a = new ARR[base](e.d!.length + 8);
          a.set(e.d!, 3);
          data = a.subarray(3, 3 + e.d!.length);
        }
        return 's' in e ? { data, shape: e.s } : data;
      };
      const decAll = (ins: unknown) => (ins && typeof ins === 'object' && !('t' in (ins as object)) ? Object.fromEntries(Object.entries(ins as object).map(([k, v]) => [k, dec(v)])) : dec(ins));
      const read = async (buf: GPUBuffer, bytes: number, dtype = 'f32') => {
        if (!bytes) return [] as number[];
        const d = w.dl.device;
        const st = d.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
        const enc = d.createCommandEncoder();
        enc.copyBufferToBuffer(buf, 0, st, 0, bytes);
        d.queue.submit([enc.finish()]);
        await st.mapAsync(GPUMapMode.READ);
        const range = st.getMappedRange().slice(0);
        const out = Array.from(dtype === 'i32' ? new Int32Array(range) : new Float32Array(range));
        st.destroy();
        return out;
      };
      const call = async (method: string, op: unknown, ins: unknown, options: unknown) => {
        if (method !== 'runResident') {
          const r = await w.dl.run(op, ins, options);
          const outputs = r.outputs ? { outputs: Object.fromEntries(Object.entries(r.outputs as Record<string, Float32Array>).map(([k, v]) => [k, Array.from(v)])) } : {};
          return { loss: Array.from(r.loss as Float32Array), grad: Object.fromEntries(Object.entries(r.grad as Record<string, Float32Array>).map(([k, g]) => [k, Array.from(g)])), ...outputs };
        }
        const r = await w.dl.runResident(op, ins, options);
        try {
          const grad: Record<string, number[]> = {};
          for (const [k, b] of Object.entries(r.grad as Record<string, GPUBuffer>)) grad[k] = await read(b, ((ins as Record<string, { data: { length: number } }>)[k]?.data?.length ?? 0) * 4);
          const outputs: Record<string, number[]> = {};
          for (const [k, b] of Object.entries((r.outputs ?? {}) as Record<string, GPUBuffer>)) outputs[k] = await read(b, r.outputBytes[k], r.outputDtypes[k]);
          return { loss: await read(r.loss, r.lossBytes), grad, gradKeys: Object.keys(r.grad), ...(r.outputs ? { outputs } : {}) };
        } finally {
          r.release();
        }
      };
      const out: unknown[] = [];
      for (const c of cases) {
        const o: Record<string, unknown> = { what: c.what, op: c.op };
        try {
          const r = await call(c.method ?? 'run', c.op, decAll(c.inputs), c.options);
          Object.assign(o, { ok: true, ...r });
        } catch (e) {
          const err = e as { name?: string; code?: string; argument?: string; message?: string };
          Object.assign(o, { ok: false, isDetlossError: e instanceof w.detloss.DetlossError, name: String(e).split(':')[0], code: err.code, argument: err.argument, message: String(err.message ?? e) });
        }
        const g = good[c.op as string];
        try {
          o.good = await call(c.method ?? 'run', c.op, decAll(g.inputs), g.options);
        } catch (e) {
          o.good = { error: String(e) };
        }
        out.push(o);
      }
      return out as never;
    },
    wire(cases),
    wire(GOOD),
    UNWIRE,
  ) as Promise<Outcome[]>;
}

/** Each outcome a DetlossError (printing as one) with its code and argument, named in the message; each good call after it right. */
function expectRefused(outs: Outcome[], want: [code: string, argument: string][]) {
  const bad: string[] = [];
  outs.forEach((o, k) => {
    const [code, argument] = want[k];
    if (o.ok) bad.push(`${o.op} ${o.what}: accepted, expected ${code}/${argument}`);
    else if (!o.isDetlossError || o.name !== 'DetlossError' || o.code !== code || o.argument !== argument || !o.message!.includes(argument)) {
      bad.push(`${o.op} ${o.what}: got ${o.isDetlossError ? '' : 'NOT '}instanceof DetlossError, prints as ${o.name}, ${o.code}/${o.argument}: ${o.message}; expected ${code}/${argument}`);
    }
  });
  expect(bad).toEqual([]);
  expectGoodAfter(outs);
}

function expectGoodAfter(outs: Outcome[]) {
  const bad: string[] = [];
  for (const o of outs) {
    if ('error' in o.good) {
      bad.push(`${o.op} after ${o.what}: the good call failed: ${o.good.error}`);
      continue;
    }
    const g = GOOD[o.op];
    const ref = cpu.run(o.op, host(g.inputs), g.options);
    if (maxRelErr(o.good.loss, ref.loss) > 1e-5) bad.push(`${o.op} after ${o.what}: loss ${o.good.loss} vs ${Array.from(ref.loss)}`);
    for (const k of Object.keys(ref.grad)) if (maxRelErr(o.good.grad[k] ?? [], ref.grad[k]) > 1e-5) bad.push(`${o.op} after ${o.what}: grad.${k}`);
    const miss = outputsMismatch({ outputs: typedOutputs(o.op, o.good.outputs) }, ref);
    if (miss) bad.push(`${o.op} after ${o.what}: ${miss}`);
  }
  expect(bad).toEqual([]);
}

const gi = (op: string, name: string, e: Enc) => ({ ...GOOD[op].inputs, [name]: e });
/** The page's named outputs as typed arrays again (Int32Array where the op's output is i32). */
const typedOutputs = (op: string, outputs: Record<string, number[]> | undefined) =>
  outputs && Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, OPS[op].outputs?.[k]?.dtype === 'i32' ? Int32Array.from(v) : Float64Array.from(v)]));

describe('misuse in headless Chromium: a DetlossError naming the argument, then a good call is right', () => {
  it('wrong shapes, dtypes, null and non-object inputs and options', async () => {
    const p = GOOD.l1.inputs.pred!.d!;
    const box = GOOD.iou_loss.inputs.pred!.d!;
    const table: [string, string, unknown, unknown, string, string][] = [
      ['length mismatch', 'l1', gi('l1', 'target', F([1, 2, 3, 4])), {}, 'shape_mismatch', 'target'],
      ['shape disagreeing with its data', 'iou_loss', gi('iou_loss', 'pred', F(box, [4, 4])), {}, 'shape_mismatch', 'pred'],
      ['rank mismatch', 'iou_loss', gi('iou_loss', 'pred', F(box, [3, 4, 1])), {}, 'shape_mismatch', 'pred'],
      ['negative dims', 'iou_loss', gi('iou_loss', 'pred', F(box, [-3, -4])), {}, 'shape_mismatch', 'pred'],
      ['string dims', 'cross_entropy', gi('cross_entropy', 'logits', F(GOOD.cross_entropy.inputs.logits!.d!, ['3', '4'])), {}, 'shape_mismatch', 'logits'],
      ['a huge shape [2**31, 4]', 'iou_loss', gi('iou_loss', 'target', F(box, [2 ** 31, 4])), {}, 'shape_mismatch', 'target'],
      ['a huge shape [1e9, 80]', 'cross_entropy', gi('cross_entropy', 'logits', F(GOOD.cross_entropy.inputs.logits!.d!, [1e9, 80])), {}, 'shape_mismatch', 'logits'],
      ['a shape that is not an array', 'pairwise_iou', gi('pairwise_iou', 'b', F(GOOD.pairwise_iou.inputs.b!.d!, '2,4')), {}, 'shape_mismatch', 'b'],
      ['Int32Array for floats', 'l1', gi('l1', 'pred', I([1, 2, 3])), {}, 'wrong_dtype', 'pred'],
      ['Float32Array labels', 'cross_entropy', gi('cross_entropy', 'labels', F([0, 1, 2], [3])), {}, 'wrong_dtype', 'labels'],
      ['Float64Array on the GPU', 'kl_div', gi('kl_div', 'teacher', as('f64', GOOD.kl_div.inputs.teacher)), {}, 'wrong_dtype', 'teacher'],
      ['a plain array', 'l1', gi('l1', 'pred', as('plain', F(p))), {}, 'wrong_dtype', 'pred'],
      ['Uint8Array', 'l1', gi('l1', 'target', as('u8', F(p))), {}, 'wrong_dtype', 'target'],
      ['DataView', 'l1', gi('l1', 'target', as('dv', F(p))), {}, 'wrong_dtype', 'target'],
      ['a string', 'l1', gi('l1', 'pred', raw('abc')), {}, 'wrong_dtype', 'pred'],
      ['a number', 'l1', gi('l1', 'pred', raw(3)), {}, 'wrong_dtype', 'pred'],
      ['pred: null', 'l1', gi('l1', 'pred', null), {}, 'missing_input', 'pred'],
      ['an input named toString', 'l1', gi('l1', 'toString', F(p)), {}, 'unknown_input', 'toString'],
      ['inputs = null', 'l1', null, {}, 'missing_input', 'inputs'],
      ['options = 5', 'l1', GOOD.l1.inputs, 5, 'invalid_param', 'options'],
      ['options = null', 'cross_entropy', GOOD.cross_entropy.inputs, null, 'invalid_param', 'options'],
      ['predBoxes of 9 anchors (A = 10 from scores)', 'tal_assign', gi('tal_assign', 'predBoxes', F(new Float32Array(36), [1, 9, 4])), {}, 'shape_mismatch', 'predBoxes'],
      ['gtLabels of 4 rows (M = 3 from gtBoxes)', 'tal_assign', gi('tal_assign', 'gtLabels', I([0, 0, 0, 0], [1, 4])), {}, 'shape_mismatch', 'gtLabels'],
      ['scores with C = 0', 'tal_assign', gi('tal_assign', 'scores', F([], [1, 10, 0])), {}, 'shape_mismatch', 'scores'],
      ['predDist not 4R (15)', 'yolo_detection_loss', gi('yolo_detection_loss', 'predDist', F(new Float32Array(150), [1, 10, 15])), {}, 'shape_mismatch', 'predDist'],
      ['predDist with R = 1', 'yolo_detection_loss', gi('yolo_detection_loss', 'predDist', F(new Float32Array(40), [1, 10, 4])), {}, 'shape_mismatch', 'predDist'],
      ['strides of 9 anchors', 'yolo_detection_loss', gi('yolo_detection_loss', 'strides', F(new Float32Array(9).fill(8), [9])), {}, 'shape_mismatch', 'strides'],
      ['Float32Array gtMask', 'yolo_detection_loss', gi('yolo_detection_loss', 'gtMask', F([1, 1, 0], [1, 3])), {}, 'wrong_dtype', 'gtMask'],
      ['resident: length mismatch', 'l1', gi('l1', 'target', F([1, 2, 3, 4])), {}, 'shape_mismatch', 'target'],
    ];
    const outs = await inPage(table.map(([what, op, inputs, options], k) => ({ what, op, inputs, options, method: k === table.length - 1 ? 'runResident' : 'run' })));
    expectRefused(outs, table.map((c) => [c[4], c[5]]));
  });

  it('NaN and Infinity: check: true is invalid_value naming the input; check: false resolves', async () => {
    const nan = (e: Enc, v: number) => ({ ...e!, d: e!.d!.map((x, i) => (i === e!.d!.length - 1 ? v : x)) });
    const table: [string, string, Enc][] = [
      ['l1', 'pred', nan(GOOD.l1.inputs.pred, NaN)],
      ['iou_loss', 'target', nan(GOOD.iou_loss.inputs.target, Infinity)],
      ['cross_entropy', 'logits', nan(GOOD.cross_entropy.inputs.logits, -Infinity)],
      ['kl_div', 'teacher', nan(GOOD.kl_div.inputs.teacher, NaN)],
      ['pairwise_iou', 'b', nan(GOOD.pairwise_iou.inputs.b, NaN)],
      ['tal_assign', 'scores', nan(GOOD.tal_assign.inputs.scores, NaN)],
      ['tal_assign', 'gtBoxes', nan(GOOD.tal_assign.inputs.gtBoxes, Infinity)],
      ['yolo_detection_loss', 'predDist', nan(GOOD.yolo_detection_loss.inputs.predDist, -Infinity)],
      ['yolo_detection_loss', 'anchors', nan(GOOD.yolo_detection_loss.inputs.anchors, NaN)],
    ];
    const checked = await inPage(table.map(([op, name, e]) => ({ what: `${name} non-finite, check: true`, op, inputs: gi(op, name, e), options: { ...GOOD[op].options, check: true } })));
    expectRefused(checked, table.map(([, name]) => ['invalid_value', name]));
    const unchecked = await inPage(table.map(([op, name, e]) => ({ what: `${name} non-finite, check: false`, op, inputs: gi(op, name, e), options: GOOD[op].options })));
    const bad = unchecked.filter((o, k) => !o.ok && !(o.isDetlossError && o.argument === table[k][1])).map((o) => `${o.op}: ${o.message}`);
    expect(bad).toEqual([]);
    expectGoodAfter(unchecked);
  });

  it('params: unknown, of the wrong type, out of range, int32 overflow, avgFactor', async () => {
    const table: [string, Record<string, unknown>, string, string][] = [
      ['l1', { bogus: 1 }, 'unknown_param', 'bogus'],
      ['l1', { toString: 1 }, 'unknown_param', 'toString'],
      ['iou_loss', { eps: '1e-7' }, 'invalid_param', 'eps'],
      ['iou_loss', { eps: NaN }, 'invalid_param', 'eps'],
      ['iou_loss', { eps: -1 }, 'invalid_param', 'eps'],
      ['iou_loss', { variant: true }, 'invalid_param', 'variant'],
      ['kl_div', { temperature: 0 }, 'invalid_param', 'temperature'],
      ['kl_div', { temperature: Infinity }, 'invalid_param', 'temperature'],
      ['kl_div', { temperature: {} }, 'invalid_param', 'temperature'],
      ['cross_entropy', { labelSmoothing: 1.5 }, 'invalid_param', 'labelSmoothing'],
      ['cross_entropy', { ignoreIndex: 2 ** 32 }, 'invalid_param', 'ignoreIndex'],
      ['cross_entropy', { ignoreIndex: 1e300 }, 'invalid_param', 'ignoreIndex'],
      ['cross_entropy', { ignoreIndex: -(2 ** 31) - 1 }, 'invalid_param', 'ignoreIndex'],
      ['l1', { reduction: 'MEAN' }, 'invalid_param', 'reduction'],
      ['l1', { reduction: null }, 'invalid_param', 'reduction'],
      ['l1', { grad: 'no' }, 'invalid_param', 'grad'],
      ['l1', { avgFactor: 0 }, 'invalid_param', 'avgFactor'],
      ['l1', { avgFactor: NaN }, 'invalid_param', 'avgFactor'],
      ['l1', { avgFactor: 1e-310 }, 'invalid_param', 'avgFactor'],
      ['l1', { avgFactor: 2, reduction: 'sum' }, 'invalid_param', 'avgFactor'],
      ['pairwise_iou', { reduction: 'mean' }, 'invalid_param', 'reduction'],
      ['cross_entropy', {}, 'invalid_value', 'labels'],
    ];
    const outs = await inPage(
      table.map(([op, options], k) => ({
        what: JSON.stringify(options) ?? String(options),
        op,
        inputs: k === table.length - 1 ? gi(op, 'labels', I([0, 4, 1], [3])) : GOOD[op].inputs,
        options: { ...GOOD[op].options, ...options },
      })),
    );
    expectRefused(outs, table.map((c) => [c[2], c[3]]));
  });

  it('the assigner and the YOLO loss: no reduction, weight or avgFactor; topk, alpha, beta, eps, the gains; labels, mask, strides and checked scores, on host arrays', async () => {
    const tal = 'tal_assign';
    const yolo = 'yolo_detection_loss';
    const table: [string, string, Record<string, Enc>, Record<string, unknown>, string, string][] = [
      [tal, "reduction 'mean'", GOOD[tal].inputs, { reduction: 'mean' }, 'invalid_param', 'reduction'],
      [yolo, "reduction 'sum'", GOOD[yolo].inputs, { reduction: 'sum' }, 'invalid_param', 'reduction'],
      [tal, 'avgFactor 1', GOOD[tal].inputs, { avgFactor: 1 }, 'invalid_param', 'avgFactor'],
      [yolo, 'a weight of the loss\'s shape', { ...GOOD[yolo].inputs, weight: F([1], [1]) }, {}, 'invalid_param', 'weight'],
      [tal, 'a weight of the anchors\' shape', { ...GOOD[tal].inputs, weight: F(new Float32Array(10).fill(1), [1, 10]) }, {}, 'invalid_param', 'weight'],
      [tal, 'topk 11 > A = 10 with gt rows', GOOD[tal].inputs, { topk: 11 }, 'invalid_param', 'topk'],
      [yolo, 'topk 0', GOOD[yolo].inputs, { topk: 0 }, 'invalid_param', 'topk'],
      [yolo, 'topk 2.5', GOOD[yolo].inputs, { topk: 2.5 }, 'invalid_param', 'topk'],
      [tal, 'alpha -1', GOOD[tal].inputs, { alpha: -1 }, 'invalid_param', 'alpha'],
      [tal, 'beta 0', GOOD[tal].inputs, { beta: 0 }, 'invalid_param', 'beta'],
      [tal, 'eps 0', GOOD[tal].inputs, { eps: 0 }, 'invalid_param', 'eps'],
      [yolo, 'boxGain NaN', GOOD[yolo].inputs, { boxGain: NaN }, 'invalid_param', 'boxGain'],
      [yolo, 'dflGain Infinity', GOOD[yolo].inputs, { dflGain: Infinity }, 'invalid_param', 'dflGain'],
      [yolo, 'eps (the loss fixes its own)', GOOD[yolo].inputs, { eps: 1e-9 }, 'unknown_param', 'eps'],
      [tal, 'a padding row labelled C', gi(tal, 'gtLabels', I([1, 2, 3], [1, 3])), {}, 'invalid_value', 'gtLabels'],
      [yolo, 'gtLabels -1', gi(yolo, 'gtLabels', I([-1, 2, 0], [1, 3])), {}, 'invalid_value', 'gtLabels'],
      [tal, 'gtMask 2', gi(tal, 'gtMask', I([1, 2, 0], [1, 3])), {}, 'invalid_value', 'gtMask'],
      [yolo, 'a stride of 0', gi(yolo, 'strides', F([8, 8, 8, 8, 8, 8, 8, 8, 16, 0], [10])), {}, 'invalid_value', 'strides'],
      [yolo, 'a stride of NaN (check: false)', gi(yolo, 'strides', F([8, 8, 8, 8, 8, 8, 8, 8, NaN, 16], [10])), {}, 'invalid_value', 'strides'],
      [tal, 'a score of 1.5 with check: true', gi(tal, 'scores', F(GOOD[tal].inputs.scores!.d!.map((v, i) => (i === 4 ? 1.5 : v)), [1, 10, 3])), { check: true }, 'invalid_value', 'scores'],
    ];
    const outs = await inPage(table.map(([op, what, inputs, options]) => ({ what, op, inputs, options: { ...GOOD[op].options, ...options } })));
    expectRefused(outs, table.map((c) => [c[4], c[5]]));
    // accepted: topk above A when there are no gt rows, a score of 1.5 unchecked
    const ok = await inPage([
      { what: 'topk 11 with M = 0', op: tal, inputs: { ...GOOD[tal].inputs, gtLabels: I([], [1, 0]), gtBoxes: F([], [1, 0, 4]), gtMask: I([], [1, 0]) }, options: { topk: 11 } },
      { what: 'a score of 1.5 unchecked', op: tal, inputs: gi(tal, 'scores', F(GOOD[tal].inputs.scores!.d!.map((v, i) => (i === 4 ? 1.5 : v)), [1, 10, 3])), options: GOOD[tal].options },
    ]);
    for (const o of ok) expect(o.ok, `${o.what}: ${o.message}`).toBe(true);
    expect(ok[0].outputs!.labels, 'M = 0: every anchor gets label C').toEqual(new Array(10).fill(3));
    expectGoodAfter([...outs, ...ok]);
  });

  it('balanced_l1 with alpha 0.001, gamma 1: right (or refused by name), never a plain Error or NaN', async () => {
    const [o] = await inPage([{ what: 'alpha 0.001 gamma 1', op: 'balanced_l1', inputs: GOOD.balanced_l1.inputs, options: { alpha: 0.001, gamma: 1 } }]);
    if (!o.ok) expect([o.isDetlossError, o.code], o.message).toEqual([true, 'invalid_param']);
    else {
      const ref = cpu.run('balanced_l1', host(GOOD.balanced_l1.inputs) as CpuInputsOf<'balanced_l1'>, { alpha: 0.001, gamma: 1 });
      expect(maxRelErr(o.loss!, ref.loss), `loss ${o.loss}`).toBeLessThan(1e-4);
      expect(maxRelErr(o.grad!.pred, ref.grad.pred)).toBeLessThan(1e-4);
    }
    expectGoodAfter([o]);
  });

  it('empty tensors: loss 0 / empty, Float32Array(0) gradients from run, the same keys from runResident', async () => {
    const empty: [string, Record<string, Enc>][] = [
      ['l1', { pred: F([], [0]), target: F([], [0]) }],
      ['iou_loss', { pred: F([], [0, 4]), target: F([], [0, 4]) }],
      ['cross_entropy', { logits: F([], [0, 4]), labels: I([], [0]) }],
      ['kl_div', { student: F([], [0, 4]), teacher: F([], [0, 4]) }],
      ['pairwise_iou', { a: F([], [0, 4]), b: GOOD.pairwise_iou.inputs.b }],
    ];
    const cases: Case[] = empty.flatMap(([op, inputs]) =>
      (op === 'pairwise_iou' ? (['none'] as const) : (['none', 'mean', 'sum'] as const)).flatMap((reduction) =>
        (['run', 'runResident'] as const).map((method) => ({ what: `n = 0 ${reduction} ${method}`, op, inputs, options: { ...GOOD[op].options, reduction }, method })),
      ),
    );
    const outs = await inPage(cases);
    const bad: string[] = [];
    outs.forEach((o, k) => {
      const c = cases[k];
      const ref = cpu.run(c.op, host(c.inputs as Record<string, Enc>), c.options as Record<string, unknown>);
      if (!o.ok) return void bad.push(`${o.op} ${o.what}: ${o.message}`);
      if (JSON.stringify(o.loss) !== JSON.stringify(Array.from(ref.loss))) bad.push(`${o.op} ${o.what}: loss ${JSON.stringify(o.loss)}`);
      const keys = Object.keys(o.grad!).sort().join();
      if (keys !== Object.keys(ref.grad).sort().join()) bad.push(`${o.op} ${o.what}: grad keys [${keys}], expected [${Object.keys(ref.grad).sort().join()}]`);
      for (const [name, g] of Object.entries(o.grad!)) if (g.length !== 0) bad.push(`${o.op} ${o.what}: grad.${name} has ${g.length}`);
    });
    expect(bad).toEqual([]);
    expectGoodAfter(outs);
  });

  it("the assigner's empty calls (B = 0, M = 0, A = 0 with M = 0): cpu.run's loss and outputs, on run and runResident", async () => {
    const zero = (op: string, dims: string[]) =>
      Object.fromEntries(
        Object.entries(GOOD[op].inputs).map(([k, e]) => {
          const shape = (e!.s as number[]).map((d, i) => (dims.includes(OPS[op].inputs[k].shape[i] as string) ? 0 : d));
          return [k, shape.includes(0) ? { ...e!, d: [], s: shape } : e];
        }),
      );
    const cases: Case[] = (['tal_assign', 'yolo_detection_loss'] as const).flatMap((op) =>
      [['b'], ['m'], ['a', 'm']].flatMap((dims) => (['run', 'runResident'] as const).map((method) => ({ what: `${dims.join(' = ')} = 0 ${method}`, op, inputs: zero(op, dims), options: GOOD[op].options, method }))),
    );
    const outs = await inPage(cases);
    const bad: string[] = [];
    outs.forEach((o, k) => {
      const c = cases[k];
      const ref = cpu.run(c.op, host(c.inputs as Record<string, Enc>), c.options as Record<string, unknown>);
      if (!o.ok) return void bad.push(`${o.op} ${o.what}: ${o.message}`);
      if (maxRelErr(o.loss!, ref.loss) > 1e-5) bad.push(`${o.op} ${o.what}: loss ${JSON.stringify(o.loss)} vs ${Array.from(ref.loss)}`);
      const miss = outputsMismatch({ outputs: typedOutputs(c.op, o.outputs) }, ref);
      if (miss) bad.push(`${o.op} ${o.what}: ${miss}`);
      for (const [name, g] of Object.entries(ref.grad)) if (o.grad![name]?.length !== g.length) bad.push(`${o.op} ${o.what}: grad.${name} has ${o.grad![name]?.length}`);
    });
    expect(bad).toEqual([]);
    expectGoodAfter(outs);
  });

  it('SharedArrayBuffer-backed arrays and subarray views simply work: bitwise the plain result', async () => {
    expect(await gp.page.evaluate(() => crossOriginIsolated && typeof SharedArrayBuffer === 'function')).toBe(true);
    const kinds = (inputs: Record<string, Enc>, k: string) => Object.fromEntries(Object.entries(inputs).map(([n, e]) => [n, as(`${k}-${e!.t}`, e)]));
    const cases: Case[] = ['l1', 'cross_entropy', 'iou_loss', 'tal_assign', 'yolo_detection_loss'].flatMap((op) =>
      (['run', 'runResident'] as const).flatMap((method) => [
        { what: `plain ${method}`, op, inputs: GOOD[op].inputs, options: GOOD[op].options, method },
        { what: `SharedArrayBuffer ${method}`, op, inputs: kinds(GOOD[op].inputs, 'sab'), options: GOOD[op].options, method },
        { what: `subarray view ${method}`, op, inputs: kinds(GOOD[op].inputs, 'view'), options: GOOD[op].options, method },
      ]),
    );
    const outs = await inPage(cases);
    const bad: string[] = [];
    for (let k = 0; k < outs.length; k += 3) {
      for (const o of outs.slice(k + 1, k + 3)) {
        if (!o.ok) bad.push(`${o.op} ${o.what}: ${o.name} ${o.message}`);
        else if (JSON.stringify([o.loss, o.grad, o.outputs]) !== JSON.stringify([outs[k].loss, outs[k].grad, outs[k].outputs])) bad.push(`${o.op} ${o.what}: differs from the plain result`);
      }
    }
    expect(bad).toEqual([]);
    expectGoodAfter(outs);
  });

  it('createDetloss with wrong options: invalid_param naming the option; window.dl still right', async () => {
    const table: [Record<string, unknown>, string][] = [
      [{ maxThreads: NaN }, 'maxThreads'],
      [{ maxThreads: 0 }, 'maxThreads'],
      [{ maxThreads: -1 }, 'maxThreads'],
      [{ maxThreads: 1.5 }, 'maxThreads'],
      [{ maxThreads: 'x' }, 'maxThreads'],
      [{ rowThreshold: NaN }, 'rowThreshold'],
      [{ rowThreshold: -1 }, 'rowThreshold'],
      [{ limits: 5 }, 'limits'],
      [{ limits: { maxBufferSize: NaN } }, 'limits.maxBufferSize'],
    ];
    const outs: { ok: boolean; isDetlossError?: boolean; name?: string; code?: string; argument?: string; message?: string }[] = await gp.page.evaluate(async (wired: [Record<string, unknown>, string][], unwire: string) => {
      const table = (0, eval)(unwire)(wired) as [Record<string, unknown>, string][];
      const w = window as unknown as { dl: { device: GPUDevice }; detloss: { createDetloss(o: unknown): Promise<{ destroy(): void }>; DetlossError: Function } };
      const res = [];
      for (const [options] of table) {
        try {
          (await w.detloss.createDetloss({ device: w.dl.device, ...(options as object) })).destroy();
          res.push({ ok: true });
        } catch (e) {
          const err = e as { code?: string; argument?: string; message?: string };
          res.push({ ok: false, isDetlossError: e instanceof w.detloss.DetlossError, name: String(e).split(':')[0], code: err.code, argument: err.argument, message: String(err.message) });
        }
      }
      return res;
    }, wire(table), UNWIRE);
    const bad = outs
      .map((o, k) => ({ o, want: table[k][1], what: JSON.stringify(table[k][0]) }))
      .filter(({ o, want }) => o.ok || !o.isDetlossError || o.name !== 'DetlossError' || o.code !== 'invalid_param' || o.argument !== want || !o.message!.includes(want))
      .map(({ o, want, what }) => `${what}: ${JSON.stringify(o)}, expected invalid_param/${want}`);
    expect(bad).toEqual([]);
    expectGoodAfter(await inPage([{ what: 'after createDetloss misuse', op: 'l1', inputs: GOOD.l1.inputs, options: {} }]));
  });

  it('a custom op with broken WGSL is a DetlossError pipeline on every call; the built-in ops still right', async () => {
    const broken = `
struct Params { n: u32 }
@group(0) @binding(5) var<uniform> params: Params;
@group(0) @binding(6) var<storage, read> in_x: array<f32>;
@group(0) @binding(7) var<storage, read_write> out_grad_x: array<f32>;
fn element_loss(i: u32, g: f32, want_grad: bool) -> f32 {
  return vec2<f32>(in_x[i], 1.0);
}`;
    const outs = await gp.page.evaluate(
      async (shader) => {
        const w = window as unknown as { dl: { run: Function; runResident: Function }; detloss: { defineOp(d: unknown): unknown; DetlossError: Function } };
        const op = w.detloss.defineOp({
          name: 'test_broken',
          family: 'test',
          inputs: { x: { dtype: 'f32', shape: ['n'], grad: true } },
          params: {},
          rows: 'n',
          output: ['n'],
          cpu: (i: { x: Float64Array }) => ({ loss: i.x, backward: (up: Float64Array) => ({ x: up }) }),
          gpu: { shader, shaderId: 'test_broken', entry: 'main' },
        });
        const res = [];
        for (const method of ['run', 'runResident', 'run'] as const) {
          try {
            await w.dl[method](op, { x: Float32Array.of(1, 2, 3) });
            res.push({ ok: true });
          } catch (e) {
            res.push({ ok: false, isDetlossError: e instanceof w.detloss.DetlossError, name: String(e).split(':')[0], code: (e as { code?: string }).code, message: String((e as Error).message) });
          }
        }
        return res;
      },
      [commonWgsl, fusedHeaderWgsl, fusedWgsl, broken].join('\n'),
    );
    for (const o of outs) expect(o, JSON.stringify(o)).toMatchObject({ ok: false, isDetlossError: true, name: 'DetlossError', code: 'pipeline' });
    expectGoodAfter(
      await inPage([
        { what: 'after broken WGSL', op: 'l1', inputs: GOOD.l1.inputs, options: {} },
        { what: 'after broken WGSL', op: 'cross_entropy', inputs: GOOD.cross_entropy.inputs, options: GOOD.cross_entropy.options },
      ]),
    );
  });
});
