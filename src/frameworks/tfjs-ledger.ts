import type { DetlossError } from '../errors';

/**
 * What a device's calls still owe, kept apart from its context: the GPU's verdicts not yet in,
 * and the first failure among them not yet thrown. A failure drops the context (its buffers may
 * be unusable), but not this: the failure stays here until a call, `flush()` or `detlossFor()`
 * throws it, and the contexts made after it share the same ledger. (detloss/tfjs's own module,
 * not part of its exports.)
 */
export interface Ledger {
  pending: Set<Promise<void>>;
  failure?: DetlossError;
}
const ledgers = new WeakMap<GPUDevice, Ledger>();

/** The device's ledger, made on first use. */
export function ledgerOf(device: GPUDevice): Ledger {
  let l = ledgers.get(device);
  if (!l) {
    l = { pending: new Set() };
    ledgers.set(device, l);
  }
  return l;
}

/** The device's ledger, if any call made one. */
export function existingLedger(device: GPUDevice): Ledger | undefined {
  return ledgers.get(device);
}

/**
 * Waits until the GPU has judged every call made so far on the device (and any verdict those add),
 * without throwing the failure: it stays for the next call, `flush()` or `detlossFor()`.
 */
export async function verdictsIn(device: GPUDevice): Promise<void> {
  const l = ledgers.get(device);
  // Settled promises never reject (watch() catches them); loop in case a verdict adds another.
  while (l?.pending.size) await Promise.all([...l.pending]);
}
