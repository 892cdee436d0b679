import { DetlossError } from '../../errors';
import { getOp } from '../../ops/registry';
import type { GpuKernel, OpDescriptor } from '../../ops/types';
import type { Resolved } from '../../ops/validate';
import { VERSION } from '../../version';
import { readInputs } from '../call/inputs';
import { callSize, planCall, tunableOptions } from '../call/plan';
import type { Runtime } from '../call/runtime';
import { LateVerdicts } from '../call/status';
import { requireKernel } from '../compile/kernel-choice';
import { launchOf, tunedOf } from '../device/launch-plan';
import { adapterKey } from '../device/plan-record';
import { Timestamps } from '../device/timestamps';
import type { CandidateTime, PlanChoice, PlanRecord, TunedPlan, TuneOptions } from '../public';
import { allPlans, candidatesFor, FIELD_ORDER, type Candidates } from './candidates';
import { checkTuneOptions, type TuneItem } from './options';
import { tuneInputs } from './inputs';
import { inputBytes, measure, now, SLACK, upload, type Clock, type Job } from './measure';

// `Detloss.tune()`: times candidate launch plans for each op family and size class asked for,
// on the context's device, within a time budget, and keeps the fastest. Each candidate runs as a
// resident call on a copy of the runtime that forces the candidate's plan and has timestamps of
// its own, so the context's own calls (made meanwhile) and its `stats().lastCall` are untouched.

/** A candidate must beat the best so far by this much to replace it (noise between two measurements). */
const MARGIN = 0.03;
/** Rounds of the final check of the descent's winner against the context's plan; it must win most of them. */
const CHECKS = 3;



/** Tuning runs one at a time per context: a second `tune()` waits for the first. */
const running = new WeakMap<object, Promise<unknown>>();

export async function tunePlans(rt: Runtime, options: TuneOptions): Promise<PlanRecord> {
  const o = checkTuneOptions(options);
  const before = running.get(rt.kernels) ?? Promise.resolve();
  const mine = before.catch(() => {}).then(() => tuneNow(rt, o));
  running.set(rt.kernels, mine.catch(() => {}));
  return mine;
}

function jobsOf(rt: Runtime, o: ReturnType<typeof checkTuneOptions>): Job[] {
  const named: (string | TuneItem)[] = o.ops ?? rt.usage!.uses().map((u) => ({ op: u.op, options: u.options, dims: u.dims, ...(u.size ? { sizes: [u.size] } : {}) }));
  if (named.length === 0) throw new DetlossError('invalid_param', 'tune: no ops to tune: name them (ops), or warm up or run some first', 'ops');
  const jobs: Job[] = [];
  const seen = new Set<string>();
  for (const [i, item] of named.entries()) {
    const { op, options = {}, dims = {} } = typeof item === 'string' ? { op: item } : item;
    const where = o.ops ? `ops[${i}]` : 'ops';
    const { desc, gk } = tunable(op, where);
    if (gk.program) throw new DetlossError('invalid_param', `tune: ${where}: ${desc.name} runs a program of passes fixed per plan kind; it has no launch plan to tune`, where);
    // The op's options and dims are checked here, as a call checks them: a bad one stops the run before any op is tuned.
    readInputs(desc, tuneInputs(desc, 1, dims, !!gk.rows, options).arrays, tunableOptions(desc, options));
    const sizes = o.sizes ?? (typeof item !== 'string' && item.sizes?.length ? item.sizes : [1e6]);
    for (const size of sizes) {
      const rowLength = gk.rows ? tuneInputs(desc, 1, dims, true, {}).dims : undefined;
      const sizeKey = callSize(gk, { outCount: size, dims: rowLength ?? {} } as Resolved).key;
      if (seen.has(`${gk.shaderId} ${sizeKey}`)) continue;
      seen.add(`${gk.shaderId} ${sizeKey}`);
      jobs.push({ desc, gk, options, dims, size, sizeKey });
    }
  }
  return jobs;
}

