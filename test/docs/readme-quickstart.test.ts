// The README's quick start, run as a user runs it: the ```ts block under "## Quick start", given to
// Node as an ES module from the repository root, so that `import 'detloss'` is the built package
// (npm test builds it first) and `webgpu` is Node's WebGPU (Dawn, on the driver vite.config.ts sets).
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { codeUnder, readDoc, rootPath } from '../helpers/markdown';

const HEADING = '## Quick start';

function runSnippet(code: string) {
  return spawnSync(process.execPath, ['--input-type=module', '-'], { input: code, cwd: rootPath('.'), encoding: 'utf8', timeout: 60_000 });
}

describe('the README quick start', () => {
  const code = codeUnder(readDoc('README.md'), HEADING);

  it('is a ```ts block of about ten lines under "## Quick start"', () => {
    expect(code, `no \`\`\`ts block under "${HEADING}" in README.md`).toBeDefined();
    const lines = code!.split('\n').filter((l) => l.trim() !== '');
    expect(lines.length).toBeLessThanOrEqual(12);
    for (const word of ['createDetloss', 'cpu.run', 'dl.adapter', 'grad']) expect(code, word).toContain(word);
  });

  it('runs on Node and prints the adapter, the GPU loss equal to the CPU one, and the gradients equal', () => {
    const r = runSnippet(code!);
    const log = `exit ${r.status}${r.signal ? ` (${r.signal})` : ''}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
    expect(r.status, log).toBe(0);
    expect(r.stdout, log).toMatch(/^adapter: \S/m);
    const loss = r.stdout.match(/GPU (\S+) CPU (\S+)/);
    expect(loss, log).not.toBeNull();
    const [gpu, ref] = [Number(loss![1]), Number(loss![2])];
    expect(Number.isFinite(gpu) && Number.isFinite(ref), log).toBe(true);
    expect(Math.abs(gpu - ref), log).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(ref)));
    const grad = r.stdout.match(/largest gradient difference:? (\S+)/);
    expect(grad, log).not.toBeNull();
    expect(Number(grad![1]), log).toBeLessThanOrEqual(1e-5);
  });
});
