import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DetlossContext } from '../../../src/api';
import { cpu } from '../../../src/cpu';
import { DetlossError } from '../../../src/errors';
import { rotatedTalAssignOp } from '../../../src/ops/rotated-tal';
import { nodeContext } from '../../helpers/node-gpu';

// rotated_tal_assign's refusals, tal_assign's on five-column boxes: each bad call gets a
// DetlossError with its code and the argument named (in the message too), from the CPU reference
// (cpu.rotatedTalAssign), the core on host arrays (dl.rotatedTalAssign), and the core on GPU
// buffers, where the value rules (gtLabels a class, gtMask 0 or 1, scores in [0, 1] with check)
// are found by the GPU's check pass. The values at the edges of the rules are accepted everywhere.

type T = { data: Float32Array | Int32Array; shape: number[] };
type Inputs = Record<'scores' | 'predBoxes' | 'anchors' | 'gtLabels' | 'gtBoxes' | 'gtMask', T>;

/** One image, 4 anchors, 3 classes, 2 gt rows (the second padding). */
function good(): Inputs {
  return {
    scores: { data: Float32Array.from({ length: 12 }, (_, i) => 0.1 + 0.07 * i), shape: [1, 4, 3] },
    predBoxes: { data: Float32Array.of(4, 4, 6, 3, 0.2, 5, 5, 6, 3, 0.1, 12, 4, 4, 4, 0, 13, 13, 2, 2, 1), shape: [1, 4, 5] },
    anchors: { data: Float32Array.of(4, 4, 6, 5, 12, 4, 13, 13), shape: [4, 2] },
    gtLabels: { data: Int32Array.of(2, 0), shape: [1, 2] },
    gtBoxes: { data: Float32Array.of(5, 5, 8, 4, 0.3, 0, 0, 1, 1, 0), shape: [1, 2, 5] },
    gtMask: { data: Int32Array.of(1, 0), shape: [1, 2] },
  };
}

const withInput = (name: keyof Inputs, t: T): Inputs => ({ ...good(), [name]: t });
const withValue = (name: keyof Inputs, i: number, v: number): Inputs => {
  const g = good();
  const d = g[name].data.slice();
  d[i] = v;
  return { ...g, [name]: { data: d, shape: g[name].shape } };
};

interface Case {
  what: string;
  inputs: Inputs;
  options: Record<string, unknown>;
  code: string;
  argument: string;
  /** A value rule: the GPU's check pass finds it on GPU buffers too. */
  value?: boolean;
}

const CASES: Case[] = [
  { what: 'predBoxes of four columns', inputs: withInput('predBoxes', { data: new Float32Array(16), shape: [1, 4, 4] }), options: {}, code: 'shape_mismatch', argument: 'predBoxes' },
  { what: 'gtBoxes of four columns', inputs: withInput('gtBoxes', { data: new Float32Array(8), shape: [1, 2, 4] }), options: {}, code: 'shape_mismatch', argument: 'gtBoxes' },
  { what: 'gtBoxes of another image count', inputs: withInput('gtBoxes', { data: new Float32Array(20), shape: [2, 2, 5] }), options: {}, code: 'shape_mismatch', argument: 'gtBoxes' },
  { what: 'anchors of three columns', inputs: withInput('anchors', { data: new Float32Array(12), shape: [4, 3] }), options: {}, code: 'shape_mismatch', argument: 'anchors' },
  { what: 'scores with no classes', inputs: withInput('scores', { data: new Float32Array(0), shape: [1, 4, 0] }), options: {}, code: 'shape_mismatch', argument: 'scores' },
  { what: 'a gt label equal to C', inputs: withValue('gtLabels', 0, 3), options: { topk: 2 }, code: 'invalid_value', argument: 'gtLabels', value: true },
  { what: 'a negative label in a padding row', inputs: withValue('gtLabels', 1, -1), options: { topk: 2 }, code: 'invalid_value', argument: 'gtLabels', value: true },
  { what: 'a gtMask of 2', inputs: withValue('gtMask', 1, 2), options: { topk: 2 }, code: 'invalid_value', argument: 'gtMask', value: true },
  { what: 'a score above 1, checked', inputs: withValue('scores', 5, 1.5), options: { topk: 2, check: true }, code: 'invalid_value', argument: 'scores', value: true },
  { what: 'topk above A with gt rows', inputs: good(), options: { topk: 5 }, code: 'invalid_param', argument: 'topk' },
  { what: 'topk 0', inputs: good(), options: { topk: 0 }, code: 'invalid_param', argument: 'topk' },
  { what: 'topk 2.5', inputs: good(), options: { topk: 2.5 }, code: 'invalid_param', argument: 'topk' },
  { what: 'alpha below 0', inputs: good(), options: { alpha: -0.5 }, code: 'invalid_param', argument: 'alpha' },
  { what: 'beta 0', inputs: good(), options: { beta: 0 }, code: 'invalid_param', argument: 'beta' },
  { what: 'eps 0', inputs: good(), options: { eps: 0 }, code: 'invalid_param', argument: 'eps' },
  { what: 'a param of the YOLO loss', inputs: good(), options: { topk: 2, boxGain: 7.5 }, code: 'unknown_param', argument: 'boxGain' },
];

