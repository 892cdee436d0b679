// The misuse suite through the framework adapters: the bad calls of test/helpers/misuse-cases.ts
// that tensors can express (every param refusal, unknown and missing inputs, int32 for float32 and
// the reverse, labels and targets out of range, NaN and infinities with check: true, options and
// inputs that are not objects) go through detloss/tfjs (its webgpu and cpu backends) and
// detloss/ort (gpu-buffer tensors), and each must be the DetlossError the core gives, with the
// same code and argument: at the call (ORT's calls wait for the checks of values on the GPU), or
// on TF.js's webgpu backend, whose calls are synchronous, from flush() (the call's values NaN
// meanwhile). After each one a good call must still equal the CPU reference. Malformed tuned plan
// records and bad tune() options go through detloss/tfjs's usePlans and tune and detloss/ort's
// detlossFor, each refused as the core refuses it, with the plans held unchanged.
import '../../bench/node-globals';
import '@tensorflow/tfjs-backend-webgpu';
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import '../helpers/tfjs-quiet';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpu } from '../../src/cpu';
import { DetlossError } from '../../src/errors';
import * as o from '../../src/frameworks/ort';
import * as dt from '../../src/frameworks/tfjs';
import { OPS } from '../../src/ops/registry';
import { reflectShader } from '../../src/runtime/compile/reflect';
import { maxRelErr } from '../helpers/counting';
import { GOOD, GPU_OPS, PLAN_OPTION_REFUSALS, TUNE_REFUSALS, boxes, dataCases, dtypeCases, f, goodPlanRecord, hasOutputs, i32, nameCases, nanCases, outputsMismatch, paramCases, planRecordRefusals, rotatedBoxes, shapeCases, type Good, type Refusal, type T } from '../helpers/misuse-cases';
import type { PlanRecord } from '../../src/runtime/public';
import type { DetlossContext } from '../../src/api';
import { WRAPPERS } from '../../src/catalogue';
import { nodeContext } from '../helpers/node-gpu';

interface OrtModule {
  Tensor: { fromGpuBuffer(buffer: GPUBuffer, options: { dataType: string; dims: number[] }): o.OrtTensor };
}
const ort = createRequire(import.meta.url)('onnxruntime-web') as OrtModule;

type Verdict = { kind: 'ok' } | { kind: 'refused'; code: string; argument?: string; late: boolean } | { kind: 'other'; error: unknown };

const isT = (v: unknown): v is T => {
  if (typeof v !== 'object' || v === null) return false;
  const t = v as T;
  return (t.data instanceof Float32Array || t.data instanceof Int32Array) && Array.isArray(t.shape) && t.shape.every((d) => Number.isSafeInteger(d) && d >= 0) && t.shape.reduce((a, b) => a * b, 1) === t.data.length;
};

/** The cases tensors can express: inputs an object whose values are absent or well-formed `{ data, shape }`. */
function expressible(c: Refusal): boolean {
  if (c.argument === 'gradOutput') return false; // TF.js takes its upstream from dy
  if (typeof c.inputs !== 'object' || c.inputs === null) return c.argument === 'inputs';
  return Object.values(c.inputs as Record<string, unknown>).every((v) => v === undefined || v === null || isT(v));
}

function adapterCases(op: string): Refusal[] {
  const keep = (c: Refusal) => expressible(c);
  return [...nameCases(op), ...dtypeCases(op).filter((c) => !c.cpuAccepts), ...paramCases(op), ...dataCases(op), ...nanCases(op)].filter(keep);
}

let device: GPUDevice;
beforeAll(async () => {
  expect(await tf.setBackend('webgpu')).toBe(true);
  device = (tf.backend() as unknown as { device: GPUDevice }).device;
  await o.detlossFor(device);
});

const made: GPUBuffer[] = [];
afterAll(() => made.forEach((b) => b.destroy()));

/** Every tensor of a TF.js result: the loss, or the named outputs (and loss) of an op that has them. */
const tensorsOf = (out: tf.Tensor | dt.TfOutputs): tf.Tensor[] => (out instanceof tf.Tensor ? [out] : Object.values(out));

/**
 * TF.js: inputs as tensors (weight through the options, gradOutput dropped: TF.js's dy is the
 * upstream). An op with named outputs (tal_assign, yolo_detection_loss) goes through runOutputs.
 */
/** Ops whose outputs' length depends on the data (NMS): their TF.js calls are async. */
const counted = (op: string) => Object.values(OPS[op].outputs ?? {}).some((spec) => spec.count);

function tfCall(op: string, c: { inputs: unknown; options: unknown }): tf.Tensor | dt.TfOutputs | Promise<dt.TfOutputs> {
  const run = hasOutputs(op) ? (counted(op) ? dt.runOutputsAsync : dt.runOutputs) : dt.runLoss;
  if (typeof c.inputs !== 'object' || c.inputs === null) return run(op, c.inputs as never, c.options as never);
  const ins: Record<string, tf.Tensor | undefined> = Object.create(null);
  let weight: tf.Tensor | undefined;
  for (const [k, v] of Object.entries(c.inputs as Record<string, unknown>)) {
    if (k === 'gradOutput') continue;
    const t = isT(v) ? tf.tensor(v.data, v.shape, v.data instanceof Int32Array ? 'int32' : 'float32') : (v as undefined);
    if (k === 'weight') weight = t;
    else ins[k] = t;
  }
  const options = typeof c.options === 'object' && c.options !== null && weight ? { ...(c.options as object), weight } : c.options;
  return run(op, ins, options as never);
}

