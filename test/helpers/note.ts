import { onTestFailed } from 'vitest';

/**
 * `DETLOSS_VERBOSE=1 npm test` prints what the tests note as they go: measured errors, what comes
 * out of NaN inputs, what a page says after its device is lost. Without it a green run keeps them
 * to itself, so its log is the summary and the adapter: these notes describe things meant to happen
 * (a NaN that stays NaN, a device lost on purpose), and printed on every run they read like failures.
 */
export const VERBOSE = /^(1|true|yes|on)$/i.test(process.env.DETLOSS_VERBOSE ?? '');

/**
 * Prints `text` only if the running test fails (vitest's onTestFailed): the notes of a test that
 * failed are part of what it has to say. Call it inside a test, not a hook.
 */
export function noteOnFailure(text: string): void {
  onTestFailed(() => console.log(text));
}

/** A test's note: printed at once with DETLOSS_VERBOSE=1, otherwise only if the test fails. */
export function note(text: string): void {
  if (VERBOSE) console.log(text);
  else noteOnFailure(text);
}
