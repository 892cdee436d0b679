import checkWgsl from '../../../shaders/check.wgsl?raw';
import guardWgsl from '../../../shaders/guard.wgsl?raw';
import reduceWgsl from '../../../shaders/reduce.wgsl?raw';
import { DetlossError } from '../../errors';
import type { OpDescriptor, PassModule } from '../../ops/types';
import type { Resolved } from '../../ops/validate';
import { WG } from '../device/constants';
import type { AdapterFacts, LaunchPlan, ShaderInfo } from '../public';
import { contractProblems } from './contract';
import { checkStorageFit, requireKernel, rowStrategy, shaderInfo, useNarrow, useVec4 } from './kernel-choice';
import { reflectShader } from './reflect';

/** A compiled pipeline and what binds to it. */
export interface Kernel {
  /** `shaderId:entry`, as `stats().lastCall.kernel` reports it. */
  name: string;
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  info: ShaderInfo;
}

/** What a kernel key is compiled from. */
interface KernelSpec {
  id: string;
  code: string;
  entry: string;
  constants: Record<string, number>;
  label: string;
}

/**
 * A context's shader modules, bind group layouts and pipelines, by kernel key
 * (`shader:entry:overrides`, never a size). Each pipeline compiles once; a compiled one is also
 * kept in `ready`, so warm calls need no await.
 */
export class PipelineCache {
  /** The kernel keys of the runtime's own passes: the value checks, and the guarded copy into a framework's tensors. */
  readonly checkKey: string;
  readonly guardKey: string;
  /** Pipelines compiled, and requests served from the cache. */
  compiled = 0;
  hits = 0;
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly layouts = new Map<string, GPUBindGroupLayout>();
  private readonly pipelines = new Map<string, Promise<Kernel>>();
  private readonly ready = new Map<string, Kernel>();
  private readonly specs = new Map<string, KernelSpec>();
  private readonly checked = new Set<string>();

  constructor(
    private readonly device: GPUDevice,
    private readonly plan: LaunchPlan,
    private readonly adapter: AdapterFacts,
  ) {
    this.checkKey = this.defineKernel('check', checkWgsl, 'check_values', { WG }, 'check');
    this.guardKey = this.defineKernel('guard', guardWgsl, 'guarded_copy', { WG }, 'guard');
  }

  /** The compiled kernel of a key, when it is ready. */
  compiledKernel(key: string): Kernel | undefined {
    return this.ready.get(key);
  }

  /** The kernel key of the reduction pass with workgroups of `lanes` (a plan's `reduceLanes`). */
  reduceKeyFor(lanes: number): string {
    return this.defineKernel('reduce', reduceWgsl, 'reduce_partials', { RWG: lanes }, 'reduce');
  }

  /** The kernel key of an op's fused pass (or another entry of its module) under `plan`; a program's passes keep WG lanes. */
  kernelKey(desc: OpDescriptor, r: Resolved, entry?: string, module?: PassModule, plan: LaunchPlan = this.plan): string {
    const gk = requireKernel(desc);
    if (!this.checked.has(desc.name)) {
      let problems: string[];
      try {
        shaderInfo(desc, gk);
        problems = contractProblems(desc);
      } catch (e) {
        if (e instanceof DetlossError) throw e;
        throw new DetlossError('pipeline', `${desc.name}: its shader could not be read: ${(e as Error).message}`);
      }
      if (problems.length) throw new DetlossError('pipeline', `${desc.name}: descriptor and shader disagree: ${problems.join('; ')}`);
      this.checked.add(desc.name);
    }
    // A kernel that binds more storage buffers than the device allows cannot compile: say so now,
    // by name, not as a pipeline error later (once per op and module choice).
    const narrow = useNarrow(gk, r);
    const fit = `${desc.name}:${narrow ? 'narrow' : 'full'}`;
    if (!this.checked.has(fit)) {
      checkStorageFit(desc, gk, narrow, this.device.limits.maxStorageBuffersPerShaderStage);
      this.checked.add(fit);
    }
    const constants = { WG: gk.program ? WG : plan.workgroupSize, ...(gk.overrides?.(r.params, r.dims) ?? {}) };
    if (entry) return this.defineKernel(module?.shaderId ?? gk.shaderId, module?.shader ?? gk.shader, entry, constants, desc.name);
    if (narrow) return this.defineKernel(gk.narrow!.shaderId, gk.narrow!.shader, gk.entry, constants, desc.name);
    if (useVec4(plan, gk, r)) return this.defineKernel(gk.vec4!.shaderId, gk.vec4!.shader, gk.entry, constants, desc.name);
    const how = rowStrategy(plan, this.device, this.adapter, gk, r);
    if (how === 'subgroup') return this.defineKernel(gk.rows!.subgroup!.shaderId, gk.rows!.subgroup!.shader, gk.rows!.entry, constants, desc.name);
    return this.defineKernel(gk.shaderId, gk.shader, how === 'thread' ? gk.entry : gk.rows!.entry, constants, desc.name);
  }

  private defineKernel(id: string, code: string, entry: string, constants: Record<string, number>, label: string): string {
    const key = `${id}:${entry}:${Object.entries(constants).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join(',')}`;
    if (!this.specs.has(key)) this.specs.set(key, { id, code, entry, constants, label });
    return key;
  }

