// A TF.js app that takes CIoU from detloss/tfjs, built by Vite from the installed package. The
// test reads `window.appReady`: `{ ok, backend, loss, grad }` or `{ ok: false, code, message }`.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-webgpu';
import { ciou } from 'detloss/tfjs';

try {
  await tf.setBackend('webgpu');
  await tf.ready();
  const pred = tf.tensor2d([0, 0, 2, 2, 1, 1, 4, 3], [2, 4]);
  const target = tf.tensor2d([1, 1, 3, 3, 1, 0, 4, 4], [2, 4]);
  const { value, grad } = tf.valueAndGrad((p) => ciou(p, target, { reduction: 'sum' }))(pred);
  window.appReady = { ok: true, backend: tf.getBackend(), loss: Array.from(await value.data()), grad: Array.from(await grad.data()) };
} catch (e) {
  window.appReady = { ok: false, code: e.code, message: String(e.message ?? e) };
}
