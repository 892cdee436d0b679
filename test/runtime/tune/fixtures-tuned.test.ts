// Every fixture case passes under tuned plans, on Node's WebGPU over SwiftShader. The context first
// runs every case (so its usage holds every op family and size class of the fixtures), then tunes
// them all with candidates that leave out the software plan's values (workgroups of 32 or 128
// lanes, 256 or 4096 threads, trees of 32 lanes adding 2 partials each, a workgroup or a subgroup
// per row): every plan chosen differs from the context's. Then every case runs again under the
// plan tuned for its family and size class (an empty one, with no rows, has nothing to tune).
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { caseInputs, caseOptions, compareCase, parseFixtures } from '../../../src/fixtures';
import { OPS } from '../../../src/ops/registry';
import { nodeContext } from '../../helpers/node-gpu';

const dir = new URL('../../fixtures/', import.meta.url);
const cases = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .flatMap((f) => parseFixtures(readFileSync(new URL(f, dir), 'utf8'), f))
  .filter((c) => OPS[c.op]?.gpu);

describe('the fixtures under tuned plans', { timeout: 600_000 }, () => {
  it('every fixture case of every GPU op passes, each fused op under the plan tuned for its family and size class', async () => {
    const dl = await nodeContext();
    for (const c of cases) await dl.run(c.op, caseInputs(c), caseOptions(c)).catch(() => undefined);
    const t0 = performance.now();
    const record = await dl.tune({
      search: 'exhaustive',
      reps: 1,
      budgetMs: 400_000,
      candidates: { maxThreads: [256, 4096], workgroupSize: [32, 128], vectorWidth: [1, 4], reduceLanes: [32], reducePer: [2], rows: ['workgroup', 'subgroup'] },
    });
    console.log(`tuned ${record.plans.length} family and size classes of the fixtures in ${Math.round(performance.now() - t0)} ms`);
    const families = new Set(record.plans.map((c) => c.family));
    expect(families.size).toBeGreaterThanOrEqual(15);
    for (const c of record.plans) expect([32, 128]).toContain(c.plan.workgroupSize);
    const bad: string[] = [];
    let tuned = 0;
    for (const c of cases) {
      try {
        const cmp = compareCase(c, await dl.run(c.op, caseInputs(c), caseOptions(c)));
        if (!cmp.pass) bad.push(`${c.name}: ${cmp.detail}`);
        // An empty case (no rows) is not tuned: nothing of it depends on a plan.
        const empty = Object.values(c.inputs).some((t) => t.shape[0] === 0);
        const fused = !OPS[c.op].gpu!.program && !empty;
        const ran = dl.stats().lastCall?.tunedPlan;
        if (fused && !ran) bad.push(`${c.name}: ran the context's plan, not a tuned one`);
        if (ran) tuned++;
      } catch (e) {
        bad.push(`${c.name}: threw ${(e as Error).message}`);
      }
    }
    expect(bad).toEqual([]);
    expect(tuned).toBeGreaterThanOrEqual(600);
    dl.destroy();
  });
});
