import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adapterStem, nodeBenchFiles, nodeCases } from '../../src/tools/bench';
import { ratioLegend } from '../../src/tools/bench/report';

/**
 * `detloss bench --node`: the same benchmark on Node's WebGPU (Dawn over SwiftShader here), no
 * browser. Its cases and file names, and a small run end to end whose JSON other tools read.
 * Timings are never asserted, only that they are there and finite.
 */

const root = fileURLToPath(new URL('../../', import.meta.url));
const made: string[] = [];
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tmp = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
};

describe('the cases of issue 10', () => {
  it('box and element-wise ops to 1e7, row ops (c = 80, k = 17) to 1e6 rows, pairwise to 1e4', () => {
    const cases = nodeCases();
    const ns = (op: string, variant?: string) => cases.filter((c) => c.op === op && (variant === undefined || c.params.variant === variant)).map((c) => c.n);
    for (const v of ['giou', 'ciou', 'siou', 'shape', 'wiou']) expect(ns('iou_loss', v)).toEqual([1e4, 1e5, 1e6, 1e7]);
    expect(ns('smooth_l1')).toEqual([1e4, 1e5, 1e6, 1e7]);
    for (const op of ['sigmoid_focal', 'quality_focal', 'cross_entropy']) {
      expect(ns(op)).toEqual([1e4, 1e5, 1e6]);
      expect(cases.filter((c) => c.op === op).every((c) => c.width === 80)).toBe(true);
    }
    expect(ns('distribution_focal')).toEqual([1e4, 1e5, 1e6]);
    for (const v of ['probiou', 'kld']) expect(ns('rotated_iou_loss', v)).toEqual([1e4, 1e5, 1e6]);
    expect(cases.filter((c) => c.op === 'distribution_focal').every((c) => c.width === 17)).toBe(true);
    expect(cases.filter((c) => c.op === 'pairwise_iou').map((c) => `${c.params.variant}:${c.n}`)).toEqual(['iou:1000', 'iou:4000', 'iou:10000', 'giou:1000', 'giou:4000', 'giou:10000']);
  });

  it('--n replaces every list; pairwise keeps the N up to 1e4', () => {
    const cases = nodeCases([300, 2e4]);
    expect(new Set(cases.filter((c) => c.op !== 'pairwise_iou').map((c) => c.n))).toEqual(new Set([300, 2e4]));
    expect(cases.filter((c) => c.op === 'pairwise_iou').map((c) => c.n)).toEqual([300, 300]);
  });
});

describe('the result files, named after the adapter', () => {
  it('node-<vendor>-<device>, the description where the device is empty or a PCI id, the vendor not repeated', () => {
    expect(adapterStem({ vendor: 'google', device: 'swiftshader-device-subzero-', description: 'SwiftShader driver 5.0.0' })).toBe('node-google-swiftshader-device-subzero');
    expect(adapterStem({ vendor: 'nvidia', device: 'NVIDIA H200', description: 'NVIDIA: 570.86' })).toBe('node-nvidia-h200');
    expect(adapterStem({ vendor: 'nvidia', device: '0x2335', description: 'NVIDIA H100 80GB HBM3' })).toBe('node-nvidia-h100-80gb-hbm3');
    expect(adapterStem({ vendor: '', device: '', description: '', architecture: '' })).toBe('node-unknown-adapter');
  });

  it('a committed result is never overwritten: the new one gets a timestamp suffix', () => {
    const repo = tmp('detloss-bench-git-');
    const git = (...a: string[]) => execFileSync('git', ['-c', 'user.email=t@t', '-c', 'user.name=t', ...a], { cwd: repo, stdio: 'ignore' });
    git('init', '-q');
    const out = join(repo, 'results');
    mkdirSync(out);
    const a = { vendor: 'acme', device: 'gpu-1' };
    const b = { vendor: 'acme', device: 'gpu-2' };
    const c = { vendor: 'acme', device: 'gpu-3' };
    writeFileSync(join(out, 'node-acme-gpu-1.json'), '{}');
    writeFileSync(join(out, 'node-acme-gpu-2.md'), 'old run, not committed');
    git('add', 'results/node-acme-gpu-1.json');
    git('commit', '-qm', 'results');
    const now = new Date('2026-01-02T03:04:05Z');
    expect(nodeBenchFiles(out, a, now)).toEqual({ json: join(out, 'node-acme-gpu-1-20260102T030405.json'), md: join(out, 'node-acme-gpu-1-20260102T030405.md') });
    expect(nodeBenchFiles(out, b, now)).toEqual({ json: join(out, 'node-acme-gpu-2.json'), md: join(out, 'node-acme-gpu-2.md') });
    expect(nodeBenchFiles(out, c, now)).toEqual({ json: join(out, 'node-acme-gpu-3.json'), md: join(out, 'node-acme-gpu-3.md') });
  });

  it('outside a git repository an existing file may be a committed one carried along: kept too', () => {
    const out = tmp('detloss-bench-nogit-');
    writeFileSync(join(out, 'node-acme-gpu-1.md'), 'carried');
    expect(nodeBenchFiles(out, { vendor: 'acme', device: 'gpu-1' }, new Date('2026-01-02T03:04:05Z')).json).toBe(join(out, 'node-acme-gpu-1-20260102T030405.json'));
  });
});

