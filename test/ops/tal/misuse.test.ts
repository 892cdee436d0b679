// Every refusal of ops.md's "Refusals (both ops)" table (tal_assign, yolo_detection_loss), on every
// surface a caller meets: cpu.run; the core's run on host arrays; the core's run and runResident on
// GPU buffers (`{ buffer, shape, dtype }`: the value rules of gtLabels, gtMask, strides and the
// checked values are found by the GPU's check pass there, runResident's thrown by flush()); the
// TF.js adapter on its cpu backend and on its webgpu backend (whose synchronous calls throw a
// refusal found on the GPU from flush()); and the ORT adapter on gpu-buffer tensors. Each case
// names the error code AND the argument, and the message must name the argument too. The values
// the op accepts at the edges of those rules (topk = A, topk above A with no gt rows, alpha 0,
// scores outside [0, 1] unchecked, negative gains) are accepted everywhere and equal cpu.run's.
import '../../../bench/node-globals';
import '@tensorflow/tfjs-backend-webgpu';
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import '../../helpers/tfjs-quiet';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DetlossContext } from '../../../src/api';
import { cpu } from '../../../src/cpu';
import { DetlossError } from '../../../src/errors';
import * as o from '../../../src/frameworks/ort';
import * as dt from '../../../src/frameworks/tfjs';
import { GOOD, TAL, outputsMismatch, type T } from '../../helpers/misuse-cases';
import { maxRelErr } from '../../helpers/counting';
import { nodeContext } from '../../helpers/node-gpu';

type Op = 'tal_assign' | 'yolo_detection_loss';
type Inputs = Record<string, T>;
const SURFACES = ['cpu.run', 'run (host)', 'run (GPU buffers)', 'runResident (GPU buffers)', 'tfjs cpu', 'tfjs webgpu', 'ort'] as const;
type Surface = (typeof SURFACES)[number];
/** The surfaces whose values only the GPU sees (the adapters' tensors live on the device). */
const ON_GPU: readonly Surface[] = ['run (GPU buffers)', 'runResident (GPU buffers)', 'tfjs webgpu', 'ort'];
type Verdict = { ok: true; loss: number[]; outputs: Record<string, ArrayLike<number>> } | { ok: false; code?: string; argument?: string; message: string; detloss: boolean };

interface Case {
  what: string;
  op: Op;
  inputs: Inputs;
  options: Record<string, unknown>;
  code: string;
  argument: string;
  /** A pattern the message must match besides the argument (the index of a value). */
  message?: RegExp;
  /** Surfaces where the call means something else (ORT folds a tensor's extra leading dims). */
  skip?: Surface[];
}

const ort = createRequire(import.meta.url)('onnxruntime-web') as { Tensor: { fromGpuBuffer(b: GPUBuffer, o: { dataType: string; dims: number[] }): o.OrtTensor } };

let dl: DetlossContext;
/** TF.js's webgpu device: detloss/ort and TF.js's webgpu backend run there. */
let device: GPUDevice;
const made: GPUBuffer[] = [];
beforeAll(async () => {
  dl = await nodeContext();
  expect(await tf.setBackend('webgpu')).toBe(true);
  device = (tf.backend() as unknown as { device: GPUDevice }).device;
  await o.detlossFor(device);
});
afterAll(() => {
  made.forEach((b) => b.destroy());
  dl?.destroy();
});

