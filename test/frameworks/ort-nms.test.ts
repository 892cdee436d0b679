// detloss/ort's nonMaxSuppression against onnxruntime itself: a one-node ONNX model
// (NonMaxSuppression, opset 11), written here as protobuf, run by onnxruntime-web's wasm execution
// provider in Node, and the drop-in on Node's WebGPU (Dawn) on the same data, the boxes and scores
// as gpu-buffer ort.Tensors. Their int64 outputs must be equal element for element: "a model
// exported without NMS, plus this call, equals the model exported with it".
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DetlossError } from '../../src/errors';
import { detlossFor, nonMaxSuppression, type OnnxScalar, type OrtDetloss, type OrtTensor } from '../../src/frameworks/ort';
import { nodeContext } from '../helpers/node-gpu';

/** The slice of onnxruntime-web's API this file uses (the package is a devDependency). */
type Data = Float32Array | Int32Array | BigInt64Array;
type T = OrtTensor & { getData(release?: boolean): Promise<Data> };
interface OrtModule {
  Tensor: {
    new (type: string, data: Data, dims: number[]): T;
    fromGpuBuffer(buffer: GPUBuffer, options: { dataType: string; dims: number[] }): T;
  };
  InferenceSession: { create(model: Uint8Array, options: { executionProviders: string[] }): Promise<{ run(feeds: Record<string, T>): Promise<Record<string, T>> }> };
  env: { wasm: { numThreads: number } };
}
const ort = createRequire(import.meta.url)('onnxruntime-web') as OrtModule;
ort.env.wasm.numThreads = 1;

// ---- A one-node ONNX model, as protobuf (onnx.proto: ModelProto, GraphProto, NodeProto...) ----

const varint = (v: number | bigint): number[] => {
  let n = BigInt(v);
  const out: number[] = [];
  do {
    const low = Number(n & 0x7fn);
    n >>= 7n;
    out.push(low | (n > 0n ? 0x80 : 0));
  } while (n > 0n);
  return out;
};
const num = (field: number, v: number | bigint) => [...varint(field << 3), ...varint(v)];
const bytes = (field: number, b: number[]) => [...varint((field << 3) | 2), ...varint(b.length), ...b];
const str = (field: number, s: string) => bytes(field, [...new TextEncoder().encode(s)]);
const FLOAT = 1;
const INT64 = 7;
/** ValueInfoProto: a name and a TypeProto.tensor_type (elem_type, and a shape of named dims, or none: any rank). */
const valueInfo = (name: string, elem: number, dims?: string[]) => [...str(1, name), ...bytes(2, bytes(1, [...num(1, elem), ...(dims ? bytes(2, dims.flatMap((d) => bytes(1, str(2, d)))) : [])]))];

/**
 * NonMaxSuppression(boxes, scores[, max_output_boxes_per_class, iou_threshold, score_threshold])
 * with its `center_point_box` attribute; an absent optional input is an empty name, as ONNX writes it.
 */
function nmsModel(center: number, present: [boolean, boolean, boolean]): Uint8Array {
  const names = ['max', 'iou', 'score'].map((n, i) => (present[i] ? n : ''));
  // AttributeProto: name 1, i 3, type 20 (INT = 2).
  const attribute = [...str(1, 'center_point_box'), ...num(3, center), ...num(20, 2)];
  // NodeProto: input 1, output 2, name 3, op_type 4, attribute 5.
  const node = [...['boxes', 'scores', ...names].flatMap((n) => str(1, n)), ...str(2, 'selected'), ...str(3, 'nms'), ...str(4, 'NonMaxSuppression'), ...bytes(5, attribute)];
  const inputs = [valueInfo('boxes', FLOAT, ['b', 'n', '4']), valueInfo('scores', FLOAT, ['b', 'c', 'n'])];
  if (present[0]) inputs.push(valueInfo('max', INT64));
  if (present[1]) inputs.push(valueInfo('iou', FLOAT));
  if (present[2]) inputs.push(valueInfo('score', FLOAT));
  // GraphProto: node 1, name 2, input 11, output 12.
  const graph = [...bytes(1, node), ...str(2, 'nms'), ...inputs.flatMap((v) => bytes(11, v)), ...bytes(12, valueInfo('selected', INT64, ['k', '3']))];
  // ModelProto: ir_version 1, graph 7, opset_import 8 (OperatorSetIdProto: domain 1, version 2).
  return Uint8Array.from([...num(1, 7), ...bytes(8, num(2, 11)), ...bytes(7, graph)]);
}

