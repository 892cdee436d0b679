// The wrapper catalogue (src/catalogue.ts) against the registry and the four surfaces built from
// it: every op of the registry has a wrapper, and every wrapper is there under the same name on
// the core context (DetlossContext), in detloss/tfjs, on detloss/ort's class (OrtDetloss) and among
// detloss/ort's free functions. Then each wrapper, on each surface, runs the op it names: its
// result (or its refusal) is cpu.run's for the op with the wrapper's fixed params.
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import './helpers/tfjs-quiet';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DetlossContext } from '../src/api';
import { CORE_ALIASES, WRAPPERS, wrappers, type Wrapper } from '../src/catalogue';
import { cpu } from '../src/cpu';
import { DetlossError } from '../src/errors';
import * as ortModule from '../src/frameworks/ort';
import * as tfModule from '../src/frameworks/tfjs';
import { OP_NONE_RANK } from '../src/ops/op-types';
import { OPS } from '../src/ops/registry';
import { Detloss } from '../src/runtime/context';
import { maxRelErr } from './helpers/counting';
import { GOOD, outputsMismatch, type T } from './helpers/misuse-cases';
import { nodeContext } from './helpers/node-gpu';

const NAMES = Object.keys(WRAPPERS).sort();

/** What each surface offers besides the catalogue's wrappers (a new export must be one or the other). */
const NOT_WRAPPERS = {
  core: ['yoloNms', 'rotatedTalAssign'],
  tfjs: ['detlossFor', 'flush', 'makeAnchors', 'nonMaxSuppression', 'nonMaxSuppressionWithScore', 'ready', 'runLoss', 'runOutputs', 'runOutputsAsync', 'stats', 'tune', 'usePlans', 'yoloNms'],
  ortFree: ['OrtDetloss', 'detlossFor', 'flush', 'makeAnchors', 'nonMaxSuppression', 'runLoss', 'yoloNms'],
  ortClass: ['constructor', 'destroy', 'device', 'flush', 'nonMaxSuppression', 'runLoss', 'runWith', 'wrapper', 'yoloNms'],
};

const functionsOf = (o: object) => Object.keys(o).filter((k) => typeof (o as Record<string, unknown>)[k] === 'function');
const methodsOf = (proto: object) => Object.getOwnPropertyNames(proto);

/** The wrapper names each surface offers, built from the surface itself (not from the catalogue). */
function surfaces(mods: { tfjs: object; ort: object; core: object; ortClass: object }) {
  const aliases = Object.keys(CORE_ALIASES);
  return {
    core: methodsOf(mods.core).filter((k) => k !== 'constructor' && !aliases.includes(k) && !Object.hasOwn(Detloss.prototype, k) && !NOT_WRAPPERS.core.includes(k)).sort(),
    tfjs: functionsOf(mods.tfjs).filter((k) => !NOT_WRAPPERS.tfjs.includes(k)).sort(),
    ortClass: methodsOf(mods.ortClass).filter((k) => !NOT_WRAPPERS.ortClass.includes(k)).sort(),
    ortFree: functionsOf(mods.ort).filter((k) => !NOT_WRAPPERS.ortFree.includes(k)).sort(),
  };
}
const SURFACES = surfaces({ tfjs: tfModule, ort: ortModule, core: DetlossContext.prototype, ortClass: ortModule.OrtDetloss.prototype });

const requiredInputs = (op: string) => Object.entries(OPS[op].inputs).filter(([, s]) => !s.optional).map(([k]) => k);
const gradInputs = (op: string) => Object.entries(OPS[op].inputs).filter(([, s]) => s.grad).map(([k]) => k);

describe('the catalogue against the registry', () => {
  it.each(Object.keys(OPS))('op %s has a wrapper that fixes nothing', (op) => {
    expect(wrappers().filter((w) => w.op === op && !w.fixed).map((w) => w.name)).toHaveLength(1);
  });

  it.each(wrappers().map((w) => [w.name, w] as const))('%s: its op, its positional inputs (the required ones, in order), its fixed params, its gradients', (_name, w) => {
    const desc = OPS[w.op];
    expect(desc, w.op).toBeDefined();
    expect(w.args).toEqual(requiredInputs(w.op));
    for (const [k, v] of Object.entries(w.fixed ?? {})) {
      const spec = desc.params[k];
      expect(spec, `${w.name} fixes ${k}`).toBeDefined();
      if (spec.kind === 'enum') expect(spec.values).toContain(v);
    }
    // Every surface returns every gradient: an op with several says so in the table.
    const grads = gradInputs(w.op);
    expect(w.grads ?? grads.slice(0, 1)).toEqual(grads);
    // A wrapper with no gradient returns a matrix, or the named outputs of an op that has them.
    if (w.result === 'outputs') expect(Object.keys(desc.outputs ?? {}).length, `${w.op}'s named outputs`).toBeGreaterThan(0);
    else expect(w.result === 'matrix').toBe(grads.length === 0);
  });

  it('each old name of the core is an alias of a wrapper, the same method, and no wrapper of its own', () => {
    for (const [alias, name] of Object.entries(CORE_ALIASES)) {
      expect(NAMES).toContain(name);
      expect(NAMES).not.toContain(alias);
      expect((DetlossContext.prototype as unknown as Record<string, unknown>)[alias]).toBe((DetlossContext.prototype as unknown as Record<string, unknown>)[name]);
    }
  });
});