  /**
   * The pipeline of a kernel key, compiled once with `createComputePipelineAsync` (the promise is
   * cached; a failed one is dropped, with its module, so the next try compiles anew).
   */
  pipeline(key: string): Promise<Kernel> {
    const hit = this.pipelines.get(key);
    if (hit) {
      this.hits++;
      return hit;
    }
    const spec = this.specs.get(key)!;
    const { id } = spec;
    this.compiled++;
    const p = this.compile(key, spec);
    this.pipelines.set(key, p);
    p.catch(() => {
      this.pipelines.delete(key);
      // A module that failed to compile is not reused: the next try compiles it anew.
      this.modules.delete(id);
    });
    return p;
  }

  /**
   * The kernel of a key now, for calls that must submit before they return (framework adapters:
   * call/sync.ts): the compiled one, or one compiled here with the synchronous
   * `createComputePipeline` (the queue waits for it, JavaScript does not). The device's verdict
   * comes later: `checks` gets a promise of the failure's message (undefined when it compiled),
   * and a failed kernel is dropped so that the next call compiles it anew.
   */
  pipelineSync(key: string, checks: Promise<string | undefined>[]): Kernel {
    const hit = this.ready.get(key);
    if (hit) {
      this.hits++;
      return hit;
    }
    const { id, code, entry, constants, label } = this.specs.get(key)!;
    const info = this.info(code, label);
    this.compiled++;
    this.device.pushErrorScope('validation');
    let kernel: Kernel;
    try {
      const layout = this.layout(id, info);
      const module = this.module(id, code);
      const pipeline = this.device.createComputePipeline({
        label: `detloss:${key}`,
        layout: this.device.createPipelineLayout({ label: `detloss:${id}`, bindGroupLayouts: [layout] }),
        compute: { module, entryPoint: entry, constants },
      });
      kernel = { name: `${id}:${entry}`, pipeline, layout, info };
    } finally {
      checks.push(
        this.device.popErrorScope().then((e) => {
          if (!e) return undefined;
          if (this.ready.get(key) === kernel) this.ready.delete(key);
          this.modules.delete(id);
          return `${label}: pipeline ${key} failed to compile: ${e.message}`;
        }),
      );
    }
    this.ready.set(key, kernel);
    return kernel;
  }

  /** A module's layout from the generated table (or a reflector the user enabled); none is a `pipeline` error. */
  private info(code: string, label: string): ShaderInfo {
    try {
      return reflectShader(code);
    } catch (e) {
      throw new DetlossError('pipeline', `${label}: ${e instanceof DetlossError ? '' : 'its WGSL could not be parsed: '}${(e as Error).message}`);
    }
  }

  private async compile(key: string, { id, code, entry, constants, label }: KernelSpec): Promise<Kernel> {
    const info = this.info(code, label);
    // Module and layouts are created inside a validation scope popped at once (scopes are a
    // stack shared by every call on the device); the pipeline's own errors reject its promise.
    this.device.pushErrorScope('validation');
    let pending: Promise<GPUComputePipeline> | undefined;
    let layout: GPUBindGroupLayout | undefined;
    let module: GPUShaderModule | undefined;
    let thrown: unknown;
    try {
      layout = this.layout(id, info);
      module = this.module(id, code);
      pending = this.device.createComputePipelineAsync({
        label: `detloss:${key}`,
        layout: this.device.createPipelineLayout({ label: `detloss:${id}`, bindGroupLayouts: [layout] }),
        compute: { module, entryPoint: entry, constants },
      });
      pending.catch(() => {});
    } catch (e) {
      thrown = e;
    }
    const scoped = await this.device.popErrorScope();
    let pipeline: GPUComputePipeline | undefined;
    let failure: unknown = thrown ?? scoped;
    if (!failure) {
      try {
        pipeline = await pending!;
      } catch (e) {
        failure = e;
      }
    }
    if (failure || !pipeline) {
      const messages = (await module?.getCompilationInfo?.().catch(() => undefined))?.messages?.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join('; ');
      throw new DetlossError('pipeline', `${label}: pipeline ${key} failed to compile: ${(failure as Error)?.message ?? 'unknown error'}${messages ? ` (${messages})` : ''}`);
    }
    const kernel = { name: `${id}:${entry}`, pipeline, layout: layout!, info };
    this.ready.set(key, kernel);
    return kernel;
  }

  private module(id: string, code: string): GPUShaderModule {
    let m = this.modules.get(id);
    if (!m) {
      m = this.device.createShaderModule({ label: `detloss:${id}`, code });
      this.modules.set(id, m);
    }
    return m;
  }

  private layout(id: string, info: ShaderInfo): GPUBindGroupLayout {
    let l = this.layouts.get(id);
    if (!l) {
      l = this.device.createBindGroupLayout({
        label: `detloss:${id}`,
        entries: info.bindings.map((b) => ({
          binding: b.binding,
          visibility: 0x4 /* GPUShaderStage.COMPUTE */,
          buffer: {
            type: b.kind === 'uniform' ? 'uniform' : b.kind === 'read' ? 'read-only-storage' : 'storage',
            minBindingSize: b.minBindingSize,
          },
        })),
      });
      this.layouts.set(id, l);
    }
    return l;
  }
}
