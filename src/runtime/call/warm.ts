import { getOp } from '../../ops/registry';
import type { OpDescriptor } from '../../ops/types';
import { resolveOptions, type Resolved } from '../../ops/validate';
import { requireKernel } from '../compile/kernel-choice';
import { tunableOptions } from './plan';
import type { Runtime } from './runtime';

/** What `warmup()` takes: an op name, or an op with non-default compile-time options and dims. */
export type WarmItem = string | { op: string | OpDescriptor; options?: Record<string, unknown>; dims?: Record<string, number> };

/**
 * Compiles the pipelines the ops' calls will run (`Detloss.warmup`): under the context's plan and
 * each plan tuned for the op's family, and notes the ops as used (what `tune()` takes by default).
 */
export async function warmKernels(rt: Runtime, list: readonly WarmItem[]): Promise<void> {
  const { kernels } = rt;
  await Promise.all(
    list.map(async (item) => {
      const { op, options } = typeof item === 'string' ? { op: item, options: {} } : { options: {}, ...item };
      const desc = getOp(op);
      requireKernel(desc);
      const o = resolveOptions(desc, options ?? {});
      const dims = typeof item === 'string' ? {} : item.dims ?? {};
      const r = { ...o, dims } as unknown as Resolved;
      const gk = desc.gpu!;
      if (!gk.program) rt.usage!.note(gk.shaderId, desc.name, tunableOptions(desc, options ?? {}), dims);
      // The context's plan, and each plan tuned for the op's family.
      for (const plan of [rt.plan, ...rt.book!.plansOf(gk.shaderId)]) {
        await kernels.pipeline(kernels.kernelKey(desc, r, undefined, undefined, plan));
        await kernels.pipeline(kernels.reduceKeyFor(plan.reduceLanes));
        // An aux number (Wise-IoU's batch mean) has its own entry point.
        if (gk.aux?.when(r.params)) await kernels.pipeline(kernels.kernelKey(desc, r, gk.aux.entry, undefined, plan));
        // The output's size picks scalar or vec4 at run time: without it, both are warmed.
        if (gk.vec4 && plan.vectorWidth === 4) await kernels.pipeline(kernels.kernelKey(desc, { ...r, outCount: 0 }, undefined, undefined, plan));
      }
      // A program op (the ranking losses) runs every pass's entry point.
      const prog = desc.gpu?.program;
      const passes = rt.plan.kind === 'software' && prog?.software ? prog.software.passes : (prog?.passes ?? []);
      for (const pass of passes) await kernels.pipeline(kernels.kernelKey(desc, r, pass.entry, pass.module));
    }),
  );
  await kernels.pipeline(kernels.reduceKeyFor(rt.plan.reduceLanes));
}