async function tfVerdict(op: string, c: { inputs: unknown; options: unknown }, backend: 'webgpu' | 'cpu'): Promise<Verdict> {
  await tf.setBackend(backend);
  let out: tf.Tensor[];
  try {
    out = counted(op) ? tensorsOf(await (tfCall(op, c) as Promise<dt.TfOutputs>)) : tensorsOf(tf.tidy(() => tfCall(op, c) as tf.Tensor | dt.TfOutputs));
  } catch (e) {
    return e instanceof DetlossError ? { kind: 'refused', code: e.code, argument: e.argument, late: false } : { kind: 'other', error: e };
  }
  const values: number[] = [];
  for (const t of out) {
    // an int32 output of a call refused late holds NaN's bits (shaders/guard.wgsl)
    for (const v of await t.data()) values.push(t.dtype === 'int32' ? (v === 0x7fc00000 ? NaN : v) : v);
    t.dispose();
  }
  const late = await dt.flush().then(() => undefined, (e: unknown) => e);
  if (late === undefined) return { kind: 'ok' };
  if (!(late instanceof DetlossError)) return { kind: 'other', error: late };
  // A late refusal: the call's values were NaN meanwhile (no numbers were handed over).
  expect(values.every(Number.isNaN), `${op}: values of a call refused late: ${values}`).toBe(true);
  return { kind: 'refused', code: late.code, argument: late.argument, late: true };
}

