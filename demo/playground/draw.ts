/** Canvas drawing for the playground: the two boxes, their enclosing box and centres, and gradient arrows. */
import { handleAt, HANDLE_GAP, toCanvas, type Angles, type Box } from './boxes';

export const COLORS = { pred: '#2f6fde', target: '#1f9d55', arrow: '#e4572e', guide: '#9aa3ad' } as const;

/** Longest arrow, in pixels. */
const ARROW_MAX = 64;

/** What the chosen variant adds to the scene. */
export interface SceneOptions {
  /** Inner-IoU's ratio: when not 1, the auxiliary boxes (scaled about their centres) are drawn dotted. */
  innerRatio?: number;
  /** MPDIoU: the lines between the top-left corners and between the bottom-right corners. */
  corners?: boolean;
}

/**
 * Draws the scene: the target, the prediction on top, and the descent arrows of `grad` (d loss / d pred) if given.
 * Returns how many arrows it drew (0 to 4).
 */
export function drawScene(ctx: CanvasRenderingContext2D, width: number, height: number, pred: Box, target: Box, grad?: ArrayLike<number>, opts: SceneOptions = {}): number {
  ctx.clearRect(0, 0, width, height);
  drawGrid(ctx, width, height);
  drawGuides(ctx, pred, target);
  if (opts.corners) drawCornerLines(ctx, pred, target);
  drawBox(ctx, target, COLORS.target, 'target', target[3] + 18 <= height ? 'below' : 'above');
  drawBox(ctx, pred, COLORS.pred, 'pred', pred[1] >= 18 ? 'above' : 'below');
  const r = opts.innerRatio ?? 1;
  if (r !== 1 && r > 0) {
    drawInner(ctx, target, r, COLORS.target);
    drawInner(ctx, pred, r, COLORS.pred);
  }
  return grad ? drawArrows(ctx, pred, grad) : 0;
}

/** Inner-IoU's auxiliary box of `b`: same centre, width and height times `r`, dotted. */
function drawInner(ctx: CanvasRenderingContext2D, b: Box, r: number, color: string) {
  const cx = (b[0] + b[2]) / 2;
  const cy = (b[1] + b[3]) / 2;
  const w = (b[2] - b[0]) * r;
  const h = (b[3] - b[1]) * r;
  ctx.save();
  ctx.strokeStyle = color;
  ctx.lineWidth = 1.5;
  ctx.setLineDash([2, 3]);
  ctx.strokeRect(cx - w / 2, cy - h / 2, w, h);
  ctx.restore();
}

/** MPDIoU's d1 and d2: top-left to top-left, bottom-right to bottom-right. */
function drawCornerLines(ctx: CanvasRenderingContext2D, p: Box, t: Box) {
  ctx.save();
  ctx.strokeStyle = COLORS.guide;
  ctx.setLineDash([2, 3]);
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  ctx.moveTo(p[0], p[1]);
  ctx.lineTo(t[0], t[1]);
  ctx.moveTo(p[2], p[3]);
  ctx.lineTo(t[2], t[3]);
  ctx.stroke();
  ctx.restore();
}

function drawGrid(ctx: CanvasRenderingContext2D, width: number, height: number) {
  ctx.save();
  ctx.strokeStyle = '#eef1f4';
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (let x = 40; x < width; x += 40) {
    ctx.moveTo(x + 0.5, 0);
    ctx.lineTo(x + 0.5, height);
  }
  for (let y = 40; y < height; y += 40) {
    ctx.moveTo(0, y + 0.5);
    ctx.lineTo(width, y + 0.5);
  }
  ctx.stroke();
  ctx.restore();
}

/** The smallest enclosing box (GIoU's C) dashed, and the line between the centres (DIoU's rho). */
function drawGuides(ctx: CanvasRenderingContext2D, p: Box, t: Box) {
  ctx.save();
  ctx.strokeStyle = COLORS.guide;
  ctx.setLineDash([5, 4]);
  const c: Box = [Math.min(p[0], t[0]), Math.min(p[1], t[1]), Math.max(p[2], t[2]), Math.max(p[3], t[3])];
  ctx.strokeRect(c[0], c[1], c[2] - c[0], c[3] - c[1]);
  ctx.beginPath();
  ctx.moveTo((p[0] + p[2]) / 2, (p[1] + p[3]) / 2);
  ctx.lineTo((t[0] + t[2]) / 2, (t[1] + t[3]) / 2);
  ctx.stroke();
  ctx.restore();
}

