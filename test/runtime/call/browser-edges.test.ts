// Issue 9's runtime defects in headless Chromium, on the built package (test/runtime/call/edges.test.ts
// holds the same on Node): inputs taken at call time, the readback split and allocation failures,
// integer params past int32, destroy() with calls in flight, the chunk planner's row unit, and
// empty gradients on the resident path.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { openPage, serveStatic } from '../../../src/tools/browser';
import { useBrowserPage } from '../../helpers/browser-page';

const dist = fileURLToPath(new URL('../../../dist/', import.meta.url));
const PAGE = `<!doctype html><meta charset="utf-8"><title>detloss runtime edges</title>
<script type="module">
import * as detloss from '/index.js';
window.detloss = detloss;
// test/helpers/uncaptured.ts, for the page: a device's uncaptured errors, decided after a marker
// error raised after the queue's work has arrived (a device's errors arrive in order); and the
// moment a number of submits have been made.
window.watchUncaptured = (device) => {
  const errors = [];
  let arrived;
  device.addEventListener('uncapturederror', (e) => {
    if (e.error.message.includes('detloss-test-marker')) arrived?.();
    else errors.push(e.error.message);
  });
  return {
    errors,
    async settled() {
      await device.queue.onSubmittedWorkDone();
      const seen = new Promise((ok) => (arrived = ok));
      device.createBuffer({ label: 'detloss-test-marker', size: 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE });
      // A round trip sends the marker to the GPU process (Chromium batches commands until one).
      await device.queue.onSubmittedWorkDone();
      let timer;
      const never = new Promise((_, fail) => (timer = setTimeout(() => fail(new Error('the marker error never arrived: this device does not report uncaptured errors')), 20000)));
      try { await Promise.race([seen, never]); } finally { clearTimeout(timer); }
      return [...errors];
    },
  };
};
window.afterSubmits = (device, n, makeCalls) => {
  const queue = device.queue;
  const submit = queue.submit;
  let count = 0;
  let reached;
  const submittedOnly = new Promise((ok) => (reached = ok));
  queue.submit = function (...args) {
    const r = submit.apply(this, args);
    if (++count === n) reached();
    return r;
  };
  const calls = makeCalls();
  const settledFirst = Promise.allSettled(calls).then(() => { throw new Error('only ' + count + ' of ' + n + ' submits were made before every call settled'); });
  settledFirst.catch(() => {});
  return { calls, submitted: Promise.race([submittedOnly, settledFirst]) };
};
try {
  const dl = await detloss.createDetloss();
  window.detlossReady = { ok: true, adapter: dl.adapter };
  dl.destroy();
} catch (e) {
  window.detlossReady = { ok: false, code: e.code, message: String(e.message || e) };
}
</script>`;

const gp = useBrowserPage(async () => openPage(await serveStatic(dist, PAGE), 'window.detlossReady'));

type Mod = typeof import('../../../src/index');
/** Runs `fn` in the page with the detloss module; returns what it returns (plain data). */
function inPage<T>(fn: (d: Mod) => Promise<T>): Promise<T> {
  return gp.page.evaluate(`(${fn.toString()})(window.detloss)`) as Promise<T>;
}

describe('inputs are taken when the call is made (defect 2)', () => {
  it('an array changed after run() returns, cold and warm; three calls sharing one array; labels changed after the check', async () => {
    const r = await inPage(async (d) => {
      const dl = await d.createDetloss();
      const out: number[] = [];
      for (let k = 0; k < 2; k++) {
        const pred = Float32Array.of(1, 2, 3, 4);
        const target = new Float32Array(4);
        const p = dl.run('l1', { pred, target }, { reduction: 'sum' });
        pred.fill(100);
        out.push((await p).loss[0]);
      }
      const scratch = new Float32Array(4);
      const zeros = new Float32Array(4);
      const calls = [];
      for (const k of [1, 2, 3]) {
        scratch.fill(k);
        calls.push(dl.run('l1', { pred: scratch, target: zeros }, { reduction: 'sum' }));
      }
      const shared = (await Promise.all(calls)).map((x) => x.loss[0]);
      const logits = Float32Array.from({ length: 10 }, (_, i) => Math.sin(i));
      const labels = Int32Array.of(1, 3);
      const want = d.cpu.run('cross_entropy', { logits, labels: Int32Array.of(1, 3) }, { reduction: 'none' });
      const p = dl.run('cross_entropy', { logits, labels }, { reduction: 'none' });
      labels[0] = 99;
      labels[1] = 0;
      const got = await p;
      dl.destroy();
      return { out, shared, got: Array.from(got.loss), want: Array.from(want.loss) };
    });
    expect(r.out).toEqual([10, 10]);
    expect(r.shared).toEqual([4, 8, 12]);
    for (let i = 0; i < 2; i++) expect(Math.abs(r.got[i] - r.want[i])).toBeLessThan(1e-5);
  });
});

