import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { wgslStripComments } from '../scripts/wgsl-strip.mjs';

// Builds the benchmark's Node entry (bench/node.ts) to bench/dist-node/node.js: detloss from src/,
// TF.js and the copy kernel bundled, so that at run time it needs nothing from node_modules but
// `webgpu` (Dawn), which stays external.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  logLevel: 'error',
  // The shaders as the package ships them (the layout table is keyed by that text).
  plugins: [wgslStripComments()],
  ssr: { noExternal: true, external: ['webgpu'] },
  build: {
    ssr: 'node.ts',
    outDir: 'dist-node',
    // One file, rewritten in place: a test building it while another runs the bench never finds it gone.
    emptyOutDir: false,
    target: 'node20',
    minify: false,
    sourcemap: false,
    rollupOptions: {
      external: ['webgpu', /^node:/],
      output: { format: 'es', entryFileNames: 'node.js' },
    },
  },
});
