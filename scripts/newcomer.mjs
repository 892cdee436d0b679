#!/usr/bin/env node
// `npm run newcomer`: what a new user does first, in a temporary folder, step by step.
//
//  1. A fresh clone of this repository (its committed HEAD) runs the first commands of the
//     README's "Working on the repository" section, as written there (`--full` runs every command block of it, which
//     includes the whole `npm test`; without it the quick first block only).
//  2. The clone's package, packed (`npm pack`), goes into a fresh project beside TypeScript 5 and 7
//     (from the registry, as a user gets them), with `webgpu` for Node.
//  3. A small typed program compiles with each, in NodeNext with skipLibCheck off, with the DOM
//     lib and without it (then with `"types": ["detloss/no-dom"]`).
//  4. The same program with a misspelled variant (`'ciouu'`) fails to compile, on that line.
//  5. `npx detloss parity --node` passes in the fresh project.
//
// Each step prints one line (✓ or ✗, and its seconds); a failure prints the end of the command's
// output. Exits 1 if any step failed. `--keep` leaves the temporary folder for a look.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const full = args.has('--full');
const keep = args.has('--keep');

// Dawn on a machine without a GPU driver: Chromium's SwiftShader, as the tests use (vite.config.ts).
const chromiumLib = '/usr/lib/chromium';
const env = { ...process.env };
if (existsSync(`${chromiumLib}/vk_swiftshader_icd.json`)) {
  env.VK_ICD_FILENAMES ??= `${chromiumLib}/vk_swiftshader_icd.json`;
  env.LD_LIBRARY_PATH = [env.LD_LIBRARY_PATH, chromiumLib].filter(Boolean).join(':');
}
delete env.npm_config_prefix; // npm run sets it; a user's shell does not

const work = mkdtempSync(join(tmpdir(), 'detloss-newcomer-'));
const results = [];
const started = Date.now();

/** Runs a shell command in `cwd`; its status, output and seconds. */
function sh(command, cwd, timeoutS = 1800) {
  const t0 = Date.now();
  const r = spawnSync('bash', ['-c', command], { cwd, env, encoding: 'utf8', maxBuffer: 256 << 20, timeout: timeoutS * 1000 });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? `\n${r.error.message}` : ''}`, s: (Date.now() - t0) / 1000 };
}

/** Records a step: `ok`, a one-line summary, and on failure the end of the output. */
function step(name, ok, s, detail, out = '') {
  results.push({ name, ok });
  console.log(`${ok ? '✓' : '✗'} ${name} (${s.toFixed(0)} s)${detail ? `: ${detail}` : ''}`);
  if (!ok && out) console.log(out.trimEnd().split('\n').slice(-25).map((l) => `    ${l}`).join('\n'));
  return ok;
}

/** The fenced `sh` blocks of the README's "Working on the repository" section, in order. */
function setUpCommands(readme) {
  const m = /^##\s+Working on the repository\s*$([\s\S]*?)(?=^##\s)/m.exec(readme);
  if (!m) return [];
  return [...m[1].matchAll(/```(?:sh|bash|shell)\n([\s\S]*?)```/g)].map((b) => b[1].trim());
}

try {
  console.log(`detloss newcomer check in ${work}${full ? ' (--full)' : ''}`);
  const head = sh('git rev-parse --short HEAD && git status --porcelain --untracked-files=no | wc -l', repo).out.trim().split('\n');
  if (Number(head[1]) > 0) console.log(`  note: the clone is of HEAD ${head[0]}; this checkout's uncommitted changes are not in it`);

  // 1. A fresh clone and the README's commands.
  const clone = join(work, 'detloss');
  let r = sh(`git clone --quiet ${JSON.stringify(repo)} ${JSON.stringify(clone)}`, work);
  if (!step(`git clone (HEAD ${head[0]})`, r.status === 0, r.s, '', r.out)) throw new Error('no clone');
  const blocks = setUpCommands(readFileSync(join(clone, 'README.md'), 'utf8'));
  if (!step('README "Working on the repository" names its commands', blocks.length > 0, 0, blocks.map((b) => `\`${b.replace(/\n/g, '; ')}\``).join(', '))) throw new Error('no commands');
  const run = full ? blocks : blocks.slice(0, 1);
  for (const cmd of run) {
    r = sh(cmd, clone);
    const tail = r.stdout.trim().split('\n').filter(Boolean).slice(-1)[0] ?? '';
    step(`clone: ${cmd.replace(/\n/g, '; ')}`, r.status === 0, r.s, r.status === 0 ? `last line: ${tail.slice(0, 120)}` : `exit ${r.status}`, r.out);
  }
  if (!full && blocks.length > 1) console.log(`  skipped (run with --full): ${blocks.slice(1).map((b) => `\`${b.replace(/\n/g, '; ')}\``).join(', ')}`);

  // 2. The packed package in a fresh project.
  if (!existsSync(join(clone, 'dist/index.js'))) {
    r = sh('npm run build --silent', clone);
    step('clone: npm run build (the README commands did not build it)', r.status === 0, r.s, '', r.out);
  }
  r = sh('npm pack --silent', clone);
  const tarball = join(clone, r.out.trim().split('\n').at(-1) ?? '');
  if (!step('clone: npm pack', r.status === 0 && existsSync(tarball), r.s, tarball.split('/').at(-1), r.out)) throw new Error('no tarball');
  const app = join(work, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'newcomer-app', private: true, type: 'module' }, null, 2));
  r = sh(`npm install --no-audit --no-fund --prefer-offline ${JSON.stringify(tarball)} typescript@~5.9 typescript7@npm:typescript@7 webgpu`, app, 600);
  const versions = sh('node node_modules/typescript/bin/tsc -v; node node_modules/typescript7/bin/tsc -v', app).out.replace(/\n(?=.)/g, ', ').trim();
  if (!step('fresh project: npm install <tarball> typescript@~5.9 typescript7@npm:typescript@7 webgpu', r.status === 0, r.s, versions, r.out)) throw new Error('no install');

  // 3 and 4. A typed program, and a wrong variant, on TypeScript 5 and 7.
  const program = (variant) => `import { createDetloss, cpu, type RunResult } from 'detloss';

