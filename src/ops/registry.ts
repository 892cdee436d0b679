import type { OpDescriptor } from './types';
import { fail } from './types';
import { balancedL1Op, huberOp, l1Op, mseOp, smoothL1Op } from './regression';
import { IOU_OPS } from './iou';
import { CLASSIFICATION_OPS } from './classification';
import { LOGIT_OPS } from './logits';

/** The catalogue: every op detloss implements, by name. */
export const OPS: Readonly<Record<string, OpDescriptor>> = Object.freeze(
  Object.fromEntries([l1Op, mseOp, smoothL1Op, huberOp, balancedL1Op, ...IOU_OPS, ...LOGIT_OPS, ...CLASSIFICATION_OPS].map((d) => [d.name, d])),
);

/** Names of every implemented op. */
export const opNames = (): string[] => Object.keys(OPS);

/**
 * Looks an op up by name; throws `DetlossError('unknown_op')` listing the known ones. A
 * descriptor passes through, so an app can run a loss of its own (see `defineOp`).
 */
export function getOp(name: string | OpDescriptor): OpDescriptor {
  if (typeof name === 'object' && name !== null && typeof name.name === 'string' && typeof name.cpu === 'function') return name;
  const op = typeof name === 'string' ? OPS[name] : undefined;
  if (!op) fail('unknown_op', `unknown op ${JSON.stringify(name)} (implemented: ${opNames().join(', ')})`, 'op');
  return op;
}
