import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { wgslStripComments } from '../scripts/wgsl-strip.mjs';

const root = fileURLToPath(new URL('.', import.meta.url));
const repo = fileURLToPath(new URL('..', import.meta.url));

// The in-page demo: detloss straight from ../src (WGSL through `?raw`), no prebuild. Output: demo/dist.
// Two pages: index.html (the loss playground and timing) and train.html (a detector head trained with
// detloss/tfjs against the same losses in TF.js ops).
// `npm run demo` prints the URL to open (the info level); the build stays quiet.
export default defineConfig(({ command }) => ({
  root,
  base: './',
  // The shaders as the package ships them (the layout table is keyed by that text).
  plugins: [wgslStripComments()],
  logLevel: command === 'build' ? 'warn' : 'info',
  server: { host: 'localhost', fs: { allow: [repo] } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    rolldownOptions: { input: { index: `${root}index.html`, train: `${root}train.html` } },
  },
}));