const buffer = (d: GPUDevice, t: T) => {
  const b = d.createBuffer({ size: Math.max(16, Math.ceil(t.data.byteLength / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  d.queue.writeBuffer(b, 0, t.data.buffer as ArrayBuffer, t.data.byteOffset, t.data.byteLength);
  made.push(b);
  return b;
};
const dtypeOf = (t: T) => (t.data instanceof Int32Array ? 'i32' : 'f32');
const refused = (e: unknown): Verdict => (e instanceof DetlossError ? { ok: false, code: e.code, argument: e.argument, message: e.message, detloss: true } : { ok: false, message: String((e as Error)?.message ?? e), detloss: false });

/** The inputs as the core's GPU tensors on `dl`'s device. */
const onGpu = (inputs: Inputs) => Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, { buffer: buffer(dl.device, t), shape: t.shape, dtype: dtypeOf(t) }]));

async function verdict(surface: Surface, c: { op: Op; inputs: Inputs; options: Record<string, unknown> }): Promise<Verdict> {
  try {
    switch (surface) {
      case 'cpu.run': {
        const r = cpu.run(c.op, c.inputs as never, c.options);
        return { ok: true, loss: Array.from(r.loss), outputs: r.outputs ?? {} };
      }
      case 'run (host)':
      case 'run (GPU buffers)': {
        const r = await dl.run(c.op, (surface === 'run (host)' ? c.inputs : onGpu(c.inputs)) as never, c.options);
        return { ok: true, loss: Array.from(r.loss), outputs: r.outputs ?? {} };
      }
      case 'runResident (GPU buffers)': {
        const r = await dl.runResident(c.op, onGpu(c.inputs) as never, c.options);
        r.release();
        // a value the GPU's check pass refused comes from flush() (or the next call)
        await dl.flush();
        return { ok: true, loss: [], outputs: {} };
      }
      case 'tfjs cpu':
      case 'tfjs webgpu': {
        await tf.setBackend(surface === 'tfjs cpu' ? 'cpu' : 'webgpu');
        const { weight, ...rest } = c.inputs;
        const ins = Object.fromEntries(Object.entries(rest).map(([k, t]) => [k, tf.tensor(t.data, t.shape, t.data instanceof Int32Array ? 'int32' : 'float32')]));
        const options = weight ? { ...c.options, weight: tf.tensor(weight.data, weight.shape) } : c.options;
        try {
          const out = dt.runOutputs(c.op, ins, options as never);
          const { loss, ...named } = out;
          const outputs = Object.fromEntries(await Promise.all(Object.entries(named).map(async ([k, t]) => [k, await t.data()] as const)));
          const l = loss ? Array.from(await loss.data()) : [];
          Object.values(out).forEach((t) => t.dispose());
          // a value TF.js's webgpu backend found bad on the GPU is thrown here, the call's numbers NaN meanwhile
          await dt.flush();
          return { ok: true, loss: l, outputs };
        } finally {
          Object.values(ins).forEach((t) => t.dispose());
          (options as { weight?: tf.Tensor }).weight?.dispose();
          await tf.setBackend('webgpu');
        }
      }
      case 'ort': {
        const { weight, ...rest } = c.inputs;
        const t = (x: T) => ort.Tensor.fromGpuBuffer(buffer(device, x), { dataType: x.data instanceof Int32Array ? 'int32' : 'float32', dims: x.shape });
        const options = weight ? { ...c.options, weight: t(weight), device } : { ...c.options, device };
        const r = await o.runLoss(c.op, Object.fromEntries(Object.entries(rest).map(([k, x]) => [k, t(x)])) as never, options as never);
        type Down = { getData(release?: boolean): Promise<Float32Array | Int32Array> };
        const loss = Array.from(await (r.loss as unknown as Down).getData(true));
        for (const g of Object.values(r.grad)) g.dispose();
        const outputs = Object.fromEntries(await Promise.all(Object.entries(r.outputs ?? {}).map(async ([k, x]) => [k, await (x as unknown as Down).getData(true)] as const)));
        return { ok: true, loss, outputs };
      }
    }
  } catch (e) {
    return refused(e);
  }
}

/** Runs each case on every surface: each must refuse it with the case's code and argument. */
async function expectRefusedEverywhere(cases: Case[]) {
  const bad: string[] = [];
  for (const c of cases) {
    for (const s of SURFACES) {
      if (c.skip?.includes(s)) continue;
      const v = await verdict(s, c);
      const where = `${c.op}: ${c.what}: ${s}`;
      if (v.ok) bad.push(`${where}: accepted; want ${c.code}/${c.argument}`);
      else if (!v.detloss) bad.push(`${where}: not a DetlossError: ${v.message}`);
      else if (v.code !== c.code || v.argument !== c.argument || !v.message.includes(c.argument) || (c.message && !c.message.test(v.message))) {
        bad.push(`${where}: ${v.code}/${v.argument}: ${v.message}; want ${c.code}/${c.argument}${c.message ? ` matching ${c.message}` : ''}`);
      } else if (c.code === 'invalid_value' && ON_GPU.includes(s) && !/on the GPU/.test(v.message)) {
        // the host never saw these values: the GPU's check pass found them
        bad.push(`${where}: ${v.message}: not found on the GPU`);
      }
    }
  }
  expect(bad).toEqual([]);
  // nothing left poisoned: the good calls still give cpu.run's results on every surface
  await expectAcceptedEverywhere((['tal_assign', 'yolo_detection_loss'] as const).map((op) => ({ what: 'the good call after', op, ...GOOD[op]() })));
}

/** Runs each call on every surface: each must accept it and give cpu.run's loss and outputs (ints exactly). */
async function expectAcceptedEverywhere(calls: { what: string; op: Op; inputs: Inputs; options: Record<string, unknown> }[]) {
  const bad: string[] = [];
  for (const c of calls) {
    const ref = cpu.run(c.op, c.inputs as never, c.options);
    for (const s of SURFACES) {
      const v = await verdict(s, c);
      const where = `${c.op}: ${c.what}: ${s}`;
      if (!v.ok) {
        bad.push(`${where}: refused: ${v.code}/${v.argument}: ${v.message}`);
        continue;
      }
      if (s === 'runResident (GPU buffers)') continue; // (its numbers are run's; here it is the refusal that counts)
      if (maxRelErr(v.loss, ref.loss) > 1e-5) bad.push(`${where}: loss ${v.loss} vs ${Array.from(ref.loss)}`);
      const typed = Object.fromEntries(Object.entries(v.outputs).map(([k, x]) => [k, ref.outputs![k] instanceof Int32Array ? Int32Array.from(x) : x]));
      const miss = outputsMismatch({ outputs: typed }, ref);
      if (miss) bad.push(`${where}: ${miss}`);
    }
  }
  expect(bad).toEqual([]);
}

// ---- the cases ----------------------------------------------------------------------------

const good = (op: Op) => GOOD[op]();
/** The good call with `name` replaced by a tensor of `shape` (float data cycled from the good one, labels and masks 0, strides 8). */
function reshaped(op: Op, name: string, shape: number[]): Inputs {
  const g = good(op).inputs;
  const t = g[name];
  const n = shape.reduce((a, b) => a * b, 1);
  const data = t.data instanceof Int32Array ? new Int32Array(n) : name === 'strides' ? new Float32Array(n).fill(8) : Float32Array.from({ length: n }, (_, i) => t.data[i % t.data.length]);
  return { ...g, [name]: { data, shape } };
}
/** The good call with element `at` of `name` set to `v`. */
function withValue(op: Op, name: string, at: number, v: number): Inputs {
  const g = good(op).inputs;
  const t = g[name];
  const data = t.data.slice();
  data[at] = v;
  return { ...g, [name]: { data, shape: t.shape } };
}
const shape = (op: Op, what: string, name: string, s: number[], argument = name): Case => ({ what, op, inputs: reshaped(op, name, s), options: good(op).options, code: 'shape_mismatch', argument });
const value = (op: Op, what: string, name: string, at: number, v: number, options: Record<string, unknown> = {}): Case => ({
  what,
  op,
  inputs: withValue(op, name, at, v),
  options: { ...good(op).options, ...options },
  code: 'invalid_value',
  argument: name,
  message: new RegExp(`${name}\\[${at}\\]`),
});
const param = (op: Op, p: string, v: unknown, code = 'invalid_param'): Case => ({ what: `${p} = ${String(v)}`, op, inputs: good(op).inputs, options: { ...good(op).options, [p]: v }, code, argument: p });

const A = TAL.a;
const M = TAL.m;
const C = TAL.c;

describe('shapes: every input of the wrong shape is shape_mismatch naming it (B, A, C from scores / predScores, M from gtBoxes)', () => {
  it('tal_assign', async () => {
    const op = 'tal_assign';
    await expectRefusedEverywhere([
      shape(op, 'scores of rank 2', 'scores', [A, C]),
      shape(op, 'scores with C = 0 (C < 1)', 'scores', [1, A, 0]),
      shape(op, 'predBoxes of B = 2', 'predBoxes', [2, A, 4]),
      shape(op, 'predBoxes of A - 1 anchors', 'predBoxes', [1, A - 1, 4]),
      shape(op, 'predBoxes of 5 coordinates', 'predBoxes', [1, A, 5]),
      shape(op, 'anchors of A + 1 rows', 'anchors', [A + 1, 2]),
      shape(op, 'anchors of 3 columns', 'anchors', [A, 3]),
      shape(op, 'anchors of rank 1', 'anchors', [2 * A]),
      shape(op, 'gtBoxes of B = 2', 'gtBoxes', [2, M, 4]),
      shape(op, 'gtBoxes of 5 coordinates', 'gtBoxes', [1, M, 5]),
      shape(op, 'gtLabels of M + 1 rows (M from gtBoxes)', 'gtLabels', [1, M + 1]),
      shape(op, 'gtLabels of M - 1 rows', 'gtLabels', [1, M - 1]),
      shape(op, 'gtLabels of B = 2', 'gtLabels', [2, M]),
      shape(op, 'gtMask of M + 1 rows', 'gtMask', [1, M + 1]),
      shape(op, 'gtMask of rank 1', 'gtMask', [M]),
    ]);
  });
  it('yolo_detection_loss, predDist of 4R with R >= 2 included', async () => {
    const op = 'yolo_detection_loss';
    await expectRefusedEverywhere([
      shape(op, 'predScores with C = 0 (C < 1)', 'predScores', [1, A, 0]),
      shape(op, 'predScores of rank 2', 'predScores', [A, C]),
      shape(op, 'predDist of 15 channels (not 4R)', 'predDist', [1, A, 15]),
      shape(op, 'predDist of 4 channels (R = 1)', 'predDist', [1, A, 4]),
      shape(op, 'predDist of 6 channels', 'predDist', [1, A, 6]),
      shape(op, 'predDist of 0 channels', 'predDist', [1, A, 0]),
      shape(op, 'predDist of A - 1 anchors', 'predDist', [1, A - 1, 16]),
      shape(op, 'predDist of B = 2', 'predDist', [2, A, 16]),
      shape(op, 'anchors of A - 1 rows', 'anchors', [A - 1, 2]),
      shape(op, 'strides of A + 1', 'strides', [A + 1]),
      // (ORT folds a tensor's leading dims into the first of the op's: [A, 1] is strides [A] there)
      { ...shape(op, 'strides of rank 2', 'strides', [A, 1]), skip: ['ort'] },
      shape(op, 'strides of rank 2 with A - 1 rows', 'strides', [A - 1, 1]),
      shape(op, 'gtBoxes of B = 2', 'gtBoxes', [2, M, 4]),
      shape(op, 'gtLabels of M + 1 rows', 'gtLabels', [1, M + 1]),
      shape(op, 'gtMask of M - 1 rows', 'gtMask', [1, M - 1]),
    ]);
  });
});

describe('values: always checked, on host arrays and on the GPU', () => {
  it('gtLabels outside [0, C), padding rows included, is invalid_value gtLabels', async () => {
    const cases: Case[] = [];
    for (const op of ['tal_assign', 'yolo_detection_loss'] as const) {
      cases.push(
        value(op, 'gtLabels = C', 'gtLabels', 0, C),
        value(op, 'gtLabels = -1', 'gtLabels', 1, -1),
        value(op, 'a padding row labelled C', 'gtLabels', 2, C),
        value(op, 'a padding row labelled -100', 'gtLabels', 2, -100),
        value(op, 'gtLabels = 2**31 - 1', 'gtLabels', 1, 2 ** 31 - 1),
      );
    }
    await expectRefusedEverywhere(cases);
  });
  it('gtMask other than 0 or 1 is invalid_value gtMask', async () => {
    const cases: Case[] = [];
    for (const op of ['tal_assign', 'yolo_detection_loss'] as const) cases.push(value(op, 'gtMask = 2', 'gtMask', 1, 2), value(op, 'gtMask = -1', 'gtMask', 2, -1));
    await expectRefusedEverywhere(cases);
  });
  it('strides not finite or not > 0 is invalid_value strides, with or without check', async () => {
    const op = 'yolo_detection_loss';
    const cases = [0, -0, -16, NaN, Infinity, -Infinity].map((v) => value(op, `strides[9] = ${v}`, 'strides', 9, v));
    cases.push(value(op, 'strides[0] = NaN with check: true', 'strides', 0, NaN, { check: true }));
    await expectRefusedEverywhere(cases);
  });
});

describe('params', () => {
  it('topk not an integer, < 1, or > A with gt rows is invalid_param topk', async () => {
    const cases: Case[] = [];
    for (const op of ['tal_assign', 'yolo_detection_loss'] as const) {
      for (const v of [0, -1, 2.5, A + 1, 1e6, NaN, Infinity, '4', null]) cases.push(param(op, 'topk', v));
    }
    await expectRefusedEverywhere(cases);
  });
  it('topk = A, and topk above A with no gt rows (M = 0: nothing to select), are accepted and equal cpu.run', async () => {
    const noRows = (op: Op, topk: number) => {
      const g = good(op);
      return { what: `topk ${topk}, M = 0`, op, inputs: { ...g.inputs, gtLabels: { data: new Int32Array(0), shape: [1, 0] }, gtBoxes: { data: new Float32Array(0), shape: [1, 0, 4] }, gtMask: { data: new Int32Array(0), shape: [1, 0] } }, options: { topk } };
    };
    await expectAcceptedEverywhere([
      { what: 'topk = A', op: 'tal_assign', ...good('tal_assign'), options: { topk: A } },
      { what: 'topk = A', op: 'yolo_detection_loss', ...good('yolo_detection_loss'), options: { topk: A } },
      noRows('tal_assign', A + 1),
      noRows('tal_assign', 1000),
      noRows('yolo_detection_loss', A + 1),
    ]);
  });
  it('alpha < 0, beta <= 0, eps <= 0 and every non-finite param (the gains included) are invalid_param naming it', async () => {
    const tal = 'tal_assign';
    const yolo = 'yolo_detection_loss';
    await expectRefusedEverywhere([
      param(tal, 'alpha', -0.5),
      param(tal, 'alpha', -1e-30),
      param(tal, 'alpha', NaN),
      param(tal, 'beta', 0),
      param(tal, 'beta', -2),
      param(tal, 'beta', Infinity),
      param(tal, 'eps', 0),
      param(tal, 'eps', -1e-9),
      param(tal, 'eps', Infinity),
      param(tal, 'eps', NaN),
      param(yolo, 'alpha', -1),
      param(yolo, 'alpha', -Infinity),
      param(yolo, 'beta', 0),
      param(yolo, 'beta', NaN),
      param(yolo, 'boxGain', NaN),
      param(yolo, 'boxGain', Infinity),
      param(yolo, 'clsGain', -Infinity),
      param(yolo, 'clsGain', NaN),
      param(yolo, 'dflGain', Infinity),
      param(yolo, 'dflGain', '1.5'),
      // the YOLO loss fixes its assignment's eps (1e-9): not a param of it
      param(yolo, 'eps', 1e-9, 'unknown_param'),
    ]);
  });
  it('alpha 0, beta 1, a large eps and negative or zero gains are accepted and equal cpu.run', async () => {
    await expectAcceptedEverywhere([
      { what: 'alpha 0', op: 'tal_assign', inputs: good('tal_assign').inputs, options: { topk: 4, alpha: 0 } },
      { what: 'beta 1, eps 1', op: 'tal_assign', inputs: good('tal_assign').inputs, options: { topk: 4, beta: 1, eps: 1 } },
      { what: 'gains 0', op: 'yolo_detection_loss', inputs: good('yolo_detection_loss').inputs, options: { topk: 4, boxGain: 0, clsGain: 0, dflGain: 0 } },
      { what: 'negative gains', op: 'yolo_detection_loss', inputs: good('yolo_detection_loss').inputs, options: { topk: 4, boxGain: -1, clsGain: -0.5, dflGain: -2 } },
    ]);
  });
  it('reduction (any, even mean), weight (any shape) and avgFactor are invalid_param naming each', async () => {
    const cases: Case[] = [];
    for (const op of ['tal_assign', 'yolo_detection_loss'] as const) {
      const g = good(op);
      for (const r of ['mean', 'sum', 'none']) cases.push(param(op, 'reduction', r));
      for (const v of [1, 2]) cases.push(param(op, 'avgFactor', v));
      for (const s of [[1], [1, A], [1, M], [0]]) {
        const n = s.reduce((a, b) => a * b, 1);
        cases.push({ what: `a weight of shape [${s}]`, op, inputs: { ...g.inputs, weight: { data: new Float32Array(n).fill(1), shape: s } }, options: g.options, code: 'invalid_param', argument: 'weight' });
      }
    }
    await expectRefusedEverywhere(cases);
  });
});

describe('check: true', () => {
  it('a NaN or an infinity in any float input is invalid_value naming it (on the GPU too); unchecked, the same calls are accepted', async () => {
    const floats: Record<Op, string[]> = { tal_assign: ['scores', 'predBoxes', 'anchors', 'gtBoxes'], yolo_detection_loss: ['predDist', 'predScores', 'anchors', 'gtBoxes'] };
    const cases: Case[] = [];
    for (const op of ['tal_assign', 'yolo_detection_loss'] as const) {
      for (const name of floats[op]) {
        const last = good(op).inputs[name].data.length - 1;
        cases.push(value(op, `${name}[${last}] = NaN`, name, last, NaN, { check: true }), value(op, `${name}[0] = -Infinity`, name, 0, -Infinity, { check: true }));
      }
    }
    await expectRefusedEverywhere(cases);
    // unchecked: unspecified numbers (the misuse suite holds them to the assignment's invariants), but no refusal
    for (const c of cases.slice(0, 4)) {
      for (const s of SURFACES) {
        const v = await verdict(s, { ...c, options: { topk: 4 } });
        expect(v.ok, `${c.op} ${c.what} unchecked on ${s}: ${v.ok ? '' : v.message}`).toBe(true);
      }
    }
  });
  it("tal_assign's scores outside [0, 1] are invalid_value scores with check: true, and accepted without it", async () => {
    const op = 'tal_assign';
    await expectRefusedEverywhere([value(op, 'scores = 1.5', 'scores', 4, 1.5, { check: true }), value(op, 'scores = -0.25', 'scores', 29, -0.25, { check: true }), value(op, 'scores = 1 + 2^-23', 'scores', 0, 1 + 2 ** -23, { check: true })]);
    await expectAcceptedEverywhere([
      { what: 'scores = 1.5 unchecked', op, inputs: withValue(op, 'scores', 4, 1.5), options: { topk: 4 } },
      { what: 'scores = 0 and 1 with check: true', op, inputs: withValue(op, 'scores', 3, 1), options: { topk: 4, check: true } },
    ]);
  });
});
