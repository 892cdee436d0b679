#!/usr/bin/env node
// After `tsc -p tsconfig.build.json`: makes dist/types resolve under every moduleResolution.
// tsc copies the sources' extensionless relative specifiers ('./api') into the declarations;
// Bundler resolves them, NodeNext and Node16 do not (TS2834) and type every export as `any`.
// Each relative specifier becomes the emitted file's `.js` name ('./api.js', './cpu/index.js'),
// The WebGPU types the declarations name (GPUDevice) come from the consumer's TypeScript where it
// has them, else from @webgpu/types, a dependency: TypeScript 7's DOM lib declares them, so a
// reference to @webgpu/types there declares each twice (TS2300) and dist/types references none;
// package.json's `types@<7` condition serves TypeScript 5 dist/types-ts5, one file per entry that
// references @webgpu/types and re-exports the entry. dist/types/no-dom.d.ts (types/no-dom.d.ts,
// `detloss/no-dom`) is for projects without the DOM lib.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
  if (out !== text) writeFileSync(file, out);
}
if (!existsSync(join(root, 'index.d.ts'))) throw new Error('fix-dts: dist/types/index.d.ts is missing');

// TypeScript 5: an entry per package.json export, referencing @webgpu/types (which TS 5's DOM lib lacks).
const ts5 = resolve(root, '..', 'types-ts5');
rmSync(ts5, { recursive: true, force: true });
mkdirSync(ts5);
const pkg = JSON.parse(readFileSync(resolve(root, '..', '..', 'package.json'), 'utf8'));
for (const [sub, entry] of Object.entries(pkg.exports)) {
  const want = entry['types@<7'];
  if (!want) continue;
  const types = resolve(root, '..', '..', entry.types);
  const shim = resolve(root, '..', '..', want);
  if (dirname(shim) !== ts5 || !existsSync(types)) throw new Error(`fix-dts: export '${sub}' maps types@<7 to ${want}, types to ${entry.types}: want dist/types-ts5/<name>.d.ts beside an existing declaration`);
  const spec = relative(ts5, types).replace(/\\/g, '/').replace(/\.d\.ts$/, '.js');
  const doc = `// TypeScript 5's view of detloss${sub.slice(1)}: the WebGPU types from @webgpu/types, then the entry itself.`;
  writeFileSync(shim, `${doc}\n/// <reference types="@webgpu/types" />\nexport * from '${spec}';\n`);
}
copyFileSync(resolve(root, '..', '..', 'types', 'no-dom.d.ts'), join(root, 'no-dom.d.ts'));

// The free functions of detloss/tfjs and detloss/ort are made from the wrapper catalogue and
// exported in one destructuring (`export const { l1, mse, ... } = ...`), which tsc writes as one
// declaration of every name with its type spelled out and no doc comment. Each becomes its own
// declaration, typed by the module's mapped type over the catalogue, under the doc comment of its
// entry in the catalogue (WRAPPERS in catalogue.d.ts), so an editor shows it as for a method.
const ts = (await import('typescript')).default;
const FREE_FUNCTIONS = { 'frameworks/tfjs.d.ts': 'TfWrappers', 'frameworks/ort.d.ts': 'OrtFreeWrappers' };
const parse = (file) => ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
const catalogue = parse(join(root, 'catalogue.d.ts'));
/** Each wrapper's doc comment, by name. */
const docs = new Map();
for (const stmt of catalogue.statements) {
  if (!ts.isVariableStatement(stmt)) continue;
  const decl = stmt.declarationList.declarations.find((d) => d.name.getText(catalogue) === 'WRAPPERS');
  if (!decl?.type || !ts.isTypeLiteralNode(decl.type)) continue;
  for (const m of decl.type.members) {
    const comments = ts.getLeadingCommentRanges(catalogue.text, m.pos) ?? [];
    const doc = comments.map((c) => catalogue.text.slice(c.pos, c.end)).filter((c) => c.startsWith('/**')).at(-1);
    if (doc && m.name) docs.set(m.name.getText(catalogue), doc.replace(/\n\s*\*/g, '\n *'));
  }
}
if (docs.size === 0) throw new Error('fix-dts: found no doc comments on WRAPPERS in catalogue.d.ts');
for (const [rel, typeName] of Object.entries(FREE_FUNCTIONS)) {
  const file = join(root, rel);
  const sf = parse(file);
  const stmt = sf.statements.find(
    (s) => ts.isVariableStatement(s) && s.declarationList.declarations.length > 1 && s.declarationList.declarations.every((d) => docs.has(d.name.getText(sf))),
  );
  if (!stmt) {
    if (sf.text.includes(`: ${typeName}['`)) continue; // done by an earlier run
    throw new Error(`fix-dts: ${rel} has no declaration of the catalogue's wrappers`);
  }
  const names = stmt.declarationList.declarations.map((d) => d.name.getText(sf));
  const text = names.map((n) => `${docs.get(n)}\nexport declare const ${n}: ${typeName}['${n}'];`).join('\n');
  writeFileSync(file, sf.text.slice(0, stmt.getStart(sf)) + text + sf.text.slice(stmt.end));
}
