import type { OpDescriptor } from './types';

/** The box IoU family (issue 3): `iou_loss`, `pairwise_iou`. */
export const IOU_OPS: OpDescriptor[] = [];