function gpuTensor(v: T): o.OrtTensor {
  const buffer = device.createBuffer({ size: Math.max(16, Math.ceil(v.data.byteLength / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(buffer, 0, v.data.buffer as ArrayBuffer, v.data.byteOffset, v.data.byteLength);
  made.push(buffer);
  return ort.Tensor.fromGpuBuffer(buffer, { dataType: v.data instanceof Int32Array ? 'int32' : 'float32', dims: v.shape });
}

async function ortVerdict(op: string, c: { inputs: unknown; options: unknown }): Promise<Verdict> {
  let inputs: unknown = c.inputs;
  let options: unknown = c.options;
  if (typeof c.inputs === 'object' && c.inputs !== null) {
    const ins: Record<string, unknown> = Object.create(null);
    const extra: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(c.inputs as Record<string, unknown>)) {
      const t = isT(v) ? gpuTensor(v) : v;
      if (k === 'weight' || k === 'gradOutput') extra[k] = t;
      else ins[k] = t;
    }
    inputs = ins;
    if (typeof c.options === 'object' && c.options !== null) options = { ...(c.options as object), ...extra };
  }
  try {
    // ORT's calls are awaited: the checks of values on the GPU come with the call, not later.
    const r = await o.runLoss(op as never, inputs as never, options as never);
    await (r.loss as unknown as { getData(release?: boolean): Promise<Float32Array> }).getData(true);
    for (const g of [...Object.values(r.grad), ...Object.values(r.outputs ?? {})]) g.dispose();
    return { kind: 'ok' };
  } catch (e) {
    return e instanceof DetlossError ? { kind: 'refused', code: e.code, argument: e.argument, late: false } : { kind: 'other', error: e };
  }
}

/**
 * Whether the op's kernel binds more storage buffers than TF.js's device allows (TF.js requests the
 * default limits: 8 per stage; ORT shares that device here): then every call that passes
 * validation is refused, by name.
 */
function tooWide(op: string): boolean {
  const bindings = reflectShader(OPS[op].gpu!.shader).bindings.filter((b) => b.kind !== 'uniform').length;
  return bindings > device.limits.maxStorageBuffersPerShaderStage;
}

/** The good call through each surface equals the CPU reference. */
async function expectGood(op: string) {
  const g = GOOD[op]();
  const ref = cpu.run(op, g.inputs, g.options);
  for (const backend of ['webgpu', 'cpu'] as const) {
    await tf.setBackend(backend);
    if (backend === 'webgpu' && tooWide(op)) {
      const e = (() => {
        try {
          tensorsOf(tfCall(op, g) as tf.Tensor | dt.TfOutputs).forEach((x) => x.dispose());
        } catch (x) {
          return x;
        }
      })();
      expect({ code: (e as DetlossError).code, argument: (e as DetlossError).argument }).toEqual({ code: 'too_large', argument: 'device' });
      expect((e as DetlossError).message).toMatch(/maxStorageBuffersPerShaderStage/);
      continue;
    }
    const t = await tfCall(op, g);
    if (t instanceof tf.Tensor) {
      expect(maxRelErr(await t.data(), ref.loss), `${backend}: good call after`).toBeLessThan(1e-5);
      t.dispose();
      continue;
    }
    // the named outputs, ints exactly; yolo_detection_loss's loss beside them
    const { loss, ...named } = t;
    if (ref.loss.length) expect(maxRelErr(await loss!.data(), ref.loss), `${backend}: good call after: loss`).toBeLessThan(1e-5);
    else expect(loss, `${backend}: an op with no loss gives none`).toBeUndefined();
    const outputs = Object.fromEntries(await Promise.all(Object.entries(named).map(async ([k, x]) => [k, await x.data()] as const)));
    const outputShapes = Object.fromEntries(Object.entries(named).map(([k, x]) => [k, x.shape]));
    expect(outputsMismatch({ outputs, outputShapes }, ref), `${backend}: good call after: outputs`).toBeUndefined();
    tensorsOf(t).forEach((x) => x.dispose());
  }
  await tf.setBackend('webgpu');
  const ortInputs = Object.fromEntries(Object.entries(g.inputs).map(([k, v]) => [k, gpuTensor(v)]));
  if (tooWide(op)) {
    const e = await o.runLoss(op as never, ortInputs as never, g.options as never).then(() => undefined, (x: unknown) => x);
    expect({ code: (e as DetlossError).code, argument: (e as DetlossError).argument }).toEqual({ code: 'too_large', argument: 'device' });
    return;
  }
  const r = await o.runLoss(op as never, ortInputs as never, g.options as never);
  type Down = { getData(release?: boolean): Promise<Float32Array | Int32Array>; dims: readonly number[] };
  expect(maxRelErr(await (r.loss as unknown as Down).getData(true), ref.loss), 'ort: good call after').toBeLessThan(1e-5);
  for (const x of Object.values(r.grad)) x.dispose();
  if (r.outputs) {
    const outputs = Object.fromEntries(await Promise.all(Object.entries(r.outputs).map(async ([k, x]) => [k, await (x as unknown as Down).getData(true)] as const)));
    const outputShapes = Object.fromEntries(Object.entries(r.outputs).map(([k, x]) => [k, [...(x as unknown as Down).dims]]));
    expect(outputsMismatch({ outputs, outputShapes }, ref), 'ort: good call after: outputs').toBeUndefined();
  }
}

const describeVerdict = (v: Verdict) => (v.kind === 'other' ? `${(v.error as Error)?.constructor?.name}: ${String((v.error as Error)?.message ?? v.error)}` : JSON.stringify(v));

describe.each(GPU_OPS)('%s', (op) => {
  const cases = adapterCases(op);
  it('has cases of every kind', () => {
    expect(cases.length).toBeGreaterThan(20);
    expect(cases.some((c) => c.code === 'invalid_param')).toBe(true);
    expect(cases.some((c) => c.code === 'wrong_dtype')).toBe(true);
  });
  it('each bad call is the same DetlossError on TF.js (webgpu and cpu) and ORT as on the core, then good calls are right', async () => {
    for (const c of cases) {
      const want = { code: c.code, argument: c.argument };
      for (const [where, verdict] of [
        ['tfjs webgpu', () => tfVerdict(op, c, 'webgpu')],
        ['tfjs cpu', () => tfVerdict(op, c, 'cpu')],
        ['ort', () => ortVerdict(op, c)],
      ] as const) {
        const v = await verdict();
        expect(v.kind, `${where}: ${c.what}: ${describeVerdict(v)}`).toBe('refused');
        if (v.kind !== 'refused') continue;
        // An op TF.js's device cannot run is refused by name once its arguments are valid.
        if (where !== 'tfjs cpu' && tooWide(op) && v.code === 'too_large') expect(v.argument).toBe('device');
        else expect({ code: v.code, argument: v.argument }, `${where}: ${c.what}`).toEqual(want);
      }
    }
    await tf.setBackend('webgpu');
    await expectGood(op);
  });
});

it('every op of the catalogue with a GPU kernel is in this suite', () => {
  expect(GPU_OPS.length).toBe(Object.values(OPS).filter((d) => d.gpu).length);
});

// ---- Tuned plans: records, the plan option and tune()'s options on the adapters ----

describe("tuned plans: detloss/tfjs's usePlans and tune, detloss/ort's detlossFor, refuse what the core refuses, by the same field", () => {
  const NP = 1000;
  const pred = f([NP], 51).data as Float32Array;
  const target = f([NP], 52).data as Float32Array;
  let good: PlanRecord;
  /** A device with no ORT context: detlossFor's refusals there come from making one. */
  let spare: DetlossContext;
  beforeAll(async () => {
    await tf.setBackend('webgpu');
    good = goodPlanRecord(dt.detlossFor().adapter);
    dt.usePlans(good);
    spare = await nodeContext();
  });
  afterAll(() => spare?.destroy());

  /** TF.js's context still holds only the good record's plan, and a call of its family and size runs it with the reference's numbers. */
  async function expectTfPlansKept() {
    await tf.setBackend('webgpu');
    expect(dt.detlossFor().stats().plan.tuned, 'tfjs: the plans held').toEqual(good.plans);
    const p = tf.tensor(pred);
    const t = tf.tensor(target);
    const loss = dt.smoothL1(p, t, { beta: 0.5 });
    expect(dt.detlossFor().stats().lastCall?.tunedPlan).toBe('regression 1e3');
    expect(maxRelErr(await loss.data(), cpu.run('smooth_l1', { pred, target }, { beta: 0.5 }).loss)).toBeLessThan(1e-6);
    tf.dispose([p, t, loss]);
  }
  const refusedAs = (e: unknown) => (e instanceof DetlossError ? { code: e.code, argument: e.argument, named: e.message.includes(e.argument ?? '') } : { other: String(e) });
  const sync = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return e;
    }
    return undefined;
  };
  const later = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);

  it.each(planRecordRefusals(goodPlanRecord({ vendor: 'v', architecture: 'a', device: 'd', description: 'some GPU' })).map((c) => [c.what, c] as const))('plans: %s', async (_what, c) => {
    const want = { code: c.code, argument: c.argument, named: true };
    expect(refusedAs(sync(() => dt.usePlans(c.plans as never))), 'tfjs usePlans').toEqual(want);
    // detloss/ort: the TF.js device's context exists (made by the suite above); the spare device has none.
    for (const [where, on] of [['ort detlossFor (its context made)', device], ['ort detlossFor (a new context)', spare.device]] as const) {
      expect(refusedAs(await later(o.detlossFor(on, { plans: c.plans as never }))), where).toEqual(want);
    }
    await expectTfPlansKept();
  });

  it.each(PLAN_OPTION_REFUSALS.map((c) => [c.what, c] as const))('ort detlossFor plan: %s', async (_what, c) => {
    expect(refusedAs(await later(o.detlossFor(spare.device, { plan: c.plan as never }))), 'a new context').toEqual({ code: c.code, argument: c.argument, named: true });
    expect(refusedAs(await later(o.detlossFor(device, { plan: c.plan as never }))), 'its context made').toEqual({ code: c.code, argument: c.argument, named: true });
  });

  it.each(TUNE_REFUSALS.map((c) => [c.what, c] as const))('tune: %s (tfjs tune and the ORT context, the plans held stay)', async (_what, c) => {
    const want = { code: c.code, argument: c.argument, named: true };
    expect(refusedAs(await later(dt.tune(c.options as never))), 'tfjs tune').toEqual(want);
    const ortContext = (await o.detlossFor(device)).context;
    expect(refusedAs(await later(ortContext.tune(c.options as never))), 'ort dl.context.tune').toEqual(want);
    expect(ortContext.stats().plan.tuned, 'ort: the plans held (none)').toEqual([]);
    await expectTfPlansKept();
  });

  it('on the cpu backend, usePlans and tune are no_webgpu', async () => {
    await tf.setBackend('cpu');
    try {
      expect(refusedAs(sync(() => dt.usePlans(good)))).toEqual({ code: 'no_webgpu', argument: 'backend', named: true });
      expect(refusedAs(await later(dt.tune({ ops: ['l1'] })))).toEqual({ code: 'no_webgpu', argument: 'backend', named: true });
    } finally {
      await tf.setBackend('webgpu');
    }
  });
});

