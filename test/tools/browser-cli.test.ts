import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { cpu } from '../../src/cpu';
import { rand } from '../helpers/counting';
import { parseFixtures } from '../../src/fixtures';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cli = (args: string[]) => {
  const r = spawnSync(process.execPath, [join(root, 'dist/cli.js'), 'parity', ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
};

const made: string[] = [];
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A fixture file the CLI has never seen, in the documented format; expected numbers from the float64 reference. */
function newFixtureFile(): string {
  const pred = Array.from(rand(37, 101));
  const target = Array.from(rand(37, 102));
  const weight = Array.from(rand(37, 103, 0, 1));
  const make = (name: string, op: string, params: Record<string, unknown>, withWeight: boolean, corrupt = false) => {
    const inputs: Record<string, { dtype: 'f32'; shape: number[]; data: number[] }> = {
      pred: { dtype: 'f32', shape: [37], data: pred },
      target: { dtype: 'f32', shape: [37], data: target },
    };
    if (withWeight) inputs.weight = { dtype: 'f32', shape: [37], data: weight };
    const ref = cpu.run(op, Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, Float32Array.from(t.data)])), params);
    const loss = Array.from(ref.loss);
    if (corrupt) loss[0] += 0.5;
    return {
      name,
      op,
      params,
      inputs,
      expected: { loss: { shape: ref.shape, data: loss }, grad: { pred: { shape: [37], data: Array.from(ref.grad.pred) } } },
      tolerance: { loss: { atol: 1e-5, rtol: 1e-4 }, grad: { atol: 1e-5, rtol: 1e-3 } },
      source: 'detloss CPU reference, float64',
    };
  };
  const dir = mkdtempSync(join(tmpdir(), 'detloss-fixture-'));
  made.push(dir);
  const file = join(dir, 'new.json');
  writeFileSync(
    file,
    JSON.stringify({
      format: 'detloss-fixture/1',
      cases: [
        make('huber{delta: 0.3}/sum+weight/n=37/new', 'huber', { delta: 0.3, reduction: 'sum' }, true),
        make('mse/none/n=37/new', 'mse', { reduction: 'none' }, false),
        make('l1/mean/n=37/wrong-on-purpose', 'l1', { reduction: 'mean' }, false, true),
      ],
    }),
  );
  return file;
}

describe('detloss parity (the CLI)', () => {
  it('runs a fixture file it has never seen, passes the right cases and fails the wrong one', () => {
    const { code, out } = cli([newFixtureFile()]);
    expect(out).toMatch(/^adapter: /m);
    expect(out).toMatch(/^PASS huber\{delta: 0.3\}\/sum\+weight\/n=37\/new {2}gpu loss \S+ grad \S+ l2 \S+ {2}cpu loss \S+ grad \S+ l2 \S+$/m);
    expect(out).toMatch(/^PASS mse\/none\/n=37\/new /m);
    expect(out).toMatch(/^FAIL l1\/mean\/n=37\/wrong-on-purpose .*gpu: loss\[0\]/m);
    expect(out.trim().split('\n').at(-1)).toBe('2 passed, 1 failed');
    expect(code).toBe(1);
  });
  it('--ops selects ops, and an op asked for without a GPU kernel fails as unsupported', () => {
    const { code, out } = cli(['test/fixtures/regression.json', '--ops', 'huber,not_an_op']);
    expect(out).not.toMatch(/^PASS l1\//m);
    expect(out).toMatch(/^PASS huber\/mean\/n=257 /m);
    expect(out).toMatch(/^FAIL not_an_op/m);
    expect(out.trim().split('\n').at(-1)).toMatch(/^\d+ passed, 1 failed$/);
    expect(code).toBe(1);
  });
  it('with no paths, runs the fixtures shipped in dist/fixtures in Chromium, from any working folder', () => {
    const want = parseFixtures(readFileSync(join(root, 'dist/fixtures/regression.json'), 'utf8')).filter((c) => c.op === 'smooth_l1').length;
    expect(want).toBeGreaterThan(0);
    const cwd = mkdtempSync(join(tmpdir(), 'detloss-cwd-'));
    made.push(cwd);
    const r = spawnSync(process.execPath, [join(root, 'dist/cli.js'), 'parity', '--ops=smooth_l1'], { cwd, encoding: 'utf8', timeout: 120_000 });
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/^adapter: .*; headless Chromium$/m);
    expect(r.stdout.trim().split('\n').at(-1)).toBe(`${want} passed, 0 failed`);
  });
  it('bad arguments exit 2 with a message', () => {
    const { code, out } = cli(['no/such/path.json']);
    expect(code).toBe(2);
    expect(out).toMatch(/no such file or folder/);
  });
  it('exits 2 with instructions when there is no Chromium', () => {
    const r = spawnSync(process.execPath, [join(root, 'dist/cli.js'), 'parity', 'test/fixtures/regression.json'], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, CHROME_PATH: '/nonexistent/chromium' },
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/CHROME_PATH/);
  });
});
