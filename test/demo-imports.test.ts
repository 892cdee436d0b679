// The demo is what a user reads to learn the API, so its apps import what a user's app can: the
// package's public entries `detloss` and `detloss/tfjs`, TF.js, and their own files. Never the
// repository's internals (src/, bench/, test/), which a user does not have. Reads the sources.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { importSpecifiers, resolveRelative, tsFilesUnder } from './helpers/imports';

const demo = fileURLToPath(new URL('../demo', import.meta.url));
/** Vite's config is the build's, not an app's: it may import vite and node:. */
const CONFIG = join(demo, 'vite.config.ts');
const APPS = ['playground', 'detection', 'trainer'];

/** The package names an app may import: the public entries, and TF.js's packages (and their subpaths). */
const PUBLIC = new Set(['detloss', 'detloss/tfjs']);
const TFJS = /^@tensorflow\/tfjs(-[a-z0-9-]+)?(\/|$)/;

const inside = (dir: string, file: string) => file.startsWith(dir + sep);
const rel = (f: string) => relative(demo, f);
/** The app a file belongs to (its folder under demo/), or undefined for the shared files in demo/ itself. */
const appOf = (file: string) => APPS.find((a) => inside(join(demo, a), file));

/**
 * What is wrong with one import of `file`: a bare name other than the allowed ones; a path that
 * leaves demo/, names no file, or reaches into another app. Undefined when it is fine.
 */
function importProblem(file: string, spec: string): string | undefined {
  if (!spec.startsWith('.') && !spec.startsWith('/')) {
    return PUBLIC.has(spec) || TFJS.test(spec) ? undefined : `imports '${spec}', which is not detloss, detloss/tfjs or a TF.js package`;
  }
  if (spec.startsWith('/')) return `imports '${spec}', an absolute path`;
  const target = resolve(dirname(file), spec.replace(/[?#].*$/, ''));
  if (!inside(demo, target)) return `imports '${spec}', outside demo/`;
  const found = file.endsWith('.html') ? (existsSync(target) && statSync(target).isFile() ? target : undefined) : resolveRelative(file, spec);
  if (!found) return `imports '${spec}', which names no file`;
  const from = appOf(file);
  const to = appOf(found);
  if (from && to && from !== to) return `imports '${spec}', a file of another app (${to})`;
  return undefined;
}

/** What a page loads: its module scripts and stylesheets (`src` / `href` of <script> and <link>), data: URLs aside. */
function pageLoads(html: string): string[] {
  const tags = html.match(/<(script|link)\b[^>]*>/g) ?? [];
  return tags.flatMap((tag) => {
    const url = /\b(?:src|href)\s*=\s*["']([^"']+)["']/.exec(tag)?.[1];
    return url && !url.startsWith('data:') ? [url] : [];
  });
}

/** Every import of `file` (a .ts source or an .html page) that breaks the rule, as `file: problem`. */
function problemsIn(file: string, source: string): string[] {
  const specs = file.endsWith('.html') ? pageLoads(source) : importSpecifiers(source);
  return specs.flatMap((spec) => {
    const p = importProblem(file, spec);
    return p ? [`${rel(file)} ${p}`] : [];
  });
}

const htmlFilesUnder = (dir: string): string[] =>
  readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (n === 'dist' || n === 'node_modules') return [];
    return statSync(p).isDirectory() ? htmlFilesUnder(p) : p.endsWith('.html') ? [p] : [];
  });

describe('the demo imports only the public package, TF.js and its own files', () => {
  const sources = tsFilesUnder(demo).filter((f) => f !== CONFIG && !inside(join(demo, 'dist'), f));
  const pages = htmlFilesUnder(demo);

  it('finds every app: its page and its sources', () => {
    for (const app of APPS) {
      expect(pages.map(rel)).toContain(join(app, 'index.html'));
      expect(sources.filter((f) => appOf(f) === app).length, app).toBeGreaterThan(1);
    }
  });

  it('every import of every source, and every script and stylesheet of every page, is allowed', () => {
    const problems = [...sources, ...pages].flatMap((f) => problemsIn(f, readFileSync(f, 'utf8')));
    expect(problems).toEqual([]);
  });

  it('each app does import the package, by its public name', () => {
    const names = (app: string) => new Set(sources.filter((f) => appOf(f) === app).flatMap((f) => importSpecifiers(readFileSync(f, 'utf8'))));
    expect(names('playground')).toContain('detloss');
    expect(names('detection')).toContain('detloss');
    expect(names('trainer')).toContain('detloss/tfjs');
  });

  it('the check refuses what it should (a file of the playground that imported these would fail it)', () => {
    const file = join(demo, 'playground', 'timing.ts');
    const bad = [
      "import { median } from '../../src/tools/stats';",
      "import { TFJS_LOSSES } from '../../bench/tfjs-losses';",
      "import * as dl from 'detloss/ort';",
      "import { runCpu } from 'detloss/src/cpu';",
      "import puppeteer from 'puppeteer-core';",
      "import { rng } from '../trainer/data';",
      "import { x } from './no-such-file';",
      "const m = await import('/src/index.ts');",
    ];
    for (const line of bad) expect(problemsIn(file, line), line).toHaveLength(1);
    const good = [
      "import { cpu } from 'detloss';",
      "import * as detloss from 'detloss/tfjs';",
      "import * as tf from '@tensorflow/tfjs-core';",
      "import '@tensorflow/tfjs-core/dist/register_all_gradients';",
      "import { gpuCapable } from './compute';",
    ];
    for (const line of good) expect(problemsIn(file, line), line).toEqual([]);
    const page = join(demo, 'trainer', 'index.html');
    expect(problemsIn(page, '<script type="module" src="../../src/index.ts"></script>')).toHaveLength(1);
    expect(problemsIn(page, '<script type="module" src="./main.ts"></script><link rel="stylesheet" href="../style.css" />')).toEqual([]);
  });
});