// ---- The NMS drop-ins: tf.image's and ONNX's argument lists ----

/** The drop-ins' positional params, after boxes and scores, by op. */
const DROP_IN_ARGS = {
  nms_tfjs: ['maxOutputSize', 'iouThreshold', 'scoreThreshold', 'softNmsSigma'],
  nms_onnx: ['maxOutputBoxesPerClass', 'iouThreshold', 'scoreThreshold'],
} as const;

/**
 * The bad calls of the op's misuse cases that a drop-in's arguments can express with the same
 * meaning: params among its arguments (centerPointBox too, ORT's option), boxes or scores missing,
 * of a rank too many, or (ORT) int32. Left out, by design of the argument lists: null, which both
 * read as "absent" (tf.image's default; ONNX's absent input), except tf.image's required
 * maxOutputSize; a limit of ±Infinity, which tf.image takes (no limit; none); int32 boxes or
 * scores, which tf.image takes too.
 */
function dropInCases(op: keyof typeof DROP_IN_ARGS): Refusal[] {
  const args: readonly string[] = DROP_IN_ARGS[op];
  const known = op === 'nms_onnx' ? [...args, 'centerPointBox'] : args;
  const params = paramCases(op).filter((c) => {
    const opts = c.options as Record<string, unknown>;
    if (Object.keys(c.inputs as object).sort().join() !== 'boxes,scores' || !Object.keys(opts).every((k) => known.includes(k))) return false;
    const v = opts[c.argument];
    if (v === null) return op === 'nms_tfjs' && c.argument === 'maxOutputSize';
    return !(op === 'nms_tfjs' && c.argument === 'maxOutputSize' && (v === Infinity || v === -Infinity));
  });
  const names = nameCases(op).filter((c) => (c.argument === 'boxes' || c.argument === 'scores') && c.code === 'missing_input');
  const shapes = shapeCases(op).filter((c) => c.what.endsWith('rank one too many'));
  const dtypes = op === 'nms_onnx' ? dtypeCases(op).filter((c) => c.what.endsWith('{ data: Int32Array, shape }')) : [];
  return [...params, ...names, ...shapes, ...dtypes];
}

/** A drop-in call of a case: boxes and scores as the surface's tensors, the params in their places. */
function dropInCall(op: keyof typeof DROP_IN_ARGS, c: { inputs: unknown; options: unknown }, tensor: (v: T) => unknown): Promise<unknown> {
  const ins = c.inputs as Record<string, unknown>;
  const opts = c.options as Record<string, unknown>;
  const [boxes, scores] = ['boxes', 'scores'].map((k) => (isT(ins[k]) ? tensor(ins[k] as T) : ins[k]));
  const values = DROP_IN_ARGS[op].map((k) => opts[k]);
  if (op === 'nms_tfjs') return (dt.nonMaxSuppressionWithScore as (...a: unknown[]) => Promise<unknown>)(boxes, scores, ...values);
  return (o.nonMaxSuppression as (...a: unknown[]) => Promise<unknown>)(boxes, scores, ...values, 'centerPointBox' in opts ? { centerPointBox: opts.centerPointBox } : {});
}

