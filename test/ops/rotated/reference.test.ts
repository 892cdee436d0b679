import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { caseInputs, caseOptions, compareCase, parseFixtures } from '../../../src/fixtures';

/** The float64 references of rotated_iou_loss and pairwise_probiou against every public case. */

const fixtures = parseFixtures(readFileSync(new URL('../../fixtures/rotated.json', import.meta.url), 'utf8'), 'rotated');

describe('rotated boxes: CPU reference against the fixtures', () => {
  it('has every case of the fixture file', () => {
    expect(fixtures.filter((c) => c.op === 'rotated_iou_loss').length).toBe(47);
    expect(fixtures.filter((c) => c.op === 'pairwise_probiou').length).toBe(3);
  });
  it.each(fixtures.map((c) => [c.name, c] as const))('%s', (_, c) => {
    const r = cpu.run(c.op, caseInputs(c), caseOptions(c));
    const cmp = compareCase(c, r);
    expect(cmp.detail ?? 'ok').toBe('ok');
    expect(r.shape).toEqual(c.expected.loss!.shape);
    expect(Object.keys(r.grad).sort()).toEqual(Object.keys(c.expected.grad ?? {}).sort());
  });
});
