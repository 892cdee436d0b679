// ops.md, Conventions: "Non-finite input is never hidden." Every element-wise and row op on the
// GPU against the float64 reference (cpu.run) with a NaN, +Inf or -Inf in each of its float
// inputs (predictions, targets, weight, classWeight, posWeight, samplesPerClass, gradOutput),
// under the rule of test/fuzz/nonfinite.ts: NaN where the reference is NaN, the same infinity
// where it is infinite, the usual agreement where it is finite; gradients skipped where a
// non-finite value reaches. Each reduction; the scalar and vec4 kernels; a thread, a workgroup and
// a subgroup per row; a reduction tree of several levels; one element and a batch; host arrays,
// and tensors on the device through run and runResident. A value the host refuses (a target of
// the margin losses, say) must be refused by both with the same code.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { DetlossError } from '../../../src/errors';
import { OPS } from '../../../src/ops/registry';
import type { Detloss } from '../../../src/runtime/context';
import { nodeContext } from '../../helpers/node-gpu';
import { NONFINITE_OPS, ROW_OPS, breaches, destroyUploads, kernelContexts, problem, readResident, spread, upload, withValue, type Problem, type T } from '../../fuzz/nonfinite';

let ctx: Record<string, Detloss> = {};
beforeAll(async () => {
  ctx = {
    ...(await kernelContexts(nodeContext)),
    // two lanes a level, one partial each: the partials of a batch go through several levels
    tree: await nodeContext({ plan: { kind: 'hardware', reduceLanes: 2, reducePer: 1, maxThreads: 64, vectorWidth: 1 } }),
  };
});
afterAll(() => Object.values(ctx).forEach((d) => d.destroy()));

/** Params beyond the problem's own, per op: the branches the rule must hold in too. */
const VARIANTS: Record<string, Record<string, unknown>[]> = {
  cross_entropy: [{ labelSmoothing: 0 }, { labelSmoothing: 0.5 }],
  softmax_focal: [{ gamma: 0 }],
  sigmoid_focal: [{ gamma: 0, alpha: -1 }],
  varifocal: [{ iouWeighted: false, alpha: 0 }],
  dice: [{ naive: true, eps: 0 }],
  kl_div: [{ classReduction: 'mean', temperature: 0.5 }],
  // gamma/alpha = 300: b overflows float32, the branch with a max() in it
  balanced_l1: [{ alpha: 0.01, gamma: 3, beta: 2 }],
  smooth_l1: [{ beta: 0 }],
  quality_focal: [{ beta: 0 }],
  margin_ranking: [{ margin: -1 }],
};

const settle = async <V>(f: () => V | Promise<V>): Promise<{ ok: true; value: V } | { ok: false; error: unknown }> => {
  try {
    return { ok: true, value: await f() };
  } catch (error) {
    return { ok: false, error };
  }
};

/**
 * Runs `pr` (with a weight and, where asked, a gradOutput) under each reduction on the contexts
 * given, host and device, and returns every breach of the rule, labelled.
 */
