/**
 * Golden fixtures (format `detloss-fixture/1`, see test/fixtures/README.md):
 * parsing, turning a case into `run()` arguments, and comparing a result with
 * the case's tolerance (element by element, and each array as a whole).
 */

export interface FixtureTensor {
  dtype: 'f32' | 'i32';
  shape: number[];
  data: number[];
}
export interface Tolerance {
  atol: number;
  rtol: number;
  /**
   * The array rule's relative bound: an f32 array of more than one element passes as a whole when
   * `||got - want||_2 <= l2 * ||want||_2 + 1e-6 * sqrt(n)`. Absent: {@link DEFAULT_L2}.
   */
  l2?: number;
}
export interface FixtureCase {
  name: string;
  op: string;
  params: Record<string, unknown>;
  inputs: Record<string, FixtureTensor>;
  /**
   * `loss` is absent for an op with no loss (`tal_assign`); `outputs` holds the named outputs of an
   * op that has them (i32 ones must match exactly, f32 ones pass under `tolerance.outputs.<name>`).
   */
  expected: { loss?: { shape: number[]; data: number[] }; grad?: Record<string, { shape: number[]; data: number[] }>; outputs?: Record<string, FixtureTensor> };
  tolerance: { loss?: Tolerance; grad?: Tolerance; outputs?: Record<string, Tolerance> };
  source?: string;
}

export const FIXTURE_FORMAT = 'detloss-fixture/1';

/** The array rule's `l2` where a tolerance gives none. */
export const DEFAULT_L2 = 1e-3;
/** The array rule's absolute term, per square root of the element count. */
export const L2_FLOOR = 1e-6;

/** Parses one fixture file; throws an Error naming the file and the case at fault. */
export function parseFixtures(text: string, origin = 'fixture'): FixtureCase[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new Error(`${origin}: not valid JSON (${(e as Error).message})`);
  }
  const d = doc as { format?: unknown; cases?: unknown };
  if (!d || d.format !== FIXTURE_FORMAT) throw new Error(`${origin}: "format" must be "${FIXTURE_FORMAT}", got ${JSON.stringify(d?.format)}`);
  if (!Array.isArray(d.cases)) throw new Error(`${origin}: "cases" must be an array`);
  d.cases.forEach((c: FixtureCase, i: number) => {
    const where = `${origin}: case ${i} (${c?.name ?? 'unnamed'})`;
    if (typeof c?.name !== 'string' || typeof c.op !== 'string') throw new Error(`${where}: needs "name" and "op" strings`);
    if (typeof c.params !== 'object' || c.params === null) throw new Error(`${where}: needs a "params" object`);
    if (typeof c.inputs !== 'object' || c.inputs === null) throw new Error(`${where}: needs an "inputs" object`);
    for (const [k, t] of Object.entries(c.inputs)) {
      if (!t || (t.dtype !== 'f32' && t.dtype !== 'i32') || !Array.isArray(t.shape) || !Array.isArray(t.data)) {
        throw new Error(`${where}: input ${k} needs dtype f32|i32, shape and data`);
      }
      const len = t.shape.reduce((a, b) => a * b, 1);
      if (len !== t.data.length) throw new Error(`${where}: input ${k} has shape [${t.shape}] but ${t.data.length} numbers`);
      checkNumbers(where, `input ${k}`, t.data);
    }
    if (typeof c.expected !== 'object' || c.expected === null) throw new Error(`${where}: needs an "expected" object`);
    const outputs = c.expected.outputs;
    if (outputs !== undefined) {
      if (typeof outputs !== 'object' || outputs === null || Object.keys(outputs).length === 0) throw new Error(`${where}: expected.outputs must be an object of tensors`);
      for (const [k, t] of Object.entries(outputs)) {
        if (!t || (t.dtype !== 'f32' && t.dtype !== 'i32') || !Array.isArray(t.shape) || !Array.isArray(t.data)) throw new Error(`${where}: expected.outputs.${k} needs dtype f32|i32, shape and data`);
        if (t.shape.reduce((a, b) => a * b, 1) !== t.data.length) throw new Error(`${where}: expected.outputs.${k} has shape [${t.shape}] but ${t.data.length} numbers`);
        checkNumbers(where, `expected.outputs.${k}`, t.data);
        if (t.dtype === 'i32' && !t.data.every((v) => Number.isInteger(v))) throw new Error(`${where}: expected.outputs.${k} is i32 but holds a non-integer`);
      }
    }
    // A case must expect something: a loss, or named outputs.
    if (c.expected.loss === undefined && outputs === undefined) throw new Error(`${where}: needs expected.loss.data or expected.outputs`);
    if (c.expected.loss !== undefined) {
      if (!Array.isArray(c.expected.loss?.data)) throw new Error(`${where}: needs expected.loss.data`);
      checkNumbers(where, 'expected.loss', c.expected.loss.data);
    }
    if (c.expected.grad !== undefined) {
      if (typeof c.expected.grad !== 'object' || c.expected.grad === null) throw new Error(`${where}: expected.grad must be an object`);
      for (const [k, g] of Object.entries(c.expected.grad)) {
        if (!g || !Array.isArray(g.data)) throw new Error(`${where}: expected.grad.${k} needs data`);
        checkNumbers(where, `expected.grad.${k}`, g.data);
      }
    }
    // A tolerance without atol or rtol would compare against NaN, and every comparison with NaN
    // is false: the case would pass whatever the numbers. Both must be numbers >= 0.
    if (typeof c.tolerance !== 'object' || c.tolerance === null) throw new Error(`${where}: needs a "tolerance" object`);
    if (c.expected.loss !== undefined || c.tolerance.loss !== undefined) checkTolerance(where, 'tolerance.loss', c.tolerance.loss);
    // Gradients fall back on the loss's tolerance: a case with gradients needs one or the other.
    if (c.tolerance.grad !== undefined || (Object.keys(c.expected.grad ?? {}).length && c.tolerance.loss === undefined)) checkTolerance(where, 'tolerance.grad', c.tolerance.grad);
    for (const [k, t] of Object.entries(outputs ?? {})) {
      const tol = c.tolerance.outputs?.[k];
      if (t.dtype === 'f32') checkTolerance(where, `tolerance.outputs.${k}`, tol);
      else if (tol !== undefined) throw new Error(`${where}: tolerance.outputs.${k} given for an i32 output, which must match exactly`);
    }
  });
  return d.cases as FixtureCase[];
}

