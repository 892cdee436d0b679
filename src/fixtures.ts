/**
 * Golden fixtures (format `detloss-fixture/1`, see test/fixtures/README.md):
 * parsing, turning a case into `run()` arguments, and comparing a result with
 * the case's tolerance.
 */

export interface FixtureTensor {
  dtype: 'f32' | 'i32';
  shape: number[];
  data: number[];
}
export interface Tolerance {
  atol: number;
  rtol: number;
}
export interface FixtureCase {
  name: string;
  op: string;
  params: Record<string, unknown>;
  inputs: Record<string, FixtureTensor>;
  expected: { loss: { shape: number[]; data: number[] }; grad?: Record<string, { shape: number[]; data: number[] }> };
  tolerance: { loss: Tolerance; grad?: Tolerance };
  source?: string;
}

export const FIXTURE_FORMAT = 'detloss-fixture/1';

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
    if (!c.expected?.loss || !Array.isArray(c.expected.loss.data)) throw new Error(`${where}: needs expected.loss.data`);
    checkNumbers(where, 'expected.loss', c.expected.loss.data);
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
    checkTolerance(where, 'tolerance.loss', c.tolerance.loss);
    if (c.tolerance.grad !== undefined) checkTolerance(where, 'tolerance.grad', c.tolerance.grad);
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
  /** Why it failed: the first offending element. */
  detail?: string;
}

/** Compares a result with a case's expected numbers, element by element: |got - want| <= atol + rtol*|want|. */
export function compareCase(
  c: FixtureCase,
  got: { loss: ArrayLike<number>; grad: Record<string, ArrayLike<number>> },
): Comparison {
  let detail: string | undefined;
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
    return max;
  };
  const lossErr = check('loss', got.loss, c.expected.loss.data, c.tolerance.loss);
  let gradErr = 0;
  for (const [k, want] of Object.entries(c.expected.grad ?? {})) {
    gradErr = Math.max(gradErr, check(`grad.${k}`, got.grad[k], want.data, c.tolerance.grad ?? c.tolerance.loss));
  }
  return { pass: detail === undefined, lossErr, gradErr, detail };
}
