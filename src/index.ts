/// <reference types="@webgpu/types" />
/**
 * detloss: WebGPU kernels for the losses that train object detectors, with fused
 * gradients and a float64 CPU reference held against PyTorch's numbers.
 *
 * @example
 * import { createDetloss, cpu } from 'detloss';
 * const dl = await createDetloss();
 * const r = await dl.run('smooth_l1', { pred, target }, { beta: 0.11 });
 * const ref = cpu.run('smooth_l1', { pred, target }, { beta: 0.11 });
 */
export { createDetloss, DetlossContext } from './api';
export type { WrapperOptions, IouOptions, PairwiseOptions, RankingOptions, OutputsOptions } from './api';
export { Detloss } from './runtime/context';
export type { AdapterFacts, AnyInput, DetlossOptions, DetlossStats, GpuTensor, ResidentResult, RunResult } from './runtime/public';
export type { CandidateTime, LaunchPlan, PlanChoice, PlanRecord, RowStrategy, TunedPlan, TuneOp, TuneOptions, TuneProgress } from './runtime/public';
export { cpu } from './cpu';
export type { CpuResult } from './cpu';
export { DetlossError } from './errors';
export type { DetlossErrorCode } from './errors';
export { OPS, opNames } from './ops/registry';
export { classBalancedWeights } from './ops/softmax-focal';
export { makeAnchors } from './ops/anchors';
export type { YoloDetections, YoloNmsOptions } from './ops/yolo-nms';
export type { HeadAnchors } from './ops/anchors';
export { WiseIoU } from './wise-iou';
export type { WiseIoUOptions, WiseIoUState, WiseIoUCallOptions } from './wise-iou';
export { defineOp, num, oneOf, flag } from './ops/types';
export type { OpDescriptor, TensorSpec, ParamSpec, GpuKernel, CpuForward } from './ops/types';
export type { OpName, OpInputs, OpParams, OpOptions, OpReduction, F32Tensor, I32Tensor, F64Tensor, DeviceInputs, CpuInputsOf } from './ops/op-types';
export type { SharedOptions, Reduction } from './ops/validate';
export { registerShaderInfo, setShaderReflector } from './runtime/compile/reflect';
export type { ShaderInfo, ShaderReflector, BindingInfo, UniformLayout, UniformMember } from './runtime/public';
export { parseFixtures, caseInputs, caseOptions, compareCase } from './fixtures';
export type { FixtureCase, Comparison, Tolerance } from './fixtures';