describe.each(Object.keys(DROP_IN_ARGS) as (keyof typeof DROP_IN_ARGS)[])('the drop-in of %s', (op) => {
  const surfaces = op === 'nms_tfjs' ? (['tfjs webgpu', 'tfjs cpu'] as const) : (['ort'] as const);
  it('has cases of every kind', () => {
    const cases = dropInCases(op);
    expect(cases.length).toBeGreaterThan(40);
    for (const code of ['invalid_param', 'missing_input', 'shape_mismatch']) expect(cases.some((c) => c.code === code), code).toBe(true);
  });
  it('each bad call is the DetlossError the core gives, with no tensors; then a good call equals the CPU reference', async () => {
    for (const where of surfaces) {
      if (where !== 'ort') await tf.setBackend(where === 'tfjs webgpu' ? 'webgpu' : 'cpu');
      const own: tf.Tensor[] = [];
      const tensor = where === 'ort' ? gpuTensor : (v: T) => own[own.push(tf.tensor(v.data, v.shape, v.data instanceof Int32Array ? 'int32' : 'float32')) - 1];
      const cases = dropInCases(op);
      for (const c of cases) {
        const before = where === 'ort' ? 0 : tf.memory().numTensors;
        const e = await dropInCall(op, c, tensor).then(
          (r) => ({ returned: r }),
          (x: unknown) => x,
        );
        expect(e instanceof DetlossError, `${where}: ${c.what}: ${e instanceof Error ? e.message : JSON.stringify(Object.keys(e as object))}`).toBe(true);
        expect({ code: (e as DetlossError).code, argument: (e as DetlossError).argument }, `${where}: ${c.what}`).toEqual({ code: c.code, argument: c.argument });
        // Nothing is left of a refused call: only the test's own tensors, disposed here.
        if (where !== 'ort') expect(tf.memory().numTensors - before, `${where}: ${c.what}: tensors left`).toBe(own.length);
        tf.dispose(own.splice(0));
      }
      const g = GOOD[op]();
      const ref = cpu.run(op as string, g.inputs, g.options);
      const want = { outputs: { ...ref.outputs }, outputShapes: { ...ref.outputShapes } };
      delete want.outputs.count;
      delete want.outputShapes.count;
      const r = (await dropInCall(op, g, tensor)) as Record<string, tf.Tensor> | { type: string; dims: readonly number[]; getData(release?: boolean): Promise<BigInt64Array> };
      if (where === 'ort') {
        const t = r as { type: string; dims: readonly number[]; getData(release?: boolean): Promise<BigInt64Array> };
        expect(t.type).toBe('int64');
        const got = { outputs: { selected: Int32Array.from(await t.getData(true), Number) }, outputShapes: { selected: [...t.dims] } };
        expect(outputsMismatch(got, want), `${where}: good call after`).toBeUndefined();
      } else {
        const ts = r as Record<string, tf.Tensor>;
        const outputs = Object.fromEntries(await Promise.all(Object.entries(ts).map(async ([k, x]) => [k, await x.data()] as const)));
        expect(outputsMismatch({ outputs, outputShapes: Object.fromEntries(Object.entries(ts).map(([k, x]) => [k, x.shape])) }, want), `${where}: good call after`).toBeUndefined();
        tf.dispose(Object.values(ts));
      }
      tf.dispose(own);
    }
    await tf.setBackend('webgpu');
  });
});

// ---- The rotated-box wrappers: the contract's own refusals, on every surface ----

/**
 * A bad call of a rotated wrapper: its inputs (pred and target, or a and b, positional; the rest
 * in the options), its options, and the refusal ops.md gives it.
 */
interface WrapperRefusal {
  what: string;
  wrapper: string;
  inputs: Record<string, T>;
  options: Record<string, unknown>;
  code: string;
  argument: string;
}

/** Each wrapper's op and the params it fixes, from the catalogue. */
const OPS_OF: Record<string, string> = Object.fromEntries(Object.entries(WRAPPERS).map(([k, w]) => [k, w.op]));
const WRAPPER_FIXED: Record<string, Record<string, unknown>> = Object.fromEntries(Object.entries(WRAPPERS).map(([k, w]) => [k, 'fixed' in w ? w.fixed : {}]));

/** The misuse tables' good call of rotated_iou_loss: KFIoU with its deltas (checked here, the refusals below rest on it). */
function KFIOU_GOOD(): Good {
  const k = GOOD.rotated_iou_loss();
  expect(k.options.variant).toBe('kfiou');
  expect(Object.keys(k.inputs).sort()).toEqual(['pred', 'predDelta', 'target', 'targetDelta']);
  return k;
}

