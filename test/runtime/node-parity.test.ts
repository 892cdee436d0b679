import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { caseInputs, caseOptions, compareCase, parseFixtures } from '../../src/fixtures';
import { OPS } from '../../src/ops/registry';
import { nodeContext } from '../helpers/node-gpu';

// The same fixtures as the Chromium parity test, on Node's WebGPU (Dawn): a second WebGPU
// implementation running the kernels, and a fast loop while working on a shader.
const dir = new URL('../fixtures/', import.meta.url);
const cases = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .flatMap((f) => parseFixtures(readFileSync(new URL(f, dir), 'utf8'), f))
  .filter((c) => OPS[c.op]?.gpu);

/** The cases a context gets wrong, each with the first offending element or the error. */
async function failures(dl: Awaited<ReturnType<typeof nodeContext>>, list: typeof cases): Promise<string[]> {
  const bad: string[] = [];
  for (const c of list) {
    try {
      const cmp = compareCase(c, await dl.run(c.op, caseInputs(c), caseOptions(c)));
      if (!cmp.pass) bad.push(`${c.name}: ${cmp.detail}`);
    } catch (e) {
      bad.push(`${c.name}: threw ${(e as Error).message}`);
    }
  }
  return bad;
}

describe('GPU parity on Node WebGPU (Dawn)', () => {
  it('every fixture case of every GPU op passes', async () => {
    const dl = await nodeContext();
    expect(dl.plan.kind).toBe(dl.adapter.isFallbackAdapter ? 'software' : 'hardware');
    expect(await failures(dl, cases)).toEqual([]);
    expect(cases.length).toBeGreaterThanOrEqual(664);
    dl.destroy();
  });
  it("every fixture case passes under the hardware plan too (forced here), whose reduction is a multi-level tree", async () => {
    // Few lanes and few partials per lane, so that even small cases take several tree levels.
    const dl = await nodeContext({ plan: 'hardware' });
    expect(dl.plan.kind).toBe('hardware');
    expect(await failures(dl, cases)).toEqual([]);
    dl.destroy();
  });
  it('every fixture case of every row op passes with a subgroup per row (the hardware plan, rowThreshold 0)', async () => {
    const dl = await nodeContext({ plan: { kind: 'hardware', rowThreshold: 0, rowLanes: 'subgroup' } });
    expect(dl.device.features.has('subgroups')).toBe(true); // SwiftShader has them: the test must not pass on workgroups
    const rowCases = cases.filter((c) => OPS[c.op].gpu?.rows);
    expect(await failures(dl, rowCases)).toEqual([]);
    dl.destroy();
  });
  it('every fixture case of every element-wise op passes with the scalar kernels and with the vec4 ones', async () => {
    const elementCases = cases.filter((c) => OPS[c.op].gpu?.vec4);
    expect(new Set(elementCases.map((c) => c.op))).toEqual(new Set(['l1', 'mse', 'smooth_l1', 'huber', 'balanced_l1', 'sigmoid_focal', 'varifocal', 'bce_with_logits', 'hinge', 'hinge_embedding', 'margin_ranking', 'exponential']));
    for (const vectorWidth of [1, 4] as const) {
      const dl = await nodeContext({ plan: { vectorWidth } });
      const kernels = new Set<string>();
      const bad: string[] = [];
      for (const c of elementCases) {
        bad.push(...(await failures(dl, [c])));
        kernels.add(dl.stats().lastCall?.kernel ?? '');
      }
      expect(bad, `vectorWidth ${vectorWidth}`).toEqual([]);
      // vec4 where the output is a multiple of 4 elements, scalar otherwise: both ran under width 4.
      const vec4Ran = [...kernels].some((k) => k.includes('+vec4:'));
      expect(vec4Ran, [...kernels].join(', ')).toBe(vectorWidth === 4);
      dl.destroy();
    }
  });
  it('every fixture case of every row op passes with a workgroup per row (rowThreshold 0)', async () => {
    const dl = await nodeContext({ rowThreshold: 0 });
    const rowCases = cases.filter((c) => OPS[c.op].gpu?.rows);
    expect(await failures(dl, rowCases)).toEqual([]);
    expect(new Set(rowCases.map((c) => c.op))).toEqual(new Set(['quality_focal', 'distribution_focal', 'cross_entropy', 'kl_div', 'dice', 'softmax_focal', 'nll']));
    dl.destroy();
  });
});
