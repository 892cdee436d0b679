import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { caseInputs, caseOptions, compareCase, parseFixtures } from '../../../src/fixtures';
import { OPS } from '../../../src/ops/registry';

const dir = new URL('../../fixtures/', import.meta.url);
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
const cases = files.flatMap((f) => parseFixtures(readFileSync(new URL(f, dir), 'utf8'), f));
const implemented = cases.filter((c) => c.op in OPS);

describe('CPU reference against the golden fixtures', () => {
  it('covers every fixture case of every implemented op', () => {
    expect(implemented.length).toBeGreaterThan(0);
    for (const op of Object.keys(OPS)) expect(implemented.some((c) => c.op === op), op).toBe(true);
  });
  it.each(implemented.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const r = cpu.run(c.op, caseInputs(c), caseOptions(c));
    const cmp = compareCase(c, r);
    expect(cmp.detail ?? 'ok').toBe('ok');
    // An op with no loss (tal_assign) returns an empty one of shape [0].
    expect(r.shape).toEqual(c.expected.loss?.shape ?? [0]);
    for (const [name, want] of Object.entries(c.expected.outputs ?? {})) expect(r.outputShapes?.[name], name).toEqual(want.shape);
  });
});
