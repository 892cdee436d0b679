import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

// `import ... from 'x'`, `import 'x'`, `export ... from 'x'`, `import('x')`, `import type`.
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])([^'"]+)\1/g;

/** Every module specifier a TypeScript source names, in order. */
export function importSpecifiers(source: string): string[] {
  // Drop comments first, so an `import` in an example is not taken for one.
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:\\])\/\/.*$/gm, '$1');
  return [...code.matchAll(SPECIFIER)].map((m) => m[2]);
}

/** The file a relative specifier names (`./x` -> x.ts, x/index.ts; `?raw` and the like dropped), or undefined. */
export function resolveRelative(fromFile: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const base = resolve(dirname(fromFile), spec.replace(/\?.*$/, ''));
  for (const candidate of [base, `${base}.ts`, join(base, 'index.ts')]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  return undefined;
}

/** The `.ts` files under a folder. */
export const tsFilesUnder = (dir: string): string[] =>
  readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? tsFilesUnder(p) : p.endsWith('.ts') ? [p] : [];
  });

/**
 * The local modules reachable from `entries` through relative imports, each with the file that first
 * imported it (`via`), entries included (`via` undefined). Specifiers that name no file are listed in `unresolved`.
 */
export function importClosure(entries: string[]): { files: Map<string, string | undefined>; unresolved: string[] } {
  const files = new Map<string, string | undefined>(entries.map((e) => [e, undefined]));
  const unresolved: string[] = [];
  const queue = [...entries];
  while (queue.length) {
    const file = queue.shift()!;
    if (!file.endsWith('.ts')) continue; // shaders and JSON import nothing
    for (const spec of importSpecifiers(readFileSync(file, 'utf8'))) {
      if (!spec.startsWith('.')) continue;
      const target = resolveRelative(file, spec);
      if (!target) {
        unresolved.push(`${file}: ${spec}`);
        continue;
      }
      if (!files.has(target)) {
        files.set(target, file);
        queue.push(target);
      }
    }
  }
  return { files, unresolved };
}
