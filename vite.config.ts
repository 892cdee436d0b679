import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { defineConfig } from 'vitest/config';
import { wgslStripComments } from './scripts/wgsl-strip.mjs';
import SummaryReporter from './test/helpers/summary-reporter.ts';

// Node-side WebGPU (the `webgpu` package, Dawn) needs a Vulkan loader and a
// driver. Chromium's SwiftShader ships both; point Dawn at them before vitest
// forks its workers (they inherit this environment).
const chromiumLib = '/usr/lib/chromium';
if (existsSync(`${chromiumLib}/vk_swiftshader_icd.json`)) {
  process.env.VK_ICD_FILENAMES ??= `${chromiumLib}/vk_swiftshader_icd.json`;
  process.env.LD_LIBRARY_PATH = [process.env.LD_LIBRARY_PATH, chromiumLib].filter(Boolean).join(':');
}

// A private folder (mode 0700) for one test run: the Node tests note there which adapter they ran
// on (test/helpers/node-gpu.ts), and the summary reporter prints it. On a machine with no session,
// XDG_RUNTIME_DIR is unset and libwayland-client (which SwiftShader and ANGLE load) prints
// "error: XDG_RUNTIME_DIR is invalid or not set" each time something probes for a display; a valid
// runtime folder with no display in it makes that probe fail quietly. Only under vitest, not builds.
if (process.env.VITEST && !process.env.DETLOSS_TEST_RUN_DIR) {
  const runDir = mkdtempSync(join(tmpdir(), 'detloss-test-'));
  process.on('exit', () => rmSync(runDir, { recursive: true, force: true }));
  process.env.DETLOSS_TEST_RUN_DIR = runDir;
  const xdg = process.env.XDG_RUNTIME_DIR;
  if (!xdg || !isAbsolute(xdg) || !existsSync(xdg)) process.env.XDG_RUNTIME_DIR = runDir;
}

export default defineConfig({
  // `.wgsl?raw` imports without their comments, in the build and under vitest alike: the layout
  // table (scripts/gen-layouts.mjs, which uses the same plugin) is keyed by a hash of that text.
  plugins: [wgslStripComments()],
  build: {
    target: 'es2022',
    // No maps in the package (they were 792 kB of the tarball); set build.sourcemap here to make them.
    sourcemap: false,
    // A library: apps minify it in their own build. Unminified, classes keep their names, so a
    // DetlossError prints as one (not as "e [DetlossError]") and stack traces read.
    minify: false,
    lib: {
      entry: { index: 'src/index.ts', reflect: 'src/runtime/compile/reflect-wgsl.ts', tfjs: 'src/frameworks/tfjs.ts', ort: 'src/frameworks/ort.ts', cli: 'src/tools/cli.ts' },
      formats: ['es'],
    },
    rollupOptions: {
      // Optional peers of the CLI, imported when a command needs them.
      external: [/^node:/, 'puppeteer-core', 'webgpu', /^@tensorflow\//, /^onnxruntime-web/],
      output: { banner: (chunk: { name: string }) => (chunk.name === 'cli' ? '#!/usr/bin/env node' : '') },
      // `npx detloss` in this repository runs dist/cli.js itself (npm sets the mode only on install).
      plugins: [
        {
          name: 'detloss-cli-executable',
          async writeBundle(options: { dir?: string }) {
            const { chmodSync } = await import('node:fs');
            chmodSync(`${options.dir ?? 'dist'}/cli.js`, 0o755);
          },
        },
      ],
    },
  },
  test: {
    include: ['test/**/*.test.ts'],
    reporters: ['default', new SummaryReporter()],
    testTimeout: 60_000,
    hookTimeout: 180_000,
  },
});
