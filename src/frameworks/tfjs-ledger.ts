import { LateVerdicts } from '../runtime/context';

/**
 * What a device's calls still owe, kept apart from its context: the GPU's verdicts not yet in,
 * and the first failure among them not yet thrown (the runtime's LateVerdicts). A failure drops
 * the context (its buffers may be unusable), but not this: the failure stays here until a call,
 * `flush()` or `detlossFor()` throws it, and the contexts made after it share the same ledger.
 * (detloss/tfjs's own module, not part of its exports.)
 */
const ledgers = new WeakMap<GPUDevice, LateVerdicts>();

/** The device's ledger, made on first use. */
export function ledgerOf(device: GPUDevice): LateVerdicts {
  let l = ledgers.get(device);
  if (!l) {
    l = new LateVerdicts();
    ledgers.set(device, l);
  }
  return l;
}

/**
 * Waits until the GPU has judged every call made so far on the device (and any verdict those add),
 * without throwing the failure: it stays for the next call, `flush()` or `detlossFor()`.
 */
export async function verdictsIn(device: GPUDevice): Promise<void> {
  await ledgers.get(device)?.settled();
}

/** Throws the device's first failure not thrown yet (once), if any call left one. */
export function throwFailure(device: GPUDevice): void {
  ledgers.get(device)?.throwFailure();
}