function rotatedRefusals(): WrapperRefusal[] {
  const k = KFIOU_GOOD();
  // pred and target alone: a good call of every variant's wrapper.
  const g = { pred: k.inputs.pred, target: k.inputs.target };
  const kd = k.inputs;
  const { variant: _v, ...kOpts } = k.options;
  const p = GOOD.pairwise_probiou().inputs;
  const nan = (t: T, at: number): T => ({ data: Float32Array.from(t.data, (v, i) => (i === at ? NaN : v)), shape: t.shape });
  const cases: WrapperRefusal[] = [
    { what: 'pred [n,4] (axis-aligned boxes)', wrapper: 'probiou', inputs: { ...g, pred: boxes(3, 1) }, options: {}, code: 'shape_mismatch', argument: 'pred' },
    { what: 'target [n,4]', wrapper: 'gwd', inputs: { ...g, target: boxes(3, 2) }, options: {}, code: 'shape_mismatch', argument: 'target' },
    { what: 'target of another row count', wrapper: 'kld', inputs: { ...g, target: rotatedBoxes(4, 2) }, options: {}, code: 'shape_mismatch', argument: 'target' },
    { what: 'pred rank 3', wrapper: 'rotatedIouLoss', inputs: { ...g, pred: { data: g.pred.data, shape: [3, 5, 1] } }, options: {}, code: 'shape_mismatch', argument: 'pred' },
    { what: 'predDelta and targetDelta with variant kld', wrapper: 'kld', inputs: kd, options: {}, code: 'invalid_value', argument: 'predDelta' },
    { what: 'targetDelta alone with variant probiou', wrapper: 'probiou', inputs: { ...g, targetDelta: kd.targetDelta }, options: {}, code: 'invalid_value', argument: 'targetDelta' },
    { what: 'predDelta without targetDelta (kfiou)', wrapper: 'kfiou', inputs: { ...g, predDelta: kd.predDelta }, options: kOpts, code: 'invalid_value', argument: 'targetDelta' },
    { what: 'targetDelta without predDelta (kfiou)', wrapper: 'kfiou', inputs: { ...g, targetDelta: kd.targetDelta }, options: kOpts, code: 'invalid_value', argument: 'predDelta' },
    { what: 'predDelta [n,3]', wrapper: 'kfiou', inputs: { ...kd, predDelta: f([3, 3], 5) }, options: kOpts, code: 'shape_mismatch', argument: 'predDelta' },
    { what: 'targetDelta of another row count', wrapper: 'kfiou', inputs: { ...kd, targetDelta: f([4, 2], 5) }, options: kOpts, code: 'shape_mismatch', argument: 'targetDelta' },
    { what: 'predDelta int32', wrapper: 'kfiou', inputs: { ...kd, predDelta: i32([3, 2], [0, 1, 0, 1, 0, 1]) }, options: kOpts, code: 'wrong_dtype', argument: 'predDelta' },
    { what: 'an unknown variant', wrapper: 'rotatedIouLoss', inputs: g, options: { variant: 'riou' }, code: 'invalid_param', argument: 'variant' },
    { what: "probiou's fixed variant given as kld", wrapper: 'probiou', inputs: g, options: { variant: 'kld' }, code: 'invalid_param', argument: 'variant' },
    { what: "fun 'ln' with kld (KFIoU's)", wrapper: 'kld', inputs: g, options: { fun: 'ln' }, code: 'invalid_param', argument: 'fun' },
    { what: "fun 'log1p' with kfiou (the Gaussians')", wrapper: 'kfiou', inputs: g, options: { fun: 'log1p' }, code: 'invalid_param', argument: 'fun' },
    { what: 'fun not a string', wrapper: 'gwd', inputs: g, options: { fun: 1 }, code: 'invalid_param', argument: 'fun' },
    { what: 'tau with probiou', wrapper: 'probiou', inputs: g, options: { tau: 1 }, code: 'invalid_param', argument: 'tau' },
    { what: 'ciou with kld', wrapper: 'kld', inputs: g, options: { ciou: true }, code: 'invalid_param', argument: 'ciou' },
    { what: 'beta with gwd', wrapper: 'gwd', inputs: g, options: { beta: 0.2 }, code: 'invalid_param', argument: 'beta' },
    { what: 'normalize with jd', wrapper: 'jd', inputs: g, options: { normalize: false }, code: 'invalid_param', argument: 'normalize' },
    { what: 'sqrt with gwd', wrapper: 'gwd', inputs: g, options: { sqrt: false }, code: 'invalid_param', argument: 'sqrt' },
    { what: 'eps below float32 normals (kfiou)', wrapper: 'kfiou', inputs: kd, options: { ...kOpts, eps: 1e-40 }, code: 'invalid_param', argument: 'eps' },
    { what: 'alpha 0 (kldSymmax)', wrapper: 'kldSymmax', inputs: g, options: { alpha: 0 }, code: 'invalid_param', argument: 'alpha' },
    { what: 'an unknown param', wrapper: 'kldSymmin', inputs: g, options: { temperature: 2 }, code: 'unknown_param', argument: 'temperature' },
    { what: 'predDelta NaN with check: true', wrapper: 'kfiou', inputs: { ...kd, predDelta: nan(kd.predDelta, 5) }, options: { ...kOpts, check: true }, code: 'invalid_value', argument: 'predDelta' },
    { what: 'pred NaN with check: true', wrapper: 'kld', inputs: { ...g, pred: nan(g.pred, 14) }, options: { check: true }, code: 'invalid_value', argument: 'pred' },
    { what: 'a [n,4]', wrapper: 'pairwiseProbiou', inputs: { ...p, a: boxes(3, 1) }, options: {}, code: 'shape_mismatch', argument: 'a' },
    { what: 'b [m,4]', wrapper: 'pairwiseProbiou', inputs: { ...p, b: boxes(2, 2) }, options: {}, code: 'shape_mismatch', argument: 'b' },
    { what: "reduction 'mean' (a matrix takes none)", wrapper: 'pairwiseProbiou', inputs: p, options: { reduction: 'mean' }, code: 'invalid_param', argument: 'reduction' },
    { what: 'eps 0', wrapper: 'pairwiseProbiou', inputs: p, options: { eps: 0 }, code: 'invalid_param', argument: 'eps' },
    { what: 'a variant (pairwiseProbiou has none)', wrapper: 'pairwiseProbiou', inputs: p, options: { variant: 'kld' }, code: 'unknown_param', argument: 'variant' },
  ];
  return cases;
}

