// A tiny app that uses one loss, built by Vite from the installed package. The test reads
// `window.appReady`: `{ ok, adapter, loss, grad }` or `{ ok: false, code, message }`.
import { createDetloss } from 'detloss';

const pred = Float32Array.of(0, 0, 2, 2, 1, 1, 4, 3);
const target = Float32Array.of(1, 1, 3, 3, 1, 0, 4, 4);
try {
  const dl = await createDetloss();
  const r = await dl.run('iou_loss', { pred, target }, { variant: 'ciou', reduction: 'sum' });
  window.appReady = { ok: true, adapter: dl.adapter, loss: Array.from(r.loss), grad: Array.from(r.grad.pred) };
} catch (e) {
  window.appReady = { ok: false, code: e.code, message: String(e.message ?? e) };
}