export async function main(device: GPUDevice): Promise<number> {
  const dl = await createDetloss({ device });
  const pred = Float32Array.of(0, 0, 2, 2, 1, 1, 4, 3);
  const target = Float32Array.of(1, 1, 3, 3, 1, 0, 4, 4);
  const r: RunResult = await dl.iouLoss(pred, target, { variant: '${variant}', reduction: 'sum' });
  const ref = cpu.run('iou_loss', { pred, target }, { variant: 'ciou', reduction: 'sum' });
  return Math.abs(r.loss[0] - ref.loss[0]) + (r.grad.pred?.length ?? 0);
}
`;
  writeFileSync(join(app, 'right.ts'), program('ciou'));
  writeFileSync(join(app, 'wrong.ts'), program('ciouu'));
  const wrongLine = program('ciouu').split('\n').findIndex((l) => l.includes("'ciouu'")) + 1;
  for (const [major, bin] of [[5, 'typescript'], [7, 'typescript7']]) {
    for (const dom of [true, false]) {
      const compilerOptions = { strict: true, noEmit: true, target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', skipLibCheck: false, lib: dom ? ['ES2022', 'DOM'] : ['ES2022'], types: dom ? [] : ['detloss/no-dom'] };
      const label = `TypeScript ${major}, NodeNext, skipLibCheck false, ${dom ? 'DOM lib' : 'no DOM lib ("types": ["detloss/no-dom"])'}`;
      for (const file of ['right', 'wrong']) {
        writeFileSync(join(app, `tsconfig.${file}.json`), JSON.stringify({ compilerOptions, files: [`${file}.ts`] }, null, 2));
        r = sh(`node node_modules/${bin}/bin/tsc -p tsconfig.${file}.json --pretty false`, app);
        // One entry per error, its indented continuation lines joined to it.
        const errors = r.stdout.split(/\n(?! )/).filter((l) => /error TS\d+/.test(l)).map((l) => l.replace(/\n\s*/g, ' '));
        if (file === 'right') step(`${label}: a typed program compiles`, r.status === 0 && errors.length === 0, r.s, `${errors.length} errors`, r.out);
        else {
          const onLine = errors.filter((l) => l.startsWith(`wrong.ts(${wrongLine},`));
          const ok = r.status !== 0 && errors.length > 0 && onLine.length === errors.length && onLine.some((l) => l.includes('ciouu'));
          step(`${label}: variant 'ciouu' fails to compile`, ok, r.s, (onLine[0] ?? errors[0] ?? 'no error').replace(/^.*error /, '').slice(0, 140), r.out);
        }
      }
    }
  }

  // 5. The parity check on Node.
  r = sh('npx --no-install detloss parity --node', app, 900);
  const m = /(\d+) passed, (\d+) failed/.exec(r.out);
  step('fresh project: npx detloss parity --node', r.status === 0 && !!m && Number(m[1]) > 0 && m[2] === '0', r.s, m ? m[0] : `exit ${r.status}`, r.out);
} catch (e) {
  if (!results.some((x) => !x.ok)) step(String(e?.message ?? e), false, 0);
} finally {
  const failed = results.filter((x) => !x.ok).length;
  console.log(`\nnewcomer: ${results.length - failed} of ${results.length} steps passed${failed ? `, ${failed} failed` : ''} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  if (keep) console.log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
  process.exitCode = failed ? 1 : 0;
}
