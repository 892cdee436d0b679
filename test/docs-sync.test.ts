import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { needShared, SHARED } from './helpers/shared';

// docs/ops.md is the operator contract, shipped with the package so the README can point into it.
const local = new URL('../docs/ops.md', import.meta.url);
const shared = new URL('ops.md', SHARED);

describe('docs/ops.md', () => {
  it('is there and names every op the README lists', () => {
    const text = readFileSync(local, 'utf8');
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    expect(readme).toContain('docs/ops.md');
    for (const op of ['iou_loss', 'pairwise_iou', 'smooth_l1', 'sigmoid_focal', 'cross_entropy', 'kl_div', 'dice']) expect(text, op).toContain(op);
  });
  // Without ../shared: a failure in CI, a skip that says so elsewhere.
  it('equals ../shared/ops.md byte for byte', ({ skip }) => {
    needShared(shared, skip, 'docs/ops.md');
    expect(existsSync(local)).toBe(true);
    expect(readFileSync(local).equals(readFileSync(shared)), 'docs/ops.md differs from ../shared/ops.md: copy it again').toBe(true);
  });
});
