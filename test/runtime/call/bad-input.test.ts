import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { DetlossError } from '../../../src/errors';
import type { Detloss } from '../../../src/runtime/context';
import { countDevice, reset, type Counts } from '../../helpers/counting';
import { nodeContext } from '../../helpers/node-gpu';

let dl: Detloss;
let counts: Counts;
beforeAll(async () => {
  dl = await nodeContext();
  counts = countDevice(dl.device);
});
afterAll(() => dl?.destroy());

const f = (n: number) => new Float32Array(n).map((_, i) => i * 0.1);

/** [what, op, inputs, options, code, argument] */
const CASES: [string, string, Record<string, unknown>, Record<string, unknown>, string, string][] = [
  ['unknown op', 'l2', { pred: f(3), target: f(3) }, {}, 'unknown_op', 'op'],
  ['unknown parameter', 'smooth_l1', { pred: f(3), target: f(3) }, { bta: 1 }, 'unknown_param', 'bta'],
  ['a parameter of another op', 'l1', { pred: f(3), target: f(3) }, { beta: 1 }, 'unknown_param', 'beta'],
  ['unknown input', 'l1', { pred: f(3), target: f(3), targets: f(3) }, {}, 'unknown_input', 'targets'],
  ['missing input', 'l1', { pred: f(3) }, {}, 'missing_input', 'target'],
  ['length mismatch', 'mse', { pred: f(4), target: f(3) }, {}, 'shape_mismatch', 'target'],
  ['shape that disagrees with its data', 'mse', { pred: { data: f(4), shape: [5] }, target: f(4) }, {}, 'shape_mismatch', 'pred'],
  ['rank mismatch', 'mse', { pred: { data: f(4), shape: [2, 2] }, target: f(4) }, {}, 'shape_mismatch', 'pred'],
  ['Int32Array for a float input', 'l1', { pred: new Int32Array(3), target: f(3) }, {}, 'wrong_dtype', 'pred'],
  ['a plain array', 'l1', { pred: [1, 2, 3], target: f(3) }, {}, 'wrong_dtype', 'pred'],
  ['weight of the wrong size', 'huber', { pred: f(3), target: f(3), weight: f(2) }, {}, 'shape_mismatch', 'weight'],
  ['a per-class weight, as PyTorch passes it', 'cross_entropy', { logits: { data: f(6), shape: [3, 2] }, labels: Int32Array.of(0, 1, 1), weight: f(2) }, {}, 'shape_mismatch', 'weight'],
  ["gradOutput not a scalar for 'mean'", 'huber', { pred: f(3), target: f(3), gradOutput: f(3) }, {}, 'shape_mismatch', 'gradOutput'],
  ["gradOutput of the wrong size for 'none'", 'huber', { pred: f(3), target: f(3), gradOutput: f(1) }, { reduction: 'none' }, 'shape_mismatch', 'gradOutput'],
  ['weight as Int32Array', 'l1', { pred: f(3), target: f(3), weight: new Int32Array(3) }, {}, 'wrong_dtype', 'weight'],
  ['beta < 0', 'smooth_l1', { pred: f(3), target: f(3) }, { beta: -0.1 }, 'invalid_param', 'beta'],
  ['delta = 0', 'huber', { pred: f(3), target: f(3) }, { delta: 0 }, 'invalid_param', 'delta'],
  ['beta NaN', 'balanced_l1', { pred: f(3), target: f(3) }, { beta: NaN }, 'invalid_param', 'beta'],
  ['beta as a string', 'smooth_l1', { pred: f(3), target: f(3) }, { beta: '1' }, 'invalid_param', 'beta'],
  ['unknown reduction', 'l1', { pred: f(3), target: f(3) }, { reduction: 'avg' }, 'invalid_param', 'reduction'],
  ["avgFactor with 'sum'", 'l1', { pred: f(3), target: f(3) }, { reduction: 'sum', avgFactor: 2 }, 'invalid_param', 'avgFactor'],
  ['avgFactor = 0', 'l1', { pred: f(3), target: f(3) }, { avgFactor: 0 }, 'invalid_param', 'avgFactor'],
  ['grad not a boolean', 'l1', { pred: f(3), target: f(3) }, { grad: 'no' }, 'invalid_param', 'grad'],
  ['NaN with check: true', 'l1', { pred: Float32Array.of(1, NaN, 2), target: f(3) }, { check: true }, 'invalid_value', 'pred'],
];

describe.each(['cpu', 'gpu'] as const)('bad input on the %s is a DetlossError naming the argument', (where) => {
  it.each(CASES)('%s', async (_what, op, inputs, options, code, argument) => {
    reset(counts);
    const call = where === 'cpu' ? async () => cpu.run(op, inputs, options) : () => dl.run(op, inputs as never, options);
    const err = await call().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DetlossError);
    expect(err).toMatchObject({ code, argument });
    expect((err as Error).message).toContain(argument === 'op' ? op : argument);
    expect(counts.submits).toBe(0); // rejected before any GPU work
    if (op === 'cross_entropy' && argument === 'weight') expect((err as Error).message).toMatch(/per class.*is classWeight/);
  });
});

describe('the GPU takes float32 only', () => {
  it('a Float64Array is refused on the GPU and accepted by the CPU reference', async () => {
    const pred = new Float64Array([1, 2]);
    const target = new Float64Array([0, 0]);
    await expect(dl.run('l1', { pred: pred as never, target: target as never })).rejects.toMatchObject({ code: 'wrong_dtype', argument: 'pred' });
    expect(cpu.run('l1', { pred, target }).loss[0]).toBe(1.5);
  });
  it('without check, NaN is not scanned for (no extra pass)', async () => {
    const r = await dl.run('l1', { pred: Float32Array.of(1, 2), target: Float32Array.of(0, 0) }, { check: false });
    expect(r.loss[0]).toBeCloseTo(1.5);
  });
});