describe('detloss bench --node, end to end on Node WebGPU (SwiftShader here)', () => {
  const out = tmp('detloss-bench-node-');
  let run: { code: number | null; out: string };
  beforeAll(() => {
    // The Node entry only (bench/dist-node); dist/ is built by pretest.
    const build = spawnSync(process.execPath, [join(root, 'node_modules/vite/bin/vite.js'), 'build', '--config', 'bench/vite.node.config.ts'], { cwd: root, encoding: 'utf8', timeout: 120_000 });
    expect(build.status, `${build.stdout}${build.stderr}`).toBe(0);
    const r = spawnSync(process.execPath, [join(root, 'dist/cli.js'), 'bench', '--node', '--ops', 'smooth_l1,iou_loss', '--n', '1000', '--reps', '2', '--out', out], {
      cwd: root,
      encoding: 'utf8',
      timeout: 120_000,
    });
    run = { code: r.status, out: `${r.stdout}${r.stderr}` };
  }, 240_000);

  const readJson = () => {
    const files = readdirSync(out).filter((f) => f.endsWith('.json'));
    expect(files).toHaveLength(1);
    return { name: files[0], json: JSON.parse(readFileSync(join(out, files[0]), 'utf8')) };
  };

  it('exits 0 with the adapter, a progress line per case and the table', () => {
    expect(run.code, run.out).toBe(0);
    expect(run.out).toMatch(/^adapter: google \/ swiftshader/m);
    expect(run.out).toContain('[1/6] smooth_l1 n=1e+3: preparing');
    for (const v of ['giou', 'ciou', 'siou', 'shape', 'wiou']) expect(run.out).toContain(`iou_loss{${v}} n=1e+3: preparing`);
    expect(run.out).not.toMatch(/DISAGREES|FAILED/);
    expect(run.out).toContain('| op | N | host arrays ms | resident ms | resident GPU ms | pipelined ms');
    // Under the table, what ×N means; every contender was timed here, so no column is left out.
    expect(run.out).toContain(`\n\n${ratioLegend('host arrays ms')}\n`);
    expect(run.out).toContain('| TF.js webgpu ms | TF.js cpu ms | copy ms | copy GPU ms | × TF.js webgpu |');
  });

  it('writes <stem>.json and .md named after the adapter, with a row per contender per case', () => {
    const { name, json } = readJson();
    expect(name).toBe(`${adapterStem(json.adapter)}.json`);
    expect(existsSync(join(out, name.replace(/\.json$/, '.md')))).toBe(true);
    expect(json.driver).toBe('node');
    expect(json.machine.webgpu).toMatch(/^\d+\.\d+/);
    expect(json.failures).toEqual([]);
    expect(json.cases).toHaveLength(6);
    for (const c of json.cases) {
      expect(c.check.ok, `${c.label}: ${c.check.detail}`).toBe(true);
      const rows = json.rows.filter((r: { op: string; params: unknown }) => r.op === c.op && JSON.stringify(r.params) === JSON.stringify(c.params));
      expect(rows.map((r: { contender: string }) => r.contender).sort()).toEqual(['copy', 'detloss-cpu', 'detloss-gpu', 'detloss-gpu-pipelined', 'detloss-gpu-resident', 'tfjs-cpu', 'tfjs-webgpu']);
      for (const r of rows) {
        expect(r.n).toBe(1000);
        expect(r.timesMs).toHaveLength(2);
        for (const t of r.timesMs) expect(Number.isFinite(t) && t > 0, `${c.label} ${r.contender}: ${t}`).toBe(true);
      }
      const row = (w: string) => rows.find((r: { contender: string }) => r.contender === w);
      // Wise-IoU adds the gradient-free pass of its batch mean (and its reduction).
      expect(row('detloss-gpu').dispatches).toBeLessThanOrEqual(c.params.variant === 'wiou' ? 6 : 3);
      expect(row('tfjs-webgpu').dispatches).toBeGreaterThan(3);
      expect(c.bandwidthFraction).toBeGreaterThan(0);
    }
  });

  it('GPU time from timestamps beside wall time (detloss and the copy kernel), the plan and the passes', () => {
    const { name, json } = readJson();
    // SwiftShader has timestamp-query, so every GPU contender is timed by the device as well.
    expect(json.adapter.features).toContain('timestamp-query');
    const md = readFileSync(join(out, name.replace(/\.json$/, '.md')), 'utf8');
    for (const r of json.rows) {
      const timed = ['copy', 'detloss-gpu', 'detloss-gpu-resident', 'detloss-gpu-pipelined'].includes(r.contender);
      expect(r.gpuTimesMs?.length ?? 0, `${r.op} ${r.contender}`).toBe(timed ? 2 : 0);
      for (const t of r.gpuTimesMs ?? []) expect(Number.isFinite(t) && t >= 0).toBe(true);
    }
    // Columns by name: a column no row has a number in is left out of the table.
    const head = md.split('\n').find((l) => l.startsWith('| op | N |'))!.split('|').map((x) => x.trim());
    const gpuColumns = ['resident GPU ms', 'pipelined GPU ms', 'copy GPU ms', '% of copy bandwidth (GPU)'];
    for (const name of gpuColumns) expect(head, name).toContain(name);
    for (const c of json.cases) {
      const line = md.split('\n').find((l) => l.startsWith(`| ${c.label} | 1e+3 |`))!;
      const cells = line.split('|').map((x) => x.trim());
      expect(cells).toHaveLength(head.length);
      // resident GPU, pipelined GPU, copy GPU, and the share of copy bandwidth in GPU time
      for (const name of gpuColumns) expect(cells[head.indexOf(name)], `${c.label} ${name}`).toMatch(/^\d+(\.\d+)?%?$/);
      expect(typeof c.plan).toBe('object');
      expect(md).toContain(JSON.stringify(c.plan));
      expect(c.passes.length).toBeGreaterThan(0);
      for (const p of c.passes) expect(typeof p.name === 'string' && Number.isFinite(p.gpuMs)).toBe(true);
    }
  });
});

