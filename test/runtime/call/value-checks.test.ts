// Values the host cannot scan: labels and targets that live on the GPU. The host refuses bad ones
// in host arrays through each op's validator; src/ops/value-rules.ts says the same rules once more
// for the GPU's check pass (shaders/check.wgsl). Here the two are held to the same verdict on every
// probe value, and the check pass to both: `run` with GPU-resident inputs refuses what `cpu.run`
// refuses (invalid_value, naming the input and the first bad index), with no numbers, and
// `check: true` works with GPU buffers; `runResident`, which waits for nothing, checks them too and
// the refusal is thrown by the context's next call or flush() (the kernels poison the elements a
// bad value reaches with NaN meanwhile).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { DetlossError } from '../../../src/errors';
import { OPS } from '../../../src/ops/registry';
import { VALUE_RULES, keeps, ruleArgs } from '../../../src/ops/value-rules';
import { verdictsSettled } from '../../../src/runtime/context';
import { nodeContext } from '../../helpers/node-gpu';

type Ctx = Awaited<ReturnType<typeof nodeContext>>;
let dl: Ctx;
beforeAll(async () => {
  dl = await nodeContext();
});
afterAll(() => dl?.destroy());

const n = 5;
/** n anchor centres in a row, `unit` apart (grid units for the YOLO loss, pixels for the assigner). */
const centres = (unit: number) => Float32Array.from({ length: 2 * n }, (_, i) => (i % 2 ? 0.5 : Math.floor(i / 2) + 0.5) * unit);
const boxes = (count: number) => Float32Array.from({ length: 4 * count }, (_, i) => [0, 0, 24, 24][i % 4] + 16 * Math.floor(i / 4) * (i % 2 ? 0 : 1));
/** Four gt rows, the last padding: classes 0..3, boxes on the anchors' row. */
const gts = () => ({
  gtLabels: { data: Int32Array.of(0, 1, 2, 3), shape: [1, 4] },
  gtBoxes: { data: boxes(4), shape: [1, 4, 4] },
  gtMask: { data: Int32Array.of(1, 1, 1, 0), shape: [1, 4] },
});
/** A valid call of each op that has value rules, with `value` put at index 3 of the ruled input. */
function call(op: string, input: string, value: number) {
  const f = (len: number, v = 0.25) => new Float32Array(len).fill(v);
  const c = 4;
  const k = 6;
  const put = <T extends Float32Array | Int32Array>(a: T): T => {
    a[3] = value;
    return a;
  };
  const base: Record<string, () => { inputs: Record<string, { data: Float32Array | Int32Array; shape: number[] }>; options: Record<string, unknown> }> = {
    cross_entropy: () => ({ inputs: { logits: { data: f(n * c), shape: [n, c] }, labels: { data: Int32Array.of(0, 1, 2, 3, 0), shape: [n] } }, options: { ignoreIndex: -1 } }),
    nll: () => ({ inputs: { logProbs: { data: f(n * c, -1), shape: [n, c] }, labels: { data: Int32Array.of(0, 1, 2, 3, 0), shape: [n] } }, options: { ignoreIndex: -1 } }),
    softmax_focal: () => ({ inputs: { logits: { data: f(n * c), shape: [n, c] }, labels: { data: Int32Array.of(0, 1, 2, 3, 0), shape: [n] } }, options: { ignoreIndex: -1 } }),
    sigmoid_focal: () => ({ inputs: { logits: { data: f(n), shape: [n] }, targets: { data: f(n, 0.5), shape: [n] } }, options: {} }),
    varifocal: () => ({ inputs: { logits: { data: f(n * c), shape: [n, c] }, targets: { data: f(n * c, 0.5), shape: [n, c] } }, options: {} }),
    distribution_focal: () => ({ inputs: { logits: { data: f(n * k), shape: [n, k] }, targets: { data: f(n, 1.5), shape: [n] } }, options: {} }),
    class_balanced_focal: () => ({ inputs: { logits: { data: f(n * c), shape: [n, c] }, labels: { data: Int32Array.of(0, 1, 2, 3, 0), shape: [n] }, samplesPerClass: { data: Float32Array.of(5, 6, 7, 8), shape: [c] } }, options: {} }),
    hinge: () => ({ inputs: { logits: { data: f(n), shape: [n] }, targets: { data: Float32Array.of(1, -1, 1, -1, 1), shape: [n] } }, options: {} }),
    hinge_embedding: () => ({ inputs: { pred: { data: f(n), shape: [n] }, targets: { data: Float32Array.of(1, -1, 1, -1, 1), shape: [n] } }, options: {} }),
    margin_ranking: () => ({ inputs: { input1: { data: f(n), shape: [n] }, input2: { data: f(n, 0.5), shape: [n] }, targets: { data: Float32Array.of(1, -1, 1, -1, 1), shape: [n] } }, options: {} }),
    exponential: () => ({ inputs: { logits: { data: f(n), shape: [n] }, targets: { data: Float32Array.of(1, -1, 1, -1, 1), shape: [n] } }, options: {} }),
    ap_loss: () => ({ inputs: { logits: { data: Float32Array.of(0.1, 0.2, 0.3, 0.4, 0.5), shape: [n] }, targets: { data: Float32Array.of(1, 0, -1, 0, 1), shape: [n] } }, options: {} }),
    rank_sort: () => ({ inputs: { logits: { data: Float32Array.of(0.1, 0.2, 0.3, 0.4, 0.5), shape: [n] }, targets: { data: Float32Array.of(0.9, 0, -1, 0, 0.5), shape: [n] } }, options: {} }),
    // n anchors on a 16 px grid, four gt rows (the last padding), c classes.
    tal_assign: () => ({ inputs: { scores: { data: f(n * c), shape: [1, n, c] }, predBoxes: { data: boxes(n), shape: [1, n, 4] }, anchors: { data: centres(16), shape: [n, 2] }, ...gts() }, options: { topk: 3, check: true } }),
    yolo_detection_loss: () => ({
      inputs: { predDist: { data: f(n * 8), shape: [1, n, 8] }, predScores: { data: f(n * c), shape: [1, n, c] }, anchors: { data: centres(1), shape: [n, 2] }, strides: { data: f(n, 16), shape: [n] }, ...gts() },
      options: { topk: 3 },
    }),
  };
  const g = base[op]();
  const t = g.inputs[input];
  // samplesPerClass has 4 entries: index 3 is its last
  g.inputs[input] = { ...t, data: put(t.data.slice() as Float32Array | Int32Array) };
  return g;
}