/** A box with its corner handles, its centre, and its name above its top-left or below its bottom-right corner. */
function drawBox(ctx: CanvasRenderingContext2D, b: Box, color: string, label: string, where: 'above' | 'below') {
  ctx.save();
  ctx.fillStyle = `${color}22`;
  ctx.strokeStyle = color;
  ctx.lineWidth = 2;
  ctx.fillRect(b[0], b[1], b[2] - b[0], b[3] - b[1]);
  ctx.strokeRect(b[0], b[1], b[2] - b[0], b[3] - b[1]);
  ctx.fillStyle = color;
  for (const [x, y] of [[b[0], b[1]], [b[2], b[1]], [b[0], b[3]], [b[2], b[3]]]) ctx.fillRect(x - 3, y - 3, 6, 6);
  ctx.beginPath();
  ctx.arc((b[0] + b[2]) / 2, (b[1] + b[3]) / 2, 2.5, 0, 2 * Math.PI);
  ctx.fill();
  ctx.font = '600 12px system-ui, sans-serif';
  if (where === 'above') ctx.fillText(label, b[0] + 2, b[1] - 7);
  else {
    ctx.textAlign = 'right';
    ctx.fillText(label, b[2] - 2, b[3] + 16);
  }
  ctx.restore();
}

/**
 * One arrow per coordinate of the predicted box, from the middle of its edge along -grad (the
 * direction gradient descent moves that edge), scaled so the longest is ARROW_MAX pixels.
 */
function drawArrows(ctx: CanvasRenderingContext2D, b: Box, grad: ArrayLike<number>): number {
  const g = [grad[0], grad[1], grad[2], grad[3]];
  const gmax = Math.max(...g.map(Math.abs));
  if (!(gmax > 1e-12) || !Number.isFinite(gmax)) return 0;
  let drawn = 0;
  const mx = (b[0] + b[2]) / 2;
  const my = (b[1] + b[3]) / 2;
  const anchors: [number, number, 'x' | 'y', string][] = [
    [b[0], my, 'x', 'x1'],
    [mx, b[1], 'y', 'y1'],
    [b[2], my, 'x', 'x2'],
    [mx, b[3], 'y', 'y2'],
  ];
  ctx.save();
  ctx.strokeStyle = COLORS.arrow;
  ctx.fillStyle = COLORS.arrow;
  ctx.lineWidth = 2.5;
  ctx.font = '600 11px system-ui, sans-serif';
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  anchors.forEach(([x, y, axis, name], k) => {
    const len = (-g[k] / gmax) * ARROW_MAX;
    if (Math.abs(len) < 3) return;
    const [tx, ty] = axis === 'x' ? [x + len, y] : [x, y + len];
    arrow(ctx, x, y, tx, ty);
    drawn++;
    const s = Math.sign(len) * 11;
    ctx.fillText(name, axis === 'x' ? tx + s : tx, axis === 'y' ? ty + s : ty);
  });
  ctx.restore();
  return drawn;
}

function arrow(ctx: CanvasRenderingContext2D, x0: number, y0: number, x1: number, y1: number) {
  const a = Math.atan2(y1 - y0, x1 - x0);
  const head = 8;
  ctx.beginPath();
  ctx.moveTo(x0, y0);
  ctx.lineTo(x1 - Math.cos(a) * head * 0.6, y1 - Math.sin(a) * head * 0.6);
  ctx.stroke();
  ctx.beginPath();
  ctx.moveTo(x1, y1);
  ctx.lineTo(x1 - head * Math.cos(a - 0.45), y1 - head * Math.sin(a - 0.45));
  ctx.lineTo(x1 - head * Math.cos(a + 0.45), y1 - head * Math.sin(a + 0.45));
  ctx.closePath();
  ctx.fill();
}

/**
 * Rotated mode: the two boxes turned by their angles about their centres, each with its rotation
 * handle; their axis-aligned versions (what iou_loss sees) dotted and faint; and the descent arrows of
 * `grad` (d loss / d (cx, cy, w, h, theta) of the prediction) if given. Returns how many arrows it drew (0 to 4).
 */
