// Issue 11: the CPU reference (src/cpu) stands on its own; the op descriptors (src/ops) build on it,
// never the other way round. Reads the sources and follows their import specifiers.
import { readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { importClosure, importSpecifiers, resolveRelative, tsFilesUnder } from '../helpers/imports';

const src = fileURLToPath(new URL('../../src', import.meta.url));
const cpuDir = join(src, 'cpu');
const opsDir = join(src, 'ops');
const inside = (dir: string, file: string) => file.startsWith(dir + sep);
const rel = (f: string) => relative(src, f);

describe('src/cpu does not depend on src/ops', () => {
  const cpuFiles = tsFilesUnder(cpuDir);

  it('finds the reference files and reads their imports', () => {
    expect(cpuFiles.map(rel)).toEqual(expect.arrayContaining([join('cpu', 'iou.ts'), join('cpu', 'logits.ts'), join('cpu', 'regression.ts')]));
    // The scanner sees every form a specifier takes (and none in comments).
    const forms = `import a from './a';\nimport type { B } from "./b";\nexport { c } from './c';\nexport * from './d';\nimport './e';\ntype F = import('./f').F;\n// import x from './not-me';\n/* export { y } from './nor-me'; */`;
    expect(importSpecifiers(forms)).toEqual(['./a', './b', './c', './d', './e', './f']);
  });

  it('no file under src/cpu imports a module under src/ops', () => {
    const offending: string[] = [];
    for (const file of cpuFiles) {
      for (const spec of importSpecifiers(readFileSync(file, 'utf8'))) {
        const target = resolveRelative(file, spec);
        if (target && inside(opsDir, target)) offending.push(`${rel(file)} imports '${spec}'`);
      }
    }
    expect(offending).toEqual([]);
  });

  it('nor reaches one through another module', () => {
    const { files, unresolved } = importClosure(cpuFiles);
    expect(unresolved).toEqual([]);
    const reached = [...files].filter(([f]) => inside(opsDir, f)).map(([f, via]) => `${rel(f)} (imported by ${via && rel(via)})`);
    expect(reached).toEqual([]);
    // What the reference does depend on: itself and the error type.
    expect([...files.keys()].filter((f) => !inside(cpuDir, f)).map(rel)).toEqual(['errors.ts']);
  });

  it('the op descriptors do use the reference (the check would see an import of src/ops)', () => {
    const { files } = importClosure([join(opsDir, 'registry.ts')]);
    expect([...files.keys()].some((f) => inside(cpuDir, f))).toBe(true);
    expect([...files.keys()].filter((f) => inside(opsDir, f)).length).toBeGreaterThan(3);
  });
});

describe('src/runtime does not depend on src/cpu', () => {
  it('no runtime module reaches the CPU reference (design.md: the engine runs descriptors, the reference is the oracle)', () => {
    const runtimeDir = join(src, 'runtime');
    // layouts-gen.ts is the build-time generator (it imports the registry, whose descriptors carry
    // their CPU maths); nothing the library's entry reaches imports it.
    const files = tsFilesUnder(runtimeDir).filter((f) => !f.endsWith('layouts-gen.ts'));
    expect(files.length).toBeGreaterThan(10);
    const offending: string[] = [];
    for (const file of files) {
      for (const spec of importSpecifiers(readFileSync(file, 'utf8'))) {
        const target = resolveRelative(file, spec);
        if (target && (inside(cpuDir, target) || target === join(src, 'cpu.ts'))) offending.push(`${rel(file)} imports '${spec}'`);
      }
    }
    expect(offending).toEqual([]);
  });
});
