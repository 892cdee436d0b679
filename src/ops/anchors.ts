import { fail } from './types';
import { describeValue } from './validate';

/** A head's anchor centres and strides, as `yolo_detection_loss` takes them. */
export interface HeadAnchors {
  /** [a, 2]: each anchor's centre (x, y) in grid units of its level (cell centres: 0.5, 1.5, ...). */
  anchors: Float32Array;
  /** [a]: each anchor's stride in pixels. */
  strides: Float32Array;
  /** a, the anchors over every level. */
  count: number;
}

/**
 * The anchor centres and strides of a detection head, as ultralytics' `make_anchors` makes them:
 * level after level (in the order given), row-major within a level (y, then x), each centre at
 * `(x + offset, y + offset)` in grid units and each stride repeated over its level's cells. Feed
 * `anchors` and `strides` to `yolo_detection_loss`; multiply them for the centres in pixels
 * (`tal_assign`'s `anchors`).
 *
 * @example
 * // a 640 x 640 image at strides 8, 16, 32: 80x80 + 40x40 + 20x20 = 8400 anchors
 * const { anchors, strides } = makeAnchors([[80, 80], [40, 40], [20, 20]], [8, 16, 32]);
 */
export function makeAnchors(sizes: readonly (readonly [h: number, w: number])[], strides: readonly number[], offset = 0.5): HeadAnchors {
  if (!Array.isArray(sizes) || sizes.length === 0) fail('invalid_param', `makeAnchors: sizes must be a non-empty array of [h, w] grid sizes, got ${describeValue(sizes)}`, 'sizes');
  if (!Array.isArray(strides) || strides.length !== sizes.length) {
    fail('shape_mismatch', `makeAnchors: strides must hold one stride per level (${sizes.length}), got ${Array.isArray(strides) ? strides.length : describeValue(strides)}`, 'strides');
  }
  if (typeof offset !== 'number' || !Number.isFinite(offset)) fail('invalid_param', `makeAnchors: offset must be a finite number, got ${describeValue(offset)}`, 'offset');
  let count = 0;
  sizes.forEach((s, i) => {
    const ok = Array.isArray(s) && s.length === 2 && s.every((d) => Number.isInteger(d) && d >= 0);
    if (!ok) fail('invalid_param', `makeAnchors: sizes[${i}] must be [h, w], two integers >= 0, got ${Array.isArray(s) ? JSON.stringify(s) : describeValue(s)}`, 'sizes');
    if (!(typeof strides[i] === 'number' && Number.isFinite(strides[i]) && strides[i] > 0)) fail('invalid_value', `makeAnchors: strides[${i}] = ${describeValue(strides[i])}; a stride is a finite number of pixels > 0`, 'strides');
    count += s[0] * s[1];
  });
  const anchors = new Float32Array(2 * count);
  const out = new Float32Array(count);
  let k = 0;
  sizes.forEach(([h, w], i) => {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        anchors[2 * k] = x + offset;
        anchors[2 * k + 1] = y + offset;
        out[k++] = strides[i];
      }
    }
  });
  return { anchors, strides: out, count };
}
