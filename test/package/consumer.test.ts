import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpu } from '../../src/index';
import { openPage, serveStatic } from '../../src/tools/browser';
import { repo, underBuildLock } from './build-lock';

// The package as a consumer gets it: packed from dist/ (built by `npm run build`, which `npm test`
// runs first), installed from the tarball into a project outside the repository, then used from
// Node on Dawn, from a Vite app in Chromium, and from tsc in three resolution modes. No network:
// the tarball's one dependency (@webgpu/types) and the consumer's tools (webgpu, vite, typescript,
// puppeteer-core) come from the repository's node_modules.

const run = promisify(execFile);
const here = join(repo, 'test/package/consumer');
let project: string;

beforeAll(async () => {
  project = mkdtempSync(join(tmpdir(), 'detloss-consumer-'));
  const packed = JSON.parse(underBuildLock('npm', ['pack', '--json', '--silent', '--pack-destination', project]));
  const tarball = join(project, packed[0].filename);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'detloss-consumer', private: true, type: 'module' }));
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', '--no-package-lock', join(repo, 'node_modules/@webgpu/types'), tarball], {
    cwd: project,
  });
  for (const tool of ['webgpu', 'vite', 'typescript', 'puppeteer-core', '@tensorflow']) symlinkSync(join(repo, 'node_modules', tool), join(project, 'node_modules', tool), 'dir');
}, 120_000);
afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

const close = (got: number, want: number) => Math.abs(got - want) <= 1e-5 + 1e-4 * Math.abs(want);

