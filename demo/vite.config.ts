import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));
const repo = fileURLToPath(new URL('..', import.meta.url));

// The demo: two apps, each a page of its own, and a front page that links them. Output: demo/dist.
//   playground/index.html  the box playground and the GPU-vs-CPU timing (detloss)
//   trainer/index.html     a detector head trained with detloss/tfjs against the same losses in TF.js ops
// `npm run demo` prints the URL to open (the info level); the build stays quiet.
export default defineConfig(({ command }) => ({
  root,
  base: './',
  logLevel: command === 'build' ? 'warn' : 'info',
  server: { host: 'localhost', fs: { allow: [repo] } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    rolldownOptions: {
      input: { index: `${root}index.html`, playground: `${root}playground/index.html`, trainer: `${root}trainer/index.html` },
    },
  },
}));