describe('the rotated wrappers: ops.md\'s refusals on every surface', () => {
  let core: DetlossContext;
  let coreOrt: o.OrtDetloss;
  const own: GPUBuffer[] = [];
  beforeAll(async () => {
    // A device with the adapter's own limits (rotated_iou_loss binds 10 storage buffers with KFIoU's deltas), for the core and ORT.
    core = await nodeContext();
    coreOrt = new o.OrtDetloss(core);
  });
  afterAll(async () => {
    own.forEach((b) => b.destroy());
    core?.destroy();
    // The free functions' context is the last one made: the TF.js device's again, as the suite above had it.
    await o.detlossFor(device);
  });
  const onCore = (v: T): o.OrtTensor => {
    const buffer = core.device.createBuffer({ size: Math.max(16, Math.ceil(v.data.byteLength / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    core.device.queue.writeBuffer(buffer, 0, v.data.buffer as ArrayBuffer, v.data.byteOffset, v.data.byteLength);
    own.push(buffer);
    return ort.Tensor.fromGpuBuffer(buffer, { dataType: v.data instanceof Int32Array ? 'int32' : 'float32', dims: v.shape });
  };
  const argsOf = <V>(c: { wrapper: string; inputs: Record<string, T>; options: Record<string, unknown> }, conv: (t: T) => V): unknown[] => {
    const pos = c.wrapper === 'pairwiseProbiou' ? ['a', 'b'] : ['pred', 'target'];
    const rest = Object.fromEntries(Object.entries(c.inputs).filter(([k]) => !pos.includes(k)).map(([k, v]) => [k, conv(v)]));
    return [...pos.map((k) => conv(c.inputs[k])), { ...c.options, ...rest }];
  };
  type Fn = (...a: unknown[]) => unknown;
  const tfTensor = (v: T) => tf.tensor(v.data, v.shape, v.data instanceof Int32Array ? 'int32' : 'float32');
  /** The refusal of a call, or what it returned (which a refused call must never do). */
  async function outcome(call: () => unknown): Promise<{ code: string; argument?: string } | { returned: unknown } | { other: unknown }> {
    try {
      return { returned: await call() };
    } catch (e) {
      return e instanceof DetlossError ? { code: e.code, argument: e.argument } : { other: e };
    }
  }

  it('the table covers both ops, every rotated wrapper, and every kind of refusal', () => {
    const cases = rotatedRefusals();
    const names = Object.keys(dt).filter((k) => ['rotated_iou_loss', 'pairwise_probiou'].includes(OPS_OF[k]));
    expect(new Set(cases.map((c) => c.wrapper))).toEqual(new Set(names));
    for (const code of ['shape_mismatch', 'wrong_dtype', 'invalid_param', 'invalid_value', 'unknown_param']) expect(cases.some((c) => c.code === code), code).toBe(true);
  });

  it.each(rotatedRefusals().map((c) => [`${c.wrapper}: ${c.what}`, c] as const))('%s', async (_n, c) => {
    const want = { code: c.code, argument: c.argument };
    // The CPU reference, the contract's own judge, agrees with the table.
    const op = OPS_OF[c.wrapper];
    const fixed = WRAPPER_FIXED[c.wrapper];
    // (A fixed param given again at another value is the wrappers' own refusal: the op takes any.)
    const refixed = Object.keys(fixed).some((key) => key in c.options && c.options[key] !== fixed[key]);
    if (!refixed) expect(await outcome(() => cpu.run(op as never, c.inputs as never, { ...c.options, ...fixed } as never)), 'cpu.run').toEqual(want);

    // The core context's wrapper.
    expect(await outcome(() => (core as unknown as Record<string, Fn>)[c.wrapper](...argsOf(c, (t) => t))), 'core').toEqual(want);

    // detloss/tfjs, on the webgpu backend (TF.js's own device) and the cpu backend: refused at the
    // call or, for a value checked on the GPU, by flush() with the call's values NaN; no tensor left.
    for (const backend of ['webgpu', 'cpu'] as const) {
      await tf.setBackend(backend);
      const ins: tf.Tensor[] = [];
      const conv = (v: T) => ins[ins.push(tfTensor(v)) - 1];
      const args = argsOf(c, conv);
      const before = tf.memory().numTensors;
      let v = await outcome(() => tf.tidy(() => (dt as unknown as Record<string, Fn>)[c.wrapper](...args) as tf.Tensor));
      if ('returned' in v) {
        const t = v.returned as tf.Tensor;
        const values = Array.from(await t.data());
        t.dispose();
        const late = await dt.flush().then(() => undefined, (e: unknown) => e);
        expect(late, `tfjs ${backend}: refused late, or not at all (values ${values})`).toBeInstanceOf(DetlossError);
        expect(values.every(Number.isNaN), `tfjs ${backend}: the values of a call refused late`).toBe(true);
        v = { code: (late as DetlossError).code, argument: (late as DetlossError).argument };
      }
      expect(tf.memory().numTensors - before, `tfjs ${backend}: tensors left`).toBe(0);
      // TF.js's own device cannot run rotated_iou_loss with KFIoU's deltas (10 storage buffers, 8
      // allowed; 7 without them): a value that only the GPU checks is refused for the device first, by name.
      const wide = backend === 'webgpu' && op === 'rotated_iou_loss' && c.options.check === true && 'predDelta' in c.inputs && 'targetDelta' in c.inputs;
      expect(v, `tfjs ${backend}`).toEqual(wide ? { code: 'too_large', argument: 'device' } : want);
      tf.dispose(ins);
      // And runLoss, as the generic suite calls it.
      if (refixed) continue;
      const r = await tfVerdict(op, { inputs: { ...c.inputs }, options: { ...c.options, ...fixed } }, backend);
      expect(r.kind === 'refused' ? { code: r.code, argument: r.argument } : r, `tfjs ${backend} runLoss`).toEqual(wide ? { code: 'too_large', argument: 'device' } : want);
    }
    await tf.setBackend('webgpu');

    // detloss/ort on gpu-buffer tensors: the class's wrapper, the free function, runLoss. A refused call
    // hands back no tensor, and nothing of it stays in the pool.
    const before = core.stats().bytesInUse;
    expect(await outcome(() => (coreOrt as unknown as Record<string, Fn>)[c.wrapper](...argsOf(c, onCore))), 'ort class').toEqual(want);
    const free = argsOf(c, onCore);
    free[free.length - 1] = { ...(free[free.length - 1] as object), device: core.device };
    expect(await outcome(() => (o as unknown as Record<string, Fn>)[c.wrapper](...free)), 'ort free').toEqual(want);
    if (!refixed) {
      const runInputs = Object.fromEntries(Object.entries(c.inputs).map(([k, v]) => [k, onCore(v)]));
      expect(await outcome(() => coreOrt.runLoss(op as never, runInputs as never, { ...c.options, ...fixed } as never)), 'ort runLoss').toEqual(want);
    }
    expect(core.stats().bytesInUse, 'ort: bytes in use after the refusals').toBe(before);
  });

  it('after the refusals, good calls give numbers on every surface: kfiou with deltas (both gradients) and pairwiseProbiou', async () => {
    const k = KFIOU_GOOD();
    const { variant: _v, ...kOpts } = k.options;
    const ref = cpu.run('rotated_iou_loss', k.inputs as never, k.options);
    const c = { wrapper: 'kfiou', inputs: k.inputs, options: kOpts };
    const r = (await core.kfiou(...(argsOf(c, (t) => t) as [never, never, never]))) as { loss: Float32Array; grad: Record<string, Float32Array> };
    expect(maxRelErr(r.loss, ref.loss)).toBeLessThan(1e-5);
    expect(maxRelErr(r.grad.predDelta, ref.grad.predDelta)).toBeLessThan(1e-5);
    const ro = (await (coreOrt.kfiou as unknown as Fn)(...argsOf(c, onCore))) as { loss: { getData(r: boolean): Promise<Float32Array> }; grad: Record<string, { getData(r: boolean): Promise<Float32Array> }> };
    expect(Object.keys(ro.grad).sort()).toEqual(['pred', 'predDelta']);
    expect(maxRelErr(await ro.grad.predDelta.getData(true), ref.grad.predDelta)).toBeLessThan(1e-5);
    expect(maxRelErr(await ro.grad.pred.getData(true), ref.grad.pred)).toBeLessThan(1e-5);
    expect(maxRelErr(await ro.loss.getData(true), ref.loss)).toBeLessThan(1e-5);
    await tf.setBackend('cpu');
    const ts = Object.fromEntries(Object.entries(k.inputs).map(([name, v]) => [name, tfTensor(v)]));
    const [gp, gd] = tf.grads((pred: tf.Tensor, pd: tf.Tensor) => dt.kfiou(pred, ts.target, { ...kOpts, predDelta: pd, targetDelta: ts.targetDelta }))([ts.pred, ts.predDelta]);
    expect(maxRelErr(await gp.data(), ref.grad.pred)).toBeLessThan(1e-5);
    expect(maxRelErr(await gd.data(), ref.grad.predDelta)).toBeLessThan(1e-5);
    tf.dispose([gp, gd, ...Object.values(ts)]);
    // pairwiseProbiou: the matrix, on the core, ORT and TF.js's own webgpu device (its kernel fits there).
    const g = GOOD.pairwise_probiou();
    const want = cpu.run('pairwise_probiou', g.inputs as never).loss;
    const pc = { wrapper: 'pairwiseProbiou', inputs: g.inputs, options: {} };
    expect(maxRelErr((await core.pairwiseProbiou(g.inputs.a as never, g.inputs.b as never)).values, want)).toBeLessThan(1e-5);
    const m = (await (coreOrt.pairwiseProbiou as unknown as Fn)(...argsOf(pc, onCore))) as { dims: readonly number[]; getData(r: boolean): Promise<Float32Array> };
    expect([...m.dims]).toEqual([3, 2]);
    expect(maxRelErr(await m.getData(true), want)).toBeLessThan(1e-5);
    await tf.setBackend('webgpu');
    const mt = dt.pairwiseProbiou(tfTensor(g.inputs.a), tfTensor(g.inputs.b));
    expect(mt.shape).toEqual([3, 2]);
    expect(maxRelErr(await mt.data(), want)).toBeLessThan(1e-5);
    mt.dispose();
    await dt.flush();
  });
});
