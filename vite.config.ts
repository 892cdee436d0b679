import { existsSync } from 'node:fs';
import { defineConfig } from 'vitest/config';
import SummaryReporter from './test/helpers/summary-reporter.ts';

// Node-side WebGPU (the `webgpu` package, Dawn) needs a Vulkan loader and a
// driver. Chromium's SwiftShader ships both; point Dawn at them before vitest
// forks its workers (they inherit this environment).
const chromiumLib = '/usr/lib/chromium';
if (existsSync(`${chromiumLib}/vk_swiftshader_icd.json`)) {
  process.env.VK_ICD_FILENAMES ??= `${chromiumLib}/vk_swiftshader_icd.json`;
  process.env.LD_LIBRARY_PATH = [process.env.LD_LIBRARY_PATH, chromiumLib].filter(Boolean).join(':');
}

export default defineConfig({
  build: {
    target: 'es2022',
    sourcemap: true,
    // A library: apps minify it in their own build. Unminified, classes keep their names, so a
    // DetlossError prints as one (not as "e [DetlossError]") and stack traces read.
    minify: false,
    lib: {
      entry: { index: 'src/index.ts', cli: 'src/tools/cli.ts' },
      formats: ['es'],
    },
    rollupOptions: {
      external: [/^node:/, 'puppeteer-core'],
      output: { banner: (chunk: { name: string }) => (chunk.name === 'cli' ? '#!/usr/bin/env node' : '') },
    },
  },
  test: {
    include: ['test/**/*.test.ts'],
    reporters: ['default', new SummaryReporter()],
    testTimeout: 60_000,
    hookTimeout: 180_000,
  },
});
