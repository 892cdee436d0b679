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
  it('equals ../shared/fixtures byte for byte, when it is beside the repo', () => {
    if (!existsSync(shared)) {
      expect(names.length).toBeGreaterThan(0);
      return;
    }
    const sharedNames = readdirSync(shared).filter((f) => f.endsWith('.json'));
    expect(names.sort()).toEqual(sharedNames.sort());
    for (const f of sharedNames) {
      const same = readFileSync(new URL(f, shared)).equals(readFileSync(new URL(f, local)));
      expect(same, `test/fixtures/${f} differs from ../shared/fixtures/${f}: copy it again`).toBe(true);
    }
  });
});
