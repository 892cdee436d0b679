import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { wgslStripComments } from '../scripts/wgsl-strip.mjs';

const root = fileURLToPath(new URL('.', import.meta.url));
const repo = fileURLToPath(new URL('..', import.meta.url));

// The demo: three apps, each a page of its own, and a front page that links them. Output: demo/dist.
//   playground/index.html  the box playground and the GPU-vs-CPU timing (detloss)
//   detection/index.html   NMS on clustered boxes: detloss on the GPU, tf.image on TF.js, the CPU reference (detloss, TF.js)
//   trainer/index.html     a YOLO-style detector head trained with detloss/tfjs's YOLOv8 loss against the same loss in TF.js ops
//
// The apps import detloss by its package names only, as an app of yours would: `detloss` and
// `detloss/tfjs`. Here those names point at the package's sources (the entries its build starts
// from), so `npm run demo` and `npm run build:demo` work in a fresh clone without `npm run build`
// first, and the dev server reloads on a change to src/. In your app they resolve to the installed
// package's dist/ through its package.json `exports`. (tsconfig.json maps the same names for tsc.)
//
// `npm run demo` prints the URL to open (the info level); the build stays quiet.
export default defineConfig(({ command }) => ({
  root,
  base: './',
  resolve: {
    alias: [
      { find: /^detloss$/, replacement: `${repo}src/index.ts` },
      { find: /^detloss\/tfjs$/, replacement: `${repo}src/frameworks/tfjs.ts` },
    ],
  },
  // The shaders as the package ships them (the layout table is keyed by that text).
  plugins: [wgslStripComments()],
  logLevel: command === 'build' ? 'warn' : 'info',
  server: { host: 'localhost', fs: { allow: [repo] } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    rolldownOptions: {
      input: { index: `${root}index.html`, playground: `${root}playground/index.html`, detection: `${root}detection/index.html`, trainer: `${root}trainer/index.html` },
    },
  },
}));
