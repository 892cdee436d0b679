// Issue 10, item 4: the element-wise ops' vec4 kernels (four elements per thread step, 16-byte
// loads and stores). They must give what the scalar kernels give, element for element, and match
// the CPU reference, wherever the runtime takes them: a multiple of four output elements, every
// reduction, weight and gradOutput, one step or many, one chunk or several.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import type { Detloss } from '../../../src/runtime/context';
import { maxRelErr, rand } from '../../helpers/counting';
import { nodeContext } from '../../helpers/node-gpu';

let vec: Detloss;
let scalar: Detloss;
/** Small bindings: a call of 4096 elements is split into several chunks. */
let chunked: Detloss;
beforeAll(async () => {
  vec = await nodeContext({ plan: { kind: 'software', vectorWidth: 4 } });
  scalar = await nodeContext({ plan: { kind: 'software', vectorWidth: 1 } });
  chunked = await nodeContext({ plan: { kind: 'hardware', vectorWidth: 4, maxThreads: 256 }, limits: { maxStorageBufferBindingSize: 4096 } });
});
afterAll(() => [vec, scalar, chunked].forEach((d) => d?.destroy()));

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
const unit = (n: number, seed: number) => rand(n, seed, 0, 1);

/** Each vec4 op with inputs of n elements (rows of c for the logit ops). */
const CASES: { op: string; family: string; inputs(n: number): Record<string, Float32Array>; options?: Record<string, unknown> }[] = [
  { op: 'l1', family: 'regression', inputs: (n) => ({ pred: rand(n, 1), target: rand(n, 2) }) },
  { op: 'mse', family: 'regression', inputs: (n) => ({ pred: rand(n, 3), target: rand(n, 4) }) },
  { op: 'smooth_l1', family: 'regression', inputs: (n) => ({ pred: rand(n, 5), target: rand(n, 6) }), options: { beta: 0.5 } },
  { op: 'huber', family: 'regression', inputs: (n) => ({ pred: rand(n, 7), target: rand(n, 8) }), options: { delta: 0.7 } },
  { op: 'balanced_l1', family: 'regression', inputs: (n) => ({ pred: rand(n, 9), target: rand(n, 10) }) },
  { op: 'sigmoid_focal', family: 'focal', inputs: (n) => ({ logits: rand(n, 11, -8, 8), targets: unit(n, 12).map((t) => +(t > 0.8)) }) },
  { op: 'varifocal', family: 'focal', inputs: (n) => ({ logits: rand(n, 13, -8, 8), targets: unit(n, 14).map((t) => (t > 0.7 ? t : 0)) }) },
  { op: 'bce_with_logits', family: 'bce', inputs: (n) => ({ logits: rand(n, 15, -8, 8), targets: unit(n, 16) }) },
  // c = 3: pos_weight's columns do not line up with the vec4 lanes.
  { op: 'bce_with_logits', family: 'bce', inputs: (n) => ({ logits: rand(n, 17, -8, 8), targets: unit(n, 18), posWeight: rand(3, 19, 0.5, 3) }) },
];

/** bce_with_logits and varifocal take [n, c] tensors: c = 3 with the 3 columns of posWeight, else 4. */
function shaped(op: string, raw: Record<string, Float32Array>) {
  if (op !== 'bce_with_logits' && op !== 'varifocal') return raw;
  const c = raw.posWeight ? 3 : 4;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) out[k] = k === 'posWeight' ? v : { data: v, shape: [v.length / c, c] };
  return out;
}

