import type { OpDescriptor } from './types';

/** softmax_focal and class_balanced_focal (ops.md, "More classification and ranking losses"). */
export const SOFTMAX_FOCAL_OPS: OpDescriptor[] = [];
