// Values the host refuses (invalid_value) but cannot see on the device: a label that is no class
// and not ignoreIndex (cross_entropy, nll, softmax_focal), a target other than -1/+1 (hinge,
// hinge_embedding, margin_ranking, exponential), outside [0, 1] (sigmoid_focal, varifocal) or
// [0, k-1) (distribution_focal), a negative or non-finite samplesPerClass (class_balanced_focal).
// On the device such a value poisons what it reaches: its 'none' element is NaN (every labelled
// row for a class count, which enters every class's weight), and that element's gradient, hence
// 'mean' and 'sum' (and the 'mean' denominator where the op has one); the other elements keep the
// reference's values.
// runResident hands its outputs over before the GPU's value checks report (dl.flush() throws
// their invalid_value): what is held here is the kernels' own output, and then that refusal.
// Also: an ignored row's weight does not enter the 'mean' denominator summed on the device.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { DetlossError } from '../../../src/errors';
import type { Detloss } from '../../../src/runtime/context';
import { nodeContext } from '../../helpers/node-gpu';
import { ROW_OPS, breaches, destroyUploads, kernelContexts, problem, readResident, upload, withValue, type T } from '../../fuzz/nonfinite';

let ctx: Record<string, Detloss> = {};
beforeAll(async () => {
  ctx = await kernelContexts(nodeContext);
});
afterAll(() => Object.values(ctx).forEach((d) => d.destroy()));

const N = 8;
const C = 5;

interface BadCase {
  op: string;
  input: string;
  /** Values the host refuses. */
  values: number[];
  options?: Record<string, unknown>;
  /** Flat positions in the input that get the bad value. */
  at: number[];
  /** The 'none' elements they poison. */
  poisoned: number[];
  /** A valid value for those positions: the reference for the other elements. */
  valid: number;
}

const pm1 = [0, 2, 0.5, -0, NaN, Infinity, -Infinity];
const CASES: BadCase[] = [
  ...['cross_entropy', 'nll', 'softmax_focal'].flatMap((op): BadCase[] => [
    { op, input: 'labels', values: [C, C + 7, -1, 2 ** 31 - 1, -(2 ** 31)], at: [0, 5], poisoned: [0, 5], valid: 1 },
    // ignoreIndex -1: the -100 of row 4 is then no class and not ignored
    { op, input: 'labels', values: [-100], options: { ignoreIndex: -1 }, at: [4], poisoned: [4], valid: 1 },
  ]),
  ...['hinge', 'hinge_embedding', 'margin_ranking', 'exponential'].map((op): BadCase => ({ op, input: 'targets', values: pm1, at: [0, 5], poisoned: [0, 5], valid: 1 })),
  { op: 'sigmoid_focal', input: 'targets', values: [-0.5, 1.5, Infinity, -Infinity], at: [0, 5], poisoned: [0, 5], valid: 1 },
  { op: 'varifocal', input: 'targets', values: [-0.5, 1.5, Infinity, -Infinity], at: [0, 27], poisoned: [0, 27], valid: 0 },
  { op: 'distribution_focal', input: 'targets', values: [-0.5, C - 1, C + 2, NaN, Infinity, -Infinity], at: [0, 5], poisoned: [0, 5], valid: 1.5 },
  // a count enters every class's weight (their sum): every element of a labelled row (rows 3, 7 are background)
  {
    op: 'class_balanced_focal',
    input: 'samplesPerClass',
    values: [-1, NaN, Infinity, -Infinity],
    at: [2],
    poisoned: Array.from({ length: N * C }, (_, k) => k).filter((k) => Math.floor(k / C) % 4 !== 3),
    valid: 5,
  },
];

const contextsOf = (op: string) => (ROW_OPS.has(op) ? ['scalar', 'workgroup', 'subgroup'] : op === 'class_balanced_focal' ? ['scalar'] : ['scalar', 'vec4']);

/** runResident on tensors on the device, read back; `late` is what dl.flush() then throws (undefined if nothing). */
async function resident(dl: Detloss, op: string, inputs: Record<string, T>, options: Record<string, unknown>) {
  const u = upload(dl, inputs);
  try {
    const got = await readResident(dl, await dl.runResident(op, u as never, options as never));
    const late = await dl.flush().then(
      () => undefined,
      (e: unknown) => e,
    );
    return { ...got, late };
  } finally {
    destroyUploads(u);
  }
}

