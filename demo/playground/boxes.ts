/** Box geometry for the playground: hit testing and dragging of xyxy boxes in canvas units. */

/** A box as x1, y1, x2, y2 (canvas CSS pixels, y down). */
export type Box = [number, number, number, number];

/**
 * The boxes the playground opens with (on its 640 x 400 canvas). Their aspect ratios differ (the
 * prediction 130 x 220, tall; the target 200 x 160, wide), so CIoU's aspect term α·v shows: CIoU is
 * DIoU + 0.0039 here (with equal ratios v is 0, and the two agree to every digit shown, which reads
 * like a bug). They overlap with IoU 0.33; the prediction's centre moved onto the target's gives
 * IoU 0.52.
 */
export const DEFAULT_BOXES: { readonly pred: Readonly<Box>; readonly target: Readonly<Box> } = {
  pred: [220, 80, 350, 300],
  target: [250, 150, 450, 310],
};

/** Which box a drag holds, and which of its edges move (all four for a move). */
export interface Grip {
  box: 'pred' | 'target';
  /** Moving edges, indexed like the box: x1, y1, x2, y2. */
  edges: [boolean, boolean, boolean, boolean];
}

/** How close (in pixels) the pointer must be to an edge to grab it. */
export const EDGE_TOLERANCE = 7;
/** Smallest width and height a resize leaves. */
export const MIN_SIZE = 4;

/** The edges of `b` under the point (x, y), or undefined when it is neither on an edge nor inside. */
function edgesAt(b: Box, x: number, y: number): Grip['edges'] | undefined {
  const t = EDGE_TOLERANCE;
  const inX = x >= b[0] - t && x <= b[2] + t;
  const inY = y >= b[1] - t && y <= b[3] + t;
  if (!inX || !inY) return undefined;
  const e: Grip['edges'] = [Math.abs(x - b[0]) <= t, Math.abs(y - b[1]) <= t, Math.abs(x - b[2]) <= t, Math.abs(y - b[3]) <= t];
  // Keep only the nearer of two opposite edges (small boxes).
  if (e[0] && e[2]) e[Math.abs(x - b[0]) <= Math.abs(x - b[2]) ? 2 : 0] = false;
  if (e[1] && e[3]) e[Math.abs(y - b[1]) <= Math.abs(y - b[3]) ? 3 : 1] = false;
  if (e.some(Boolean)) return e;
  const inside = x > b[0] && x < b[2] && y > b[1] && y < b[3];
  return inside ? [true, true, true, true] : undefined;
}

/**
 * What a press at (x, y) grabs: an edge or corner of a box (resize), or a box's inside (move).
 * The predicted box is on top, so it wins where the two overlap.
 */
export function hitTest(boxes: { pred: Box; target: Box }, x: number, y: number): Grip | undefined {
  for (const box of ['pred', 'target'] as const) {
    const edges = edgesAt(boxes[box], x, y);
    if (edges) return { box, edges };
  }
  return undefined;
}

/** The CSS cursor for a grip: a move cursor, or the resize cursor of its edge or corner. */
export function cursorFor(grip: Grip | undefined): string {
  if (!grip) return 'default';
  const [l, t, r, b] = grip.edges;
  if (l && t && r && b) return 'move';
  if ((l && t) || (r && b)) return 'nwse-resize';
  if ((r && t) || (l && b)) return 'nesw-resize';
  return l || r ? 'ew-resize' : 'ns-resize';
}

/**
 * `start` dragged by (dx, dy) with the grip's edges: a move keeps the size and stays inside
 * width x height; a resize keeps at least MIN_SIZE on each side.
 */
export function dragBox(start: Box, grip: Grip, dx: number, dy: number, width: number, height: number): Box {
  const [l, t, r, b] = grip.edges;
  if (l && t && r && b) {
    const mx = clamp(dx, -start[0], width - start[2]);
    const my = clamp(dy, -start[1], height - start[3]);
    return [start[0] + mx, start[1] + my, start[2] + mx, start[3] + my];
  }
  const out: Box = [...start];
  if (l) out[0] = clamp(start[0] + dx, 0, start[2] - MIN_SIZE);
  if (r) out[2] = clamp(start[2] + dx, start[0] + MIN_SIZE, width);
  if (t) out[1] = clamp(start[1] + dy, 0, start[3] - MIN_SIZE);
  if (b) out[3] = clamp(start[3] + dy, start[1] + MIN_SIZE, height);
  return out;
}

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
