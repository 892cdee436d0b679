import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseFixtures } from '../src/fixtures';

const local = new URL('./fixtures/', import.meta.url);
const shared = new URL('../../shared/fixtures/', import.meta.url);
const names = readdirSync(local).filter((f) => f.endsWith('.json'));

describe('test/fixtures', () => {
  it('every file parses and has cases', () => {
    expect(names.length).toBeGreaterThanOrEqual(11);
    for (const f of names) expect(parseFixtures(readFileSync(new URL(f, local), 'utf8'), f).length, f).toBeGreaterThan(0);
  });
  // ../shared exists in the project's workspace and in CI; a clone elsewhere tests its own copy.
  // Every shared file is here, and so is each file of ../shared/fixtures/more/ taken so far (the
  // ops built since); each copy equals its source byte for byte.
  it('equals ../shared/fixtures (and the files taken from its more/) byte for byte, when it is beside the repo', () => {
    if (!existsSync(shared)) {
      expect(names.length).toBeGreaterThan(0);
      return;
    }
    const sharedNames = readdirSync(shared).filter((f) => f.endsWith('.json'));
    const more = new URL('more/', shared);
    const moreNames = existsSync(more) ? readdirSync(more).filter((f) => f.endsWith('.json')) : [];
    for (const f of sharedNames) expect(names, `test/fixtures/${f} is missing: copy it from ../shared/fixtures`).toContain(f);
    for (const f of names) {
      const source = sharedNames.includes(f) ? new URL(f, shared) : moreNames.includes(f) ? new URL(f, more) : undefined;
      expect(source, `test/fixtures/${f} has no source in ../shared/fixtures or its more/`).toBeDefined();
      const same = readFileSync(source!).equals(readFileSync(new URL(f, local)));
      expect(same, `test/fixtures/${f} differs from its source in ../shared/fixtures: copy it again`).toBe(true);
    }
  });
  it('holds the fixtures of every op in the registry, and only those', async () => {
    const { OPS } = await import('../src/ops/registry');
    const ops = new Set(names.flatMap((f) => parseFixtures(readFileSync(new URL(f, local), 'utf8'), f).map((c) => c.op)));
    for (const op of Object.keys(OPS)) expect(ops, `no fixture case for ${op}`).toContain(op);
    for (const op of ops) expect(Object.keys(OPS), `fixtures of ${op}, which is not an op`).toContain(op);
  });
});
