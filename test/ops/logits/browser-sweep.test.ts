import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cpu } from '../../../src/cpu';
import { openGpuPage, runInPage } from '../../../src/tools/browser';
import { useBrowserPage } from '../../helpers/browser-page';
import { LOGIT_OP_NAMES, logitInputs, type Tensor } from '../../helpers/logit-inputs';

const dist = fileURLToPath(new URL('../../../dist/', import.meta.url));
const gp = useBrowserPage(() => openGpuPage(dist));

const host = (inputs: Record<string, Tensor>) =>
  Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, { data: t.dtype === 'i32' ? Int32Array.from(t.data) : Float32Array.from(t.data), shape: t.shape }]));

function mismatch(got: number[], want: Float64Array, atol: number, rtol: number): string | undefined {
  if (got.length !== want.length) return `length ${got.length} vs ${want.length}`;
  for (let i = 0; i < want.length; i++) {
    if (!Number.isFinite(got[i])) return `[${i}] = ${got[i]}`;
    if (Math.abs(got[i] - want[i]) > atol + rtol * Math.abs(want[i])) return `[${i}] ${got[i]} vs ${want[i]}`;
  }
  return undefined;
}

// Row widths 1 and 3 run a thread per row; 1000 (past the default rowThreshold of 512) a workgroup per row.
const SHAPES: [number, number][] = [
  [9, 1],
  [33, 3],
  [5, 1000],
];
const VARIANTS: Record<string, string[]> = {
  cross_entropy: ['plain', 'extreme', 'weighted'],
  bce_with_logits: ['plain', 'extreme', 'weighted'],
  quality_focal: ['plain', 'extreme', 'background'],
};

describe('logit losses on the GPU in headless Chromium match the CPU reference', () => {
  it.each(LOGIT_OP_NAMES)('%s: every reduction, rows of 1, 3 and 1000, extreme logits', async (op) => {
    const bad: string[] = [];
    let runs = 0;
    for (const [n, c0] of SHAPES) {
      const c = op === 'distribution_focal' ? Math.max(c0, 2) : c0; // DFL needs k >= 2 bins
      for (const variant of VARIANTS[op] ?? ['plain', 'extreme']) {
        for (const reduction of ['none', 'mean', 'sum'] as const) {
          const { inputs, params } = logitInputs(op, n, c, n + c, variant);
          const weight = op === 'varifocal' || op === 'bce_with_logits' || op === 'sigmoid_focal' ? undefined : { dtype: 'f32' as const, shape: [n], data: Array.from({ length: n }, (_, i) => 0.5 + (i % 3) * 0.25) };
          const all = weight ? { ...inputs, weight } : inputs;
          const options = { ...params, reduction };
          const gpu = await runInPage(gp.page, op, all, options);
          const ref = cpu.run(op, host(all), options);
          const name = `${op} ${n}x${c} ${variant} ${reduction}`;
          runs++;
          if (!gpu.ok) {
            bad.push(`${name}: ${gpu.message}`);
            continue;
          }
          const l = mismatch(gpu.loss, ref.loss, 1e-4, 1e-4);
          const gradName = Object.keys(ref.grad)[0];
          const g = mismatch(gpu.grad[gradName], ref.grad[gradName], 1e-5, 1e-3);
          if (l || g) bad.push(`${name}: loss ${l ?? 'ok'}, grad ${g ?? 'ok'}`);
        }
      }
    }
    expect(bad).toEqual([]);
    expect(runs).toBeGreaterThanOrEqual(18);
  });
});
