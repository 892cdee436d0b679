import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureRuntimeDir } from '../../src/tools/runtime-dir';

// The CLI, the bench and the Node test helper call ensureRuntimeDir() before Dawn starts, so that
// libwayland finds a runtime folder and does not print "error: XDG_RUNTIME_DIR is invalid or not set".
describe.runIf(process.platform === 'linux')('ensureRuntimeDir: a private XDG_RUNTIME_DIR when there is none', () => {
  const saved = process.env.XDG_RUNTIME_DIR;
  const made: string[] = [];
  afterEach(() => {
    if (saved === undefined) delete process.env.XDG_RUNTIME_DIR;
    else process.env.XDG_RUNTIME_DIR = saved;
    for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  for (const [why, value] of [['unset', undefined], ['empty', ''], ['relative', 'run/user'], ['missing', join(tmpdir(), 'detloss-no-such-folder')]] as const) {
    it(`${why}: set to a new empty folder of mode 0700, once`, () => {
      if (value === undefined) delete process.env.XDG_RUNTIME_DIR;
      else process.env.XDG_RUNTIME_DIR = value;
      ensureRuntimeDir();
      const dir = process.env.XDG_RUNTIME_DIR!;
      made.push(dir);
      expect(dir).not.toBe(value);
      expect(isAbsolute(dir)).toBe(true);
      const st = statSync(dir);
      expect(st.isDirectory()).toBe(true);
      expect(st.mode & 0o777).toBe(0o700);
      ensureRuntimeDir();
      expect(process.env.XDG_RUNTIME_DIR).toBe(dir);
    });
  }

  it("a folder the user has is left as it is", () => {
    const mine = mkdtempSync(join(tmpdir(), 'detloss-mine-'));
    made.push(mine);
    process.env.XDG_RUNTIME_DIR = mine;
    ensureRuntimeDir();
    expect(process.env.XDG_RUNTIME_DIR).toBe(mine);
  });
});
