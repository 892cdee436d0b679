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

// ---- Rotated mode: each box also has an angle theta (radians, turning its width axis from +x towards +y,
// so clockwise on the y-down canvas), about its centre. The xyxy box is its axis-aligned version (theta ignored).

/** A rotated box as rotated_iou_loss takes it: (cx, cy, w, h, theta). */
export type RotatedBox = [number, number, number, number, number];

/** The angles of the two boxes, in radians. */
export interface Angles {
  pred: number;
  target: number;
}

/** How far (in pixels) the rotation handle sits beyond the box's top edge (its −v side, v the height axis). */
export const HANDLE_GAP = 26;
/** How close (in pixels) the pointer must be to the rotation handle to grab it. */
export const HANDLE_RADIUS = 8;

/** `b` with angle `theta`, as (cx, cy, w, h, theta). */
export const rotatedOf = (b: Box, theta: number): RotatedBox => [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1], theta];

/** The canvas point (x, y) in the frame of `b` turned by `theta`: (along its width axis, along its height axis), from its centre. */
export function toLocal(b: Box, theta: number, x: number, y: number): [number, number] {
  const [cx, cy] = rotatedOf(b, theta);
  const c = Math.cos(theta);
  const s = Math.sin(theta);
  return [(x - cx) * c + (y - cy) * s, -(x - cx) * s + (y - cy) * c];
}

/** The canvas point of the local point (lx, ly) of `b` turned by `theta` (the inverse of toLocal). */
export function toCanvas(b: Box, theta: number, lx: number, ly: number): [number, number] {
  const [cx, cy] = rotatedOf(b, theta);
  const c = Math.cos(theta);
  const s = Math.sin(theta);
  return [cx + lx * c - ly * s, cy + lx * s + ly * c];
}

/** The rotation handle of `b` turned by `theta`: HANDLE_GAP beyond the middle of its top edge. */
export const handleAt = (b: Box, theta: number): [number, number] => toCanvas(b, theta, 0, -((b[3] - b[1]) / 2 + HANDLE_GAP));

/** A grip of rotated mode: a box's rotation handle (`turn`), or an edge, corner or inside in the box's own frame. */
export interface RotatedGrip extends Grip {
  turn: boolean;
}

/**
 * What a press at (x, y) grabs in rotated mode: a rotation handle first (the prediction's on top),
 * then an edge, corner or inside of a turned box, found in that box's frame.
 */
export function hitTestRotated(boxes: { pred: Box; target: Box }, angles: Angles, x: number, y: number): RotatedGrip | undefined {
  for (const box of ['pred', 'target'] as const) {
    const [hx, hy] = handleAt(boxes[box], angles[box]);
    if (Math.hypot(x - hx, y - hy) <= HANDLE_RADIUS) return { box, edges: [false, false, false, false], turn: true };
  }
  for (const box of ['pred', 'target'] as const) {
    const b = boxes[box];
    const [lx, ly] = toLocal(b, angles[box], x, y);
    const w = b[2] - b[0];
    const h = b[3] - b[1];
    const edges = edgesAt([-w / 2, -h / 2, w / 2, h / 2], lx, ly);
    if (edges) return { box, edges, turn: false };
  }
  return undefined;
}

/** The CSS cursor in rotated mode: a grab cursor on a handle; else that of the grip's edges in the box's own frame. */
export const cursorForRotated = (grip: RotatedGrip | undefined) => (grip?.turn ? 'grab' : cursorFor(grip));

/**
 * A resize of `start` turned by `theta`, by the canvas drag (dx, dy): the drag is read in the box's
 * frame, the grip's edges move there (at least MIN_SIZE left on each side) and the opposite edges stay
 * where they are on the canvas, so the centre moves by half the change, along the box's axes.
 * A move (all four edges) is the axis-aligned move.
 */
export function dragRotated(start: Box, theta: number, grip: Grip, dx: number, dy: number, width: number, height: number): Box {
  const [l, t, r, b] = grip.edges;
  if (l && t && r && b) return dragBox(start, grip, dx, dy, width, height);
  const c = Math.cos(theta);
  const s = Math.sin(theta);
  const lx = dx * c + dy * s;
  const ly = -dx * s + dy * c;
  const w = start[2] - start[0];
  const h = start[3] - start[1];
  const e: Box = [-w / 2, -h / 2, w / 2, h / 2];
  if (l) e[0] = Math.min(e[0] + lx, e[2] - MIN_SIZE);
  if (r) e[2] = Math.max(e[2] + lx, e[0] + MIN_SIZE);
  if (t) e[1] = Math.min(e[1] + ly, e[3] - MIN_SIZE);
  if (b) e[3] = Math.max(e[3] + ly, e[1] + MIN_SIZE);
  const [cx, cy] = toCanvas(start, theta, (e[0] + e[2]) / 2, (e[1] + e[3]) / 2);
  const nw = e[2] - e[0];
  const nh = e[3] - e[1];
  return [cx - nw / 2, cy - nh / 2, cx + nw / 2, cy + nh / 2];
}

/** The angle of (x, y) about the centre of `b`, as a handle at that point gives it: 0 straight above the centre, growing clockwise. */
export function handleAngle(b: Box, x: number, y: number): number {
  const [cx, cy] = rotatedOf(b, 0);
  return Math.atan2(y - cy, x - cx) + Math.PI / 2;
}

/** `a - b` brought into (−π, π]: the turn between two successive handle angles. */
export function angleStep(a: number, b: number): number {
  let d = (a - b) % (2 * Math.PI);
  if (d > Math.PI) d -= 2 * Math.PI;
  if (d <= -Math.PI) d += 2 * Math.PI;
  return d;
}

/** `b` with its centre turned by `delta` about (px, py); its size is kept (its angle is the caller's). */
export function turnAbout(b: Box, delta: number, px: number, py: number): Box {
  const [cx, cy, w, h] = rotatedOf(b, 0);
  const c = Math.cos(delta);
  const s = Math.sin(delta);
  const nx = px + (cx - px) * c - (cy - py) * s;
  const ny = py + (cx - px) * s + (cy - py) * c;
  return [nx - w / 2, ny - h / 2, nx + w / 2, ny + h / 2];
}