describe('an invalid value on the device poisons its elements: NaN, never a finite number', () => {
  it.each(CASES.map((c) => [`${c.op} ${c.input}${c.options ? ` ${JSON.stringify(c.options)}` : ''}`, c] as const))('%s', async (_, c) => {
    const found: string[] = [];
    const base = problem(c.op, N, C, c.options);
    const weight: T = { data: Float32Array.from({ length: c.op === 'varifocal' || c.op === 'class_balanced_focal' ? N * C : N }, (_, i) => 0.5 + (i % 3) / 2), shape: [] };
    weight.shape = c.op === 'varifocal' || c.op === 'class_balanced_focal' ? [N, C] : [N];
    const clean = { ...base.inputs, weight, [c.input]: withValue(base.inputs[c.input], c.valid, c.at) };
    const refRun = cpu.run(c.op, clean as never, { ...base.options, reduction: 'none' } as never);
    const ref = refRun.loss;
    for (const v of c.values) {
      const inputs = { ...clean, [c.input]: withValue(base.inputs[c.input], v, c.at) };
      for (const name of contextsOf(c.op)) {
        for (const reduction of ['none', 'mean', 'sum']) {
          const tag = `${c.input}=${v} ${reduction} ${name}`;
          const got = await resident(ctx[name], c.op, inputs, { ...base.options, reduction });
          const late = got.late;
          if (!(late instanceof DetlossError && late.code === 'invalid_value' && late.argument === c.input)) found.push(`${tag}: dl.flush() gave ${String(late)}, not invalid_value naming ${c.input}`);
          if (reduction !== 'none') {
            if (!Number.isNaN(got.loss[0])) found.push(`${tag}: ${got.loss[0]}, not NaN`);
            continue;
          }
          for (let i = 0; i < ref.length; i++) {
            const want = c.poisoned.includes(i) ? NaN : ref[i];
            const ok = Number.isNaN(want) ? Number.isNaN(got.loss[i]) : Math.abs(got.loss[i] - want) <= 1e-5 * (1 + Math.abs(want));
            if (!ok) found.push(`${tag}: loss[${i}] = ${got.loss[i]}, want ${want}`);
          }
          // the gradient of a poisoned element is NaN too; the others are the reference's
          for (const [g, rg] of Object.entries(refRun.grad)) {
            const per = rg.length / ref.length;
            for (let k = 0; k < rg.length; k++) {
              const poisoned = c.poisoned.includes(Math.floor(k / per));
              const v = got.grad[g][k];
              const ok = poisoned ? Number.isNaN(v) : Math.abs(v - rg[k]) <= 1e-5 * (1 + Math.abs(rg[k]));
              if (!ok) found.push(`${tag}: grad.${g}[${k}] = ${v}, want ${poisoned ? NaN : rg[k]}`);
            }
          }
        }
      }
    }
    expect(found).toEqual([]);
  });
});

describe("the 'mean' denominator summed on the device leaves an ignored row's weight out, as the reference does", () => {
  // Row 4 is ignored: its weight (NaN or infinite) makes its 'none' element and the reduced loss
  // NaN (weight * 0), but it is no share of the denominator sum(weight_i * classWeight[y_i]), so
  // the other rows' gradients keep the reference's finite values.
  it.each(['cross_entropy', 'nll', 'softmax_focal'].map((op) => [op]))('%s', async (op) => {
    const found: string[] = [];
    const base = problem(op, N, C);
    for (const v of [NaN, Infinity, -Infinity]) {
      const weight: T = { data: Float32Array.from({ length: N }, (_, i) => (i === 4 ? v : 1 + i / 8)), shape: [N] };
      const inputs = { ...base.inputs, weight };
      const options = { ...base.options, reduction: 'mean' };
      const ref = cpu.run(op, inputs as never, options as never);
      const refNone = cpu.run(op, inputs as never, { ...options, reduction: 'none', grad: false } as never).loss;
      expect(Number.isNaN(ref.loss[0]), 'the reference').toBe(true);
      for (const name of ['scalar', 'workgroup']) {
        const got = await resident(ctx[name], op, inputs, options);
        if (got.late) found.push(`weight[4]=${v} ${name}: dl.flush() threw ${String(got.late)}`);
        found.push(...breaches(got, ref, refNone).map((b) => `weight[4]=${v} ${name}: ${b}`));
      }
    }
    expect(found).toEqual([]);
  });
});