const PROBES_F = [1, -1, 0, -0, 0.5, 1.5, -0.5, 2, 4.99, 5, 1e30, -1e-30, NaN, Infinity, -Infinity];
const PROBES_I = [0, 1, 3, 4, 7, -1, -2, -100, 2 ** 31 - 1, -(2 ** 31)];

const ruled = Object.entries(VALUE_RULES).flatMap(([op, rules]) => rules.map((r) => [op, r.input, r.rule] as const));
/** A rule checked only with `check: true` (the probe calls pass it): a value must keep the finite rule too. */
const withCheck = (op: string, input: string) => VALUE_RULES[op].some((r) => r.input === input && r.withCheck);

describe('the value rules say what each op\'s host validator says', () => {
  it('every op in the table exists, with the input named', () => {
    for (const [op, input] of ruled) expect(Object.keys(OPS[op].inputs), op).toContain(input);
  });
  it.each(ruled)('%s %s (%s): cpu.run refuses exactly the probes the rule does not keep', (op, input, rule) => {
    const probes = OPS[op].inputs[input].dtype === 'i32' ? PROBES_I : PROBES_F;
    for (const v of probes) {
      const g = call(op, input, v);
      let refused: DetlossError | undefined;
      try {
        cpu.run(op, g.inputs, g.options);
      } catch (e) {
        if (!(e instanceof DetlossError)) throw e;
        refused = e;
      }
      const desc = OPS[op];
      const dims = { n, c: 4, k: 6 };
      const p = { ignoreIndex: (g.options.ignoreIndex ?? desc.params.ignoreIndex?.default ?? 0) as number };
      const stored = OPS[op].inputs[input].dtype === 'i32' ? v | 0 : Math.fround(v);
      const kept = keeps(rule, stored, ruleArgs(dims, p)) && (!withCheck(op, input) || keeps('finite', stored, ruleArgs(dims, p)));
      expect(refused === undefined ? 'kept' : `${refused.code} ${refused.argument}`, `${op} ${input} = ${v}`).toBe(kept ? 'kept' : `invalid_value ${input}`);
    }
  });
});

