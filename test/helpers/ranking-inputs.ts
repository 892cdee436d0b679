/** Random inputs for the ranking losses, and the sums the conservation check compares. */

/** A small deterministic PRNG (mulberry32). */
function mulberry(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `n` scores (normal-ish, positives shifted up by 1) and targets with a fraction `pos` of
 * positives and about 2% ignored: `ap_loss` targets are 1/0/-1, `rank_sort` positives get an IoU
 * in (0.05, 1]. Scores are drawn on a grid of 1/64 now and then, so that ties happen.
 */
export function rankingInputs(op: string, n: number, pos: number, seed: number): { logits: Float32Array; targets: Float32Array } {
  const r = mulberry(seed);
  const logits = new Float32Array(n);
  const targets = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = r();
    const isPos = u < pos;
    const ignored = !isPos && u < pos + 0.02;
    targets[i] = isPos ? (op === 'rank_sort' ? 0.05 + 0.95 * r() : 1) : ignored ? -1 : 0;
    let s = (r() + r() + r() - 1.5) * 2 + (isPos ? 1 : 0);
    if (r() < 0.1) s = Math.round(s * 64) / 64;
    logits[i] = s;
  }
  return { logits, targets };
}

/**
 * The ranking loss (ap_loss's loss, rank_sort's first number) and the sums of the update over
 * the negatives and over the positives (ops.md: the first equals it, the second is minus it).
 */
export function conservation(loss: ArrayLike<number>, update: ArrayLike<number>, targets: ArrayLike<number>) {
  let negatives = 0;
  let positives = 0;
  for (let i = 0; i < targets.length; i++) {
    if (targets[i] > 0) positives += update[i];
    else if (targets[i] === 0) negatives += update[i];
  }
  return { ranking: loss[0], negatives, positives };
}