describe('the pool and the readback (defect 3)', () => {
  it('splits the readback past maxBufferSize and creates no buffer above it', async () => {
    const r = await inPage(async (d) => {
      const dl = await d.createDetloss({ limits: { maxBufferSize: 4096 } });
      const sizes: number[] = [];
      const create = dl.device.createBuffer.bind(dl.device);
      dl.device.createBuffer = (desc: GPUBufferDescriptor) => {
        sizes.push(desc.size);
        return create(desc);
      };
      const pred = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 3);
      const target = Float32Array.from({ length: 1000 }, (_, i) => Math.cos(i));
      const got = await dl.run('huber', { pred, target }, { reduction: 'none' });
      const want = d.cpu.run('huber', { pred, target }, { reduction: 'none' });
      let err = 0;
      for (let i = 0; i < 1000; i++) err = Math.max(err, Math.abs(got.loss[i] - want.loss[i]), Math.abs(got.grad.pred[i] - want.grad.pred[i]));
      const readbacks = dl.stats().lastCall!.readbacks;
      dl.destroy();
      return { err, biggest: Math.max(...sizes), readbacks };
    });
    expect(r.err).toBeLessThan(1e-5);
    expect(r.biggest).toBeLessThanOrEqual(4096);
    expect(r.readbacks).toBe(2);
  });
  it('an allocation the device cannot make is gpu_out_of_memory, or works; the books stay true either way', async () => {
    const r = await inPage(async (d) => {
      const dl = await d.createDetloss();
      const big = dl.limits.maxBufferSize;
      dl.device.pushErrorScope('out-of-memory');
      dl.device.createBuffer({ size: big, usage: GPUBufferUsage.STORAGE }).destroy();
      const deviceOom = !!(await dl.device.popErrorScope());
      const m = 4096;
      const n = Math.floor(big / 4 / m);
      const a = Float32Array.from({ length: n * 4 }, (_, i) => (i % 4 < 2 ? i % 97 : 100 + (i % 89)));
      const b = { data: Float32Array.from({ length: m * 4 }, (_, i) => (i % 4 < 2 ? i % 53 : 60 + (i % 41))), shape: [m, 4] };
      let code = 'none';
      try {
        (await dl.runResident('pairwise_iou', { a, b })).release();
      } catch (e) {
        code = (e as { code?: string }).code ?? String(e);
      }
      const inUse = dl.stats().bytesInUse;
      const after = await dl.run('l1', { pred: Float32Array.of(1, -2), target: Float32Array.of(0, 0) }, { reduction: 'sum' });
      dl.destroy();
      return { deviceOom, code, inUse, after: after.loss[0] };
    });
    expect(r.code).toBe(r.deviceOom ? 'gpu_out_of_memory' : 'none');
    expect(r.inUse).toBe(0);
    expect(r.after).toBe(3);
  });
});

describe('params and errors (defects 4, 5, 11)', () => {
  it('ignoreIndex past int32 and a tiny avgFactor are invalid_param; a null input is missing', async () => {
    const r = await inPage(async (d) => {
      const dl = await d.createDetloss();
      const codes: string[] = [];
      const logits = new Float32Array(6);
      const labels = Int32Array.of(0, 2);
      for (const call of [
        () => dl.run('cross_entropy', { logits, labels }, { ignoreIndex: 2 ** 32 }),
        () => dl.run('l1', { pred: new Float32Array(3), target: new Float32Array(3) }, { avgFactor: 1e-310 }),
        () => dl.run('l1', { pred: null as never, target: new Float32Array(3) }),
      ]) {
        try {
          await call();
          codes.push('resolved');
        } catch (e) {
          codes.push(`${(e as Error).name}:${(e as { code: string }).code}:${(e as { argument: string }).argument}`);
        }
      }
      dl.destroy();
      return codes;
    });
    expect(r).toEqual(['DetlossError:invalid_param:ignoreIndex', 'DetlossError:invalid_param:avgFactor', 'DetlossError:missing_input:pred']);
  });
  it('runResident gives an empty input an empty gradient buffer, as run gives an empty array', async () => {
    const r = await inPage(async (d) => {
      const dl = await d.createDetloss();
      const e = new Float32Array(0);
      const run = await dl.run('l1', { pred: e, target: e });
      const res = await dl.runResident('l1', { pred: e, target: e });
      const out = { runLen: run.grad.pred.length, keys: Object.keys(res.grad), bytes: res.gradBytes.pred };
      res.release();
      dl.destroy();
      return out;
    });
    expect(r).toEqual({ runLen: 0, keys: ['pred'], bytes: 0 });
  });
});