export function drawRotatedScene(ctx: CanvasRenderingContext2D, width: number, height: number, pred: Box, target: Box, angles: Angles, grad?: ArrayLike<number>): number {
  ctx.clearRect(0, 0, width, height);
  drawGrid(ctx, width, height);
  for (const [b, color] of [[target, COLORS.target], [pred, COLORS.pred]] as const) {
    ctx.save();
    ctx.strokeStyle = `${color}88`;
    ctx.lineWidth = 1;
    ctx.setLineDash([2, 3]);
    ctx.strokeRect(b[0], b[1], b[2] - b[0], b[3] - b[1]);
    ctx.restore();
  }
  ctx.save();
  ctx.strokeStyle = COLORS.guide;
  ctx.setLineDash([5, 4]);
  ctx.beginPath();
  ctx.moveTo((pred[0] + pred[2]) / 2, (pred[1] + pred[3]) / 2);
  ctx.lineTo((target[0] + target[2]) / 2, (target[1] + target[3]) / 2);
  ctx.stroke();
  ctx.restore();
  drawTurned(ctx, target, angles.target, COLORS.target, 'target');
  drawTurned(ctx, pred, angles.pred, COLORS.pred, 'pred');
  return grad ? drawRotatedArrows(ctx, pred, angles.pred, grad) : 0;
}

/** A box turned by `theta` about its centre: its outline, corners, centre, rotation handle and name. */
function drawTurned(ctx: CanvasRenderingContext2D, b: Box, theta: number, color: string, label: string) {
  const w = b[2] - b[0];
  const h = b[3] - b[1];
  ctx.save();
  ctx.translate((b[0] + b[2]) / 2, (b[1] + b[3]) / 2);
  ctx.rotate(theta);
  ctx.fillStyle = `${color}22`;
  ctx.strokeStyle = color;
  ctx.lineWidth = 2;
  ctx.fillRect(-w / 2, -h / 2, w, h);
  ctx.strokeRect(-w / 2, -h / 2, w, h);
  ctx.fillStyle = color;
  for (const [x, y] of [[-w / 2, -h / 2], [w / 2, -h / 2], [-w / 2, h / 2], [w / 2, h / 2]]) ctx.fillRect(x - 3, y - 3, 6, 6);
  ctx.beginPath();
  ctx.arc(0, 0, 2.5, 0, 2 * Math.PI);
  ctx.fill();
  // The handle: a stem from the top edge's middle and a ring at its end.
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  ctx.moveTo(0, -h / 2);
  ctx.lineTo(0, -h / 2 - HANDLE_GAP + 6);
  ctx.stroke();
  ctx.beginPath();
  ctx.arc(0, -h / 2 - HANDLE_GAP, 6, 0, 2 * Math.PI);
  ctx.fillStyle = '#ffffff';
  ctx.fill();
  ctx.stroke();
  ctx.fillStyle = color;
  ctx.font = '600 12px system-ui, sans-serif';
  ctx.fillText(label, -w / 2 + 4, -h / 2 + 15);
  ctx.restore();
}

/**
 * The descent arrows of a rotated box's gradient g = d loss / d (cx, cy, w, h, theta): −(g_cx, g_cy) from
 * the centre; −g_w from the middle of the right edge along the width axis, −g_h from the middle of the
 * bottom edge along the height axis; −g_theta at the handle, along its path (per pixel of the handle's arc).
 * Scaled so the longest is ARROW_MAX pixels.
 */
function drawRotatedArrows(ctx: CanvasRenderingContext2D, b: Box, theta: number, grad: ArrayLike<number>): number {
  const w = b[2] - b[0];
  const h = b[3] - b[1];
  const arm = h / 2 + HANDLE_GAP;
  const c = Math.cos(theta);
  const s = Math.sin(theta);
  const turn = grad[4] / arm;
  const gmax = Math.max(Math.hypot(grad[0], grad[1]), Math.abs(grad[2]), Math.abs(grad[3]), Math.abs(turn));
  if (!(gmax > 1e-12) || !Number.isFinite(gmax)) return 0;
  const k = ARROW_MAX / gmax;
  const [hx, hy] = handleAt(b, theta);
  const arrows: [number, number, number, number, string][] = [
    [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, -grad[0] * k, -grad[1] * k, 'c'],
    [...toCanvas(b, theta, w / 2, 0), -grad[2] * k * c, -grad[2] * k * s, 'w'],
    [...toCanvas(b, theta, 0, h / 2), grad[3] * k * s, -grad[3] * k * c, 'h'],
    [hx, hy, -turn * k * c, -turn * k * s, 'θ'],
  ];
  let drawn = 0;
  ctx.save();
  ctx.strokeStyle = COLORS.arrow;
  ctx.fillStyle = COLORS.arrow;
  ctx.lineWidth = 2.5;
  ctx.font = '600 11px system-ui, sans-serif';
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  for (const [x, y, dx, dy, name] of arrows) {
    const len = Math.hypot(dx, dy);
    if (len < 3) continue;
    arrow(ctx, x, y, x + dx, y + dy);
    drawn++;
    ctx.fillText(name, x + dx + (dx / len) * 11, y + dy + (dy / len) * 11);
  }
  ctx.restore();
  return drawn;
}