async function check(op: string, pr: Problem, contexts: string[], label: string, reductions: readonly ('none' | 'mean' | 'sum')[] = ['none', 'mean', 'sum']): Promise<string[]> {
  const found: string[] = [];
  for (const reduction of reductions) {
    const inputs: Record<string, T> = { ...pr.inputs };
    if (reduction !== 'none' && inputs.gradOutput && inputs.gradOutput.data.length !== 1) inputs.gradOutput = { data: inputs.gradOutput.data.slice(0, 1), shape: [1] };
    const options = { ...pr.options, reduction };
    const ref = await settle(() => cpu.run(op, inputs as never, options as never));
    const { gradOutput: _g, ...noGradOutput } = inputs;
    const refNone = ref.ok ? cpu.run(op, noGradOutput as never, { ...options, reduction: 'none', grad: false } as never).loss : new Float64Array(0);
    for (const [index, name] of contexts.entries()) {
      // 'none' adds nothing up: the tree has nothing to do; 'sum' differs from 'mean' in its scale only
      if (name === 'tree' ? reduction === 'none' : reduction === 'sum' && index > 0) continue;
      const dl = ctx[name];
      // host arrays on every context; tensors on the device through run and runResident in turn
      for (const where of ['host', index % 2 ? 'run on the device' : 'runResident'] as const) {
        const tag = `${label} ${reduction} ${name} ${where}`;
        if (where === 'host') {
          const got = await settle(() => dl.run(op, inputs as never, options as never));
          if (!ref.ok) {
            // Refused on the host (a target of the margin losses, say): the same refusal on both.
            const same = !got.ok && got.error instanceof DetlossError && ref.error instanceof DetlossError && got.error.code === ref.error.code;
            if (!same) found.push(`${tag}: the reference refused (${(ref.error as Error).message}) but the GPU ${got.ok ? 'resolved' : `threw ${(got.error as Error).message}`}`);
            continue;
          }
          if (!got.ok) found.push(`${tag}: threw ${(got.error as Error).message}`);
          else found.push(...breaches(got.value, ref.value, refNone).map((b) => `${tag}: ${b}`));
          continue;
        }
        // A value the host refuses, on the device, is nonfinite-resident.test.ts's business.
        if (!ref.ok) continue;
        const u = upload(dl, inputs);
        const got = await settle(async () => (where === 'runResident' ? readResident(dl, await dl.runResident(op, u as never, options as never)) : dl.run(op, u as never, options as never)));
        destroyUploads(u);
        if (!got.ok) found.push(`${tag}: threw ${(got.error as Error).message}`);
        else found.push(...breaches(got.value, ref.value, refNone).map((b) => `${tag}: ${b}`));
      }
    }
  }
  return found;
}

/** The contexts an op's kernels differ on: vec4 for the element-wise ops, the row strategies for the row ops. */
const contextsOf = (op: string) => (ROW_OPS.has(op) ? ['scalar', 'workgroup', 'subgroup', 'tree'] : ['scalar', 'vec4', 'tree']);