function onGpu(inputs: Record<string, { data: Float32Array | Int32Array; shape: number[] }>): never {
  const out: Record<string, { buffer: GPUBuffer; shape: number[]; dtype: 'f32' | 'i32' }> = {};
  for (const [k, v] of Object.entries(inputs)) {
    const buffer = dl.device.createBuffer({ size: Math.max(4, v.data.byteLength), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    dl.device.queue.writeBuffer(buffer, 0, v.data.buffer as ArrayBuffer, v.data.byteOffset, v.data.byteLength);
    out[k] = { buffer, shape: v.shape, dtype: v.data instanceof Int32Array ? 'i32' : 'f32' };
  }
  return out as never;
}

describe('run with GPU-resident inputs refuses what cpu.run refuses', () => {
  it.each(ruled)('%s %s (%s): every probe', async (op, input) => {
    const probes = OPS[op].inputs[input].dtype === 'i32' ? PROBES_I : PROBES_F;
    for (const v of probes) {
      const g = call(op, input, v);
      const host = await dl.run(op, g.inputs, g.options).then(
        (r) => ({ ok: true as const, r }),
        (e: unknown) => ({ ok: false as const, e }),
      );
      const res = await dl.run(op, onGpu(g.inputs), g.options).then(
        (r) => ({ ok: true as const, r }),
        (e: unknown) => ({ ok: false as const, e }),
      );
      expect(res.ok, `${op} ${input} = ${v}: ${res.ok ? '' : String(res.e)}`).toBe(host.ok);
      if (!res.ok) {
        expect(res.e instanceof DetlossError).toBe(true);
        expect({ code: (res.e as DetlossError).code, argument: (res.e as DetlossError).argument }).toEqual({ code: 'invalid_value', argument: input });
        expect((res.e as DetlossError).message).toMatch(new RegExp(`${input}\\[3\\] \\(on the GPU\\)`));
      } else if (host.ok) {
        expect(Array.from(res.r.loss)).toEqual(Array.from(host.r.loss));
      }
    }
  });
});

describe('check: true with GPU buffers', () => {
  const logits = { data: Float32Array.of(0.5, -1, 2, 0, 1, 3), shape: [2, 3] };
  const labels = { data: Int32Array.of(2, 0), shape: [2] };
  it('run scans them on the GPU: a NaN or an infinity is invalid_value naming the input and index; finite values give the usual result', async () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const l = { ...logits, data: logits.data.slice() };
      l.data[4] = bad;
      const e = await dl.run('cross_entropy', onGpu({ logits: l, labels }), { check: true }).then(() => undefined, (x: unknown) => x);
      expect(e instanceof DetlossError, String(e)).toBe(true);
      expect({ code: (e as DetlossError).code, argument: (e as DetlossError).argument }).toEqual({ code: 'invalid_value', argument: 'logits' });
      expect((e as DetlossError).message).toMatch(/logits\[4\] \(on the GPU\) is not finite/);
    }
    const good = await dl.run('cross_entropy', onGpu({ logits, labels }), { check: true });
    expect(Array.from(good.loss)).toEqual(Array.from((await dl.run('cross_entropy', { logits, labels })).loss));
  });
  it('runResident checks them too, without waiting: flush() or the next call throws the refusal, once', async () => {
    const l = { ...logits, data: logits.data.slice() };
    l.data[2] = NaN;
    const r = await dl.runResident('cross_entropy', onGpu({ logits: l, labels }), { check: true });
    r.release();
    const e = await dl.flush().then(() => undefined, (x: unknown) => x);
    expect(e instanceof DetlossError, String(e)).toBe(true);
    expect({ code: (e as DetlossError).code, argument: (e as DetlossError).argument }).toEqual({ code: 'invalid_value', argument: 'logits' });
    expect((e as DetlossError).message).toMatch(/logits\[2\] \(on the GPU\)/);
    await dl.flush(); // thrown once
    // Without flush(): the next call throws it, and the one after works.
    const bad = await dl.runResident('hinge', onGpu({ logits: { data: Float32Array.of(1, 2), shape: [2] }, targets: { data: Float32Array.of(1, 3), shape: [2] } }));
    bad.release();
    // Once its verdict is in (waited for without taking it, as flush() would), the next call throws it.
    await verdictsSettled(dl);
    const late = await dl.run('l1', { pred: Float32Array.of(1), target: Float32Array.of(0) }).then(() => undefined, (x: unknown) => x);
    expect(late instanceof DetlossError, `the call after the verdict: ${String(late)}`).toBe(true);
    expect({ code: (late as DetlossError).code, argument: (late as DetlossError).argument }).toEqual({ code: 'invalid_value', argument: 'targets' });
    expect(Array.from((await dl.run('l1', { pred: Float32Array.of(1), target: Float32Array.of(0) })).loss)).toEqual([1]);
  });
  it('a check longer than one binding is checked in chunks, and the first bad index is reported', async () => {
    const small = await nodeContext({ limits: { maxStorageBufferBindingSize: 1024 } });
    const m = 1000;
    const targets = new Float32Array(m).map((_, i) => (i % 2 ? 1 : -1));
    targets[777] = 0.5;
    targets[901] = 2;
    const buf = (a: Float32Array) => {
      const b = small.device.createBuffer({ size: a.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
      small.device.queue.writeBuffer(b, 0, a.buffer as ArrayBuffer);
      return { buffer: b, shape: [m] };
    };
    const e = await small.run('hinge', { logits: buf(new Float32Array(m)), targets: buf(targets) }).then(() => undefined, (x: unknown) => x);
    expect((e as DetlossError).message).toMatch(/targets\[777\] \(on the GPU\) is not -1 or \+1/);
    small.destroy();
  });
});