const sessions = new Map<string, ReturnType<OrtModule['InferenceSession']['create']>>();
const sessionFor = (center: number, present: [boolean, boolean, boolean]) => {
  const key = `${center}${present.map(Number).join('')}`;
  if (!sessions.has(key)) sessions.set(key, ort.InferenceSession.create(nmsModel(center, present), { executionProviders: ['wasm'] }));
  return sessions.get(key)!;
};

// ---- Data ----

/** A case: boxes [b, n, 4], scores [b, c, n], the three scalars as plain values (undefined: absent). */
interface Case {
  b: number;
  c: number;
  n: number;
  boxes: Float32Array;
  scores: Float32Array;
  max?: number | bigint;
  iou?: number;
  score?: number;
  center?: 0 | 1;
}

/**
 * Boxes on an integer grid (exact overlaps), for `center` 0 some with their corners swapped, for
 * 1 as centres and sides, some sides negative; scores in 64ths (exact in float32), some equal.
 */
function data(b: number, c: number, n: number, seed: number, center: 0 | 1): Pick<Case, 'b' | 'c' | 'n' | 'boxes' | 'scores' | 'center'> {
  let s = seed >>> 0;
  const next = (k: number) => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % k);
  const boxes = new Float32Array(b * n * 4);
  for (let i = 0; i < b * n; i++) {
    const [y, x, h, w] = [next(16), next(16), 1 + next(6), 1 + next(6)];
    if (center === 1) boxes.set([x + w / 2, y + h / 2, i % 7 === 5 ? -w : w, h], 4 * i);
    else boxes.set(i % 5 === 3 ? [y + h, x + w, y, x] : [y, x, y + h, x + w], 4 * i);
  }
  const scores = Float32Array.from({ length: b * c * n }, () => next(64) / 64);
  return { b, c, n, boxes, scores, center };
}

let device: GPUDevice;
let dl: OrtDetloss;
const made: GPUBuffer[] = [];
beforeAll(async () => {
  device = (await nodeContext()).device;
  dl = await detlossFor(device);
});
afterAll(() => {
  made.forEach((b) => b.destroy());
  dl?.destroy();
});