describe('vec4 element-wise kernels', () => {
  it.each(CASES.map((c, i) => [`${c.op}#${i}`, c] as const))('%s: same numbers as the scalar kernel, and as the CPU', async (_, c) => {
    // 12 elements is 3 vec4 steps (one thread each); 4800 takes many steps per thread.
    for (const n of [12, 4800]) {
      const raw = c.inputs(n);
      const inputs = shaped(c.op, raw);
      const weight = rand(n, 21, 0, 2);
      const gradOutput = rand(n, 22, -1, 1);
      const outShape = c.op === 'bce_with_logits' || c.op === 'varifocal' ? [n / (raw.posWeight ? 3 : 4), raw.posWeight ? 3 : 4] : [n];
      for (const [options, extra] of [
        [{ reduction: 'none' }, {}],
        [{ reduction: 'none' }, { weight: { data: weight, shape: outShape }, gradOutput: { data: gradOutput, shape: outShape } }],
        [{ reduction: 'mean' }, { weight: { data: weight, shape: outShape } }],
        [{ reduction: 'sum' }, { gradOutput: new Float32Array([-0.75]) }],
      ] as [Record<string, unknown>, Record<string, unknown>][]) {
        const opts: Record<string, unknown> = { ...c.options, ...options };
        const all = { ...inputs, ...extra } as Record<string, never>;
        const label = `${c.op} n=${n} ${options.reduction} ${Object.keys(extra).join('+')}`;
        const v = await vec.run(c.op, all, opts);
        expect(vec.stats().lastCall!.kernel, label).toBe(`${c.family}+vec4:main`);
        const s = await scalar.run(c.op, all, opts);
        expect(scalar.stats().lastCall!.kernel, label).toBe(`${c.family}:main`);
        const grad = Object.keys(v.grad)[0];
        expect(grad, label).toBeDefined();
        if (options.reduction === 'none') {
          // The same per-element arithmetic: the same bits.
          expect(bits(v.loss), label).toEqual(bits(s.loss));
          expect(bits(v.grad[grad]), label).toEqual(bits(s.grad[grad]));
        } else {
          // Sums taken in another order.
          expect(maxRelErr(v.loss, s.loss), label).toBeLessThan(2e-6);
          expect(bits(v.grad[grad]), label).toEqual(bits(s.grad[grad]));
        }
        const ref = cpu.run(c.op, all, opts);
        expect(maxRelErr(v.loss, ref.loss), label).toBeLessThan(1e-4);
        expect(maxRelErr(v.grad[grad], ref.grad[grad]), label).toBeLessThan(1e-4);
      }
    }
  });

  it('splits a call into chunks that each hold whole vec4s', async () => {
    const n = 4096; // 16 KiB per tensor, bindings of 4 KiB: four chunks of 1024 elements
    const pred = rand(n, 31);
    const target = rand(n, 32);
    const ref = cpu.run('smooth_l1', { pred, target }, { reduction: 'sum' });
    const r = await chunked.run('smooth_l1', { pred, target }, { reduction: 'sum' });
    expect(chunked.stats().lastCall!.kernel).toBe('regression+vec4:main');
    // Four chunk dispatches, then the tree.
    expect(chunked.stats().lastCall!.dispatches).toBeGreaterThanOrEqual(5);
    expect(maxRelErr(r.loss, ref.loss)).toBeLessThan(2e-6);
    expect(maxRelErr(r.grad.pred, ref.grad.pred)).toBeLessThan(1e-6);
    const none = await chunked.run('smooth_l1', { pred, target }, { reduction: 'none' });
    expect(maxRelErr(none.loss, cpu.run('smooth_l1', { pred, target }, { reduction: 'none' }).loss)).toBeLessThan(1e-6);
  });

  it('leaves a size that is no multiple of 4 to the scalar kernel, with the same answer', async () => {
    for (const n of [1, 3, 4, 5, 4801]) {
      const pred = rand(n, 41);
      const target = rand(n, 42);
      const r = await vec.run('huber', { pred, target }, { reduction: 'mean' });
      expect(vec.stats().lastCall!.kernel).toBe(n % 4 === 0 ? 'regression+vec4:main' : 'regression:main');
      const ref = cpu.run('huber', { pred, target }, { reduction: 'mean' });
      expect(maxRelErr(r.loss, ref.loss)).toBeLessThan(2e-6);
      expect(maxRelErr(r.grad.pred, ref.grad.pred)).toBeLessThan(1e-6);
    }
  });

  it('takes a one-number gradOutput from a 4-byte GPU buffer (no vec4 binding of it)', async () => {
    const n = 64;
    const pred = rand(n, 51);
    const target = rand(n, 52);
    const dev = vec.device;
    const upload = (a: Float32Array) => {
      const b = dev.createBuffer({ size: a.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
      dev.queue.writeBuffer(b, 0, a as Float32Array<ArrayBuffer>);
      return b;
    };
    const go = upload(new Float32Array([2.5]));
    const res = await vec.runResident('l1', { pred: upload(pred), target: upload(target), gradOutput: go }, { reduction: 'sum' });
    expect(vec.stats().lastCall!.kernel).toBe('regression+vec4:main');
    const staging = dev.createBuffer({ size: n * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = dev.createCommandEncoder();
    enc.copyBufferToBuffer(res.grad.pred, 0, staging, 0, n * 4);
    dev.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const got = new Float32Array(staging.getMappedRange().slice(0));
    const ref = cpu.run('l1', { pred, target, gradOutput: new Float32Array([2.5]) }, { reduction: 'sum' });
    expect(maxRelErr(got, ref.grad.pred)).toBeLessThan(1e-6);
    res.release();
  });
});