describe('the packed package in a fresh project', () => {
  it('installs with its bin executable and without the tooling types', () => {
    const installed = join(project, 'node_modules/detloss');
    expect(readdirSync(join(installed, 'dist/types'))).not.toContain('tools');
    expect(readFileSync(join(project, 'node_modules/.bin/detloss'), 'utf8')).toMatch(/^#!\/usr\/bin\/env node/);
  });

  it('runs a loss on Node through Dawn, equal to the CPU reference', async () => {
    copyFileSync(join(here, 'node-run.mjs'), join(project, 'node-run.mjs'));
    const { stdout } = await run('node', ['node-run.mjs'], { cwd: project });
    const r = JSON.parse(stdout.trim().split('\n').at(-1)!);
    // smooth_l1, beta 0.5, summed: |d| < beta gives 0.5 d^2 / beta, else |d| - beta / 2.
    const d = [0.1, 0.5, 2, -1, 0.5];
    const want = d.reduce((s, x) => s + (Math.abs(x) < 0.5 ? (0.5 * x * x) / 0.5 : Math.abs(x) - 0.25), 0);
    expect(close(r.cpuLoss, want)).toBe(true);
    expect(close(r.loss, r.cpuLoss)).toBe(true);
    expect(r.grad.length).toBe(5);
    r.grad.forEach((g: number, i: number) => expect(close(g, r.cpuGrad[i])).toBe(true));
    console.log(`consumer (Node): ${r.adapter.vendor} / ${r.adapter.architecture}, loss ${r.loss}`);
  }, 60_000);

  it('builds into a Vite app that runs in Chromium, equal to the CPU reference', async () => {
    const app = join(project, 'app');
    mkdirSync(app);
    for (const f of ['index.html', 'main.js']) copyFileSync(join(here, 'app', f), join(app, f));
    await run('node', [join(project, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'warn'], { cwd: app });
    const assets = join(app, 'dist/assets');
    const js = readdirSync(assets).filter((f) => f.endsWith('.js'));
    const raw = js.reduce((s, f) => s + readFileSync(join(assets, f)).length, 0);
    const gzip = js.reduce((s, f) => s + gzipSync(readFileSync(join(assets, f))).length, 0);
    console.log(`consumer (Vite app, iou_loss only): ${(raw / 1000).toFixed(1)} kB, ${(gzip / 1000).toFixed(1)} kB gzip`);

    const page = await openPage(await serveStatic(join(app, 'dist')), 'window.appReady');
    try {
      const got = (await page.page.evaluate('window.appReady')) as { loss: number[]; grad: number[] };
      const pred = Float32Array.of(0, 0, 2, 2, 1, 1, 4, 3);
      const target = Float32Array.of(1, 1, 3, 3, 1, 0, 4, 4);
      const ref = cpu.run('iou_loss', { pred, target }, { variant: 'ciou', reduction: 'sum' });
      expect(got.loss).toHaveLength(1);
      expect(close(got.loss[0], ref.loss[0])).toBe(true);
      got.grad.forEach((g, i) => expect(Math.abs(g - ref.grad.pred[i])).toBeLessThan(1e-4 + 1e-3 * Math.abs(ref.grad.pred[i])));
      expect(page.errors).toEqual([]);
    } finally {
      await page.close();
    }
  }, 120_000);

  it("builds a TF.js app on detloss/tfjs: ciou's value and gradient (tf.valueAndGrad) equal the CPU reference", async () => {
    const app = join(project, 'tfjs-app');
    mkdirSync(app);
    for (const f of ['index.html', 'main.js']) copyFileSync(join(here, 'tfjs-app', f), join(app, f));
    await run('node', [join(project, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'warn'], { cwd: app });
    const page = await openPage(await serveStatic(join(app, 'dist')), 'window.appReady');
    try {
      const got = (await page.page.evaluate('window.appReady')) as { ok: boolean; backend: string; loss: number[]; grad: number[]; message?: string };
      expect(got.ok, got.message).toBe(true);
      expect(got.backend).toBe('webgpu');
      const pred = Float32Array.of(0, 0, 2, 2, 1, 1, 4, 3);
      const target = Float32Array.of(1, 1, 3, 3, 1, 0, 4, 4);
      const ref = cpu.run('iou_loss', { pred, target }, { variant: 'ciou', reduction: 'sum' });
      expect(got.loss).toHaveLength(1);
      expect(close(got.loss[0], ref.loss[0])).toBe(true);
      expect(got.grad).toHaveLength(8);
      got.grad.forEach((g, i) => expect(Math.abs(g - ref.grad.pred[i])).toBeLessThan(1e-4 + 1e-3 * Math.abs(ref.grad.pred[i])));
      expect(page.errors).toEqual([]);
    } finally {
      await page.close();
    }
  }, 120_000);

  it('checks its GPU against the shipped fixtures: npx detloss parity --node', async () => {
    const { stdout } = await run('npx', ['--no-install', 'detloss', 'parity', '--node'], { cwd: project, maxBuffer: 16 << 20 });
    const m = /(\d+) passed, (\d+) failed/.exec(stdout);
    expect(m, stdout.slice(-2000)).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(0);
    expect(Number(m![2])).toBe(0);
    console.log(`consumer (npx detloss parity --node): ${m![0]}`);
  }, 120_000);

  /** `file(line,col): error TSxxxx: message` lines (continuation lines joined to their error). */
  function tscErrors(out: string): { file: string; line: number; text: string }[] {
    const errors: { file: string; line: number; text: string }[] = [];
    for (const l of out.split('\n')) {
      const m = /^(\S+?)\((\d+),\d+\): error (TS\d+: .*)$/.exec(l);
      if (m) errors.push({ file: m[1], line: Number(m[2]), text: m[3] });
      else if (errors.length && l.startsWith(' ')) errors.at(-1)!.text += `\n${l.trim()}`;
    }
    return errors;
  }

  /** The consumer's compilers: TypeScript 5 (the repository's) and 7 (the devDependency typescript7, a native build). */
  const TSC = { 5: 'typescript/bin/tsc', 7: 'typescript7/bin/tsc' } as const;
  async function tsc(major: 5 | 7, dir: string): Promise<string> {
    const bin = join(repo, 'node_modules', TSC[major]);
    const version = (await run('node', [bin, '--version'])).stdout;
    expect(version, `${TSC[major]} is TypeScript ${major}`).toMatch(new RegExp(`Version ${major}\\.`));
    return run('node', [bin, '-p', 'tsconfig.json', '--pretty', 'false'], { cwd: dir, maxBuffer: 16 << 20 }).then(
      (r) => r.stdout,
      (e: { stdout: string }) => e.stdout,
    );
  }

  /** Lines after `// error: what | text` comments: each must have an error whose message holds text. */
  function expectedErrors(file: string) {
    return readFileSync(file, 'utf8')
      .split('\n')
      .flatMap((l, i) => {
        const m = /^\s*\/\/ error: (.*) \| (.*)$/.exec(l);
        return m ? [{ line: i + 2, what: m[1], text: m[2] }] : [];
      });
  }

  // TypeScript 5 takes the declarations that reference @webgpu/types (package.json's `types@<7`);
  // TypeScript 7, whose DOM lib declares WebGPU, takes those that do not (with the reference, 300+
  // TS2300 "Duplicate identifier"). Without the DOM lib (a Node-only `lib: ["ES2022"]`) the project
  // adds `detloss/no-dom` to its types, on either major. skipLibCheck is off: the package's
  // declarations, @webgpu/types and the lib must all compile.
  const MATRIX = ([5, 7] as const).flatMap((major) =>
    (['DOM', 'no DOM'] as const).flatMap((lib) =>
      [
        ['Bundler', 'ESNext'],
        ['NodeNext', 'NodeNext'],
        ['Node16', 'Node16'],
      ].map(([resolution, module]) => [major, lib, resolution, module] as const),
    ),
  );
  it.each(MATRIX)('type-checks on TypeScript %i with %s under moduleResolution %s: the right file compiles, the wrong one fails where it should', async (major, lib, resolution, module) => {
    const dir = join(project, `types-ts${major}-${lib.replace(' ', '')}-${resolution}`);
    mkdirSync(dir);
    for (const f of ['right', 'wrong']) copyFileSync(join(here, 'types', `${f}.ts.template`), join(dir, `${f}.ts`));
    // With the DOM lib, no `types`: GPUDevice must come from the package's declarations or the lib.
    const dom = lib === 'DOM';
    const compilerOptions = { strict: true, noEmit: true, target: 'ES2022', lib: dom ? ['ES2022', 'DOM'] : ['ES2022'], module, moduleResolution: resolution, types: dom ? [] : ['detloss/no-dom'], skipLibCheck: false };
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['right.ts', 'wrong.ts'] }));
    const out = await tsc(major, dir);
    const errors = tscErrors(out);
    // Anything outside wrong.ts (right.ts, the package's declarations) is a failure.
    expect(errors.filter((e) => e.file !== 'wrong.ts')).toEqual([]);

    const expected = expectedErrors(join(dir, 'wrong.ts'));
    expect(expected.length).toBeGreaterThanOrEqual(8);
    expect([...new Set(errors.map((e) => e.line))].sort((a, b) => a - b)).toEqual(expected.map((e) => e.line));
    for (const e of expected) {
      const messages = errors.filter((x) => x.line === e.line).map((x) => x.text).join('\n');
      // TypeScript 7 reports a call that matches none of `run`'s overloads by the last one's error
      // alone (`run(desc: OpDescriptor)`), so the message does not name the misspelled key there;
      // the error is still on that line, and TypeScript 5 holds the text.
      if (major === 7 && messages.startsWith('TS2769: No overload matches this call.')) continue;
      expect(messages, `${e.what} (wrong.ts:${e.line})`).toContain(e.text);
    }
  }, 60_000);

  it.each([5, 7] as const)("detloss/tfjs on TypeScript %i: optimizer.minimize(() => ciou(pred, gt)) compiles with no cast; a 'none' loss is no Scalar", async (major) => {
    const dir = join(project, `tfjs-types-ts${major}`);
    mkdirSync(dir);
    copyFileSync(join(here, 'types', 'tfjs.ts.template'), join(dir, 'step.ts'));
    // skipLibCheck on: TF.js 4.22's own declarations do not compile without it (they name `Long`,
    // and reference @webgpu/types, which TypeScript 7's DOM lib declares again). The package's own
    // declarations are checked with it off above.
    const compilerOptions = { strict: true, noEmit: true, target: 'ES2022', lib: ['ES2022', 'DOM'], module: 'NodeNext', moduleResolution: 'NodeNext', types: [], skipLibCheck: true };
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['step.ts'] }));
    const errors = tscErrors(await tsc(major, dir));
    const expected = expectedErrors(join(dir, 'step.ts'));
    expect(expected.length).toBe(1);
    expect(errors.map((e) => e.line)).toEqual(expected.map((e) => e.line));
    expect(errors[0].text).toContain(expected[0].text);
  }, 60_000);
});