describe('destroy() with calls in flight (defect 9)', () => {
  it('rejects every call in flight with destroyed, resident and already submitted ones included', async () => {
    const r = await inPage(async (d) => {
      type Watch = { settled(): Promise<string[]> };
      const w = window as unknown as {
        watchUncaptured(device: GPUDevice): Watch;
        afterSubmits(device: GPUDevice, n: number, makeCalls: () => Promise<unknown>[]): { calls: Promise<unknown>[]; submitted: Promise<void> };
      };
      const dl = await d.createDetloss();
      const watch = w.watchUncaptured(dl.device);
      const pred = Float32Array.from({ length: 20000 }, (_, i) => Math.sin(i));
      const target = Float32Array.from({ length: 20000 }, (_, i) => Math.cos(i));
      await dl.run('l1', { pred, target });
      (await dl.runResident('mse', { pred, target })).release();
      const calls = [
        dl.run('l1', { pred, target }),
        dl.runResident('mse', { pred, target }),
        dl.run('huber', { pred, target }, { reduction: 'none' }),
        dl.runResident('iou_loss', { pred, target }, { variant: 'giou' }),
      ];
      dl.destroy();
      const codes = (await Promise.allSettled(calls)).map((s) => (s.status === 'rejected' ? (s.reason as { code: string }).code : 'resolved'));
      // Again with the work already submitted: destroyed once both calls (warm: one submit each)
      // have submitted, while they map their results or a resident call waits.
      const dl2 = await d.createDetloss();
      const watch2 = w.watchUncaptured(dl2.device);
      await dl2.run('l1', { pred, target });
      (await dl2.runResident('mse', { pred, target })).release();
      const { calls: late, submitted } = w.afterSubmits(dl2.device, 2, () => [dl2.run('l1', { pred, target }), dl2.runResident('mse', { pred, target })]);
      let submits = 'made';
      await submitted.catch((e: Error) => (submits = e.message));
      dl2.destroy();
      const lateCodes = (await Promise.allSettled(late)).map((s) => (s.status === 'rejected' ? (s.reason as { code: string }).code : 'resolved'));
      // Decided after everything has happened: the resident checks, the GPU's work and its errors.
      await dl.flush().catch(() => {});
      await dl2.flush().catch(() => {});
      const errors = [...(await watch.settled()), ...(await watch2.settled())];
      return { codes, lateCodes, submits, errors };
    });
    expect(r.codes).toEqual(['destroyed', 'destroyed', 'destroyed', 'destroyed']);
    expect(r.submits).toBe('made');
    expect(r.lateCodes).toEqual(['destroyed', 'destroyed']);
    expect(r.errors).toEqual([]);
  });
});

describe('the chunk planner (defect 10)', () => {
  it('runs pairwise_iou 100 x 8192 under a 1 MiB binding, equal to the CPU reference', async () => {
    const r = await inPage(async (d) => {
      const dl = await d.createDetloss({ limits: { maxStorageBufferBindingSize: 1 << 20 } });
      const box = (i: number) => {
        const x = (i * 37) % 500;
        const y = (i * 91) % 500;
        return [x, y, x + 5 + (i % 60), y + 5 + ((i * 7) % 60)];
      };
      const a = Float32Array.from({ length: 400 }, (_, k) => box(Math.floor(k / 4))[k % 4]);
      const b = { data: Float32Array.from({ length: 8192 * 4 }, (_, k) => box(3 + Math.floor(k / 4))[k % 4]), shape: [8192, 4] };
      const got = await dl.run('pairwise_iou', { a, b }, { variant: 'giou' });
      const want = d.cpu.run('pairwise_iou', { a, b }, { variant: 'giou' });
      let err = 0;
      for (let i = 0; i < want.loss.length; i++) err = Math.max(err, Math.abs(got.loss[i] - want.loss[i]));
      dl.destroy();
      return { shape: got.shape, err };
    });
    expect(r.shape).toEqual([100, 8192]);
    expect(r.err).toBeLessThan(1e-5);
  });
});
