#!/usr/bin/env node
// Writes src/runtime/compile/layouts.generated.ts: the reflection of every built-in WGSL module, read with
// wgsl_reflect, so that the runtime bundle does without it. Fails (exit 1) when an op's descriptor
// and its shaders disagree. `--check` writes nothing and fails when the committed table is stale.
// Prints a line only when it writes the file or fails.
//
// The ops import their shaders with Vite's `?raw`, so the generator module is loaded through
// Vite's module runner (no config file: the repository's vite.config.ts is for the build and tests),
// with the plugin that strips the shaders' comments, as the build and the tests do: the table is
// keyed by a hash of the text the runtime sees.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runnerImport } from 'vite';
import { wgslStripComments } from './wgsl-strip.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');
const out = resolve(root, 'src/runtime/compile/layouts.generated.ts');
if (!existsSync(out)) {
  // The runtime imports the table; a first run starts from an empty one.
  writeFileSync(out, "import type { ShaderInfo } from '../public';\nexport const SHADER_LAYOUTS: Readonly<Record<string, ShaderInfo>> = {};\n");
}

const { module: gen } = await runnerImport(resolve(root, 'src/tools/layouts-gen.ts'), {
  configFile: false,
  root,
  logLevel: 'error',
  plugins: [wgslStripComments()],
});
const { source, problems, table } = gen.generateLayouts();
if (problems.length) {
  console.error(`gen-layouts: descriptors and shaders disagree:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
const old = readFileSync(out, 'utf8');
const count = Object.keys(table).length;
if (old === source) {
  // Up to date: silent, so that a build prints nothing here.
} else if (check) {
  console.error(`gen-layouts: ${gen.LAYOUTS_FILE} is stale; run \`${gen.LAYOUTS_COMMAND}\``);
  process.exit(1);
} else {
  writeFileSync(out, source);
  console.log(`gen-layouts: wrote ${gen.LAYOUTS_FILE} (${count} modules)`);
}
