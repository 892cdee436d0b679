import { readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { importSpecifiers, resolveRelative, tsFilesUnder } from './imports';

// The rooms of src/ and the one direction imports may run between them. A room is a folder or a
// file, named by its path under src/ ('runtime/call/' is every file in that folder). Each room
// has a floor; a file may import files of its own room, or of rooms on lower floors only. Rooms
// that share a floor are siblings and may not import each other.

export interface Room {
  /** Path under src/: a folder ends in '/'. */
  path: string;
  floor: number;
}

export const ROOMS: readonly Room[] = [
  { path: 'errors.ts', floor: 0 },
  { path: 'version.ts', floor: 0 },
  { path: 'cpu/', floor: 1 },
  { path: 'ops/', floor: 2 },
  { path: 'runtime/tune-types.ts', floor: 2.5 },
  { path: 'runtime/public.ts', floor: 3 },
  { path: 'runtime/device/', floor: 4 },
  { path: 'runtime/memory/', floor: 5 },
  { path: 'runtime/compile/', floor: 5 },
  { path: 'runtime/call/', floor: 6 },
  { path: 'runtime/tune/', floor: 6.5 },
  { path: 'runtime/context.ts', floor: 7 },
  { path: 'cpu.ts', floor: 8 },
  { path: 'fixtures.ts', floor: 8 },
  { path: 'catalogue.ts', floor: 8 },
  { path: 'api.ts', floor: 9 },
  { path: 'wise-iou.ts', floor: 9 },
  { path: 'frameworks/', floor: 10 },
  { path: 'index.ts', floor: 11 },
  { path: 'tools/', floor: 12 },
  // Type declarations for `?raw` imports: imports nothing.
  { path: 'wgsl.d.ts', floor: 0 },
];

/**
 * The files of the runtime that code outside it may import: the types users name, the context,
 * and the reflection entries (the table lookup and `detloss/reflect`). The layout generator, a
 * build tool, also reads the shader contract.
 */
export const RUNTIME_DOORS = ['runtime/public.ts', 'runtime/context.ts', 'runtime/compile/reflect.ts', 'runtime/compile/reflect-wgsl.ts'];
const BUILD_TOOL = { file: 'tools/layouts-gen.ts', may: ['runtime/compile/contract.ts'] };

/** The room of a file (its path under src/, '/'-separated), or undefined. */
export function roomOf(file: string): Room | undefined {
  return ROOMS.find((r) => (r.path.endsWith('/') ? file.startsWith(r.path) : file === r.path));
}

/** Every source file of src/, by its path under src/, with its text. */
export function readSources(src: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of tsFilesUnder(src)) out.set(relative(src, f).split(sep).join('/'), readFileSync(f, 'utf8'));
  return out;
}

/** The local imports of every file: path under src/ -> paths under src/ it imports. */
export function importGraph(src: string, sources: Map<string, string>): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const [file, text] of sources) {
    const targets: string[] = [];
    for (const spec of importSpecifiers(text)) {
      if (spec.endsWith('?raw')) continue;
      const target = resolveRelative(join(src, file), spec);
      if (target?.endsWith('.ts')) targets.push(relative(src, target).split(sep).join('/'));
    }
    graph.set(file, targets);
  }
  return graph;
}

/** What breaks the order: files in no room, imports down-to-up or between siblings, imports through a runtime wall. */
export function orderProblems(graph: Map<string, string[]>): string[] {
  const problems: string[] = [];
  for (const [file, targets] of graph) {
    const from = roomOf(file);
    if (!from) {
      problems.push(`${file} is in no room (add it to ROOMS in test/helpers/rooms.ts)`);
      continue;
    }
    for (const t of targets) {
      const to = roomOf(t);
      if (!to || to === from) continue;
      if (to.floor > from.floor) problems.push(`${file} (floor ${from.floor}) imports ${t} (floor ${to.floor}): an import that runs up`);
      else if (to.floor === from.floor) problems.push(`${file} imports ${t}: sibling rooms ${from.path} and ${to.path} may not import each other`);
      const outside = !file.startsWith('runtime/');
      if (outside && t.startsWith('runtime/') && !RUNTIME_DOORS.includes(t) && !(file === BUILD_TOOL.file && BUILD_TOOL.may.includes(t))) {
        problems.push(`${file} imports ${t}: code outside the runtime imports only ${RUNTIME_DOORS.join(', ')}`);
      }
    }
  }
  return problems;
}

/** Import cycles, each as the files around it (found by depth-first search; each cycle once). */
export function importCycles(graph: Map<string, string[]>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string) => {
    state.set(f, 'open');
    stack.push(f);
    for (const t of graph.get(f) ?? []) {
      if (state.get(t) === 'open') cycles.push(stack.slice(stack.indexOf(t)));
      else if (!state.has(t)) visit(t);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of [...graph.keys()].sort()) if (!state.has(f)) visit(f);
  return cycles;
}
