import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { nodeContext } from '../../helpers/node-gpu';

/**
 * nms_tfjs with Soft-NMS and negative scores (found by the differential fuzzer, seed 11 case 97 of
 * nms_tfjs): TF.js decays a candidate when it pops it, and a negative score rises as it decays, so
 * TF.js pops such a candidate at its stale input score. A kernel that selects by the decayed
 * scores takes the risen one first: box 1 below, at -0.5 * exp(-0.9^2) = -0.22 after box 0, before
 * box 2 at -0.3, where TF.js (and the reference) select box 2 first.
 */
describe('nms_tfjs: Soft-NMS with negative scores selects in TF.js order', () => {
  let dl: Awaited<ReturnType<typeof nodeContext>>;
  beforeAll(async () => {
    dl = await nodeContext();
  });
  afterAll(() => dl?.destroy());

  // box 1 overlaps box 0 at IoU 0.9, box 2 overlaps nothing
  const boxes = new Float32Array([0, 0, 10, 10, 0, 0, 10, 9, 20, 20, 30, 30]);
  const run = async (scores: number[], options: Record<string, unknown> = {}) => {
    const inputs = { boxes, scores: Float32Array.from(scores) };
    const o = { maxOutputSize: 3, iouThreshold: 1, softNmsSigma: 0.5, ...options };
    const g = await dl.run('nms_tfjs', inputs, o);
    const c = cpu.run('nms_tfjs', inputs, o);
    expect(Array.from(g.outputs!.selectedIndices)).toEqual(Array.from(c.outputs!.selectedIndices));
    Array.from(c.outputs!.selectedScores).forEach((v, i) => expect(Math.abs(g.outputs!.selectedScores[i] - v)).toBeLessThanOrEqual(1e-6 * Math.abs(v)));
    return Array.from(g.outputs!.selectedIndices);
  };

  it('a decayed negative score does not jump the queue; its reported score is the decayed one', async () => {
    expect(await run([-0.1, -0.5, -0.3])).toEqual([0, 2, 1]);
    const g = await dl.run('nms_tfjs', { boxes, scores: Float32Array.of(-0.1, -0.5, -0.3) }, { maxOutputSize: 3, iouThreshold: 1, softNmsSigma: 0.5 });
    expect(g.outputs!.selectedScores[2]).toBeCloseTo(-0.5 * Math.exp(-0.81), 6);
  });
  it('positive scores, a negative one after them, equal negative scores (lower index first), a limit', async () => {
    expect(await run([0.9, 0.5, 0.3])).toEqual([0, 2, 1]);
    expect(await run([0.9, -0.5, -0.3])).toEqual([0, 2, 1]);
    expect(await run([-0.1, -0.3, -0.3])).toEqual([0, 1, 2]);
    expect(await run([-0.1, -0.5, -0.3], { maxOutputSize: 2 })).toEqual([0, 2]);
    // hard NMS (sigma 0) never decays: the input order, box 1 not suppressed below IoU 1
    expect(await run([-0.1, -0.5, -0.3], { softNmsSigma: 0 })).toEqual([0, 2, 1]);
  });
});