describe('detloss bench --node with no --out: results outside the committed files', () => {
  const git = (...a: string[]) => spawnSync('git', a, { cwd: root, encoding: 'utf8' });
  it('writes to bench/results/local (ignored by git) and leaves bench/results as it was', () => {
    // bench/dist-node is built by the describe above.
    const before = git('status', '--porcelain', '--ignored', '--', 'bench/results').stdout;
    const local = join(root, 'bench/results/local');
    // What the folder held before: a file this run wrote is new or changed (its JSON has the date
    // and the times of this run), so neither a clock nor a file's mtime decides it.
    const prior = new Map(existsSync(local) ? readdirSync(local).map((f) => [join(local, f), readFileSync(join(local, f))] as const) : []);
    const r = spawnSync(process.execPath, [join(root, 'dist/cli.js'), 'bench', '--node', '--ops=smooth_l1', '--n', '500', '--reps', '1'], { cwd: root, encoding: 'utf8', timeout: 120_000 });
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    const wrote = /^wrote (\S+), (\S+) \(not committed; --save writes bench\/results\)$/m.exec(r.stdout);
    expect(wrote, r.stdout).not.toBeNull();
    try {
      for (const f of wrote!.slice(1, 3)) {
        expect(f.startsWith(`${local}/`), f).toBe(true);
        expect(prior.get(f)?.equals(readFileSync(f)) ?? false, `${f} is as it was before the run: not written by it`).toBe(false);
        expect(git('check-ignore', '-q', f).status, f).toBe(0);
      }
      expect(JSON.parse(readFileSync(wrote![1], 'utf8')).cases.map((c: { label: string; n: number }) => `${c.label} ${c.n}`)).toEqual(['smooth_l1 500']);
      expect(r.stdout).toMatch(/^ran on google \/ swiftshader.*, Node's WebGPU \(Dawn\); 1 of 1 cases in \d+ s$/m);
      // Only the ignored folder changed.
      const after = git('status', '--porcelain', '--ignored', '--', 'bench/results').stdout;
      expect(after.split('\n').filter((l) => !l.includes('bench/results/local/')).join('\n')).toBe(before.split('\n').filter((l) => !l.includes('bench/results/local/')).join('\n'));
    } finally {
      for (const f of wrote!.slice(1, 3)) rmSync(f, { force: true });
    }
  }, 150_000);
});
