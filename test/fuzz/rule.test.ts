/**
 * The fuzzer's tolerance rule (test/fuzz/tolerance.ts) on cases pinned by hand, with no GPU: the
 * reference itself, rounded to float32, passes; the wrong answers a kernel once gave, or could
 * give, do not.
 */
import { describe, expect, it } from 'vitest';
import type { FuzzCase } from './cases';
import { checkCase, referenceResult, type Surface } from './runner';

type Res = Awaited<ReturnType<Surface['run']>>;

const surface = (res: Res): Surface => ({ name: 'pinned', run: async () => res });
const boxCase = (pred: Float32Array, target: Float32Array, options: Record<string, unknown>): FuzzCase => ({
  op: 'iou_loss', seed: 0, index: 0, inputs: { pred, target }, options: { reduction: 'none', ...options }, rows: 'default', dims: { n: 1 }, tags: [],
});

describe('small boxes far from the origin (a kernel that converts to corners at x = 1e5)', () => {
  // The fuzzer's find: a box 0.008 wide at x = 1e5 converted to corners in float32 is a box of
  // another size; its gradient was 1467 where it is -16.75.
  const pred = Float32Array.of(100000.859375, 100000.9375, 0.008379973471164703, 0.24363966286182404);
  const target = Float32Array.of(100000.859375, 100000.9375, 0.008530938997864723, 0.24283528327941895);
  const variants = ['iou', 'giou', 'diou', 'ciou', 'eiou', 'siou'] as const;
  const formats = ['cxcywh', 'xywh'] as const;
  it.each(variants)('%s: the reference passes; 1467, the negation and zeros for the gradient fail', async (variant) => {
    for (const format of formats) {
      const c = boxCase(pred, target, { variant, format });
      const ref = referenceResult(c);
      expect(await checkCase(surface(ref), c), `${variant}/${format}: the reference itself`).toBeNull();
      const g = ref.grad.pred as Float32Array;
      const big = g.findIndex((v) => Math.abs(v) > 1);
      expect(big, `${variant}/${format}: a gradient element above 1`).toBeGreaterThanOrEqual(0);
      const wrong: [string, Float32Array][] = [
        ['1467', Float32Array.from(g, (v, i) => (i === big ? 1467 : v))],
        ['negated', Float32Array.from(g, (v) => -v)],
        ['zeros', new Float32Array(g.length)],
      ];
      for (const [what, grad] of wrong) {
        expect(await checkCase(surface({ ...ref, grad: { pred: grad } }), c), `${variant}/${format}: gradient ${what}`).not.toBeNull();
      }
    }
  });
});