function onGpu(data: Float32Array | BigInt64Array | Int32Array, dims: number[]): T {
  const buffer = device.createBuffer({ size: Math.max(16, Math.ceil(data.byteLength / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(buffer, 0, data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
  made.push(buffer);
  const dataType = data instanceof Float32Array ? 'float32' : data instanceof Int32Array ? 'int32' : 'int64';
  return ort.Tensor.fromGpuBuffer(buffer, { dataType, dims });
}

/** onnxruntime's output for the case: the model run by its wasm execution provider. */
async function reference(k: Case): Promise<{ dims: number[]; data: bigint[] }> {
  const present: [boolean, boolean, boolean] = [k.max !== undefined, k.iou !== undefined, k.score !== undefined];
  const session = await sessionFor(k.center ?? 0, present);
  const feeds: Record<string, T> = {
    boxes: new ort.Tensor('float32', k.boxes, [k.b, k.n, 4]),
    scores: new ort.Tensor('float32', k.scores, [k.b, k.c, k.n]),
  };
  if (present[0]) feeds.max = new ort.Tensor('int64', BigInt64Array.of(BigInt(k.max!)), [1]);
  if (present[1]) feeds.iou = new ort.Tensor('float32', Float32Array.of(k.iou!), [1]);
  if (present[2]) feeds.score = new ort.Tensor('float32', Float32Array.of(k.score!), [1]);
  const { selected } = await session.run(feeds);
  expect(selected.type).toBe('int64');
  return { dims: [...selected.dims], data: Array.from((await selected.getData()) as BigInt64Array) };
}

/** The scalars of a case in one of the forms ONNX gives them. */
type Form = 'value' | 'cpu [1]' | 'cpu []' | 'gpu [1]';
function scalar(v: number | bigint | undefined, type: 'int64' | 'float32', form: Form): OnnxScalar {
  if (v === undefined || form === 'value') return v;
  const data = type === 'int64' ? BigInt64Array.of(BigInt(v)) : Float32Array.of(Number(v));
  if (form === 'gpu [1]') return onGpu(data, [1]);
  return new ort.Tensor(type, data, form === 'cpu []' ? [] : [1]);
}

/** The drop-in on the case, its output read back (and released). */
async function ours(k: Case, form: Form = 'value', where: 'gpu' | 'cpu' = 'gpu'): Promise<{ dims: number[]; data: bigint[]; type: string; location: string }> {
  const boxes = where === 'gpu' ? onGpu(k.boxes, [k.b, k.n, 4]) : new ort.Tensor('float32', k.boxes, [k.b, k.n, 4]);
  const scores = where === 'gpu' ? onGpu(k.scores, [k.b, k.c, k.n]) : new ort.Tensor('float32', k.scores, [k.b, k.c, k.n]);
  const out = (await nonMaxSuppression(boxes, scores, scalar(k.max, 'int64', form), scalar(k.iou, 'float32', form), scalar(k.score, 'float32', form), { centerPointBox: k.center ?? 0 })) as T;
  const { type, location } = out;
  return { dims: [...out.dims], type, location, data: Array.from((await out.getData(true)) as BigInt64Array) };
}

async function expectSame(k: Case, what: string, form: Form = 'value', where: 'gpu' | 'cpu' = 'gpu') {
  const want = await reference(k);
  const got = await ours(k, form, where);
  expect([got.type, got.location], what).toEqual(['int64', 'gpu-buffer']);
  expect(got.dims, `${what}: dims`).toEqual(want.dims);
  expect(got.data, what).toEqual(want.data);
  return want.dims[0];
}

describe('nonMaxSuppression equals onnxruntime running the NonMaxSuppression node', () => {
  it('b = 2, c = 3: limits 0, 1, 3, past n and int64 max; IoU thresholds 0, 0.5 and 1; score thresholds; both box layouts', async () => {
    const rows = new Set<number>();
    for (const center of [0, 1] as const) {
      const d = data(2, 3, 30, 7 + center, center);
      for (const max of [0, 1, 3, 30, 100, 2n ** 63n - 1n, -2n]) {
        for (const iou of [0, 0.5, 1]) {
          for (const score of [undefined, 0.25, 0.5]) rows.add(await expectSame({ ...d, max, iou, score }, `center ${center}, max ${max}, iou ${iou}, score ${score}`));
        }
      }
    }
    // Enough variety: none selected, and from a few rows to most of them.
    expect(rows.has(0)).toBe(true);
    expect(Math.max(...rows)).toBeGreaterThan(60);
  });

  it("the inputs ONNX leaves optional: an absent limit selects nothing, an absent IoU threshold is 0, an absent score threshold filters nothing", async () => {
    const d = data(1, 2, 20, 3, 0);
    expect(await expectSame({ ...d }, 'all three absent')).toBe(0);
    expect(await expectSame({ ...d, max: 20 }, 'only the limit')).toBeGreaterThan(0);
    await expectSame({ ...d, max: 20, score: 0.5 }, 'no IoU threshold');
    await expectSame({ ...d, max: 20, iou: 0.5 }, 'no score threshold');
  });

  it('the scalars as one-element tensors [1] and [] on the CPU, on the GPU, and as numbers and bigints', async () => {
    const d = data(2, 2, 16, 5, 0);
    for (const form of ['value', 'cpu [1]', 'cpu []', 'gpu [1]'] as Form[]) {
      await expectSame({ ...d, max: 4, iou: 0.4, score: 0.125 }, `scalars as ${form}`, form);
      await expectSame({ ...d, max: 5n, iou: 0.6 }, `scalars as ${form}, a bigint limit`, form);
    }
  });

  it('boxes and scores as CPU tensors; b = 1, c = 1; n = 1; empty batches, classes and boxes', async () => {
    const d = data(1, 1, 12, 9, 1);
    await expectSame({ ...d, max: 12, iou: 0.5 }, 'cpu tensors', 'value', 'cpu');
    await expectSame({ ...d, max: 12, iou: 0.5 }, 'b = c = 1');
    await expectSame({ ...data(2, 2, 1, 2, 0), max: 3, iou: 0.5 }, 'n = 1');
    for (const [b, c, n] of [[0, 2, 5], [2, 0, 5], [2, 2, 0]]) {
      expect(await expectSame({ ...data(b, c, n, 1, 0), max: 3, iou: 0.5 }, `b = ${b}, c = ${c}, n = ${n}`)).toBe(0);
    }
  });
});

describe('the output', () => {
  it("int64 rows in a buffer of their own; outputType 'int32' gives the op's own rows, the same numbers", async () => {
    const k = { ...data(1, 2, 10, 4, 0), max: 10, iou: 0.5 };
    const want = await reference(k);
    expect(want.dims[0]).toBeGreaterThan(0);
    const boxes = onGpu(k.boxes, [1, 10, 4]);
    const scores = onGpu(k.scores, [1, 2, 10]);
    await nonMaxSuppression(boxes, scores, 10, 0.5).then((t) => t.dispose());
    const base = dl.context.stats().bytesInUse;
    // int64: the op's buffers are back in the pool when the call returns; the output is not one of them.
    const wide = (await nonMaxSuppression(boxes, scores, 10, 0.5)) as T;
    expect(dl.context.stats().bytesInUse).toBe(base);
    expect(wide.gpuBuffer.size).toBeGreaterThanOrEqual(8 * want.data.length);
    // Sized as ORT's WebGPU EP sizes its own (it copies them whole): a multiple of 16 bytes, for
    // one row (24 bytes) too.
    expect(wide.gpuBuffer.size % 16).toBe(0);
    const one = (await nonMaxSuppression(onGpu(Float32Array.of(0, 0, 1, 1), [1, 1, 4]), onGpu(Float32Array.of(0.5), [1, 1, 1]), 1)) as T;
    expect([...one.dims]).toEqual([1, 3]);
    expect(one.gpuBuffer.size).toBe(32);
    one.dispose();
    expect(Array.from((await wide.getData(true)) as BigInt64Array)).toEqual(want.data);
    // int32: the op's rows themselves, held until disposed.
    const narrow = (await nonMaxSuppression(boxes, scores, 10, 0.5, undefined, { outputType: 'int32' })) as T;
    expect([narrow.type, narrow.location, [...narrow.dims]]).toEqual(['int32', 'gpu-buffer', want.dims]);
    expect(dl.context.stats().bytesInUse).toBeGreaterThan(base);
    expect(Array.from((await narrow.getData(true)) as Int32Array)).toEqual(want.data.map(Number));
    expect(dl.context.stats().bytesInUse).toBe(base);
  });

  it('the OrtDetloss method is the same call', async () => {
    const k = { ...data(2, 1, 8, 6, 1), max: 8, iou: 0.3 };
    const want = await reference(k);
    const out = (await dl.nonMaxSuppression(onGpu(k.boxes, [2, 8, 4]), onGpu(k.scores, [2, 1, 8]), 8n, 0.3, undefined, { centerPointBox: 1 })) as T;
    expect(Array.from((await out.getData(true)) as BigInt64Array)).toEqual(want.data);
  });
});

describe('inputs are taken when the call is made', () => {
  for (const form of ['value', 'gpu [1]'] as Form[]) {
    it(`boxes, scores and scalars (${form}) written over right after the call do not change it`, async () => {
      const k = { ...data(1, 2, 14, 8, 0), max: 6, iou: 0.45, score: 0.25 };
      const want = await reference(k);
      const boxes = onGpu(k.boxes, [1, 14, 4]);
      const scores = onGpu(k.scores, [1, 2, 14]);
      const [max, iou, score] = [scalar(k.max, 'int64', form), scalar(k.iou, 'float32', form), scalar(k.score, 'float32', form)];
      // Once its pipelines are compiled (docs/api.md: GPU tensors are read by the work the call
      // submits, in queue order), and a scalar on the GPU (read back first) changes nothing.
      await nonMaxSuppression(boxes, scores, max, iou, score).then((t) => t.dispose());
      const call = nonMaxSuppression(boxes, scores, max, iou, score);
      device.queue.writeBuffer(boxes.gpuBuffer, 0, new Float32Array(14 * 4));
      device.queue.writeBuffer(scores.gpuBuffer, 0, new Float32Array(28).fill(0.9));
      if (form === 'gpu [1]') {
        device.queue.writeBuffer((max as T).gpuBuffer, 0, BigInt64Array.of(1n));
        device.queue.writeBuffer((iou as T).gpuBuffer, 0, Float32Array.of(1));
        device.queue.writeBuffer((score as T).gpuBuffer, 0, Float32Array.of(0));
      }
      const out = (await call) as T;
      expect(Array.from((await out.getData(true)) as BigInt64Array)).toEqual(want.data);
    });
  }
});

describe('bad input is a DetlossError naming the argument', () => {
  const k = data(1, 2, 6, 1, 0);
  const boxes = () => onGpu(k.boxes, [1, 6, 4]);
  const scores = () => onGpu(k.scores, [1, 2, 6]);
  const refusal = async (p: () => Promise<unknown>) => {
    const e = await Promise.resolve()
      .then(p)
      .then(() => undefined, (x: unknown) => x);
    expect(e instanceof DetlossError, String(e)).toBe(true);
    return [(e as DetlossError).code, (e as DetlossError).argument];
  };

  it('where onnxruntime fails the run too', async () => {
    const ref = async (feeds: Record<string, T>, center = 0) =>
      (await sessionFor(center, [true, true, false])).run(feeds).then(
        () => 'ran',
        () => 'failed',
      );
    const cpuBoxes = new ort.Tensor('float32', k.boxes, [1, 6, 4]);
    const cpuScores = new ort.Tensor('float32', k.scores, [1, 2, 6]);
    const feeds = (over: Record<string, T>) => ({ boxes: cpuBoxes, scores: cpuScores, max: new ort.Tensor('int64', BigInt64Array.of(3n), [1]), iou: new ort.Tensor('float32', Float32Array.of(0.5), [1]), ...over });
    const cases: [string, Record<string, T>, () => Promise<unknown>, string, string][] = [
      ['iouThreshold 1.5', feeds({ iou: new ort.Tensor('float32', Float32Array.of(1.5), [1]) }), () => nonMaxSuppression(boxes(), scores(), 3, 1.5), 'invalid_param', 'iouThreshold'],
      ['iouThreshold -0.1', feeds({ iou: new ort.Tensor('float32', Float32Array.of(-0.1), [1]) }), () => nonMaxSuppression(boxes(), scores(), 3, -0.1), 'invalid_param', 'iouThreshold'],
      ['iouThreshold NaN', feeds({ iou: new ort.Tensor('float32', Float32Array.of(NaN), [1]) }), () => nonMaxSuppression(boxes(), scores(), 3, NaN), 'invalid_param', 'iouThreshold'],
      ['boxes [1, 6, 3]', feeds({ boxes: new ort.Tensor('float32', new Float32Array(18), [1, 6, 3]) }), () => nonMaxSuppression(onGpu(new Float32Array(18), [1, 6, 3]), scores(), 3), 'shape_mismatch', 'boxes'],
      ['boxes [6, 4]', feeds({ boxes: new ort.Tensor('float32', k.boxes, [6, 4]) }), () => nonMaxSuppression(onGpu(k.boxes, [6, 4]), scores(), 3), 'shape_mismatch', 'boxes'],
      ['boxes [1, 1, 6, 4]', feeds({ boxes: new ort.Tensor('float32', k.boxes, [1, 1, 6, 4]) }), () => nonMaxSuppression(onGpu(k.boxes, [1, 1, 6, 4]), scores(), 3), 'shape_mismatch', 'boxes'],
      ['scores of another batch', feeds({ scores: new ort.Tensor('float32', new Float32Array(24), [2, 2, 6]) }), () => nonMaxSuppression(boxes(), onGpu(new Float32Array(24), [2, 2, 6]), 3), 'shape_mismatch', 'scores'],
      ['scores [2, 6]', feeds({ scores: new ort.Tensor('float32', k.scores, [2, 6]) }), () => nonMaxSuppression(boxes(), onGpu(k.scores, [2, 6]), 3), 'shape_mismatch', 'scores'],
      ['int32 boxes', feeds({ boxes: new ort.Tensor('int32', new Int32Array(24), [1, 6, 4]) }), () => nonMaxSuppression(onGpu(new Int32Array(24), [1, 6, 4]), scores(), 3), 'wrong_dtype', 'boxes'],
      ['an int32 limit', feeds({ max: new ort.Tensor('int32', Int32Array.of(3), [1]) }), () => nonMaxSuppression(boxes(), scores(), new ort.Tensor('int32', Int32Array.of(3), [1])), 'wrong_dtype', 'maxOutputBoxesPerClass'],
      ['an int64 IoU threshold', feeds({ iou: new ort.Tensor('int64', BigInt64Array.of(0n), [1]) }), () => nonMaxSuppression(boxes(), scores(), 3, new ort.Tensor('int64', BigInt64Array.of(0n), [1])), 'wrong_dtype', 'iouThreshold'],
    ];
    for (const [what, f, call, code, argument] of cases) {
      expect(await ref(f), `onnxruntime: ${what}`).toBe('failed');
      expect(await refusal(call), what).toEqual([code, argument]);
    }
    // An attribute onnxruntime refuses when it loads the model.
    expect(await sessionFor(2, [true, false, false]).then(() => 'loaded', () => 'refused')).toBe('refused');
    expect(await refusal(() => nonMaxSuppression(boxes(), scores(), 3, 0.5, undefined, { centerPointBox: 2 as 0 }))).toEqual(['invalid_param', 'centerPointBox']);
  });

  it('and where detloss is stricter: a scalar tensor of more than one element, a NaN score threshold, a limit that is not an integer', async () => {
    expect(await refusal(() => nonMaxSuppression(boxes(), scores(), new ort.Tensor('int64', BigInt64Array.of(3n, 4n), [2])))).toEqual(['shape_mismatch', 'maxOutputBoxesPerClass']);
    expect(await refusal(() => nonMaxSuppression(boxes(), scores(), 3, new ort.Tensor('float32', new Float32Array(0), [0])))).toEqual(['shape_mismatch', 'iouThreshold']);
    expect(await refusal(() => nonMaxSuppression(boxes(), scores(), 3, 0.5, NaN))).toEqual(['invalid_param', 'scoreThreshold']);
    expect(await refusal(() => nonMaxSuppression(boxes(), scores(), 2.5))).toEqual(['invalid_param', 'maxOutputBoxesPerClass']);
    expect(await refusal(() => nonMaxSuppression(boxes(), scores(), 3, 1n as unknown as number))).toEqual(['invalid_param', 'iouThreshold']);
    expect(await refusal(() => nonMaxSuppression(boxes(), scores(), '3' as unknown as number))).toEqual(['invalid_param', 'maxOutputBoxesPerClass']);
  });

  it('boxes or scores missing or not tensors; a scalar on a texture; options that are not an object or unknown', async () => {
    expect(await refusal(() => nonMaxSuppression(undefined as unknown as T, scores(), 3))).toEqual(['missing_input', 'boxes']);
    expect(await refusal(() => nonMaxSuppression(boxes(), k.scores as unknown as T, 3))).toEqual(['wrong_dtype', 'scores']);
    const texture = { location: 'texture', type: 'float32', dims: [1], gpuBuffer: undefined, data: undefined, dispose() {} } as unknown as OrtTensor;
    expect(await refusal(() => nonMaxSuppression(boxes(), scores(), 3, texture))).toEqual(['invalid_value', 'iouThreshold']);
    expect(await refusal(() => nonMaxSuppression(boxes(), scores(), 3, 0.5, undefined, null as never))).toEqual(['invalid_param', 'options']);
    expect(await refusal(() => nonMaxSuppression(boxes(), scores(), 3, 0.5, undefined, { centrePointBox: 1 } as never))).toEqual(['unknown_param', 'centrePointBox']);
    expect(await refusal(() => nonMaxSuppression(boxes(), scores(), 3, 0.5, undefined, { outputType: 'int16' as 'int32' }))).toEqual(['invalid_param', 'outputType']);
  });
});
