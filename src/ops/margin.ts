import type { OpDescriptor } from './types';

/** nll, hinge, hinge_embedding, margin_ranking and exponential (ops.md, "More classification and ranking losses"). */
export const MARGIN_OPS: OpDescriptor[] = [];