/** Every element a finite number: a string or `null` would compare as NaN, which passes nothing and fails nothing. */
function checkNumbers(where: string, what: string, data: unknown[]): void {
  const i = data.findIndex((v) => typeof v !== 'number' || !Number.isFinite(v));
  if (i >= 0) throw new Error(`${where}: ${what}[${i}] is ${JSON.stringify(data[i])}, not a finite number`);
}

function checkTolerance(where: string, what: string, t: unknown): void {
  if (typeof t !== 'object' || t === null) throw new Error(`${where}: needs ${what} with atol and rtol`);
  for (const k of ['atol', 'rtol'] as const) {
    const v = (t as Record<string, unknown>)[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new Error(`${where}: ${what}.${k} must be a number >= 0, got ${JSON.stringify(v)}`);
  }
  // l2 is optional, but one that is there must be usable: NaN or a string would make the array
  // rule compare against NaN and pass every array.
  if (Object.hasOwn(t, 'l2')) {
    const v = (t as Record<string, unknown>).l2;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new Error(`${where}: ${what}.l2 must be a finite number >= 0 when given, got ${JSON.stringify(v)}`);
  }
}

/** The case's inputs as `{ data, shape }` tensors, ready for `dl.run` or `cpu.run`. */
export function caseInputs(c: FixtureCase): Record<string, { data: Float32Array | Int32Array; shape: number[] }> {
  const out: Record<string, { data: Float32Array | Int32Array; shape: number[] }> = {};
  for (const [k, t] of Object.entries(c.inputs)) {
    // defineProperty, not out[k] =: an input named "__proto__" stays an input (and is refused as
    // unknown) instead of setting this object's prototype and vanishing.
    Object.defineProperty(out, k, { value: { data: t.dtype === 'i32' ? Int32Array.from(t.data) : Float32Array.from(t.data), shape: t.shape }, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** The case's params, which include the shared options (`reduction`, `avgFactor`). */
export function caseOptions(c: FixtureCase): Record<string, unknown> {
  return { ...c.params };
}

export interface Comparison {
  pass: boolean;
  /** Largest |got - want| over the loss, and over all gradients. */
  lossErr: number;
  gradErr: number;
  /**
   * Largest relative L2 error `||got - want||_2 / ||want||_2` over the arrays of more than one
   * element (a `'none'` loss, each gradient) whose root mean square is at least 1e-6, the rule's
   * absolute floor (below it, as for identical boxes whose gradients are float64 rounding, the
   * floor decides and a relative error says nothing); 0 when there are none.
   */
  l2Err: number;
  /** Why it failed: the first offending element, or the first array over its L2 bound. */
  detail?: string;
  /** Largest |got - want| over the f32 named outputs (0 when there are none). */
  outputErr?: number;
  /** Elements of the i32 named outputs that differ from the expected ones (each must be 0). */
  mismatches?: number;
}

/** `||v||_2`, scaled by the largest magnitude so that squares of large values cannot overflow. */
function norm2(v: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i]));
  if (m === 0 || !Number.isFinite(m)) return m;
  let s = 0;
  for (let i = 0; i < v.length; i++) s += (v[i] / m) ** 2;
  return m * Math.sqrt(s);
}

/**
 * Compares a result with a case's expected numbers. Two rules, both must hold (see
 * test/fixtures/README.md):
 * - element by element, `|got - want| <= atol + rtol * |want|`;
 * - each f32 array of more than one element (a `'none'` loss, each gradient) as a whole,
 *   `||got - want||_2 <= l2 * ||want||_2 + 1e-6 * sqrt(n)`, `l2` from the tolerance or 1e-3.
 *   The element rule's `atol` lets an array of small values pass as zeros, or 20% off; this does not.
 */
export function compareCase(
  c: FixtureCase,
  got: { loss: ArrayLike<number>; grad: Record<string, ArrayLike<number>>; outputs?: Record<string, ArrayLike<number>>; outputShapes?: Record<string, number[]> },
): Comparison {
  let detail: string | undefined;
  let l2Err = 0;
  const check = (what: string, g: ArrayLike<number> | undefined, want: number[], tol: Tolerance): number => {
    if (!g) {
      detail ??= `${what}: missing`;
      return Infinity;
    }
    if (g.length !== want.length) {
      detail ??= `${what}: length ${g.length}, expected ${want.length}`;
      return Infinity;
    }
    let max = 0;
    for (let i = 0; i < want.length; i++) {
      const err = Math.abs(g[i] - want[i]);
      if (!Number.isFinite(g[i])) {
        detail ??= `${what}[${i}] = ${g[i]}, expected ${want[i]}`;
        max = Infinity;
        continue;
      }
      if (err > max) max = err;
      if (err > tol.atol + tol.rtol * Math.abs(want[i])) detail ??= `${what}[${i}] = ${g[i]}, expected ${want[i]} (|err| ${err.toExponential(2)} > ${tol.atol} + ${tol.rtol}*|want|)`;
    }
    if (want.length > 1 && max !== Infinity) {
      const n = want.length;
      const diff = new Float64Array(n);
      for (let i = 0; i < n; i++) diff[i] = g[i] - want[i];
      const errNorm = norm2(diff);
      const wantNorm = norm2(want);
      const l2 = tol.l2 ?? DEFAULT_L2;
      const bound = l2 * wantNorm + L2_FLOOR * Math.sqrt(n);
      if (wantNorm > 0 && wantNorm >= L2_FLOOR * Math.sqrt(n)) l2Err = Math.max(l2Err, errNorm / wantNorm);
      if (!(errNorm <= bound)) {
        detail ??= `${what}: L2 error ${errNorm.toExponential(3)} > bound ${bound.toExponential(3)} (l2 ${l2} * ||want|| ${wantNorm.toExponential(3)} + ${L2_FLOOR} * sqrt(${n}); relative L2 error ${wantNorm > 0 ? (errNorm / wantNorm).toExponential(3) : 'inf'})`;
      }
    }
    return max;
  };
  const lossErr = c.expected.loss ? check('loss', got.loss, c.expected.loss.data, c.tolerance.loss!) : 0;
  let gradErr = 0;
  for (const [k, want] of Object.entries(c.expected.grad ?? {})) {
    gradErr = Math.max(gradErr, check(`grad.${k}`, got.grad[k], want.data, (c.tolerance.grad ?? c.tolerance.loss)!));
  }
  let outputErr = 0;
  let mismatches = 0;
  for (const [k, want] of Object.entries(c.expected.outputs ?? {})) {
    const g = got.outputs?.[k];
    // Shape first: a wrong shape fails before any value is compared.
    const shape = got.outputShapes?.[k];
    if (g && shape && shape.join(',') !== want.shape.join(',')) {
      detail ??= `outputs.${k}: shape [${shape}], expected [${want.shape}]`;
      outputErr = Infinity;
      continue;
    }
    if (want.dtype === 'f32') {
      outputErr = Math.max(outputErr, check(`outputs.${k}`, g, want.data, c.tolerance.outputs![k]));
      continue;
    }
    if (!g || g.length !== want.data.length) {
      detail ??= `outputs.${k}: ${g ? `length ${g.length}` : 'missing'}, expected ${want.data.length}`;
      outputErr = Infinity;
      continue;
    }
    for (let i = 0; i < want.data.length; i++) {
      if (g[i] !== want.data[i]) {
        mismatches++;
        detail ??= `outputs.${k}[${i}] = ${g[i]}, expected ${want.data[i]} (an i32 output must match exactly)`;
      }
    }
  }
  return { pass: detail === undefined, lossErr, gradErr, l2Err, detail, ...(c.expected.outputs ? { outputErr, mismatches } : {}) };
}
