import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { caseInputs, caseOptions, compareCase, parseFixtures } from '../../../src/fixtures';
import { nodeContext } from '../../helpers/node-gpu';

// tal_assign and yolo_detection_loss on Node's WebGPU (Dawn) against the fixtures: the integer
// outputs exactly, the floats within tolerance; each case as one call, and again under the
// hardware launch plan.
const cases = parseFixtures(readFileSync(new URL('../../fixtures/tal.json', import.meta.url), 'utf8'), 'tal.json');

describe('tal_assign and yolo_detection_loss on the GPU', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const dl = await nodeContext();
    const r = await dl.run(c.op, caseInputs(c), caseOptions(c));
    const cmp = compareCase(c, r);
    expect(cmp.detail ?? 'ok').toBe('ok');
    expect(cmp.mismatches ?? 0).toBe(0);
    expect(r.shape).toEqual(c.expected.loss?.shape ?? [0]);
    for (const [name, want] of Object.entries(c.expected.outputs ?? {})) {
      expect(r.outputShapes?.[name], name).toEqual(want.shape);
      expect(r.outputs?.[name], name).toBeInstanceOf(want.dtype === 'i32' ? Int32Array : Float32Array);
    }
  });
});
