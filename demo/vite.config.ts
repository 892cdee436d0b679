import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));
const repo = fileURLToPath(new URL('..', import.meta.url));

// The in-page demo: detloss straight from ../src (WGSL through `?raw`), no prebuild. Output: demo/dist.
// `npm run demo` prints the URL to open (the info level); the build stays quiet.
export default defineConfig(({ command }) => ({
  root,
  base: './',
  logLevel: command === 'build' ? 'warn' : 'info',
  server: { host: 'localhost', fs: { allow: [repo] } },
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', sourcemap: true },
}));
