import type { OpDescriptor } from './types';

/** The focal family and the classification losses (issue 4). */
export const CLASSIFICATION_OPS: OpDescriptor[] = [];
