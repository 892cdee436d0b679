#!/usr/bin/env node
// After `tsc -p tsconfig.build.json`: makes dist/types resolve under every moduleResolution.
// tsc copies the sources' extensionless relative specifiers ('./api') into the declarations;
// Bundler resolves them, NodeNext and Node16 do not (TS2834) and type every export as `any`.
// Each relative specifier becomes the emitted file's `.js` name ('./api.js', './cpu/index.js'),
// and index.d.ts references @webgpu/types, a dependency, since the types name GPUDevice.
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'types');
if (!existsSync(root)) throw new Error(`fix-dts: ${root} does not exist; run tsc -p tsconfig.build.json first`);

/** Node-only tooling is not part of the library's types (tsconfig.build.json excludes it too). */
rmSync(join(root, 'tools'), { recursive: true, force: true });

const walk = (dir) => readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : [join(dir, n)]));
const files = walk(root).filter((f) => f.endsWith('.d.ts'));

/** The `.js` specifier for a relative one, judged by which declaration file exists. */
function withExtension(file, spec) {
  if (/\.(m|c)?js$/.test(spec)) return spec;
  const base = resolve(dirname(file), spec);
  if (existsSync(`${base}.d.ts`)) return `${spec}.js`;
  if (existsSync(join(base, 'index.d.ts'))) return `${spec.replace(/\/$/, '')}/index.js`;
  throw new Error(`fix-dts: ${relative(root, file)} imports '${spec}', which has no declaration file`);
}

// `from './x'`, `import './x'`, `import('./x')`: every relative specifier tsc writes.
const SPECIFIER = /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])(\.{1,2}\/[^'"]*)\2/g;
for (const file of files) {
  const text = readFileSync(file, 'utf8');
  let out = text.replace(SPECIFIER, (_m, lead, q, spec) => `${lead}${q}${withExtension(file, spec)}${q}`);
  if (file === join(root, 'index.d.ts') && !out.includes('<reference types="@webgpu/types"')) {
    out = `/// <reference types="@webgpu/types" />\n${out}`;
  }
  if (out !== text) writeFileSync(file, out);
}
if (!existsSync(join(root, 'index.d.ts'))) throw new Error('fix-dts: dist/types/index.d.ts is missing');
