import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { caseInputs, caseOptions, compareCase, parseFixtures } from '../../src/fixtures';
import { nodeContext } from '../helpers/node-gpu';

it('regression fixtures on Dawn', async () => {
  const dl = await nodeContext();
  console.log(dl.adapter);
  const cases = parseFixtures(readFileSync(new URL('../fixtures/regression.json', import.meta.url), 'utf8'));
  const bad: string[] = [];
  for (const c of cases) {
    const r = await dl.run(c.op, caseInputs(c), caseOptions(c));
    const cmp = compareCase(c, r);
    if (!cmp.pass) bad.push(`${c.name}: ${cmp.detail}`);
  }
  expect(bad).toEqual([]);
});
