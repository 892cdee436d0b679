import type { OpDescriptor } from './types';
import { fail } from './types';
import { balancedL1Op, huberOp, l1Op, mseOp, smoothL1Op } from './regression';
import { IOU_OPS } from './iou';
import { LOGIT_OPS } from './logits';
import { MARGIN_OPS } from './margin';
import { RANKING_OPS } from './ranking';
import { SOFTMAX_FOCAL_OPS } from './softmax-focal';
import { NMS_OPS } from './nms';
import { ROTATED_OPS } from './rotated';
import { TAL_OPS } from './tal';
import { rotatedTalAssignOp } from './rotated-tal';
import { yoloNmsOp } from './yolo-nms';

const ALL: OpDescriptor[] = [l1Op, mseOp, smoothL1Op, huberOp, balancedL1Op, ...IOU_OPS, ...LOGIT_OPS, ...SOFTMAX_FOCAL_OPS, ...MARGIN_OPS, ...RANKING_OPS, ...TAL_OPS, ...ROTATED_OPS, ...NMS_OPS];
for (const [i, d] of ALL.entries()) {
  if (ALL.findIndex((o) => o.name === d.name) !== i) throw new Error(`detloss: two ops are named ${d.name}`);
}

/** The catalogue: every op detloss implements, by name. */
export const OPS: Readonly<Record<string, OpDescriptor>> = Object.freeze(Object.fromEntries(ALL.map((d) => [d.name, d])));

/**
 * Programs the wrappers run that are not ops of the contract (docs/ops.md): the YOLO post-process
 * and the rotated task-aligned assigner.
 * They run through the same runtime (pass the descriptor where an op's name goes), and their
 * shaders' layouts are generated with the ops'.
 */
export const HELPER_OPS: readonly OpDescriptor[] = Object.freeze([yoloNmsOp, rotatedTalAssignOp]);

/** Names of every implemented op. */
export const opNames = (): string[] => Object.keys(OPS);

/**
 * Looks an op up by name; throws `DetlossError('unknown_op')` listing the known ones. A
 * descriptor passes through, so an app can run a loss of its own (see `defineOp`).
 */
export function getOp(name: string | OpDescriptor): OpDescriptor {
  if (typeof name === 'object' && name !== null && typeof name.name === 'string' && typeof name.cpu === 'function') return name;
  const op = typeof name === 'string' ? (Object.hasOwn(OPS, name) ? OPS[name] : HELPER_OPS.find((d) => d.name === name)) : undefined;
  if (!op) fail('unknown_op', `unknown op ${JSON.stringify(name)} (implemented: ${opNames().join(', ')})`, 'op');
  return op;
}