/** An op to tune by name: unknown, or without a GPU kernel, is refused naming its entry of `ops`. */
function tunable(op: string, where: string): { desc: OpDescriptor; gk: GpuKernel } {
  try {
    const desc = getOp(op);
    return { desc, gk: requireKernel(desc) };
  } catch (e) {
    if (e instanceof DetlossError) throw new DetlossError(e.code, `tune: ${where}: ${e.message}`, where);
    throw e;
  }
}

async function tuneNow(rt: Runtime, o: ReturnType<typeof checkTuneOptions>): Promise<PlanRecord> {
  const jobs = jobsOf(rt, o);
  const timer = rt.device.features.has('timestamp-query') ? 'gpu' : 'wall';
  // A call's time varies on a busy machine: the tuner plans to end a twentieth of the budget early.
  const clock: Clock = { start: now(), deadline: now() + o.budgetMs * 0.95, perCall: 0, compile: 100, measured: 0 };
  // A call's cost as a fixed part and a part per byte of input, from the jobs so far: a new job's
  // first call is estimated from them.
  let fixedMs = Infinity;
  let msPerByte = 0;
  for (const [i, job] of jobs.entries()) {
    // Each job may spend its share of what is left; one that ends early leaves the rest to the others.
    const left = clock.deadline - now();
    const bytes = inputBytes(job);
    const share = { ...clock, deadline: now() + left / (jobs.length - i), perCall: Number.isFinite(fixedMs) ? fixedMs + msPerByte * bytes : 0 };
    const choice = await tuneJob(rt, job, o, timer, share);
    clock.measured = share.measured;
    clock.compile = share.compile;
    if (share.perCall > 0) {
      fixedMs = Math.min(fixedMs, share.perCall);
      msPerByte = Math.max(msPerByte, (share.perCall - fixedMs) / bytes);
    }
    if (choice) rt.book!.set(choice);
  }
  return { format: 'detloss-plans', detloss: VERSION, adapter: adapterKey(rt.adapter), timer, created: new Date().toISOString(), plans: rt.book!.choices().map((c) => structuredClone(c)) };
}

