import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { repo, underBuildLock } from './build-lock';

const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));

describe('what ships', () => {
  let files: { path: string; size: number }[] = [];
  let dts: Record<string, string> = {};
  let cliMode = 0;
  beforeAll(() => {
    // One read of dist under the lock: the file list and the shipped declarations.
    const out = underBuildLock('node', [
      '-e',
      `const { execFileSync } = require('node:child_process'); const fs = require('node:fs');
       if (!fs.existsSync('dist/index.js')) throw new Error('dist/ is not built: run npm run build first (npm test does, through pretest)');
       const list = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--silent'], { encoding: 'utf8' }))[0].files;
       const cliMode = fs.statSync('dist/cli.js').mode;
       const dts = Object.fromEntries(list.filter((f) => f.path.endsWith('.d.ts')).map((f) => [f.path, fs.readFileSync(f.path, 'utf8')]));
       process.stdout.write(JSON.stringify({ list, dts, cliMode }));`,
    ]);
    ({ list: files, dts, cliMode } = JSON.parse(out));
  }, 120_000);

  it('has the library, its types, README and LICENSE', () => {
    const paths = files.map((f) => f.path);
    for (const p of ['LICENSE', 'README.md', 'docs/ops.md', 'package.json', 'dist/index.js', 'dist/reflect.js', 'dist/cli.js', 'dist/types/index.d.ts', 'dist/types/runtime/compile/reflect-wgsl.d.ts']) expect(paths).toContain(p);
  });

  it('has no source maps, no WGSL sources (dist inlines them), no sources, no types of the tooling', () => {
    const paths = files.map((f) => f.path);
    expect(paths.filter((p) => p.endsWith('.map'))).toEqual([]);
    expect(paths.filter((p) => p.endsWith('.wgsl'))).toEqual([]);
    expect(paths.filter((p) => p.startsWith('dist/types/tools'))).toEqual([]);
    expect(paths.filter((p) => /^(src|test|bench|demo|scripts|shaders)\//.test(p))).toEqual([]);
    expect(paths.filter((p) => !/^(dist\/|LICENSE$|README\.md$|docs\/[a-z-]+\.md$|package\.json$)/.test(p))).toEqual([]);
  });

  it('declarations name every relative module by its .js file (NodeNext and Node16 need it)', () => {
    expect(Object.keys(dts).length).toBeGreaterThan(0);
    const bad: string[] = [];
    for (const [path, text] of Object.entries(dts)) {
      for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])(\.{1,2}\/[^'"]*)\1/g)) {
        if (!m[2].endsWith('.js')) bad.push(`${path}: ${m[2]}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('declarations for TypeScript 5 reference @webgpu/types; those for 7 (whose DOM lib has WebGPU) reference nothing', () => {
    const REFERENCE = /^\/\/\/ <reference types="@webgpu\/types" \/>/m;
    const entries = Object.entries(pkg.exports as Record<string, Record<string, string>>).filter(([, e]) => e.import);
    expect(entries.map(([sub]) => sub).sort()).toEqual(['.', './ort', './reflect', './tfjs']);
    for (const [sub, e] of entries) {
      // TypeScript picks the first condition that applies: the versioned one must come before `types`.
      expect(Object.keys(e).slice(0, 2), sub).toEqual(['types@<7', 'types']);
      const ts5 = dts[e['types@<7'].replace(/^\.\//, '')];
      expect(ts5, `${sub}: ${e['types@<7']} ships`).toMatch(REFERENCE);
      // It is the entry itself, re-exported.
      expect(ts5).toContain(`export * from '${relative('dist/types-ts5', e.types.replace(/^\.\//, '')).replace(/\.d\.ts$/, '.js')}';`);
    }
    expect(pkg.types).toBe(pkg.exports['.']['types@<7']);
    expect(Object.entries(dts).filter(([p, text]) => p.startsWith('dist/types/') && p !== 'dist/types/no-dom.d.ts' && /<reference types=/.test(text)).map(([p]) => p)).toEqual([]);
    expect(pkg.exports['./no-dom']).toEqual({ types: './dist/types/no-dom.d.ts' });
    expect(dts['dist/types/no-dom.d.ts']).toMatch(REFERENCE);
  });

  it('the build leaves dist/cli.js executable (npx detloss in this repository runs it)', () => {
    expect(cliMode & 0o111).toBe(0o111);
  });

  it('package.json: MIT with its LICENSE, @webgpu/types a dependency, optional peers, no prepare', () => {
    expect(pkg.license).toBe('MIT');
    expect(readFileSync(join(repo, 'LICENSE'), 'utf8')).toMatch(/^MIT License[\s\S]*Copyright \(c\) 2026 the detloss contributors/);
    expect(pkg.dependencies?.['@webgpu/types']).toBeDefined();
    expect(pkg.scripts.prepare).toBeUndefined();
    for (const peer of ['puppeteer-core', 'webgpu']) {
      expect(pkg.peerDependencies?.[peer]).toBeDefined();
      expect(pkg.peerDependenciesMeta?.[peer]?.optional).toBe(true);
      expect(pkg.devDependencies?.[peer]).toBeDefined();
    }
  });
});
