import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { caseInputs, caseOptions, compareCase, parseFixtures, type FixtureCase } from '../../../src/fixtures';
import { OPS } from '../../../src/ops/registry';
import { nodeContext } from '../../helpers/node-gpu';

// The same fixtures as the Chromium parity test, on Node's WebGPU (Dawn): a second WebGPU
// implementation running the kernels, and a fast loop while working on a shader.
const dir = new URL('../../fixtures/', import.meta.url);
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

/**
 * A box case moved by `offset` along x and y: the centres (cxcywh) or corners (xywh) of every box,
 * rounded to float32 there, with the expected numbers of the float64 reference on the moved boxes
 * (a loss on boxes does not change when all of them move together; the rounding changes the boxes a
 * little, and the reference sees the same change).
 */
function moved(c: FixtureCase, offset: number): FixtureCase {
  const inputs = Object.fromEntries(
    Object.entries(c.inputs).map(([k, t]) => [k, ['pred', 'target', 'a', 'b'].includes(k) ? { ...t, data: t.data.map((v, i) => (i % 4 < 2 ? Math.fround(v + offset) : v)) } : t]),
  );
  const m = { ...c, name: `${c.name} (moved ${offset})`, inputs };
  const ref = cpu.run(c.op, caseInputs(m), caseOptions(m));
  const grad = Object.fromEntries(Object.entries(ref.grad).map(([k, g]) => [k, { shape: c.expected.grad?.[k]?.shape ?? [], data: Array.from(g as ArrayLike<number>) }]));
  return { ...m, expected: { loss: { shape: ref.shape, data: Array.from(ref.loss) }, grad } };
}

// Each test runs every fixture case (1,153): the hang guard grows with them, 3 minutes.
describe('GPU parity on Node WebGPU (Dawn)', { timeout: 180_000 }, () => {
  it('every box case in cxcywh or xywh, moved 1e5 from the origin, still passes against the reference on the moved boxes', async () => {
    // At x = 1e5 a float32 step is 0.0078: a kernel that formed corners there (instead of relative to
    // the target box, boxes.wgsl pair_origin) would lose the boxes' sizes and offsets.
    const dl = await nodeContext();
    const boxCases = cases.filter((c) => (c.op === 'iou_loss' || c.op === 'pairwise_iou') && ['cxcywh', 'xywh'].includes(String(c.params.format)));
    expect(boxCases.length).toBeGreaterThanOrEqual(40);
    expect(await failures(dl, boxCases.map((c) => moved(c, 1e5)))).toEqual([]);
    dl.destroy();
  });
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
