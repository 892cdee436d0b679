// A context made as the README shows it, `createDetloss({ gpu: create([]) })`, holds the only
// reference to Dawn's GPU instance. Once that instance was garbage-collected, Dawn crashed the
// process (abort or segfault) on the device's next event. Run in a child process with --expose-gc
// against the built package (npm test builds it first), so a crash is an exit status, not a
// dead test worker.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const dist = fileURLToPath(new URL('../../../dist/index.js', import.meta.url));

const SCRIPT = `
import { create, globals } from 'webgpu';
import { createDetloss } from ${JSON.stringify(dist)};
Object.assign(globalThis, globals);
// The instance is reachable only through the context (and a WeakRef, which does not hold it).
const { dl, instance } = await (async () => {
  const gpu = create([]);
  return { dl: await createDetloss({ gpu }), instance: new WeakRef(gpu) };
})();
// A new turn of the event loop: a WeakRef holds its target only until the job that made it ends.
await new Promise((r) => setImmediate(r));
for (let i = 0; i < 3; i++) {
  globalThis.gc();
  // gc() is a full collection: a collected instance is gone from its WeakRef when it returns.
  console.log('instance', instance.deref() === undefined ? 'collected' : 'kept');
  const r = await dl.run('l1', { pred: new Float32Array([1, 2, 3, 4]), target: new Float32Array(4) }, { reduction: 'sum' });
  console.log('loss', r.loss[0], Array.from(r.grad.pred).join(','));
}
dl.destroy();
`;

describe('a context whose GPU instance the caller does not keep', () => {
  it('survives garbage collection', () => {
    const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', SCRIPT], { encoding: 'utf8', cwd: fileURLToPath(new URL('../../..', import.meta.url)), timeout: 60_000 });
    // The instance kept after each collection (the cause), the calls right, and no crash.
    expect(r.stdout.trim().split('\n'), r.stderr).toEqual(Array(3).fill(['instance kept', 'loss 10 1,1,1,1']).flat());
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(0);
  });
});
