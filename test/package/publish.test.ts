import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { repo, underBuildLock } from './build-lock';

// The package is ready to publish: `npm publish --dry-run` goes through every step of a publish
// but the upload, on the built dist/ (npm test builds it first). It must never publish: besides
// --dry-run, it runs --offline and points at a registry nobody listens on.

const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));

describe('npm publish --dry-run', () => {
  let status = 0;
  let report: { id: string; files: { path: string }[] } | undefined;
  let log = '';
  beforeAll(() => {
    const out = underBuildLock('node', [
      '-e',
      `const { spawnSync } = require('node:child_process');
       const r = spawnSync('npm', ['publish', '--dry-run', '--offline', '--json', '--registry', 'http://127.0.0.1:9/'], { encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, npm_config_dry_run: 'true' } });
       process.stdout.write(JSON.stringify({ status: r.status, stdout: r.stdout, stderr: r.stderr }));`,
    ]);
    const r = JSON.parse(out) as { status: number; stdout: string; stderr: string };
    status = r.status;
    log = r.stderr;
    report = JSON.parse(r.stdout || 'null')?.[pkg.name];
  }, 120_000);

  it('succeeds, as a dry run, for this name and version', () => {
    expect(status, log).toBe(0);
    expect(log).toMatch(/\(dry-run\)/);
    expect(report?.id).toBe(`${pkg.name}@${pkg.version}`);
  });

  it('needs no correction of package.json (npm fixes what it would publish otherwise)', () => {
    expect(log).not.toMatch(/auto-corrected|errors corrected|was invalid|was removed/);
  });

  it('would publish every file package.json names and nothing outside its list', () => {
    const paths = report!.files.map((f) => f.path);
    // Every target of exports (each condition), main, types and bin.
    const targets = new Set<string>([pkg.main, pkg.types, ...Object.values(pkg.bin as Record<string, string>)]);
    for (const entry of Object.values(pkg.exports as Record<string, Record<string, string>>)) Object.values(entry).forEach((t) => targets.add(t));
    for (const t of targets) expect(paths, t).toContain(t.replace(/^\.\//, ''));
    // The README and the docs pages it links to, so that its links resolve in an installed package.
    const docs = readdirSync(new URL('../../docs/', import.meta.url)).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`);
    expect(docs.length).toBeGreaterThan(1);
    for (const p of ['package.json', 'README.md', 'LICENSE', ...docs]) expect(paths).toContain(p);
    // Only what `files` lets in: dist (no maps, no tooling types), README, LICENSE, the docs pages.
    expect(paths.filter((p) => !/^(dist\/|README\.md$|LICENSE$|docs\/[a-z-]+\.md$|package\.json$)/.test(p))).toEqual([]);
    expect(paths.filter((p) => p.endsWith('.map') || p.startsWith('dist/types/tools/'))).toEqual([]);
  });

  it('package.json has what a registry page shows and bundlers read', () => {
    expect(Array.isArray(pkg.keywords) && pkg.keywords.length).toBeGreaterThan(0);
    expect(pkg.keywords).toEqual(expect.arrayContaining(['webgpu', 'object-detection', 'loss']));
    // Importing detloss runs nothing but definitions (detloss/reflect is enabled by a call), so a
    // bundler may drop what an app does not use.
    expect(pkg.sideEffects).toBe(false);
    expect(pkg.files).toEqual(expect.arrayContaining(['dist', 'README.md', 'LICENSE']));
    expect(pkg.private).toBeUndefined();
  });
});
