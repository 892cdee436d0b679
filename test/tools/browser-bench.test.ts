import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BenchResult, CONTENDERS, benchCases, benchSvg, benchTable, caseLabel, defaultCases, nodeCases } from '../../src/tools/bench';
import { ratioLegend } from '../../src/tools/bench/report';

/**
 * `detloss bench`: the report it writes (from a made-up result), and a small run end to end in
 * headless Chromium whose JSON other tools read. Timings are never asserted, only their shape.
 */

const root = fileURLToPath(new URL('../../', import.meta.url));
const made: string[] = [];
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('the cases of issue 5', () => {
  it('eight ops at three N (ten since issue 13: softmax and class-balanced focal), and pairwise iou and giou at n = 1000 and 4000', () => {
    const cases = defaultCases();
    // Ten ops and two rotated-box losses at three N and pairwise at two (46), then the YOLO loss and the assigner at B = 16.
    expect(cases).toHaveLength(48);
    expect(cases.filter((c) => c.op === 'rotated_iou_loss').map((c) => `${c.params.variant}:${c.n}`)).toEqual(['probiou:10000', 'probiou:100000', 'probiou:1000000', 'kld:10000', 'kld:100000', 'kld:1000000']);
    expect(cases.filter((c) => c.op === 'yolo_detection_loss' || c.op === 'tal_assign').map((c) => `${c.op}:${c.n}`)).toEqual(['yolo_detection_loss:16', 'tal_assign:16']);
    // Issue 14: Wise-IoU and Shape-IoU on the same fused path, up to n = 1e6.
    for (const variant of ['wiou', 'shape']) expect(cases.filter((c) => c.params.variant === variant).map((c) => c.n)).toEqual([1e4, 1e5, 1e6]);
    expect(new Set(cases.filter((c) => !['pairwise_iou', 'yolo_detection_loss', 'tal_assign'].includes(c.op)).map((c) => c.n))).toEqual(new Set([1e4, 1e5, 1e6]));
    expect(cases.filter((c) => c.op === 'pairwise_iou').map((c) => `${c.params.variant}:${c.n}`)).toEqual(['iou:1000', 'iou:4000', 'giou:1000', 'giou:4000']);
    expect(cases.filter((c) => ['quality_focal', 'cross_entropy', 'softmax_focal', 'class_balanced_focal'].includes(c.op)).every((c) => c.width === 80)).toBe(true);
    expect(cases.filter((c) => c.op === 'softmax_focal' || c.op === 'class_balanced_focal')).toHaveLength(6);
    expect(cases.filter((c) => c.op === 'distribution_focal').every((c) => c.width === 17)).toBe(true);
  });
});

describe('the quick preset (the first command) and the long set (--full)', () => {
  const labels = (cs: ReturnType<typeof benchCases>) => cs.map((c) => `${caseLabel(c)} ${c.n}`);
  it('by default: iou_loss{ciou}, smooth_l1, sigmoid_focal at 1e4 and 1e5, cross_entropy c=80 at 1e4 rows', () => {
    for (const driver of ['chromium', 'node'] as const) {
      const got = labels(benchCases({ driver }));
      const sf = driver === 'node' ? 'sigmoid_focal c=80' : 'sigmoid_focal';
      const sfNs = driver === 'node' ? [1e4] : [1e4, 1e5];
      expect(got.sort()).toEqual(
        [...['smooth_l1', 'iou_loss{ciou}'].flatMap((l) => [`${l} 10000`, `${l} 100000`]), ...sfNs.map((n) => `${sf} ${n}`), 'cross_entropy c=80 10000'].sort(),
      );
    }
  });
  it('--ops picks every variant of those ops at the quick sizes; --n replaces the sizes', () => {
    expect(labels(benchCases({ driver: 'chromium', ops: ['iou_loss', 'quality_focal'] }))).toEqual([
      'iou_loss{giou} 10000', 'iou_loss{giou} 100000', 'iou_loss{ciou} 10000', 'iou_loss{ciou} 100000', 'iou_loss{siou} 10000', 'iou_loss{siou} 100000',
      'iou_loss{shape} 10000', 'iou_loss{shape} 100000', 'iou_loss{wiou} 10000', 'iou_loss{wiou} 100000', 'quality_focal c=80 10000',
    ]);
    expect(labels(benchCases({ driver: 'chromium', ops: ['pairwise_iou'] }))).toEqual(['pairwise_iou{iou} 1000', 'pairwise_iou{giou} 1000']);
    expect(labels(benchCases({ driver: 'chromium', ops: ['smooth_l1', 'pairwise_iou'], ns: [300, 5000] }))).toEqual(['smooth_l1 300', 'smooth_l1 5000', 'pairwise_iou{iou} 300', 'pairwise_iou{giou} 300']);
    expect(benchCases({ driver: 'chromium', ops: ['not_an_op'] })).toEqual([]);
  });
  it('--full is the long set of each driver', () => {
    expect(benchCases({ driver: 'chromium', full: true })).toEqual(defaultCases());
    expect(benchCases({ driver: 'node', full: true })).toEqual(nodeCases());
    expect(benchCases({ driver: 'chromium', full: true, ops: ['smooth_l1'] }).map((c) => c.n)).toEqual([1e4, 1e5, 1e6]);
  });
});

