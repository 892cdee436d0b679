import { LOSS_VARIANTS } from './box-grid';
import type { MoreParams } from './box-more';

/**
 * Param sets of ops.md's "More box losses" for the GPU tests: each new param alone, the
 * combinations the contract allows, and each new variant (issue 14).
 */
export const MORE_CONFIGS: MoreParams[] = [
  { variant: 'ciou', ciouAlpha: 'mmdet' },
  { variant: 'iou', power: 3 },
  { variant: 'giou', power: 3 },
  { variant: 'diou', power: 2.5 },
  { variant: 'ciou', power: 3 },
  { variant: 'iou', innerRatio: 0.7 },
  { variant: 'ciou', innerRatio: 1.3 },
  { variant: 'iou', focaler: [0.2, 0.8] },
  { variant: 'giou', focaler: [0, 0.95] },
  { variant: 'iou', innerRatio: 0.75, focaler: [0.05, 0.8] },
  { variant: 'eiou', innerRatio: 0.5 },
  { variant: 'siou', innerRatio: 1.5, focaler: [0, 0.9] },
  { variant: 'ciou', ciouAlpha: 'mmdet', innerRatio: 0.8, focaler: [0.1, 0.9] },
  { variant: 'mpdiou', imageSize: [4, 3] },
  { variant: 'shape', scale: 0 },
  { variant: 'shape', scale: 0.7 },
  { variant: 'wiou', wiouVersion: 1 },
  { variant: 'wiou', wiouVersion: 2, iouMean: 0.6 },
  { variant: 'wiou', wiouVersion: 3 },
  { variant: 'wiou', wiouVersion: 3, iouMean: 0.3, wiouAlpha: 2.5, wiouDelta: 2 },
  { variant: 'wiou', wiouVersion: 3, iouMean: 0.5, innerRatio: 0.8, focaler: [0, 0.9] },
];

/** A short printable name of a param set. */
export const moreName = (q: MoreParams) =>
  Object.entries(q)
    .map(([k, v]) => (k === 'variant' ? String(v) : `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`))
    .join(' ');

/** Every variant and mode of iou_loss, then each param set of MORE_CONFIGS: the tests that sweep them all. */
export const ALL_IOU_CONFIGS: Record<string, unknown>[] = [...LOSS_VARIANTS.map((v) => ({ ...v })), ...(MORE_CONFIGS as unknown as Record<string, unknown>[])];
