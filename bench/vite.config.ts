import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { wgslStripComments } from '../scripts/wgsl-strip.mjs';

// Builds the benchmark page (detloss from src/, TF.js, the copy kernel) to bench/dist.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  logLevel: 'error',
  // The shaders as the package ships them (the layout table is keyed by that text).
  plugins: [wgslStripComments()],
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', minify: false },
});