describe('the report', () => {
  const res: BenchResult = {
    adapter: { vendor: 'acme', architecture: 'v1', isFallbackAdapter: true },
    machine: { cores: 2, cpu: 'cpu', memoryGiB: 24, chromium: 'Chromium 1', node: 'v20' },
    rows: [
      { op: 'smooth_l1', params: {}, n: 1e6, contender: 'detloss-gpu', medianMs: 10, dispatches: 2, timesMs: [10] },
      { op: 'smooth_l1', params: {}, n: 1e6, contender: 'detloss-gpu-resident', medianMs: 8, dispatches: 2, timesMs: [8] },
      { op: 'smooth_l1', params: {}, n: 1e6, contender: 'tfjs-webgpu', medianMs: 250, dispatches: 22, timesMs: [250] },
      { op: 'smooth_l1', params: {}, n: 1e6, contender: 'copy', medianMs: 6, timesMs: [6] },
      { op: 'quality_focal', params: {}, n: 1e6, contender: 'detloss-gpu', medianMs: 2000, dispatches: 2, timesMs: [2000] },
    ],
    cases: [
      {
        op: 'smooth_l1',
        label: 'smooth_l1',
        params: {},
        n: 1e6,
        check: { ok: true, detail: 'fine' },
        dispatches: { detloss: 2, tfjs: 22 },
        bytes: { read: 8e6, write: 4e6 },
        speedup: { 'tfjs-webgpu': 25 },
        bandwidthFraction: 0.75,
        firstCall: { coldMs: 40, warmMs: 7 },
      },
      {
        op: 'quality_focal',
        label: 'quality_focal c=80',
        params: {},
        n: 1e6,
        width: 80,
        check: { ok: false, detail: 'not run' },
        dispatches: { detloss: 2 },
        bytes: { read: 3.2e8, write: 3.2e8 },
        speedup: {},
        skipped: { 'tfjs-webgpu': 'out of memory', 'tfjs-cpu': 'out of memory', 'detloss-gpu-resident runs': '3 timed runs' },
      },
    ],
    skippedOps: [],
    failures: [{ label: 'cross_entropy c=80', n: 1e6, error: 'device lost' }],
  };

  it('a row per case with speed-up, bandwidth and dispatches; notes group reasons and name failures', () => {
    const md = benchTable(res);
    expect(md).toContain('Adapter: acme / v1 (software fallback); 2 × cpu, 24 GiB; Chromium 1; Node v20.');
    // The columns no row has a number in (workgroup/row, CPU ref, TF.js cpu, × CPU ref) are left out.
    expect(md).toContain('| op | N | detloss GPU ms | GPU-resident ms | TF.js webgpu ms | copy ms | × TF.js webgpu | % of copy bandwidth | dispatches detloss / TF.js |');
    expect(md).toContain('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    expect(md).toContain('| smooth_l1 | 1e+6 | 10.0 | 8.00 | 250 | 6.00 | 25 | 75% | 2 / 22 |');
    expect(md).toContain('| quality_focal c=80 | 1e+6 | 2000 | - | - | - | - | - | 2 / - |');
    for (const gone of ['workgroup/row ms', 'CPU ref ms', 'TF.js cpu ms', '× CPU ref']) expect(md).not.toContain(gone);
    expect(md).toContain('- quality_focal c=80 N=1e+6: tfjs-webgpu and tfjs-cpu not timed (out of memory); detloss-gpu-resident: 3 timed runs');
    expect(md).toContain('- cross_entropy c=80 N=1e+6: FAILED, not measured: device lost');
    expect(md).toContain('| smooth_l1 | 40.0 | 7.00 |');
  });

  it('says under the table what ×N means: the other time over detloss\'s, so detloss takes 1/N of it', () => {
    const lines = benchTable(res).split('\n');
    const last = lines.findIndex((l) => l.startsWith('| quality_focal c=80 | 1e+6 |')); // the table's last row
    expect(lines.slice(last + 1, last + 3)).toEqual(['', ratioLegend('detloss GPU ms')]);
    expect(ratioLegend('detloss GPU ms')).toBe('×N: the other\'s median time divided by detloss\'s ("detloss GPU ms"): detloss takes 1/N of the time (above 1, detloss is faster; below 1, slower).');
    // What the ratio is: TF.js webgpu's 250 ms over detloss's 10 ms is the 25 in the row.
    expect(250 / 10).toBe(res.cases[0].speedup['tfjs-webgpu']);
  });

  it('a column comes back as soon as one row has a number in it; with no × column left, no legend', () => {
    const withRows: BenchResult = {
      ...res,
      rows: [...res.rows, { op: 'quality_focal', params: {}, n: 1e6, contender: 'detloss-gpu-rows', medianMs: 1500, timesMs: [1500] }],
      cases: [res.cases[0], { ...res.cases[1], speedup: { 'detloss-gpu-rows': 0.75, 'detloss-cpu': 3 } }],
    };
    const md = benchTable(withRows);
    expect(md).toContain('| op | N | detloss GPU ms | workgroup/row ms | GPU-resident ms | TF.js webgpu ms | copy ms | × TF.js webgpu | × CPU ref | % of copy bandwidth | dispatches detloss / TF.js |');
    expect(md).toContain('| quality_focal c=80 | 1e+6 | 2000 | 1500 | - | - | - | - | 3.0 | - | 2 / - |');
    expect(md).toContain(ratioLegend('detloss GPU ms'));
    const noRatio: BenchResult = { ...res, cases: res.cases.map((c) => ({ ...c, speedup: {} })) };
    expect(benchTable(noRatio)).not.toContain('×N');
    expect(benchTable(noRatio)).not.toContain('| ×');
  });

  it('with a ranking table, the legend comes once, under it (its ratios are over detloss GPU ms too)', () => {
    const params = { positives: 0.1 };
    const ranked: BenchResult = {
      ...res,
      rows: [
        { op: 'ap_loss', params, n: 1e4, contender: 'detloss-gpu', medianMs: 2, timesMs: [2] },
        { op: 'ap_loss', params, n: 1e4, contender: 'detloss-cpu', medianMs: 8, timesMs: [8] },
        { op: 'ap_loss', params, n: 1e4, contender: 'js-authors-loop', medianMs: 80, timesMs: [80] },
      ],
      cases: [{ op: 'ap_loss', label: 'ap_loss p=0.1', params, n: 1e4, check: { ok: true, detail: 'fine' }, dispatches: { detloss: 3 }, bytes: { read: 1, write: 1 }, speedup: { 'detloss-cpu': 4, 'js-authors-loop': 40 } }],
      failures: [],
    };
    const lines = benchTable(ranked).split('\n');
    expect(lines.filter((l) => l === ratioLegend('detloss GPU ms'))).toHaveLength(1);
    const row = lines.indexOf('| ap_loss p=0.1 | 1e+4 | 2.00 | 8.00 | 80.0 | 4.0 | 40 |');
    expect(row).toBeGreaterThan(0);
    expect(lines.slice(row + 1, row + 3)).toEqual(['', ratioLegend('detloss GPU ms')]);
  });

  it('the chart has a bar for each case TF.js was timed in, and the 20x line', () => {
    const svg = benchSvg(res);
    expect(svg.match(/<rect /g)).toHaveLength(1);
    expect(svg).toContain('<title>smooth_l1 N=1000000: 25.0×</title>');
    expect(svg).toContain('20× target');
  });
});

describe('npx detloss bench, end to end in headless Chromium', () => {
  const out = mkdtempSync(join(tmpdir(), 'detloss-bench-'));
  made.push(out);
  let run: { code: number | null; out: string };
  beforeAll(() => {
    // The page only: bench/dist-node is test/tools/bench-node.test.ts's, which may be running beside this.
    const build = spawnSync(process.execPath, [join(root, 'node_modules/vite/bin/vite.js'), 'build', '--config', 'bench/vite.config.ts'], { cwd: root, encoding: 'utf8', timeout: 180_000 });
    expect(build.status, build.stderr).toBe(0);
    const r = spawnSync(process.execPath, [join(root, 'dist/cli.js'), 'bench', '--ops=smooth_l1,quality_focal', '--n', '300', '--reps', '1', '--out', out], {
      cwd: root,
      encoding: 'utf8',
      timeout: 240_000,
    });
    run = { code: r.status, out: `${r.stdout}${r.stderr}` };
  }, 300_000);

  it('exits 0 with a progress line per case and the table', () => {
    expect(run.code, run.out).toBe(0);
    expect(run.out).toMatch(/^adapter: /m);
    expect(run.out).toContain('[1/2] smooth_l1 n=300: preparing');
    expect(run.out).toContain('[2/2] quality_focal c=80 n=300: preparing');
    expect(run.out).toMatch(/TF.js peer agrees/);
    expect(run.out).toContain('| op | N | detloss GPU ms');
    expect(run.out).toContain(`\n\n${ratioLegend('detloss GPU ms')}\n`);
  });

  it('writes latest.json in the documented shape, and the chart and table beside it', () => {
    const json = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8'));
    expect(json.adapter).toHaveProperty('isFallbackAdapter');
    expect(json.failures).toEqual([]);
    for (const op of ['smooth_l1', 'quality_focal']) {
      const rows = json.rows.filter((r: { op: string }) => r.op === op);
      const who = rows.map((r: { contender: string }) => r.contender);
      for (const c of ['detloss-gpu', 'detloss-gpu-resident', 'detloss-cpu', 'tfjs-webgpu', 'tfjs-cpu', 'copy']) expect(who).toContain(c);
      for (const r of rows) {
        expect(CONTENDERS).toContain(r.contender);
        expect(r.n).toBe(300);
        expect(r.medianMs).toBeGreaterThan(0);
        expect(typeof r.params).toBe('object');
      }
      expect(rows.find((r: { contender: string }) => r.contender === 'detloss-gpu').dispatches).toBeLessThanOrEqual(2);
      expect(rows.find((r: { contender: string }) => r.contender === 'tfjs-webgpu').dispatches).toBeGreaterThan(2);
    }
    expect(existsSync(join(out, 'latest.svg'))).toBe(true);
    const md = readFileSync(join(out, 'latest.md'), 'utf8');
    expect(md).toContain('| quality_focal c=80 | 300 |');
    expect(md).toContain(ratioLegend('detloss GPU ms'));
    // A column is there when some case timed its contender, and left out when none did.
    const header = md.split('\n').find((l) => l.startsWith('| op | N |'))!;
    const timed = (w: string) => json.rows.some((r: { contender: string }) => r.contender === w);
    expect(header.includes('| workgroup/row ms |'), header).toBe(timed('detloss-gpu-rows'));
    expect(header.includes('| TF.js cpu ms |'), header).toBe(timed('tfjs-cpu'));
  });
});

describe('npx detloss bench --save, interrupted', () => {
  const committed = join(root, 'bench/results');
  const git = (...a: string[]) => spawnSync('git', a, { cwd: root, encoding: 'utf8' });
  it('Ctrl-C leaves the committed results as they were; what it measured is in bench/results/local', async () => {
    const before = git('status', '--porcelain', '--', 'bench/results').stdout;
    // What it held before: written by this run, it is new or changed (it has this run's date and times).
    const local = join(committed, 'local', 'latest.json');
    const prior = existsSync(local) ? readFileSync(local) : undefined;
    // Two cases, the second far longer (N = 1e5, 300 runs of each contender: tens of seconds) so that the interrupt lands in it.
    const child = spawn(process.execPath, [join(root, 'dist/cli.js'), 'bench', '--save', '--ops', 'smooth_l1', '--n', '300,100000', '--reps', '300'], { cwd: root });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((ok) => child.on('exit', (code) => ok(code)));
    await new Promise<void>((ok, fail) => {
      const timer = setInterval(() => {
        if (out.includes('[2/2]')) {
          clearInterval(timer);
          ok();
        } else if (child.exitCode !== null) {
          clearInterval(timer);
          fail(new Error(`bench ended before its second case: ${out}`));
        }
      }, 100);
    });
    child.kill('SIGINT');
    const code = await exited;
    expect(code).not.toBe(0);
    expect(git('status', '--porcelain', '--', 'bench/results').stdout).toBe(before);
    expect(git('diff', '--quiet', '--', 'bench/results').status).toBe(0);
    expect(prior?.equals(readFileSync(local)) ?? false, `${local} is as it was before the run: not written by it`).toBe(false);
    expect(JSON.parse(readFileSync(local, 'utf8')).cases.map((c: { n: number }) => c.n)).toEqual([300]);
    expect(git('check-ignore', '-q', local).status).toBe(0);
  }, 240_000);
});
