import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { openGpuPage } from '../../../src/tools/browser';
import { useBrowserPage } from '../../helpers/browser-page';
import { EDGE_FORMATS, LOSS_VARIANTS, PAIR_VARIANTS, REPORTED, compare, gridBoxes, rowScale, showBox, singlePairs } from '../../helpers/box-grid';

// Issue 9, defect 1 in headless Chromium: the box kernels on the integer grid with zero widths and
// heights, inverted boxes and zeros of both signs, one pair per launch and batched, against the
// CPU reference. Boxes cross into the page as float32 bytes, so -0 stays -0.

const dist = fileURLToPath(new URL('../../../dist/', import.meta.url));
const gp = useBrowserPage(() => openGpuPage(dist));

type Op = 'iou_loss' | 'pairwise_iou';
interface Job {
  op: Op;
  params: Record<string, unknown>;
  x: string;
  y: string;
  /** One pair per `dl.run` (x[i] with y[i]); otherwise x and y in one call. */
  single: boolean;
}
type JobResult = { ok: true; loss: string; grad: string } | { ok: false; message: string };

const b64 = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
const unb64 = (s: string) => {
  const b = Buffer.from(s, 'base64');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

/** Runs the jobs in the page, in order, on `window.dl`. */
async function runJobs(jobs: Job[]): Promise<{ loss: Float32Array; grad: Float32Array }[]> {
  const results = (await gp.page.evaluate(async (jobs: Job[]) => {
    const dl = (window as unknown as { dl: { run: (op: string, i: unknown, p: unknown) => Promise<{ loss: Float32Array; grad: Record<string, Float32Array> }> } }).dl;
    const dec = (s: string) => {
      const b = atob(s);
      const u = new Uint8Array(b.length);
      for (let i = 0; i < b.length; i++) u[i] = b.charCodeAt(i);
      return new Float32Array(u.buffer);
    };
    const enc = (f: Float32Array) => {
      const u = new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
      let s = '';
      for (let i = 0; i < u.length; i += 0x8000) s += String.fromCharCode(...u.subarray(i, i + 0x8000));
      return btoa(s);
    };
    const out: JobResult[] = [];
    for (const job of jobs) {
      const x = dec(job.x);
      const y = dec(job.y);
      const [nx, ny] = job.op === 'iou_loss' ? ['pred', 'target'] : ['a', 'b'];
      try {
        if (job.single) {
          const n = x.length / 4;
          const loss = new Float32Array(n);
          const grad = new Float32Array(job.op === 'iou_loss' ? 4 * n : 0);
          for (let i = 0; i < n; i++) {
            const r = await dl.run(job.op, { [nx]: x.slice(4 * i, 4 * i + 4), [ny]: y.slice(4 * i, 4 * i + 4) }, job.params);
            loss[i] = r.loss[0];
            if (grad.length) grad.set(r.grad.pred, 4 * i);
          }
          out.push({ ok: true, loss: enc(loss), grad: enc(grad) });
        } else {
          const r = await dl.run(job.op, { [nx]: x, [ny]: y }, job.params);
          out.push({ ok: true, loss: enc(r.loss), grad: enc(r.grad.pred ?? new Float32Array(0)) });
        }
      } catch (e) {
        out.push({ ok: false, message: String((e as Error).message ?? e) });
      }
    }
    return out;
  }, jobs)) as JobResult[];
  return results.map((r) => {
    if (!r.ok) throw new Error(r.message);
    return { loss: unb64(r.loss), grad: unb64(r.grad) };
  });
}

const lossName = (v: { variant: string; mode?: string }) => `${v.variant}${'mode' in v ? `/${v.mode}` : ''}`;

/** Rows of iou_loss that differ from the reference (xs, ys: n boxes each). */
function lossDiffs(name: string, got: { loss: Float32Array; grad: Float32Array }, xs: Float32Array, ys: Float32Array, params: Record<string, unknown>): string[] {
  const ref = cpu.run('iou_loss', { pred: xs, target: ys }, params);
  const bad: string[] = [];
  for (let i = 0; i < ref.loss.length; i++) {
    const want = ref.grad.pred.subarray(4 * i, 4 * i + 4);
    const scale = rowScale(ref.loss[i], want);
    const l = compare([got.loss[i]], [ref.loss[i]], scale);
    const g = compare(got.grad.subarray(4 * i, 4 * i + 4), want, scale);
    if (l !== 'ok' || g !== 'ok') bad.push(`${name} ${showBox(xs.subarray(4 * i, 4 * i + 4))} ${showBox(ys.subarray(4 * i, 4 * i + 4))}: loss ${l}, grad ${g}`);
  }
  return bad;
}

describe('the reported pairs in Chromium, one per launch', () => {
  it('equal the CPU reference', async () => {
    const jobs: Job[] = REPORTED.map((r) => ({
      op: r.op,
      params: r.op === 'iou_loss' ? { variant: 'ciou', format: r.format, reduction: 'none' } : { variant: 'ciou', format: r.format },
      x: b64(Float32Array.from(r.p)),
      y: b64(Float32Array.from(r.t)),
      single: true,
    }));
    const got = await runJobs(jobs);
    const bad: string[] = [];
    REPORTED.forEach((r, k) => {
      const x = Float32Array.from(r.p);
      const y = Float32Array.from(r.t);
      if (r.op === 'iou_loss') bad.push(...lossDiffs(r.what, got[k], x, y, jobs[k].params));
      else {
        const ref = cpu.run('pairwise_iou', { a: x, b: y }, jobs[k].params);
        const l = compare(got[k].loss, ref.loss);
        if (l !== 'ok') bad.push(`${r.what}: ${l}`);
      }
    });
    expect(bad).toEqual([]);
  });
});

describe('the integer grid in Chromium equals the CPU reference', () => {
  for (const format of EDGE_FORMATS) {
    it(`${format}: iou_loss, every variant, one pair per launch and the same pairs in one launch`, async () => {
      const pairs = singlePairs(format, 64, 5 + format.length);
      const xs = Float32Array.from(pairs.flatMap(([p]) => p));
      const ys = Float32Array.from(pairs.flatMap(([, t]) => t));
      const jobs: Job[] = LOSS_VARIANTS.flatMap((v) =>
        [true, false].map((single) => ({ op: 'iou_loss' as const, params: { ...v, format, reduction: 'none' }, x: b64(xs), y: b64(ys), single })),
      );
      const got = await runJobs(jobs);
      const bad = jobs.flatMap((job, k) => lossDiffs(`${lossName(job.params as { variant: string })}${job.single ? ' (single)' : ''}`, got[k], xs, ys, job.params));
      expect(bad.slice(0, 10), `${bad.length} of ${jobs.length * pairs.length} differ`).toEqual([]);
    });

    it(`${format}: pairwise_iou, every variant, one pair per launch and the whole grid in one launch`, async () => {
      const pairs = singlePairs(format, 64, 9 + format.length);
      const xs = Float32Array.from(pairs.flatMap(([p]) => p));
      const ys = Float32Array.from(pairs.flatMap(([, t]) => t));
      const boxes = gridBoxes(format);
      const grid = Float32Array.from(boxes.flat());
      const jobs: Job[] = PAIR_VARIANTS.flatMap((variant) => [
        { op: 'pairwise_iou' as const, params: { variant, format }, x: b64(xs), y: b64(ys), single: true },
        { op: 'pairwise_iou' as const, params: { variant, format }, x: b64(grid), y: b64(grid), single: false },
      ]);
      const got = await runJobs(jobs);
      const bad: string[] = [];
      jobs.forEach((job, k) => {
        const variant = job.params.variant as string;
        if (job.single) {
          pairs.forEach(([p, t], i) => {
            const ref = cpu.run('pairwise_iou', { a: Float32Array.from(p), b: Float32Array.from(t) }, job.params);
            const l = compare([got[k].loss[i]], ref.loss, rowScale(ref.loss[0]));
            if (l !== 'ok') bad.push(`${variant} (single) ${showBox(p)} ${showBox(t)}: ${l}`);
          });
        } else {
          const ref = cpu.run('pairwise_iou', { a: grid, b: grid }, job.params);
          for (let e = 0; e < ref.loss.length; e++) {
            const l = compare([got[k].loss[e]], [ref.loss[e]], rowScale(ref.loss[e]));
            if (l !== 'ok') bad.push(`${variant} ${showBox(boxes[Math.floor(e / boxes.length)])} ${showBox(boxes[e % boxes.length])}: ${l}`);
          }
        }
      });
      expect(bad.slice(0, 10), `${bad.length} differ`).toEqual([]);
    });
  }
});
