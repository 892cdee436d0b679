/**
 * Whether two NMS results agree, and how they differ: the boxes only one of them kept, and whether
 * the same boxes come in the same order (all three results list them by decreasing score).
 */

/** How result `a` stands to result `b`. */
export interface Agreement {
  /** The same indices in the same order. */
  same: boolean;
  /** Kept by `a` only, and by `b` only. */
  onlyA: number[];
  onlyB: number[];
}

/** Compares two lists of kept indices. */
export function agreement(a: ArrayLike<number>, b: ArrayLike<number>): Agreement {
  const inA = new Set(Array.from(a));
  const inB = new Set(Array.from(b));
  const onlyA = [...inA].filter((i) => !inB.has(i));
  const onlyB = [...inB].filter((i) => !inA.has(i));
  const same = a.length === b.length && Array.from(a).every((v, i) => v === b[i]);
  return { same, onlyA, onlyB };
}

/** A few indices, then how many more. */
const some = (xs: number[]) => (xs.length <= 6 ? xs.join(', ') : `${xs.slice(0, 6).join(', ')} and ${xs.length - 6} more`);

/** One line saying how `a` and `b` (named) compare. */
export function describe(g: Agreement, nameA: string, nameB: string): string {
  if (g.same) return `${nameA} and ${nameB} kept the same boxes, in the same order.`;
  if (!g.onlyA.length && !g.onlyB.length) return `${nameA} and ${nameB} kept the same boxes, in a different order.`;
  const parts = [g.onlyA.length ? `only ${nameA} kept box ${some(g.onlyA)}` : '', g.onlyB.length ? `only ${nameB} kept box ${some(g.onlyB)}` : ''];
  return `${nameA} and ${nameB} differ: ${parts.filter(Boolean).join('; ')}.`;
}