describe('a NaN or an infinity in any float input gives what the float64 reference gives (NaN where it is NaN)', () => {
  it.each(NONFINITE_OPS.map((op) => [op]))('%s', async (op) => {
    const found: string[] = [];
    let checked = 0;
    for (const params of [{}, ...(VARIANTS[op] ?? [])]) {
      // One element (one row) and a batch of 8 rows of 5 (vec4-sized where the output is); the
      // variants in a batch only.
      for (const n of Object.keys(params).length ? [8] : [1, 8]) {
        const base = problem(op, n, 5, params);
        const out = cpu.run(op, base.inputs as never, { ...base.options, reduction: 'none', grad: false } as never).shape;
        const outT = (seed: number): T => ({ data: Float32Array.from({ length: out.reduce((a, b) => a * b, 1) }, (_, i) => 0.5 + ((i * 7 + seed) % 10) / 10), shape: out });
        const withShared: Record<string, T> = { ...base.inputs, weight: outT(1), gradOutput: outT(2) };
        const floats = Object.keys(withShared).filter((k) => k === 'weight' || k === 'gradOutput' || OPS[op].inputs[k].dtype === 'f32');
        for (const name of floats) {
          for (const v of [NaN, Infinity, -Infinity]) {
            const t = withShared[name];
            const rows = name === 'weight' || name === 'gradOutput' ? out[0] : n;
            const inputs = { ...withShared, [name]: withValue(t, v, spread(t, rows)) };
            // (the host's 'mean' denominator of a NaN weight: the test below)
            const reductions = hostDenominator(op, name, v) ? (['none', 'sum'] as const) : undefined;
            found.push(...(await check(op, { inputs, options: base.options }, contextsOf(op), `${op} ${JSON.stringify(params)} n=${n} ${name}=${v}`, reductions)));
            checked++;
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(5);
    expect(found).toEqual([]);
  });
});

/** A NaN that enters the 'mean' denominator the host computes (cross_entropy, nll, softmax_focal). */
const hostDenominator = (op: string, name: string, v: number) => !!OPS[op].meanDenominator && (name === 'weight' || name === 'classWeight') && Number.isNaN(v);

describe("'mean' of cross_entropy, nll and softmax_focal with a NaN weight or classWeight", () => {
  // The denominator sum(weight_i * classWeight[y_i]) is NaN: so is the loss, as cpu.run gives it
  // and as the GPU gives it for tensors on the device (its denominator pass). With host arrays the
  // host computes it (src/runtime/call/plan.ts meanScale), and must not turn it into a refusal.
  it.each(NONFINITE_OPS.filter((op) => OPS[op].meanDenominator).map((op) => [op]))('%s: NaN on the host as on the device', async (op) => {
    const found: string[] = [];
    const base = problem(op, 8, 5);
    const weight: T = { data: new Float32Array(8).fill(1), shape: [8] };
    for (const name of ['weight', 'classWeight']) {
      const inputs = { ...base.inputs, weight, [name]: withValue(name === 'weight' ? weight : base.inputs.classWeight, NaN, [0]) };
      found.push(...(await check(op, { inputs, options: base.options }, ['scalar', 'workgroup'], `${op} ${name}=NaN`, ['mean'])));
    }
    expect(found).toEqual([]);
  });
});

describe('kl_div: a teacher logit of -Infinity in a row of nearly equal logits', () => {
  // Found by the fuzzer (seed 2026, case 49861): the row went term by term, p log p - p log q,
  // and the loss (small next to each term) was 1.3% off; p = 0 has a finite limit, kept in the
  // accurate form.
  it.each([3, 70])('c = %i: the loss and gradient to float32 precision, a thread or a workgroup per row', async (c) => {
    const student = new Float32Array(c).map((_, j) => 1e-3 * Math.sin(j + 1));
    const teacher = student.map((v, j) => v + 1e-3 * Math.cos(3 * j));
    teacher[1] = -Infinity;
    const inputs = { student: { data: student, shape: [1, c] }, teacher: { data: teacher, shape: [1, c] } };
    const options = { temperature: 10, reduction: 'none' } as const;
    const ref = cpu.run('kl_div', inputs, options);
    for (const [which, dl] of [['thread', ctx.scalar], ['workgroup', ctx.workgroup]] as const) {
      const got = await dl.run('kl_div', inputs, options);
      expect(Math.abs(got.loss[0] - ref.loss[0]), `${which}: ${got.loss[0]} vs ${ref.loss[0]}`).toBeLessThan(1e-5 * Math.abs(ref.loss[0]));
      for (let j = 0; j < c; j++) expect(Math.abs(got.grad.student[j] - ref.grad.student[j]), `${which}: grad[${j}]`).toBeLessThan(1e-5 * Math.max(...Array.from(ref.grad.student, Math.abs)));
    }
  });
});

describe('kl_div: a row of -Infinity has no softmax', () => {
  // Found by the fuzzer (seed 2026, case 2437): with a workgroup per row, whose maximum starts at
  // -3e38, a teacher row of -Infinity summed to 0, and a log(0) that is finite on some GPUs gave 0.
  it.each([1, 3, 70])('c = %i, teacher or student all -Infinity: NaN as cpu.run, a thread or a workgroup per row', async (c) => {
    for (const [which, dl] of [['thread', ctx.scalar], ['workgroup', ctx.workgroup]] as const) {
      for (const side of ['teacher', 'student'] as const) {
        const inputs = {
          student: { data: new Float32Array(c).fill(side === 'student' ? -Infinity : -54.1), shape: [1, c] },
          teacher: { data: new Float32Array(c).fill(side === 'teacher' ? -Infinity : 0.5), shape: [1, c] },
        };
        const ref = cpu.run('kl_div', inputs, { reduction: 'none' });
        const got = await dl.run('kl_div', inputs, { reduction: 'none' });
        expect(Number.isNaN(ref.loss[0]), `cpu ${side}`).toBe(true);
        expect(Number.isNaN(got.loss[0]), `${which}, ${side} all -Infinity: ${got.loss[0]}`).toBe(true);
      }
    }
  });
});