describe('every wrapper is on every surface under the same name', () => {
  it.each(Object.keys(SURFACES) as (keyof typeof SURFACES)[])('%s offers exactly the catalogue', (surface) => {
    expect(SURFACES[surface]).toEqual(NAMES);
  });

  it('so every op of the registry is reachable on every surface by its wrapper', () => {
    for (const op of Object.keys(OPS)) {
      const name = wrappers().find((w) => w.op === op && !w.fixed)!.name;
      for (const [surface, names] of Object.entries(SURFACES)) expect(names, `${op} (${name}) on ${surface}`).toContain(name);
    }
  });

  it('a surface missing a wrapper, or with one the catalogue lacks, fails the comparison', () => {
    // The check above, on surfaces with one wrapper taken out and one added.
    const { nll: _nll, ...tfjs } = tfModule as Record<string, unknown>;
    const ort = { ...ortModule, extraLoss: () => {} };
    const s = surfaces({ tfjs, ort, core: DetlossContext.prototype, ortClass: ortModule.OrtDetloss.prototype });
    expect(s.tfjs).not.toEqual(NAMES);
    expect(NAMES.filter((n) => !s.tfjs.includes(n))).toEqual(['nll']);
    expect(s.ortFree.filter((n) => !NAMES.includes(n))).toEqual(['extraLoss']);
  });
});

// ---- Each wrapper runs its op, on each surface ----

/** The named outputs of a result (`talAssign`, `yoloLoss`), read back, with their shapes. */
interface Named {
  outputs: Record<string, ArrayLike<number>>;
  outputShapes: Record<string, number[]>;
  /** The gradients a surface returned beside them (yoloLoss on the core and ORT), read back. */
  grad?: Record<string, ArrayLike<number>>;
}
type Outcome = ({ values: number[] } & Partial<Named>) | { code: string; argument?: string };

async function outcome(f: () => Promise<ArrayLike<number> | ({ loss: ArrayLike<number> } & Named)> | ArrayLike<number> | ({ loss: ArrayLike<number> } & Named)): Promise<Outcome> {
  try {
    const r = await f();
    if ('outputs' in r) return { ...r, values: Array.from(r.loss) };
    return { values: Array.from(r as ArrayLike<number>) };
  } catch (e) {
    if (e instanceof DetlossError) return { code: e.code, argument: e.argument };
    throw e;
  }
}

/** The same loss (to 1e-5), and where the reference has named outputs the same outputs (ints exactly) and gradients. */
function expectSame(got: Outcome, want: Outcome, what: string) {
  if ('values' in want && 'values' in got) {
    expect(got.values.length, what).toBe(want.values.length);
    expect(maxRelErr(got.values, want.values), what).toBeLessThan(1e-5);
    if (!want.outputs) return;
    expect(outputsMismatch(got, want), `${what}: outputs`).toBeUndefined();
    if (got.grad) {
      expect(Object.keys(got.grad).sort(), `${what}: gradients`).toEqual(Object.keys(want.grad ?? {}).sort());
      for (const [k, g] of Object.entries(got.grad)) expect(maxRelErr(g, want.grad![k]), `${what}: grad.${k}`).toBeLessThan(1e-5);
    }
  } else expect(got, what).toEqual(want);
}

