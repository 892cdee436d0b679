/**
 * Tuned launch plans in the fuzzer: a share of the cases of the fused ops (`TUNED_SHARE`; not the
 * program ops, which are never tuned) carries a random tuned plan for its op family and size class,
 * drawn from every value a plan record may hold. The surfaces run such a case on a context that
 * holds a record of that one plan for the context's own adapter (`planRecordFor`), and report the
 * tuned plan the call ran, which the runner holds to the case's.
 */
import { OPS } from '../../src/ops/registry';
import { readInputs } from '../../src/runtime/call/inputs';
import { callSize } from '../../src/runtime/call/plan';
import type { AdapterFacts, PlanRecord, TunedPlan } from '../../src/runtime/public';
import { VERSION } from '../../src/version';
import { recordOf } from '../helpers/plan-records';
import type { FuzzCase } from './cases';
import { Rng, caseSeed } from './prng';

/** The share of the fused ops' cases that run under a random tuned plan. */
export const TUNED_SHARE = 0.2;

/** A case's tuned plan: the plan, and the family and size class a record files it under. */
export interface CasePlan {
  family: string;
  /** `'1e4'`, or `'1e4/1e1'` for a row op (the runtime's own size class of the call). */
  size: string;
  plan: TunedPlan;
  /** The call's output elements: a call with none launches nothing, so no plan is run. */
  outCount: number;
}

/** The workgroup sizes drawn: every one a plan record may hold (the fuzz devices run workgroups of 256). */
export const WORKGROUP_SIZES = [16, 32, 64, 128, 256] as const;

/**
 * A plan for case `c` with probability `TUNED_SHARE`, from a stream of its own (the case's inputs
 * stay as they were drawn without it); none for a program op, or for a case the runtime refuses
 * (its size class is not known, and no plan would run).
 */
export function drawCasePlan(c: FuzzCase, share = TUNED_SHARE): CasePlan | undefined {
  const gk = OPS[c.op]?.gpu;
  if (!gk || gk.program) return undefined;
  const r = new Rng(caseSeed(c.seed ^ 0x706c616e, c.index));
  if (!r.chance(share)) return undefined;
  const filed = fileUnder(c);
  if (!filed) return undefined;
  // maxThreads from 64 to 2^20: a power of two, or any integer (log-uniform), so chunks of odd sizes come too.
  const maxThreads = r.chance(0.5) ? 2 ** r.int(6, 20) : Math.round(2 ** r.uniform(6, 20));
  const plan: TunedPlan = {
    maxThreads,
    workgroupSize: r.pick(WORKGROUP_SIZES),
    vectorWidth: r.pick([1, 4] as const),
    reduceLanes: 2 ** r.int(0, 8),
    reducePer: r.int(0, 64),
    rows: r.pick(['thread', 'workgroup', 'subgroup'] as const),
  };
  return { ...filed, plan };
}

/** The family and size class of a call of case `c`, as the runtime files them; undefined where the runtime refuses the case. */
function fileUnder(c: FuzzCase): Omit<CasePlan, 'plan'> | undefined {
  const gk = OPS[c.op].gpu!;
  try {
    const { r } = readInputs(OPS[c.op], c.inputs, c.options as never);
    return { family: gk.shaderId, size: callSize(gk, r).key, outCount: r.outCount };
  } catch {
    return undefined;
  }
}

/** Case `c`'s plan filed again for the case as it is now (a case cut down to one row has another size class). */
export function refiled(c: FuzzCase): CasePlan | undefined {
  const filed = c.plan && fileUnder(c);
  return filed ? { ...filed, plan: c.plan!.plan } : undefined;
}

/** The tuned plan a call of the case names in `stats().lastCall.tunedPlan`. */
export const planName = (p: CasePlan) => `${p.family} ${p.size}`;

/** A record holding the case's one plan, for `adapter` and this version of detloss. */
export function planRecordFor(c: FuzzCase, adapter: Pick<AdapterFacts, 'vendor' | 'architecture' | 'device' | 'description'>): PlanRecord {
  const p = c.plan!;
  return recordOf(adapter, [{ family: p.family, size: p.size, plan: { ...p.plan }, ms: 0, defaultMs: 0, op: c.op, candidates: [] }]);
}

/** The lines of a repro that load the case's record into `dl` (its adapter read from the context). */
export function planReproLines(c: FuzzCase): string[] {
  const p = c.plan!;
  const choice = `{ family: '${p.family}', size: '${p.size}', plan: ${JSON.stringify(p.plan).replace(/"(\w+)":/g, '$1: ').replace(/,/g, ', ').replace(/"/g, "'")}, ms: 0, defaultMs: 0, op: '${c.op}', candidates: [] }`;
  return [
    `const { vendor, architecture, device, description } = (await createDetloss({ gpu })).adapter;`,
    `const plans = { format: 'detloss-plans', detloss: '${VERSION}', adapter: { vendor, architecture, device, description }, timer: 'wall', created: '2026-12-07T00:00:00.000Z', plans: [${choice}] };`,
    `const dl = await createDetloss({ gpu, plans }); // the case's tuned plan: dl.stats().lastCall.tunedPlan is '${planName(p)}'`,
  ];
}
