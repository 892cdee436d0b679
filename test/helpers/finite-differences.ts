/**
 * Finite differences for the gradient tests: each checks an analytic gradient against the central
 * difference `(f(x + h) - f(x - h)) / 2h`, one coordinate at a time, in float64.
 */

/** The step every gradient test uses. */
export const FD_STEP = 1e-6;

/** The slopes of `f` at one coordinate: left `(f(x) - f(x - h)) / h`, right `(f(x + h) - f(x)) / h`, and central. */
export interface Slopes {
  left: number;
  right: number;
  central: number;
}

/**
 * `f` evaluated with `x[i]` moved by `dx` (set to `x[i] + dx`, then restored). `f` reads `x`,
 * so an objective written over the array it was given needs no copy per coordinate.
 */
export function shifted(x: Float64Array, i: number, dx: number, f: () => number): number {
  const x0 = x[i];
  x[i] = x0 + dx;
  try {
    return f();
  } finally {
    x[i] = x0;
  }
}

/** The central difference of `f` in coordinate `i` of `x`. */
export const centralDifference = (x: Float64Array, i: number, f: () => number, h = FD_STEP) =>
  (shifted(x, i, h, f) - shifted(x, i, -h, f)) / (2 * h);

/** The left, right and central slopes of `f` in coordinate `i` of `x`. */
export function slopes(x: Float64Array, i: number, f: () => number, h = FD_STEP): Slopes {
  const f0 = f();
  const fp = shifted(x, i, h, f);
  const fm = shifted(x, i, -h, f);
  return { left: (f0 - fm) / h, right: (fp - f0) / h, central: (fp - fm) / (2 * h) };
}

/**
 * A kink: the one-sided slopes differ by more than 1e-3 (1 + |right|), so no single derivative
 * exists there (|x| at 0, a piecewise loss at its switch) and the coordinate is not comparable.
 */
export const isKink = (s: Slopes) => Math.abs(s.right - s.left) > 1e-3 * (1 + Math.abs(s.right));

/**
 * Calls `check(i, central)` for every coordinate of `x` where `f` has no kink and returns how many
 * that was, so a test can assert that almost every coordinate was compared.
 */
export function checkCentralDifferences(x: Float64Array, f: () => number, check: (i: number, central: number) => void, h = FD_STEP): number {
  let checked = 0;
  for (let i = 0; i < x.length; i++) {
    const s = slopes(x, i, f, h);
    if (isKink(s)) continue;
    check(i, s.central);
    checked++;
  }
  return checked;
}