/** A good call of the wrapper's op: inputs by name, the options without the params the wrapper fixes. */
function callOf(w: Wrapper) {
  let g = GOOD[w.op]();
  // The good call's params and optional inputs may belong to its own variant (rotated_iou_loss's is
  // KFIoU with its deltas), which another variant's wrapper refuses: that wrapper then gets its
  // required inputs alone, where the op takes them so.
  const accepts = (inputs: Record<string, T>, options: Record<string, unknown>) => {
    try {
      cpu.run(w.op, inputs, { ...options, ...w.fixed });
      return true;
    } catch {
      return false;
    }
  };
  const own = Object.fromEntries(Object.entries(g.options).filter(([k]) => !(w.fixed && k in w.fixed)));
  const required = Object.fromEntries(w.args.map((k) => [k, g.inputs[k]]));
  if (w.fixed && !accepts(g.inputs, own) && accepts(required, {})) g = { inputs: required, options: {} };
  const options = Object.fromEntries(Object.entries(g.options).filter(([k]) => !(w.fixed && k in w.fixed)));
  const optional = Object.keys(g.inputs).filter((k) => !w.args.includes(k));
  const want = () =>
    outcome(() => {
      const r = cpu.run(w.op, g.inputs, { ...options, ...w.fixed });
      return w.result === 'outputs' ? { loss: r.loss, outputs: r.outputs!, outputShapes: r.outputShapes!, grad: r.grad } : r.loss;
    });
  return { inputs: g.inputs, options, optional, want };
}

