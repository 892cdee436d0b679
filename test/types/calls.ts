// Type-level checks of the typed op map, compiled by calls.test.ts in `npm test` (with
// tsconfig.calls.json) and by `npm run typecheck`: every `@ts-expect-error` must meet an error,
// every other line must compile. Never run.
import { cpu, type DetlossContext, type GpuTensor } from '../../src/index';

declare const dl: DetlossContext;
declare const buf: GPUBuffer;
const pred = new Float32Array(8);
const target = new Float32Array(8);
const labels = new Int32Array(2);

export async function rightCalls(name: string) {
  await dl.run('iou_loss', { pred, target }, { variant: 'ciou', format: 'cxcywh', reduction: 'sum' });
  await dl.run('iou_loss', { pred: { data: pred, shape: [2, 4] }, target, weight: new Float32Array(2) }, { mode: 'log', eps: 1e-6 });
  await dl.run('cross_entropy', { logits: pred, labels, classWeight: new Float32Array(4) }, { ignoreIndex: -1, labelSmoothing: 0.1 });
  await dl.run('varifocal', { logits: pred, targets: target }, { iouWeighted: false, check: true, grad: false });
  await dl.run('pairwise_iou', { a: pred, b: target }, { variant: 'giou', reduction: 'none' });
  await dl.run('l1', { pred: buf, target: { buffer: buf, shape: [8] } satisfies GpuTensor });
  const r = await dl.runResident('kl_div', { student: buf, teacher: buf }, { temperature: 4, classReduction: 'mean' });
  r.release();
  // A name known only at run time is checked at run time.
  await dl.run(name, { anything: pred }, { whatever: 1 });
  // The CPU reference widens to float64 and takes it too.
  cpu.run('smooth_l1', { pred: new Float64Array(8), target }, { beta: 0.5 });
  cpu.run('quality_focal', { logits: pred, labels, scores: target }, { beta: 2 });
  await dl.iouLoss(pred, target, { variant: 'siou' });
  // Issue 14's params and variants, and issue 15's ranking losses.
  await dl.iouLoss(pred, target, { variant: 'ciou', ciouAlpha: 'mmdet', innerRatio: 0.8, focaler: [0.1, 0.9] });
  await dl.run('iou_loss', { pred, target }, { variant: 'mpdiou', imageSize: [640, 480] });
  const w = await dl.run('iou_loss', { pred, target }, { variant: 'wiou', wiouVersion: 3, iouMean: 0.4, wiouAlpha: 1.7, wiouDelta: 2.7 });
  const batchMean: number | undefined = w.aux?.batchIouMean;
  void batchMean;
  await dl.apLoss(pred, target, { delta: 0.5, gradOutput: new Float32Array(1) });
  await dl.run('rank_sort', { logits: pred, targets: target }, { delta: 0.5 });
}

export async function wrongCalls() {
  // @ts-expect-error misspelled op
  await dl.run('iou_los', { pred, target });
  // @ts-expect-error misspelled input
  await dl.run('iou_loss', { prd: pred, target });
  // @ts-expect-error missing input
  await dl.run('iou_loss', { pred });
  // @ts-expect-error unknown variant
  await dl.run('iou_loss', { pred, target }, { variant: 'xiou' });
  // @ts-expect-error pairwise_iou has no eiou
  await dl.run('pairwise_iou', { a: pred, b: target }, { variant: 'eiou' });
  // @ts-expect-error pairwise_iou takes reduction 'none' only
  await dl.run('pairwise_iou', { a: pred, b: target }, { reduction: 'sum' });
  // @ts-expect-error unknown param
  await dl.run('smooth_l1', { pred, target }, { delta: 1 });
  // @ts-expect-error a number param given a string
  await dl.run('smooth_l1', { pred, target }, { beta: '1' });
  // @ts-expect-error a bool param given a number
  await dl.run('dice', { logits: pred, targets: target }, { naive: 1 });
  // @ts-expect-error the GPU refuses float64
  await dl.run('l1', { pred: new Float64Array(8), target });
  // @ts-expect-error labels are int32
  await dl.run('cross_entropy', { logits: pred, labels: pred });
  // @ts-expect-error the GPU refuses float64, in the wrappers too
  await dl.l1(new Float64Array(8), target);
  // @ts-expect-error misspelled op on the CPU
  cpu.run('smoth_l1', { pred, target });
  // @ts-expect-error unknown param on the CPU
  cpu.run('huber', { pred, target }, { beta: 1 });
  // @ts-expect-error a misspelled new variant
  await dl.iouLoss(pred, target, { variant: 'wise_iou' });
  // @ts-expect-error focaler is a pair, not a number
  await dl.iouLoss(pred, target, { focaler: 0.9 });
  // @ts-expect-error a misspelled new param
  await dl.iouLoss(pred, target, { innerRation: 0.8 });
  // @ts-expect-error ciouAlpha names a codebase
  await dl.iouLoss(pred, target, { ciouAlpha: 'ultralytics' });
  // @ts-expect-error the ranking losses take 'mean' only
  await dl.run('ap_loss', { logits: pred, targets: target }, { reduction: 'none' });
  // @ts-expect-error nor a weight, in the wrapper
  await dl.rankSortLoss(pred, target, { weight: new Float32Array(8) });
  // @ts-expect-error runResident checks names too
  await dl.runResident('kl_div', { student: buf, teacher: buf }, { temperature: 4, classReduction: 'max' });
}
