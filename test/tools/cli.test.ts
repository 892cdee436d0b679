import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseFixtures } from '../../src/fixtures';
import { OPS } from '../../src/ops/registry';

/**
 * The CLI as a user meets it (dist/cli.js, built by pretest): arguments, --help, exit statuses,
 * parity on Node's WebGPU with the fixtures shipped in dist/fixtures, and the built CLI copied
 * where no node_modules can be found, as an installed package without its optional peers.
 */

const root = fileURLToPath(new URL('../../', import.meta.url));
const made: string[] = [];
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tmp = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
};

function detloss(args: string[], opts: { cli?: string; cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(process.execPath, [opts.cli ?? join(root, 'dist/cli.js'), ...args], { cwd: opts.cwd ?? root, encoding: 'utf8', timeout: 170_000, env: opts.env ?? process.env });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const shipped = join(root, 'dist/fixtures');
const shippedCases = () =>
  readdirSync(shipped)
    .filter((f) => f.endsWith('.json'))
    .flatMap((f) => parseFixtures(readFileSync(join(shipped, f), 'utf8'), f));

describe('--help', () => {
  for (const [args, first] of [
    [['--help'], 'usage: detloss parity'],
    [['-h'], 'usage: detloss parity'],
    [['parity', '--help'], 'usage: detloss parity [files or folders of fixtures...]'],
    [['parity', '-h'], 'usage: detloss parity [files or folders of fixtures...]'],
    [['bench', '--help'], 'usage: detloss bench'],
    [['bench', '-h'], 'usage: detloss bench'],
  ] as const) {
    it(`detloss ${args.join(' ')}: usage on stdout, exit 0`, () => {
      const r = detloss([...args]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.startsWith(first)).toBe(true);
      expect(r.stdout).toMatch(/Exit status: 0 /);
      expect(r.stderr).toBe('');
    });
  }
  it('bench --help names the quick preset and --full, --save, --node', () => {
    const { stdout } = detloss(['bench', '--help']);
    for (const o of ['--full', '--save', '--node', '--ops', '--n', '--reps', '--out']) expect(stdout).toContain(`  ${o} `);
    expect(stdout).toMatch(/quick preset/);
  });
  it('bench --help says what ×N in the table is, and that empty columns are left out', () => {
    const { stdout } = detloss(['bench', '--help']);
    expect(stdout).toContain("×N is the other's median time divided by detloss's: detloss\n  takes 1/N of the time.");
    expect(stdout).toContain('Columns no case has a number in are left out.');
  });
  it('bench --help names --probe-plans, the launch plans against each other', () => {
    const { stdout } = detloss(['bench', '--help']);
    expect(stdout).toContain('  --probe-plans\n');
    expect(stdout).toContain('detloss bench --probe-plans [--full] [--ops op1,op2] [--reps 3] [--out dir]');
    expect(stdout).toMatch(/plan-probe\.json/);
  });
});

describe('bad arguments: exit 2 with a one-line reason and the usage on stderr', () => {
  const cases: [string[], RegExp, string][] = [
    [['parity', '--bogus'], /^detloss parity: Unknown option '--bogus'/, 'usage: detloss parity'],
    [['bench', '--bogus'], /^detloss bench: Unknown option '--bogus'/, 'usage: detloss bench'],
    [['bench', '--ops'], /^detloss bench: Option '--ops <value>' argument missing/, 'usage: detloss bench'],
    [['bench', '--reps', '0'], /^detloss bench: --reps takes positive integers/, 'usage: detloss bench'],
    [['bench', '--reps=3,4'], /^detloss bench: --reps takes one positive integer/, 'usage: detloss bench'],
    [['bench', '--n', '1e4,x'], /^detloss bench: --n takes positive integers/, 'usage: detloss bench'],
    [['bench', 'extra'], /^detloss bench: Unexpected argument 'extra'/, 'usage: detloss bench'],
    [['bench', '--save', '--out', 'somewhere'], /^detloss bench: --save writes to bench\/results; give --out or --save, not both/, 'usage: detloss bench'],
    [['bench', '--probe-plans', '--n', '1e4'], /^detloss bench: --probe-plans has its own sizes and writes to --out; leave out --n/, 'usage: detloss bench'],
    [['bench', '--probe-plans', '--save'], /^detloss bench: --probe-plans has its own sizes and writes to --out; leave out --save/, 'usage: detloss bench'],
    [['bench', '--probe-plans', '--ops', 'not_an_op'], /^detloss bench: no plan-probe case for --ops not_an_op/, 'usage: detloss bench'],
    [['parity', '--ops='], /^detloss parity: --ops takes a comma-separated list/, 'usage: detloss parity'],
    [['parity', 'no/such/path.json'], /^detloss parity: no\/such\/path\.json: no such file or folder/, 'usage: detloss parity'],
    [['frobnicate'], /^detloss: unknown command frobnicate/, 'usage: detloss parity'],
    [[], /^detloss: no command given/, 'usage: detloss parity'],
  ];
  for (const [args, reason, usage] of cases) {
    it(`detloss ${args.join(' ')}`, () => {
      const r = detloss(args);
      expect(r.code, r.stdout + r.stderr).toBe(2);
      const [line, blank, ...rest] = r.stderr.split('\n');
      expect(line).toMatch(reason);
      expect(blank).toBe('');
      expect(rest.join('\n').startsWith(usage)).toBe(true);
      expect(r.stdout).toBe('');
    });
  }
  it('a file that is not in the fixture format is a bad argument', () => {
    const f = join(tmp('detloss-cli-bad-'), 'bad.json');
    writeFileSync(f, JSON.stringify({ format: 'something-else', cases: [] }));
    const r = detloss(['parity', '--node', f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/"format" must be "detloss-fixture\/1"/);
  });
});

describe('--ops x and --ops=x are the same option in both commands', () => {
  it('bench takes --ops=x (an op with no bench case is then refused by name)', () => {
    for (const args of [['--ops=not_an_op'], ['--ops', 'not_an_op']]) {
      const r = detloss(['bench', ...args]);
      expect(r.code).toBe(2);
      expect(r.stderr.split('\n')[0]).toBe('detloss bench: no bench case for --ops not_an_op');
    }
  });
  it('parity takes --ops=x and --ops x alike', () => {
    const outs = [['--ops=huber'], ['--ops', 'huber']].map((o) => detloss(['parity', '--node', join(root, 'test/fixtures/regression.json'), ...o]));
    for (const r of outs) {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^PASS huber\//m);
      expect(r.stdout).not.toMatch(/^PASS (l1|mse|smooth_l1|balanced_l1)\//m);
    }
    expect(outs[0].stdout.trim().split('\n').at(-1)).toBe(outs[1].stdout.trim().split('\n').at(-1));
  });
});

describe('detloss parity --node', () => {
  it('with no paths runs the fixtures shipped in dist/fixtures, found beside the CLI whatever the working folder', () => {
    const cases = shippedCases();
    const gpu = cases.filter((c) => OPS[c.op]?.gpu).length;
    // A subset of test/fixtures: every op's file, a small share of the cases and the bytes.
    expect(new Set(cases.map((c) => c.op))).toEqual(new Set(parseAll(join(root, 'test/fixtures')).map((c) => c.op)));
    expect(cases.length).toBeLessThan(parseAll(join(root, 'test/fixtures')).length / 3);
    const bytes = readdirSync(shipped).reduce((s, f) => s + readFileSync(join(shipped, f)).length, 0);
    expect(bytes).toBeLessThan(1024 * 1024);
    const r = detloss(['parity', '--node'], { cwd: tmp('detloss-cli-cwd-') });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^adapter: google \/ swiftshader.*; Node's WebGPU \(Dawn\)$/m);
    const skipped = cases.length - gpu;
    expect(r.stdout.trim().split('\n').at(-1)).toBe(`${gpu} passed, 0 failed${skipped ? `, ${skipped} skipped` : ''}`);
  });

  it('the shipped cases are copied from test/fixtures unchanged', () => {
    const full = new Map(parseAll(join(root, 'test/fixtures')).map((c) => [c.name, c]));
    for (const c of shippedCases()) expect(c, c.name).toEqual(full.get(c.name));
  });

  it('a folder with a failing case exits 1, and the case says FAIL', () => {
    const dir = tmp('detloss-cli-fail-');
    const doc = JSON.parse(readFileSync(join(root, 'test/fixtures/regression.json'), 'utf8'));
    const good = doc.cases.find((c: { op: string; params: { reduction?: string } }) => c.op === 'l1' && c.params.reduction === 'mean');
    const bad = { ...good, name: `${good.name}/wrong-on-purpose`, expected: { ...good.expected, loss: { ...good.expected.loss, data: [good.expected.loss.data[0] + 0.5] } } };
    writeFileSync(join(dir, 'cases.json'), JSON.stringify({ format: 'detloss-fixture/1', cases: [good, bad] }));
    const r = detloss(['parity', '--node', dir]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`^PASS ${escape(good.name)} `, 'm'));
    expect(r.stdout).toMatch(new RegExp(`^FAIL ${escape(bad.name)} .*gpu: loss\\[0\\]`, 'm'));
    expect(r.stdout.trim().split('\n').at(-1)).toBe('1 passed, 1 failed');
  });

  it('no adapter: exit 2, saying which variable to set before the process starts', () => {
    const r = detloss(['parity', '--node', join(root, 'test/fixtures/regression.json')], { env: { ...process.env, VK_ICD_FILENAMES: '/nonexistent/icd.json' } });
    expect(r.code, r.stdout + r.stderr).toBe(2);
    // The Vulkan loader and Dawn print their own warnings first; the CLI's message follows them.
    const ours = r.stderr.slice(r.stderr.indexOf('detloss parity: '));
    expect(ours).toMatch(/^detloss parity: no WebGPU adapter on Node's WebGPU\. /);
    expect(ours).toMatch(/VK_ICD_FILENAMES \(set to \/nonexistent\/icd\.json here\)/);
    if (existsSync('/usr/lib/chromium/vk_swiftshader_icd.json')) expect(ours).toContain('VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json LD_LIBRARY_PATH=/usr/lib/chromium npx detloss parity --node');
    expect(ours).not.toMatch(/\n\s+at /); // a message, not a stack trace
  });
});

describe('parity takes nothing on trust from a fixture file', () => {
  const doc = () => JSON.parse(readFileSync(join(root, 'test/fixtures/regression.json'), 'utf8'));
  const goodCase = () => doc().cases.find((c: { op: string; params: { reduction?: string } }) => c.op === 'l1' && c.params.reduction === 'mean');
  const write = (cases: unknown[], name = 'cases.json') => {
    const dir = tmp('detloss-cli-trust-');
    writeFileSync(join(dir, name), JSON.stringify({ format: 'detloss-fixture/1', cases }));
    return dir;
  };
  const wrongBy1000 = <C extends { expected: { loss: { data: number[] } } }>(c: C): C => ({ ...c, expected: { ...c.expected, loss: { ...c.expected.loss, data: [c.expected.loss.data[0] + 1000] } } });

  // Without atol (or rtol) every comparison was with NaN, which is false: expected values 1000 off passed.
  for (const drop of ['atol', 'rtol'] as const) {
    it(`a tolerance without ${drop} exits 2 naming the case, even with expected values 1000 off`, () => {
      const c = wrongBy1000(goodCase());
      const { [drop]: _, ...rest } = c.tolerance.loss;
      const bad = { ...c, name: `no-${drop}`, tolerance: { ...c.tolerance, loss: rest } };
      const r = detloss(['parity', '--node', write([bad])]);
      expect(r.code, r.stdout + r.stderr).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`case 0 \\(no-${drop}\\): tolerance\\.loss\\.${drop} must be a number >= 0`));
      expect(r.stdout).not.toMatch(/PASS/);
    });
  }
  it('a tolerance of the wrong type, a negative one and an expected value that is not a number exit 2 naming the case', () => {
    const c = goodCase();
    const bads = [
      { ...c, name: 'string-atol', tolerance: { ...c.tolerance, loss: { ...c.tolerance.loss, atol: '1e-5' } } },
      { ...c, name: 'negative-rtol', tolerance: { ...c.tolerance, grad: { atol: 1e-6, rtol: -1 } } },
      { ...c, name: 'null-expected', expected: { ...c.expected, loss: { ...c.expected.loss, data: [null] } } },
      { ...c, name: 'string-grad', expected: { ...c.expected, grad: { pred: { ...c.expected.grad.pred, data: c.expected.grad.pred.data.map(() => 'x') } } } },
    ];
    for (const bad of bads) {
      const r = detloss(['parity', '--node', write([bad])]);
      expect(r.code, `${bad.name}: ${r.stdout}${r.stderr}`).toBe(2);
      expect(r.stderr, bad.name).toContain(`case 0 (${bad.name})`);
    }
  });
  it('a case naming an op this package does not know fails (exit 1), so a misspelled op cannot pass', () => {
    const c = goodCase();
    const r = detloss(['parity', '--node', write([c, { ...c, name: 'misspelled', op: 'l1_los' }])]);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(/^FAIL misspelled .*unknown op "l1_los"/m);
    expect(r.stdout.trim().split('\n').at(-1)).toBe('1 passed, 1 failed');
  });
  it('an input named __proto__ is not dropped: the case fails naming it', () => {
    const c = goodCase();
    const text = JSON.stringify({ format: 'detloss-fixture/1', cases: [{ ...c, name: 'proto-input' }] }).replace('"inputs":{', '"inputs":{"__proto__":{"dtype":"f32","shape":[1],"data":[1]},');
    const dir = tmp('detloss-cli-proto-');
    writeFileSync(join(dir, 'cases.json'), text);
    expect(Object.keys(parseFixtures(text)[0].inputs)).toContain('__proto__');
    const r = detloss(['parity', '--node', dir]);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(/^FAIL proto-input .*unknown input "__proto__"/m);
  });
  it('a folder with a symbolic link loop and links to one file: each fixture file runs once, no stack trace', () => {
    const dir = write([goodCase()]);
    mkdirSync(join(dir, 'sub'));
    symlinkSync(dir, join(dir, 'sub', 'loop'));
    symlinkSync(join(dir, 'cases.json'), join(dir, 'sub', 'again.json'));
    const r = detloss(['parity', '--node', dir]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout.trim().split('\n').at(-1)).toBe('1 passed, 0 failed');
  });
  it('a link to nothing given on the command line exits 2 saying so', () => {
    const dir = tmp('detloss-cli-dangling-');
    symlinkSync(join(dir, 'gone.json'), join(dir, 'link.json'));
    const r = detloss(['parity', '--node', join(dir, 'link.json')]);
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toMatch(/link\.json: no such file or folder \(a symbolic link to nothing\)/);
  });
});

describe('the built CLI where no node_modules can be found (an installed package without its optional peers)', () => {
  // dist/ alone, outside the repository: `webgpu` and `puppeteer-core` really are absent.
  const pkg = tmp('detloss-cli-installed-');
  cpSync(join(root, 'dist'), join(pkg, 'dist'), { recursive: true });
  const cli = join(pkg, 'dist/cli.js');
  const outside = tmp('detloss-cli-user-');

  it('is really without them', () => {
    const probe = spawnSync(process.execPath, ['--input-type=module', '-e', "await import('webgpu')"], { cwd: join(pkg, 'dist'), encoding: 'utf8' });
    expect(probe.status).not.toBe(0);
  });

  it('parity --node without the webgpu package: exit 2, install webgpu or leave out --node', () => {
    const r = detloss(['parity', '--node'], { cli, cwd: outside });
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^detloss parity: the optional package webgpu could not be loaded .*npm install webgpu.*leave out --node/);
  });

  it('parity without puppeteer-core: exit 2, install puppeteer-core or use --node', () => {
    const r = detloss(['parity'], { cli, cwd: outside });
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^detloss parity: the optional package puppeteer-core could not be loaded .*npm install puppeteer-core.*--node/);
  });

  it('bench says it needs a clone of the repository, and the command, with no stack trace', () => {
    for (const args of [['bench'], ['bench', '--node'], ['bench', '--probe-plans']]) {
      const r = detloss(args, { cli, cwd: outside });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^detloss bench: the benchmark runs from a clone of the detloss repository/);
      expect(r.stderr).toContain('npm ci && npm run bench');
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });
});

function parseAll(dir: string) {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .flatMap((f) => parseFixtures(readFileSync(join(dir, f), 'utf8'), f));
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