describe('each wrapper runs its op', () => {
  let dl: DetlossContext;
  let ort: ortModule.OrtDetloss;
  const made: GPUBuffer[] = [];
  beforeAll(async () => {
    dl = await nodeContext();
    ort = await ortModule.detlossFor(dl.device);
    await tf.setBackend('cpu');
  });
  afterAll(() => {
    made.forEach((b) => b.destroy());
    ort?.destroy();
    dl?.destroy();
  });

  const OrtTensor = (createRequire(import.meta.url)('onnxruntime-web') as { Tensor: { fromGpuBuffer(b: GPUBuffer, o: { dataType: string; dims: number[] }): ortModule.OrtTensor } }).Tensor;
  const onGpu = (t: T) => {
    const buffer = dl.device.createBuffer({ size: Math.max(16, Math.ceil(t.data.byteLength / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    dl.device.queue.writeBuffer(buffer, 0, t.data.buffer as ArrayBuffer, t.data.byteOffset, t.data.byteLength);
    made.push(buffer);
    return OrtTensor.fromGpuBuffer(buffer, { dataType: t.data instanceof Int32Array ? 'int32' : 'float32', dims: t.shape });
  };
  type OrtOut = ortModule.OrtTensor & { getData(release?: boolean): Promise<Float32Array> };
  /** The loss of an ORT wrapper's result (the tensor itself for a matrix); every other tensor disposed. */
  async function ortLoss(r: unknown): Promise<Float32Array> {
    const res = r as OrtOut | { loss: OrtOut; grad: OrtOut | Record<string, OrtOut> | undefined };
    if (!('loss' in res) || !(res.loss && typeof res.loss === 'object' && 'dims' in res.loss)) return (res as OrtOut).getData(true);
    const grads = res.grad === undefined ? [] : 'dims' in res.grad ? [res.grad as OrtOut] : Object.values(res.grad as Record<string, OrtOut>);
    grads.forEach((g) => g.dispose());
    return res.loss.getData(true);
  }
  /**
   * An ORT `talAssign` or `yoloLoss` result read back: the loss (none for talAssign), every named
   * output with its dims, the gradients (yoloLoss); every tensor disposed.
   */
  async function ortNamed(r: unknown): Promise<{ loss: ArrayLike<number> } & Named> {
    const { loss, grad, ...named } = r as { loss?: OrtOut; grad?: Record<string, OrtOut> } & Record<string, OrtOut>;
    const read = async (ts: Record<string, OrtOut>) => Object.fromEntries(await Promise.all(Object.entries(ts).map(async ([k, t]) => [k, await t.getData(true)] as const)));
    const outputShapes = Object.fromEntries(Object.entries(named).map(([k, t]) => [k, [...t.dims]]));
    return { loss: loss ? await loss.getData(true) : [], outputs: await read(named), outputShapes, ...(grad ? { grad: await read(grad) } : {}) };
  }

  it.each(wrappers().map((w) => [w.name, w] as const))('%s: core, TF.js, ORT class and ORT free function give cpu.run of its op', async (name, w) => {
    const c = callOf(w);
    const want = await c.want();
    const pos = (conv: (t: T) => unknown) => w.args.map((k) => conv(c.inputs[k]));
    const opts = (conv: (t: T) => unknown) => ({ ...c.options, ...Object.fromEntries(c.optional.map((k) => [k, conv(c.inputs[k])])) });
    type Fn = (...a: unknown[]) => Promise<unknown>;

    const core = await outcome(async () => {
      const r = (await ((dl as unknown as Record<string, Fn>)[name](...pos((t) => t), opts((t) => t)))) as { loss?: Float32Array; values?: Float32Array; grad?: Record<string, Float32Array>; outputs?: Named['outputs']; outputShapes?: Named['outputShapes'] };
      if (w.result === 'matrix') return r.values!;
      // A gradient for each differentiable input the call gives (an optional one, KFIoU's predDelta, only when given).
      expect(Object.keys(r.grad!).sort(), `${name}: core gradients`).toEqual(gradInputs(w.op).filter((k) => k in c.inputs).sort());
      if (w.result === 'outputs') return { loss: r.loss!, outputs: r.outputs!, outputShapes: r.outputShapes!, grad: r.grad! };
      return r.loss!;
    });
    expectSame(core, want, `${name} on the core`);

    const tensor = (t: T) => tf.tensor(t.data, t.shape, t.data instanceof Int32Array ? 'int32' : 'float32');
    const tfOut = await outcome(async () => {
      // NMS's wrappers are async (their outputs' length is read from the GPU); await takes both.
      const out = await (tfModule as unknown as Record<string, (...a: unknown[]) => tf.Tensor | Record<string, tf.Tensor>>)[name](...pos(tensor), opts(tensor));
      if (out instanceof tf.Tensor) {
        const v = out.dataSync();
        out.dispose();
        return v;
      }
      // talAssign: { labels, boxes, targetScores, foreground, gtIndex }; yoloLoss: { loss, components }
      const { loss, ...named } = out;
      const r = {
        loss: loss ? loss.dataSync() : [],
        outputs: Object.fromEntries(Object.entries(named).map(([k, t]) => [k, t.dataSync()])),
        outputShapes: Object.fromEntries(Object.entries(named).map(([k, t]) => [k, t.shape])),
      };
      Object.values(out).forEach((t) => t.dispose());
      return r;
    });
    expectSame(tfOut, want, `${name} in detloss/tfjs (cpu backend)`);

    const read = (r: unknown) => (w.result === 'outputs' ? ortNamed(r) : ortLoss(r));
    const cls = await outcome(async () => read(await (ort as unknown as Record<string, Fn>)[name](...pos(onGpu), opts(onGpu))));
    expectSame(cls, want, `${name} on OrtDetloss`);
    const free = await outcome(async () => read(await (ortModule as unknown as Record<string, Fn>)[name](...pos(onGpu), { ...opts(onGpu), device: dl.device })));
    expectSame(free, want, `${name} as detloss/ort's free function`);
  });

  it.each(wrappers().filter((w) => w.result === 'outputs' && gradInputs(w.op).length).map((w) => [w.name, w] as const))(
    "%s in detloss/tfjs: the loss's custom gradient is cpu.run's, for each differentiable input; nothing leaks",
    (name, w) => {
      const c = callOf(w);
      const tensor = (t: T) => tf.tensor(t.data, t.shape, t.data instanceof Int32Array ? 'int32' : 'float32');
      const ins = Object.fromEntries(w.args.map((k) => [k, tensor(c.inputs[k])]));
      const diff = gradInputs(w.op);
      const before = tf.memory().numTensors;
      const fn = (tfModule as unknown as Record<string, (...a: unknown[]) => Record<string, tf.Tensor>>)[name];
      const grads = tf.grads((...xs: tf.Tensor[]) => {
        const all = { ...ins, ...Object.fromEntries(diff.map((k, i) => [k, xs[i]])) };
        return fn(...w.args.map((k) => all[k]), c.options).loss;
      })(diff.map((k) => ins[k]));
      const ref = cpu.run(w.op, c.inputs, c.options);
      diff.forEach((k, i) => expect(maxRelErr(grads[i].dataSync(), ref.grad[k]), `grad.${k}`).toBeLessThan(1e-5));
      grads.forEach((g) => g.dispose());
      // (what tf.grads kept beside the gradients: the outputs of the call, made inside its tape)
      expect(tf.memory().numTensors - before, 'tensors left behind').toBeLessThanOrEqual(0);
      Object.values(ins).forEach((t) => t.dispose());
    },
  );

  it.each(wrappers().map((w) => [w.name, w] as const))("%s in detloss/tfjs: its result has the rank its type states, reduced and 'none'", async (name, w) => {
    const c = callOf(w);
    const tensor = (t: T) => tf.tensor(t.data, t.shape, t.data instanceof Int32Array ? 'int32' : 'float32');
    const fn = (tfModule as unknown as Record<string, (...a: unknown[]) => tf.Tensor>)[name];
    const call = (reduction?: string) => {
      // The good call of iou_loss leaves out what MPDIoU needs (the test above holds its refusal).
      const imageSize = w.fixed?.variant === 'mpdiou' ? [16, 16] : undefined;
      const options = { ...c.options, ...Object.fromEntries(c.optional.map((k) => [k, tensor(c.inputs[k])])), imageSize, reduction };
      const out = fn(...w.args.map((k) => tensor(c.inputs[k])), options);
      const rank = out.rank;
      out.dispose();
      return rank;
    };
    const noneRank = OP_NONE_RANK[w.op];
    if (w.result === 'matrix') return expect(call()).toBe(2);
    if (w.result === 'outputs') {
      // { labels, ... } or { loss, components }: each tensor of the shape (and rank) outputShapes
      // gives, the loss a tf.Scalar; every one disposed.
      const out = (await fn(...w.args.map((k) => tensor(c.inputs[k])), c.options)) as unknown as Record<string, tf.Tensor>;
      const ref = cpu.run(w.op, c.inputs, c.options);
      const { loss, ...named } = out;
      expect(Object.keys(named).sort(), `${name}: its outputs`).toEqual(Object.keys(ref.outputShapes!).sort());
      for (const [k, t] of Object.entries(named)) {
        expect(t.rank, `${name}: ${k}'s rank`).toBe(ref.outputShapes![k].length);
        expect(t.shape, `${name}: ${k}'s shape`).toEqual(ref.outputShapes![k]);
        expect(t.dtype, `${name}: ${k}'s dtype`).toBe(OPS[w.op].outputs![k].dtype === 'i32' ? 'int32' : 'float32');
      }
      if (ref.loss.length) expect(loss?.rank, `${name}: the loss, a tf.Scalar`).toBe(0);
      else expect(loss, `${name}: no loss`).toBeUndefined();
      Object.values(out).forEach((t) => t.dispose());
      return;
    }
    // tf.Scalar for the default, 'mean' and 'sum' (rank_sort: its [ranking, sorting], a tf.Tensor1D).
    const reduced = w.op === 'rank_sort' ? 1 : 0;
    expect(call(), `${name}, default reduction`).toBe(reduced);
    expect(call('mean'), `${name}, 'mean'`).toBe(reduced);
    if (OPS[w.op].reductions?.length === 1) return;
    expect(call('sum'), `${name}, 'sum'`).toBe(reduced);
    expect(call('none'), `${name}, 'none'`).toBe(noneRank === 'input' ? c.inputs[w.args[0]].shape.length : noneRank);
  });

  it('a fixed param given again with its own value passes, with another is refused by name on every surface', async () => {
    const g = GOOD.iou_loss();
    const [p, t] = [g.inputs.pred, g.inputs.target] as { data: Float32Array; shape: number[] }[];
    const want = cpu.run('iou_loss', { pred: p, target: t }, { variant: 'ciou' }).loss;
    expect(maxRelErr((await dl.ciou(p, t, { variant: 'ciou' })).loss, want)).toBeLessThan(1e-5);
    const refusals = [
      await outcome(() => dl.ciou(p, t, { variant: 'giou' as 'ciou' }).then((r) => r.loss)),
      await outcome(() => tfModule.ciou(tf.tensor(p.data, p.shape), tf.tensor(t.data, t.shape), { variant: 'giou' as 'ciou' }).dataSync()),
      await outcome(() => ort.ciou(onGpu(p), onGpu(t), { variant: 'giou' as 'ciou' }).then((r) => ortLoss(r))),
      await outcome(() => ortModule.ciou(onGpu(p), onGpu(t), { variant: 'giou' as 'ciou' }).then((r) => ortLoss(r))),
    ];
    for (const r of refusals) expect(r).toEqual({ code: 'invalid_param', argument: 'variant' });
  });

  it('options that are not an object are refused by name on every surface, never a TypeError', async () => {
    const g = GOOD.l1();
    const [p, t] = [g.inputs.pred, g.inputs.target] as { data: Float32Array; shape: number[] }[];
    const bad = null as never;
    const refusals = [
      await outcome(() => dl.l1(p, t, bad).then((r) => r.loss)),
      await outcome(() => tfModule.l1(tf.tensor(p.data, p.shape), tf.tensor(t.data, t.shape), bad).dataSync()),
      await outcome(() => ort.l1(onGpu(p), onGpu(t), bad).then((r) => ortLoss(r))),
      await outcome(() => ortModule.l1(onGpu(p), onGpu(t), bad).then((r) => ortLoss(r))),
    ];
    for (const r of refusals) expect(r).toEqual({ code: 'invalid_param', argument: 'options' });
  });
});
