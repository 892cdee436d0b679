import { DetlossError } from '../../errors';
import type { OpDescriptor } from '../../ops/types';
import { ruleText, type RuleArgs, type ValueRule } from '../../ops/value-rules';
import { scopeError, type ScopeErrors } from '../device/scope';

// A call's status words and the verdicts they hold. Word 0 is the "ran" marker (1 once the call's
// work ran: copied there after the work, in the same command buffer), then one word per value
// check, PASSED when every value kept its rule, else the index of the first that did not.

/** A status word whose values all kept their rule. */
export const PASSED = 0xffffffff;

/** One input's check on the GPU. */
export interface ValueCheck {
  input: string;
  rule: ValueRule;
  args: RuleArgs;
  /** Elements checked. */
  length: number;
  /** Its status word (1..). */
  slot: number;
}

/** A call's status buffer and what it checks. */
export interface CallStatus {
  buffer: GPUBuffer;
  bytes: number;
  checks: ValueCheck[];
  /** The uniforms of the check pass, one slot per check and chunk (absent without checks). */
  uniforms?: GPUBuffer;
  /** Copy 1 into word 0 after the work (the guard reads it). */
  marker: boolean;
  /**
   * Where the words are copied after the work to be read later (a resident call): a MAP_READ
   * buffer the call holds until its verdict is in (CallAllocation.held).
   */
  staging?: GPUBuffer;
}

/** The initial status words: not ran, every check passed. */
export function initialStatus(checks: readonly ValueCheck[]): Uint32Array<ArrayBuffer> {
  const words = new Uint32Array(1 + checks.length).fill(PASSED);
  words[0] = 0;
  return words;
}

/** The refusal the status words hold, if any: `invalid_value` naming the first input whose check failed. */
export function checkFailure(desc: OpDescriptor, checks: readonly ValueCheck[], words: Uint32Array): DetlossError | undefined {
  for (const c of checks) {
    const at = words[c.slot];
    if (at !== PASSED) {
      return new DetlossError('invalid_value', `${desc.name}: ${c.input}[${at}] (on the GPU) is not ${ruleText(c.rule, c.args)}`, c.input);
    }
  }
  return undefined;
}

/**
 * The checks' verdict from status words copied into `staging` (a MAP_READ buffer of the pool):
 * rejects with the `invalid_value` of the first failed check, resolves otherwise; `done` runs
 * once the words are read (or could not be), to hand the staging buffer back.
 */
export async function statusVerdict(desc: OpDescriptor, status: CallStatus, staging: GPUBuffer, done: () => void): Promise<void> {
  let words: Uint32Array;
  try {
    await staging.mapAsync(0x1 /* GPUMapMode.READ */, 0, status.bytes);
    words = new Uint32Array(staging.getMappedRange(0, status.bytes).slice(0));
    staging.unmap();
  } catch {
    // The device was lost or the context destroyed: the call's other verdicts say so.
    return;
  } finally {
    done();
  }
  const refused = checkFailure(desc, status.checks, words);
  if (refused) throw refused;
}

/** A call's work's own verdict as a value: its error, or undefined when the GPU accepted it. */
export function verdictOf(submitted: Promise<unknown>): Promise<unknown> {
  return submitted.then(
    () => undefined,
    (e: unknown) => e,
  );
}

/**
 * The verdict of a call submitted synchronously: the first failure among its pipelines compiled
 * on the spot (`compiles`, each the failure's message or undefined), its buffers (`allocErrors`,
 * `bytes` of them) and its work. Every verdict is awaited before one is chosen: a pipeline that
 * failed to compile, or a buffer the device could not make, also makes the work invalid, and the
 * cause is what the caller needs. Never left unhandled.
 */
export function syncVerdict(op: string, compiles: Promise<string | undefined>[], allocErrors: Promise<ScopeErrors>, bytes: () => number, submitted: Promise<unknown>): Promise<void> {
  const settled = Promise.all([allocErrors, Promise.all(compiles), verdictOf(submitted)]).then(([errors, compiled, work]) => {
    const failed = compiled.find((m) => m !== undefined);
    if (failed) throw new DetlossError('pipeline', failed);
    const refused = scopeError(op, errors, { buffers: bytes() });
    if (refused) throw refused;
    if (work) throw work;
  });
  settled.catch(() => {});
  return settled;
}

/**
 * The verdicts a context's resident calls still owe (their value checks, read back after the
 * call resolved), and the first failure among them: thrown once, by the context's next call or by
 * `flush()`. The outputs of such a call hold NaN where a value broke its rule (the kernels poison
 * their elements), so no numbers were handed over in the meantime.
 */
export class LateVerdicts {
  private readonly pending = new Set<Promise<void>>();
  private failure?: DetlossError;

  watch(verdict: Promise<void>): void {
    const p = verdict.catch((e: unknown) => {
      this.failure ??= e instanceof DetlossError ? e : new DetlossError('gpu_validation', String((e as Error)?.message ?? e));
    });
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  /** Throws the first failure not thrown yet (once). */
  throwFailure(): void {
    const e = this.failure;
    if (e) {
      this.failure = undefined;
      throw e;
    }
  }

  /** Waits for every verdict owed so far (and any they add), without throwing the failure. */
  async settled(): Promise<void> {
    while (this.pending.size) await Promise.all([...this.pending]);
  }

  /** Waits for every verdict owed so far, then throws the first failure not thrown yet. */
  async flush(): Promise<void> {
    await this.settled();
    this.throwFailure();
  }
}
