/**
 * Canvas drawing for the detection panel: every box faintly in its class's colour (the ones under the
 * score threshold fainter still), and the kept boxes strongly, each with its score.
 */
import { HEIGHT, WIDTH, type Scene } from './scene';

/** One colour per class. */
export const CLASS_COLORS = ['#2f6fde', '#e4572e', '#1f9d55'];

/** Draws `scene` on `canvas` (WIDTH x HEIGHT pixels), with the boxes of `keep` on top. */
export function drawDetections(canvas: HTMLCanvasElement, scene: Scene, keep: ArrayLike<number>, scoreThreshold: number): void {
  canvas.width = WIDTH;
  canvas.height = HEIGHT;
  const ctx = canvas.getContext('2d')!;
  ctx.clearRect(0, 0, WIDTH, HEIGHT);
  ctx.fillStyle = '#fbfcfd';
  ctx.fillRect(0, 0, WIDTH, HEIGHT);
  const { boxes, scores, classes } = scene;
  const rect = (i: number) => [boxes[i * 4], boxes[i * 4 + 1], boxes[i * 4 + 2] - boxes[i * 4], boxes[i * 4 + 3] - boxes[i * 4 + 1]] as const;

  // All the boxes: candidates (score over the threshold) faint, the rest fainter.
  ctx.lineWidth = 1;
  for (let i = 0; i < scene.n; i++) {
    ctx.strokeStyle = CLASS_COLORS[classes[i] % CLASS_COLORS.length];
    ctx.globalAlpha = scores[i] > scoreThreshold ? 0.16 : 0.05;
    ctx.strokeRect(...rect(i));
  }

  // The kept boxes, strong, with their scores on a label.
  ctx.globalAlpha = 1;
  ctx.lineWidth = 2.5;
  ctx.font = '12px ui-monospace, Menlo, monospace';
  for (const i of Array.from(keep)) {
    const color = CLASS_COLORS[classes[i] % CLASS_COLORS.length];
    const [x, y, w, h] = rect(i);
    ctx.strokeStyle = color;
    ctx.strokeRect(x, y, w, h);
    const label = scores[i].toFixed(2);
    const tw = ctx.measureText(label).width + 6;
    const ly = y >= 16 ? y - 16 : y;
    ctx.fillStyle = color;
    ctx.fillRect(x, ly, tw, 16);
    ctx.fillStyle = '#fff';
    ctx.fillText(label, x + 3, ly + 12);
  }
}
