import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// Builds the benchmark page (detloss from src/, TF.js, the copy kernel) to bench/dist.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  logLevel: 'error',
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', minify: false },
});