async function tuneJob(rt: Runtime, job: Job, o: ReturnType<typeof checkTuneOptions>, timer: 'gpu' | 'wall', clock: Clock): Promise<PlanChoice | undefined> {
  const { desc, gk } = job;
  // A job whose first call (and its compile) cannot end in time is not started.
  if (now() + clock.compile + clock.perCall * 2 > clock.deadline) return undefined;
  const made = tuneInputs(desc, job.size, job.dims, !!gk.rows, job.options);
  const callOptions: Record<string, unknown> = tunableOptions(desc, job.options);
  let { r } = readInputs(desc, made.arrays, callOptions);
  // A data-dependent 'mean' denominator (cross-entropy's) would need a pass of its own on resident inputs.
  if (desc.meanDenominator && r.reduction === 'mean') ({ r } = readInputs(desc, made.arrays, Object.assign(callOptions, { avgFactor: made.dims[desc.rows] })));
  const present = new Set(Object.keys(made.arrays));
  const cands = candidatesFor(o.candidates, rt.device, rt.adapter, gk, r);
  const rowLength = gk.rows ? gk.rows.length(r.dims) : 0;
  const inputs = upload(rt, made.arrays);
  const base: Runtime = { ...rt, timestamps: new Timestamps(rt.device, timer === 'gpu'), late: new LateVerdicts(), book: undefined, usage: undefined };
  const times = new Map<string, number>();
  const candidates: CandidateTime[] = [];
  try {
    // What a plan launches here: candidates that launch the same are timed once.
    const keysOf = (p: TunedPlan) => [rt.kernels.kernelKey(desc, r, undefined, undefined, launchOf(rt.plan, p)), rt.kernels.reduceKeyFor(p.reduceLanes)];
    const signature = (p: TunedPlan) => {
      const cp = planCall(rt, launchOf(rt.plan, p), desc, gk, r, 1, present, false, !!gk.aux?.when(r.params));
      return JSON.stringify([keysOf(p)[0], cp.levels.length ? p.reduceLanes : 0, cp.chunks.map((c) => c.grid), cp.levels.map((l) => [l.per, l.groups])]);
    };
    const timeOf = async (p: TunedPlan, force = false): Promise<number | undefined> => {
      const sig = signature(p);
      if (!force && times.has(sig)) return times.get(sig);
      const fresh = keysOf(p).some((k) => !rt.kernels.compiledKernel(k));
      const measured = await measure({ ...base, force: launchOf(rt.plan, p) }, desc, inputs.tensors, callOptions, o.reps, timer, clock, fresh);
      if (measured === undefined) return undefined;
      // A plan timed twice keeps its faster time (the noise of a shared machine only adds); a
      // forced measurement (the final check) answers with its own.
      const ms = Math.min(measured, times.get(sig) ?? Infinity);
      times.set(sig, ms);
      candidates.push({ plan: p, ms: measured });
      clock.measured++;
      o.onProgress?.({ family: gk.shaderId, size: job.sizeKey, measured: clock.measured, elapsedMs: now() - clock.start, budgetMs: o.budgetMs, plan: { ...p }, ms: measured });
      return force ? measured : ms;
    };
    const start = tunedOf(rt.plan, rowLength);
    const defaultMs = await timeOf(start);
    if (defaultMs === undefined) return undefined;
    let best = { plan: start, ms: defaultMs };
    const better = (p: TunedPlan, ms: number | undefined) => {
      if (ms !== undefined && ms < best.ms * (1 - MARGIN)) best = { plan: p, ms };
      return ms !== undefined;
    };
    if (o.search === 'exhaustive') {
      // The sweep: the fastest of the candidates themselves (the context's plan is timed for
      // reference only), with no margin and no second look.
      let sweep: { plan: TunedPlan; ms: number } | undefined;
      for (const p of allPlans(cands)) {
        const ms = await timeOf(p);
        if (ms === undefined) break;
        if (!sweep || ms < sweep.ms) sweep = { plan: p, ms };
      }
      best = sweep ?? best;
    } else {
      // The descent stops while there is still time to check its winner (CHECKS rounds of two).
      const measurement = () => (o.reps + 1) * SLACK * clock.perCall;
      await descend(cands, () => best.plan, async (p) => now() + (2 * CHECKS + 1) * measurement() <= clock.deadline && better(p, await timeOf(p)));
    }
    // The winner of the descent against the context's plan again, in CHECKS rounds taking turns:
    // a tuned plan is kept only where it is the faster in most rounds, never on one lucky
    // measurement (a plan with many threads can be fast once and slow after), nor lost to one
    // round that other work on the machine slowed; where there is no time to check, the
    // context's plan stays.
    let confirmed = best;
    if (o.search === 'descent' && signature(best.plan) !== signature(start)) {
      let wins = 0;
      let rounds = 0;
      for (; rounds < CHECKS; rounds++) {
        const theirs = await timeOf(start, true);
        const mine = theirs === undefined ? undefined : await timeOf(best.plan, true);
        if (mine === undefined || theirs === undefined) break;
        if (mine < theirs) wins++;
      }
      const [mine, theirs] = [times.get(signature(best.plan))!, times.get(signature(start))!];
      confirmed = rounds === CHECKS && 2 * wins > CHECKS ? { plan: best.plan, ms: mine } : { plan: start, ms: theirs };
    }
    await base.late.flush();
    return { family: gk.shaderId, size: job.sizeKey, plan: confirmed.plan, ms: confirmed.ms, defaultMs: times.get(signature(start)) ?? defaultMs, op: desc.name, candidates };
  } finally {
    inputs.destroy();
  }
}

/**
 * Coordinate descent: from the best plan so far, each field in turn takes each of its candidate
 * values (the others held); rounds repeat until one moves nothing (at most three). `tryPlan`
 * returns false once the budget is spent.
 */
async function descend(c: Candidates, best: () => TunedPlan, tryPlan: (p: TunedPlan) => Promise<boolean>): Promise<void> {
  for (let round = 0; round < 3; round++) {
    const at = JSON.stringify(best());
    for (const field of FIELD_ORDER) {
      for (const v of c[field] as unknown[]) {
        const from = best();
        if (from[field] === v) continue;
        if (!(await tryPlan({ ...from, [field]: v }))) return;
      }
    }
    if (JSON.stringify(best()) === at) return;
  }
}
