import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DetlossContext } from '../../../src/api';
import { caseInputs, caseOptions, compareCase, parseFixtures } from '../../../src/fixtures';
import { nodeContext } from '../../helpers/node-gpu';
import { note } from '../../helpers/note';

// Issue 14: the 190 cases of iou_more.json on Dawn, and the largest error of the kernel against
// them per variant and param set (loss and gradient apart), for the README's box-loss table. The
// relative error is over elements whose reference is at least 1e-3 in magnitude.

const cases = parseFixtures(readFileSync(new URL('../../fixtures/iou_more.json', import.meta.url), 'utf8'), 'iou_more.json');

let dl: DetlossContext;
beforeAll(async () => {
  dl = await nodeContext();
});
afterAll(() => dl?.destroy());

/** The case's params without format and reduction: the row of the table it belongs to. */
const group = (p: Record<string, unknown>) => {
  const { format: _f, reduction: _r, ...rest } = p;
  return Object.entries(rest)
    .map(([k, v]) => (k === 'variant' ? String(v) : `${k}=${Array.isArray(v) ? `[${v.join(', ')}]` : String(v)}`))
    .join(' ');
};

interface Err {
  abs: number;
  rel: number;
}
const worse = (e: Err, got: ArrayLike<number>, want: number[]) => {
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    e.abs = Math.max(e.abs, d);
    if (Math.abs(want[i]) >= 1e-3) e.rel = Math.max(e.rel, d / Math.abs(want[i]));
  }
};

describe('iou_more.json on Dawn', () => {
  it('every case passes, and the measured maximum errors per variant and param', async () => {
    expect(cases.length).toBe(190);
    const bad: string[] = [];
    const table = new Map<string, { loss: Err; grad: Err; n: number }>();
    for (const c of cases) {
      const got = await dl.run(c.op, caseInputs(c), caseOptions(c));
      const cmp = compareCase(c, got);
      if (!cmp.pass) bad.push(`${c.name}: ${cmp.detail}`);
      const k = group(c.params);
      const row = table.get(k) ?? { loss: { abs: 0, rel: 0 }, grad: { abs: 0, rel: 0 }, n: 0 };
      row.n++;
      worse(row.loss, got.loss, c.expected.loss!.data);
      for (const [name, want] of Object.entries(c.expected.grad ?? {})) worse(row.grad, got.grad[name], want.data);
      table.set(k, row);
    }
    const e = (x: number) => x.toExponential(1);
    const lines = ['| variant and params | cases | loss max abs | loss max rel | grad max abs | grad max rel |', '| --- | --- | --- | --- | --- | --- |'];
    for (const [k, r] of table) lines.push(`| ${k} | ${r.n} | ${e(r.loss.abs)} | ${e(r.loss.rel)} | ${e(r.grad.abs)} | ${e(r.grad.rel)} |`);
    note(lines.join('\n'));
    expect(bad).toEqual([]);
  });
});
