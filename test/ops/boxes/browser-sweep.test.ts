import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { openGpuPage, runInPage } from '../../../src/tools/browser';
import { useBrowserPage } from '../../helpers/browser-page';
import { rand } from '../../helpers/counting';

const dist = fileURLToPath(new URL('../../../dist/', import.meta.url));
const gp = useBrowserPage(() => openGpuPage(dist));

const VARIANTS = [
  ['iou', 'linear'],
  ['iou', 'square'],
  ['iou', 'log'],
  ['giou'],
  ['diou'],
  ['ciou'],
  ['eiou'],
  ['siou'],
] as const;
const FORMATS = ['xyxy', 'cxcywh', 'xywh'] as const;
const REDUCTIONS = ['none', 'mean', 'sum'] as const;

/** xyxy boxes to the given format. */
function toFormat(b: number[], format: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < b.length; i += 4) {
    const [x1, y1, x2, y2] = b.slice(i, i + 4);
    if (format === 'xyxy') out.push(x1, y1, x2, y2);
    else if (format === 'cxcywh') out.push((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1);
    else out.push(x1, y1, x2 - x1, y2 - y1);
  }
  return Array.from(Float32Array.from(out));
}

function randomPairs(n: number, seed: number): { pred: number[]; target: number[] } {
  const r = rand(n * 8, seed, 0, 1);
  const pred: number[] = [];
  const target: number[] = [];
  for (let i = 0; i < n; i++) {
    const k = i * 8;
    const x = r[k] * 300;
    const y = r[k + 1] * 300;
    const w = 4 + r[k + 2] * 80;
    const h = 4 + r[k + 3] * 80;
    target.push(x, y, x + w, y + h);
    const px = x + (r[k + 4] - 0.5) * 40;
    const py = y + (r[k + 5] - 0.5) * 40;
    pred.push(px, py, px + w * (0.6 + r[k + 6]), py + h * (0.6 + r[k + 7]));
  }
  return { pred, target };
}

/** The degenerate pairs of issue 3, in xyxy: [pred, target]. */
const DEGENERATE: [string, number[], number[]][] = [
  ['identical', [10, 10, 50, 40], [10, 10, 50, 40]],
  ['disjoint, far apart', [0, 0, 10, 10], [20000, 30000, 20010, 30020]],
  ['nested', [20, 20, 30, 30], [10, 10, 50, 50]],
  ['nested, sharing an edge', [10, 20, 30, 30], [10, 10, 50, 50]],
  ['touching edges', [0, 0, 10, 10], [10, 0, 20, 10]],
  ['zero width', [5, 5, 5, 15], [0, 0, 10, 10]],
  ['zero height', [5, 5, 15, 5], [0, 0, 10, 10]],
  ['zero width and height', [5, 5, 5, 5], [0, 0, 10, 10]],
  ['tiny', [450, 450, 450.001, 450.002], [450.0005, 450, 450.0015, 450.001]],
  ['coordinates in the tens of thousands', [30000, 40000, 30100, 40060], [30010, 40005, 30120, 40050]],
  ['centres aligned on x', [10, 0, 30, 10], [10, 40, 30, 60]],
  ['centres aligned on y', [0, 10, 10, 30], [40, 10, 60, 30]],
  ['x2 < x1', [30, 10, 10, 40], [10, 10, 50, 40]],
];

const close = (got: number[], want: Float64Array, atol: number, rtol: number) => {
  for (let i = 0; i < want.length; i++) if (!(Math.abs(got[i] - want[i]) <= atol + rtol * Math.abs(want[i]))) return `[${i}] ${got[i]} vs ${want[i]}`;
  return 'ok';
};

describe('iou_loss on the GPU in headless Chromium: every variant x format x reduction', () => {
  const { pred, target } = randomPairs(97, 5);
  const weight = Array.from(rand(97, 6, 0.5, 1.5));
  const combos = VARIANTS.flatMap(([variant, mode]) => FORMATS.flatMap((format) => REDUCTIONS.map((reduction) => ({ variant, mode, format, reduction }))));
  it(`${combos.length} combinations match the CPU reference`, async () => {
    const bad: string[] = [];
    for (const { variant, mode, format, reduction } of combos) {
      const params = { variant, format, reduction, ...(mode ? { mode } : {}) };
      const inputs = {
        pred: { dtype: 'f32' as const, shape: [97, 4], data: toFormat(pred, format) },
        target: { dtype: 'f32' as const, shape: [97, 4], data: toFormat(target, format) },
        weight: { dtype: 'f32' as const, shape: [97], data: weight },
      };
      const gpu = await runInPage(gp.page, 'iou_loss', inputs, params);
      const ref = cpu.run('iou_loss', { pred: Float32Array.from(inputs.pred.data), target: Float32Array.from(inputs.target.data), weight: Float32Array.from(weight) }, params);
      const name = `${variant}${mode ? `/${mode}` : ''}/${format}/${reduction}`;
      if (!gpu.ok) {
        bad.push(`${name}: ${gpu.message}`);
        continue;
      }
      const l = close(gpu.loss, ref.loss, 1e-5, 1e-4);
      const g = close(gpu.grad.pred, ref.grad.pred, 1e-5, 1e-3);
      if (l !== 'ok' || g !== 'ok') bad.push(`${name}: loss ${l}, grad ${g}`);
    }
    expect(bad).toEqual([]);
  });
});

describe('degenerate boxes on the GPU: finite, and equal to the CPU reference', () => {
  const pred = DEGENERATE.flatMap(([, p]) => p);
  const target = DEGENERATE.flatMap(([, , t]) => t);
  const n = DEGENERATE.length;
  it.each(VARIANTS.map(([v, m]) => [`${v}${m ? `/${m}` : ''}`, v, m] as const))('%s', async (_name, variant, mode) => {
    const params = { variant, reduction: 'none' as const, ...(mode ? { mode } : {}) };
    const inputs = { pred: { dtype: 'f32' as const, shape: [n, 4], data: pred }, target: { dtype: 'f32' as const, shape: [n, 4], data: target } };
    const gpu = await runInPage(gp.page, 'iou_loss', inputs, params);
    expect(gpu.ok).toBe(true);
    if (!gpu.ok) return;
    const ref = cpu.run('iou_loss', { pred: Float32Array.from(pred), target: Float32Array.from(target) }, params);
    for (let i = 0; i < n; i++) {
      const what = `${DEGENERATE[i][0]}`;
      expect(Number.isFinite(gpu.loss[i]), `${what}: loss ${gpu.loss[i]}`).toBe(true);
      for (let k = 0; k < 4; k++) expect(Number.isFinite(gpu.grad.pred[i * 4 + k]), `${what}: grad ${gpu.grad.pred[i * 4 + k]}`).toBe(true);
      expect(Math.abs(gpu.loss[i] - ref.loss[i]), `${what}: loss ${gpu.loss[i]} vs ${ref.loss[i]}`).toBeLessThanOrEqual(1e-4 + 1e-3 * Math.abs(ref.loss[i]));
      for (let k = 0; k < 4; k++) {
        const g = gpu.grad.pred[i * 4 + k];
        const w = ref.grad.pred[i * 4 + k];
        expect(Math.abs(g - w), `${what}: grad[${k}] ${g} vs ${w}`).toBeLessThanOrEqual(1e-3 + 2e-2 * Math.abs(w));
      }
    }
  });
});
