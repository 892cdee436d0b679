// Node on Dawn, as a consumer writes it: the `webgpu` package's GPU, one loss, and the CPU
// reference from the same package. Prints one line of JSON for the test.
import { create } from 'webgpu';
import { createDetloss, cpu } from 'detloss';

const pred = Float32Array.of(0.1, 0.5, 2, -1, 3);
const target = Float32Array.of(0, 0, 0, 0, 2.5);
const options = { beta: 0.5, reduction: 'sum' };
const dl = await createDetloss({ gpu: create([]) });
const r = await dl.run('smooth_l1', { pred, target }, options);
const ref = cpu.run('smooth_l1', { pred, target }, options);
console.log(JSON.stringify({ adapter: dl.adapter, loss: r.loss[0], grad: Array.from(r.grad.pred), cpuLoss: ref.loss[0], cpuGrad: Array.from(ref.grad.pred) }));
dl.destroy();
