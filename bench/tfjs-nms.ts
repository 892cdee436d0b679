/**
 * The TF.js baselines of the NMS cases: `tf.image.nonMaxSuppressionAsync` (which reads the boxes
 * and scores back and runs NMS in JavaScript), and ultralytics' post-process composed from TF.js
 * ops around it, as a TF.js app writes it for an exported detector's output [1, 4 + C, A]: decode,
 * best class, the class shift of `batched_nms` (7680 per class, ultralytics' max_wh), NMS, gather,
 * and the detections read back.
 */
import * as tf from '@tensorflow/tfjs-core';

/** `tf.image.nonMaxSuppressionAsync` on every box (no limit), the kept indices read back. */
export async function tfjsNms(boxes: tf.Tensor, scores: tf.Tensor, iouThreshold: number): Promise<Int32Array> {
  const keep = await tf.image.nonMaxSuppressionAsync(boxes as tf.Tensor2D, scores as tf.Tensor1D, scores.shape[0], iouThreshold);
  const data = (await keep.data()) as Int32Array;
  keep.dispose();
  return data;
}

/** ultralytics' defaults. */
const YOLO = { conf: 0.25, iou: 0.45, maxDet: 300, maxWh: 7680 };

/** The YOLO post-process of one image's output [1, 4 + C, A] from TF.js ops: the detections read back. */
export async function tfjsYoloNms(output: tf.Tensor): Promise<{ boxes: Float32Array; scores: Float32Array; classes: Int32Array }> {
  const [boxes, scores, classes, shifted] = tf.tidy(() => {
    const x = tf.transpose(tf.squeeze(output, [0])) as tf.Tensor2D;
    const C = x.shape[1] - 4;
    const [xywh, cls] = tf.split(x, [4, C], 1);
    const [cx, cy, w, h] = tf.split(xywh, 4, 1);
    const dw = tf.div(w, 2), dh = tf.div(h, 2);
    const corners = tf.concat([tf.sub(cx, dw), tf.sub(cy, dh), tf.add(cx, dw), tf.add(cy, dh)], 1);
    const best = tf.max(cls, 1);
    const label = tf.argMax(cls, 1);
    // The class shift without an int-to-float cast (TF.js 4.22's WebGPU cast relabels int data).
    const shift = tf.gather(tf.mul(tf.range(0, C), YOLO.maxWh), label);
    return [corners, best, label, tf.add(corners, tf.expandDims(shift, 1))];
  });
  const keep = await tf.image.nonMaxSuppressionAsync(shifted as tf.Tensor2D, scores as tf.Tensor1D, YOLO.maxDet, YOLO.iou, YOLO.conf);
  const picked = tf.tidy(() => [tf.gather(boxes, keep), tf.gather(scores, keep), tf.gather(classes, keep)]);
  const [b, s, c] = await Promise.all(picked.map((t) => t.data()));
  tf.dispose([boxes, scores, classes, shifted, keep, ...picked]);
  return { boxes: b as Float32Array, scores: s as Float32Array, classes: c as Int32Array };
}
