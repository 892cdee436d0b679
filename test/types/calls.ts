// Type-level checks of the typed op map, compiled by calls.test.ts in `npm test` (with
// tsconfig.calls.json) and by `npm run typecheck`: every `@ts-expect-error` must meet an error,
// every other line must compile. Never run.
import type * as tf from '@tensorflow/tfjs-core';
import * as ortFns from '../../src/frameworks/ort';
import * as tfFns from '../../src/frameworks/tfjs';
import { cpu, type DetlossContext, type GpuTensor } from '../../src/index';

declare const dl: DetlossContext;
declare const buf: GPUBuffer;
declare const sum: typeof tf.sum;
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
  // The catalogue's wrappers, by the names every surface shares, and the core's old names.
  await dl.ciou(pred, target, { format: 'cxcywh', variant: 'ciou' });
  await dl.nll(pred, labels, { ignoreIndex: -1, classWeight: new Float32Array(4) });
  const m = await dl.marginRanking(pred, pred, target, { margin: 0.1 });
  void m.grad.input2;
  const { values, shape } = await dl.pairwiseIou(pred, target, { variant: 'diou' });
  void [values, shape];
  await dl.rankSort(pred, target, { delta: 0.5 });
  await dl.rankSortLoss(pred, target, { delta: 0.5 });
  await dl.sigmoidFocalLoss(pred, target, { alpha: 0.25 });
  // The rotated-box wrappers: the variant's params, KFIoU's deltas as options, its second gradient.
  await dl.kld(pred, target, { tau: 1, fun: 'sqrt', sqrt: false });
  await dl.rotatedIouLoss(pred, target, { variant: 'gwd', normalize: false, reduction: 'sum' });
  const kf = await dl.kfiou(pred, target, { predDelta: new Float32Array(4), targetDelta: new Float32Array(4), fun: 'ln' });
  void kf.grad.predDelta;
  const probs = await dl.pairwiseProbiou(pred, target, { eps: 1e-7 });
  void probs.values;
  const x = null as unknown as tf.Tensor;
  tfFns.nll(x, x, { ignoreIndex: -1, classWeight: x });
  tfFns.rankSort(x, x, { delta: 0.5 });
  // detloss/tfjs: a reduced loss is a tf.Scalar, so an optimizer takes it with no cast.
  const optimizer = null as unknown as tf.Optimizer;
  const boxes = null as unknown as tf.Tensor2D;
  optimizer.minimize(() => tfFns.ciou(boxes, boxes));
  optimizer.minimize(() => tfFns.ciou(boxes, boxes, { reduction: 'sum', format: 'cxcywh' }));
  optimizer.minimize(() => tfFns.sigmoidFocal(x, x, { reduction: 'mean', alpha: 0.25 }));
  optimizer.minimize(() => tfFns.apLoss(x, x, { delta: 1 }));
  const s0: tf.Scalar = tfFns.crossEntropy(x, x);
  // 'none' keeps the loss's rank: the first input's where the op is elementwise, the op's own otherwise.
  const perBox: tf.Tensor1D = tfFns.ciou(boxes, boxes, { reduction: 'none' });
  const perElement: tf.Tensor2D = tfFns.l1(boxes, boxes, { reduction: 'none' });
  const perClass: tf.Tensor2D = tfFns.varifocal(x, x, { reduction: 'none' });
  // rank_sort's loss is [ranking, sorting]; a matrix is [n, m].
  const pair: tf.Tensor1D = tfFns.rankSort(x, x);
  optimizer.minimize(() => sum(tfFns.rankSort(x, x)));
  const costs: tf.Tensor2D = tfFns.pairwiseIou(boxes, boxes);
  optimizer.minimize(() => tfFns.probiou(boxes, boxes, { ciou: true }));
  optimizer.minimize(() => tfFns.kfiou(boxes, boxes, { predDelta: x, targetDelta: x, beta: 0.1 }));
  const perRotated: tf.Tensor1D = tfFns.gwd(boxes, boxes, { reduction: 'none' });
  const probiouMatrix: tf.Tensor2D = tfFns.pairwiseProbiou(boxes, boxes);
  void [perRotated, probiouMatrix];
  // A reduction known only at run time gives a tensor of some rank.
  const anyReduction = 'sum' as 'none' | 'mean' | 'sum';
  const unknown: tf.Tensor = tfFns.giou(boxes, boxes, { reduction: anyReduction });
  void [s0, perBox, perElement, perClass, pair, costs, unknown];
  // tf.image's NMS, as its async functions are called: tensors or TensorLikes, optional thresholds.
  const keep: tf.Tensor1D = await tfFns.nonMaxSuppression(boxes, x as tf.Tensor1D, 100, 0.5, 0.25);
  const soft: { selectedIndices: tf.Tensor1D; selectedScores: tf.Tensor1D } = await tfFns.nonMaxSuppressionWithScore([[0, 0, 1, 1]], [0.5], 10, undefined, undefined, 0.5);
  void [keep, soft];
  const o = null as unknown as ortFns.OrtTensor;
  const r2 = await ortFns.marginRanking(o, o, o, { margin: 0.2 });
  void r2.grad.input1;
  const r3 = await ortFns.apLoss(o, target, { delta: 1, device: null as unknown as GPUDevice });
  void r3.grad;
  const matrix: ortFns.OrtTensor = await ortFns.pairwiseIou(o, o);
  void matrix;
  const rk = await ortFns.kfiou(o, o, { predDelta: o, targetDelta: o, fun: 'exp' });
  void [rk.grad.pred, rk.grad.predDelta];
  const rotatedMatrix: ortFns.OrtTensor = await ortFns.pairwiseProbiou(o, o);
  void rotatedMatrix;
  // ONNX's NonMaxSuppression: its inputs in its order, the scalars as tensors, numbers or bigints, or absent.
  const selected: ortFns.OrtTensor = await ortFns.nonMaxSuppression(o, o, 100n, o, 0.25, { centerPointBox: 1, device: null as unknown as GPUDevice });
  await ortFns.nonMaxSuppression(o, o, undefined, undefined, undefined, { outputType: 'int32' });
  void selected;
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
  // @ts-expect-error a wrapper's fixed param at another value
  await dl.ciou(pred, target, { variant: 'giou' });
  // @ts-expect-error labels are int32 in the new wrappers too
  await dl.nll(pred, pred);
  // @ts-expect-error a missing positional input
  await dl.qualityFocal(pred, labels);
  // @ts-expect-error the ranking wrappers take no avgFactor
  await dl.rankSort(pred, target, { avgFactor: 2 });
  // @ts-expect-error TF.js wrappers type the op's params
  tfFns.smoothL1(null as unknown as tf.Tensor, null as unknown as tf.Tensor, { beta: '1' });
  const boxes = null as unknown as tf.Tensor2D;
  // @ts-expect-error a 'none' loss is not a scalar
  const notScalar: tf.Scalar = tfFns.ciou(boxes, boxes, { reduction: 'none' });
  // @ts-expect-error nor can an optimizer minimize it
  (null as unknown as tf.Optimizer).minimize(() => tfFns.smoothL1(boxes, boxes, { reduction: 'none' }));
  // @ts-expect-error rank_sort's [ranking, sorting] is not a scalar: reduce it first
  (null as unknown as tf.Optimizer).minimize(() => tfFns.rankSort(boxes, boxes));
  // @ts-expect-error an elementwise 'none' loss has its input's rank
  const wrongRank: tf.Tensor1D = tfFns.l1(boxes, boxes, { reduction: 'none' });
  // @ts-expect-error tf.image's maxOutputSize is required
  await tfFns.nonMaxSuppression(boxes, boxes);
  // @ts-expect-error ONNX's center_point_box is 0 or 1
  await ortFns.nonMaxSuppression(null as unknown as ortFns.OrtTensor, null as unknown as ortFns.OrtTensor, 10, 0.5, 0.25, { centerPointBox: 2 });
  // @ts-expect-error the drop-ins are async, as tf.image's NMS is
  const notYet: tf.Tensor1D = tfFns.nonMaxSuppression(boxes, boxes, 10);
  // @ts-expect-error a misspelled reduction
  tfFns.ciou(boxes, boxes, { reduction: 'avg' });
  void [notScalar, wrongRank, notYet];
  // @ts-expect-error an ORT wrapper's fixed param at another value
  await ortFns.giou(null as unknown as ortFns.OrtTensor, target, { variant: 'ciou' });
  // @ts-expect-error ORT class methods take no device (the free functions do)
  await (null as unknown as ortFns.OrtDetloss).l1(null as unknown as ortFns.OrtTensor, target, { device: null as unknown as GPUDevice });
  // @ts-expect-error a rotated wrapper's fixed variant at another value
  await dl.kld(pred, target, { variant: 'gwd' });
  // @ts-expect-error an unknown rotated variant
  await dl.rotatedIouLoss(pred, target, { variant: 'riou' });
  // @ts-expect-error pairwise_probiou has no variant
  await dl.pairwiseProbiou(pred, target, { variant: 'kld' });
  // @ts-expect-error pairwise_probiou takes reduction 'none' only
  await dl.run('pairwise_probiou', { a: pred, b: target }, { reduction: 'mean' });
  // @ts-expect-error KFIoU's predDelta is a tensor
  tfFns.kfiou(boxes, boxes, { predDelta: 1 });
  // @ts-expect-error a rotated 'none' loss is not a scalar
  const notScalarRotated: tf.Scalar = tfFns.kld(boxes, boxes, { reduction: 'none' });
  void notScalarRotated;
  // @ts-expect-error runResident checks names too
  await dl.runResident('kl_div', { student: buf, teacher: buf }, { temperature: 4, classReduction: 'max' });
}
