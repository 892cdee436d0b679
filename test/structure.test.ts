// The structure of src/: rooms with one direction of import (test/helpers/rooms.ts draws them),
// no import cycle, a runtime that outside code enters by its doors only, and runtime files a
// reader can hold. Reads the sources and follows their import specifiers; nothing is run.
import { readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { importClosure, importSpecifiers, resolveRelative, tsFilesUnder } from './helpers/imports';
import { importCycles, importGraph, orderProblems, readSources, roomOf, ROOMS } from './helpers/rooms';

const src = fileURLToPath(new URL('../src', import.meta.url));
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
    const files = tsFilesUnder(runtimeDir);
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

describe('rooms with one direction of import', () => {
  const sources = readSources(src);
  const graph = importGraph(src, sources);

  it('every file of src/ is in a room, and the rooms are the ones drawn', () => {
    expect(graph.size).toBeGreaterThan(60);
    expect([...graph.keys()].filter((f) => !roomOf(f))).toEqual([]);
    // A room that holds no file is a drawing out of date.
    expect(ROOMS.filter((r) => ![...graph.keys()].some((f) => roomOf(f) === r)).map((r) => r.path)).toEqual([]);
  });

  it('no import runs up a floor or between sibling rooms, and outside code enters the runtime by its doors', () => {
    expect(orderProblems(graph)).toEqual([]);
  });

  it('no import cycle in src/', () => {
    expect(importCycles(graph)).toEqual([]);
  });

  it('fails on a planted upward import, a planted cycle and a reach past the runtime doors', () => {
    const planted = (file: string, line: string) => {
      const copy = new Map(sources);
      copy.set(file, `${line}\n${copy.get(file)}`);
      return importGraph(src, copy);
    };
    // device/ reaching up into call/: an upward import (no cycle: entry.ts does not import constants.ts back).
    const up = planted('runtime/device/constants.ts', "import { runCall } from '../call/entry';");
    expect(orderProblems(up)).toEqual(['runtime/device/constants.ts (floor 4) imports runtime/call/entry.ts (floor 6): an import that runs up']);
    // The shader ABI importing the call planner, which imports it: a cycle, and an upward import.
    const loop = planted('runtime/compile/abi.ts', "import type { CallPlan } from '../call/plan';");
    expect(importCycles(loop)).toEqual([['runtime/call/plan.ts', 'runtime/compile/abi.ts']]);
    expect(orderProblems(loop)).toHaveLength(1);
    // memory/ and compile/ are siblings.
    expect(orderProblems(planted('runtime/memory/dummies.ts', "import { WG } from '../compile/kernel-choice';"))).toHaveLength(1);
    // An adapter reaching into a room of the runtime.
    expect(orderProblems(planted('frameworks/ort.ts', "import { runCall } from '../runtime/call/entry';"))).toEqual([
      'frameworks/ort.ts imports runtime/call/entry.ts: code outside the runtime imports only runtime/public.ts, runtime/context.ts, runtime/compile/reflect.ts, runtime/compile/reflect-wgsl.ts',
    ]);
  });

  it('no runtime file is longer than a reader can hold (250 lines)', () => {
    const long = [...sources].filter(([f, text]) => f.startsWith('runtime/') && text.split('\n').length > 250).map(([f, text]) => `${f}: ${text.split('\n').length} lines`);
    expect(long).toEqual([]);
  });
});