let dl: DetlossContext;
const made: GPUBuffer[] = [];
beforeAll(async () => {
  dl = await nodeContext();
});
afterAll(() => {
  made.forEach((b) => b.destroy());
  dl?.destroy();
});

const onGpu = (inputs: Inputs) =>
  Object.fromEntries(
    Object.entries(inputs).map(([k, t]) => {
      const buffer = dl.device.createBuffer({ size: Math.max(16, Math.ceil(t.data.byteLength / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
      dl.device.queue.writeBuffer(buffer, 0, t.data.buffer as ArrayBuffer, t.data.byteOffset, t.data.byteLength);
      made.push(buffer);
      return [k, { buffer, shape: t.shape, dtype: t.data instanceof Int32Array ? 'i32' : 'f32' }];
    }),
  );

async function refusal(call: () => unknown): Promise<DetlossError | string> {
  try {
    await call();
  } catch (e) {
    return e instanceof DetlossError ? e : `not a DetlossError: ${String(e)}`;
  }
  return 'accepted';
}

function expectRefusal(e: DetlossError | string, c: Case, surface: string) {
  expect(e, `${surface}: ${c.what}`).toBeInstanceOf(DetlossError);
  const d = e as DetlossError;
  expect({ code: d.code, argument: d.argument }, `${surface}: ${c.what}: ${d.message}`).toEqual({ code: c.code, argument: c.argument });
  expect(d.message, `${surface}: ${c.what}`).toContain(c.argument);
}

const ins = (i: Inputs) => [i.scores, i.predBoxes, i.anchors, i.gtLabels, i.gtBoxes, i.gtMask] as const;

describe('rotated_tal_assign refuses bad calls with a typed error that names the argument', () => {
  it.each(CASES.map((c) => [c.what, c] as const))('%s', async (_what, c) => {
    expectRefusal(await refusal(() => cpu.rotatedTalAssign(...ins(c.inputs), c.options)), c, 'cpu.rotatedTalAssign');
    expectRefusal(await refusal(() => dl.rotatedTalAssign(...ins(c.inputs), c.options)), c, 'dl.rotatedTalAssign (host)');
    if (c.value) {
      const e = await refusal(() => dl.run(rotatedTalAssignOp as never, onGpu(c.inputs) as never, c.options as never));
      expectRefusal(e, c, 'dl.run (GPU buffers)');
      expect((e as DetlossError).message).toMatch(/on the GPU/);
    }
  });

  it('a weight is refused: the assigner is not reduced', async () => {
    const g = good();
    const e = await refusal(() => cpu.run(rotatedTalAssignOp, { ...g, weight: { data: new Float32Array(4), shape: [1, 4] } } as never));
    expect(e).toBeInstanceOf(DetlossError);
    expect((e as DetlossError).argument).toBe('weight');
  });

  it('the edges of the rules are accepted and agree: topk = A, topk above A with no gt rows, alpha 0, a score above 1 unchecked, labels C - 1 and 0', async () => {
    const calls: [Inputs, Record<string, unknown>][] = [
      [good(), { topk: 4 }],
      [withValue('gtLabels', 0, 0), { alpha: 0, topk: 2 }],
      [withValue('scores', 5, 1.5), { topk: 2 }],
      [
        {
          ...good(),
          gtLabels: { data: new Int32Array(0), shape: [1, 0] },
          gtBoxes: { data: new Float32Array(0), shape: [1, 0, 5] },
          gtMask: { data: new Int32Array(0), shape: [1, 0] },
        },
        { topk: 9 },
      ],
    ];
    for (const [inputs, options] of calls) {
      const want = cpu.rotatedTalAssign(...ins(inputs), options).outputs!;
      const got = (await dl.rotatedTalAssign(...ins(inputs), options)).outputs!;
      for (const k of ['labels', 'foreground', 'gtIndex']) expect(Array.from(got[k]), `${JSON.stringify(options)} ${k}`).toEqual(Array.from(want[k]));
      for (const k of ['boxes', 'targetScores']) {
        Array.from(got[k]).forEach((v, n) => expect(Math.abs(v - want[k][n]), `${JSON.stringify(options)} ${k}[${n}]`).toBeLessThanOrEqual(1e-6 + 1e-4 * Math.abs(want[k][n])));
      }
    }
  });
});
