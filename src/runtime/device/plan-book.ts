import type { AdapterFacts, LaunchPlan, PlanChoice, PlanRecord } from '../public';
import { launchOf } from './launch-plan';
import { mismatch } from './plan-record';

// A context's tuned plans, by op family and size class, and what its calls have used (the ops and
// sizes `tune()` takes by default).

/** A call's size class: its output elements (rows for a row op) to the nearest power of ten, and a row op's row length too. */
export interface SizeClass {
  n: number;
  row?: number;
  /** `'1e6'` or `'1e6/1e2'`. */
  key: string;
}

const decade = (x: number) => Math.max(0, Math.round(Math.log10(Math.max(1, x))));

/** The size class of a call with `count` output elements and, for a row op, rows of `rowLength`. */
export function sizeClassOf(count: number, rowLength?: number): SizeClass {
  const n = decade(count);
  if (rowLength === undefined) return { n, key: `1e${n}` };
  const row = decade(rowLength);
  return { n, row, key: `1e${n}/1e${row}` };
}

/** The tuned plans a context holds, and the warnings about records it ignored. */
export class PlanBook {
  private readonly byKey = new Map<string, PlanChoice>();
  private readonly launches = new Map<PlanChoice, LaunchPlan>();
  readonly warnings: string[] = [];

  constructor(
    private readonly base: LaunchPlan,
    private readonly adapter: AdapterFacts,
    private readonly version: string,
    records?: PlanRecord | readonly PlanRecord[],
  ) {
    this.load(records);
  }

  /** Loads the records that hold here; each other one leaves a warning. */
  load(records: PlanRecord | readonly PlanRecord[] | undefined): void {
    if (!records) return;
    for (const r of Array.isArray(records) ? records : [records as PlanRecord]) {
      const why = mismatch(r, this.adapter, this.version);
      if (why) this.warnings.push(why);
      else for (const c of r.plans) this.set(c);
    }
  }

  /** Keeps a plan for its family and size class (replacing one there). */
  set(choice: PlanChoice): void {
    const old = this.byKey.get(`${choice.family} ${choice.size}`);
    if (old) this.launches.delete(old);
    this.byKey.set(`${choice.family} ${choice.size}`, choice);
    this.launches.set(choice, launchOf(this.base, choice.plan));
  }

  /** The launch plans held for one family (what a warm-up compiles besides the context's). */
  plansOf(family: string): LaunchPlan[] {
    return [...this.byKey.values()].filter((c) => c.family === family).map((c) => this.launches.get(c)!);
  }

  /** Every plan held, in the order they were set. */
  choices(): PlanChoice[] {
    return [...this.byKey.values()];
  }

  /**
   * The plan for a call of `family` in size class `size`: the one tuned for that class, else the
   * one of the nearest class one power of ten away (the larger on a tie) with the same row length;
   * undefined when there is none (the call runs the context's plan).
   */
  find(family: string, size: SizeClass): { choice: PlanChoice; plan: LaunchPlan } | undefined {
    if (this.byKey.size === 0) return undefined;
    let choice = this.byKey.get(`${family} ${size.key}`);
    if (!choice) {
      for (const dn of [1, -1]) {
        const c = this.byKey.get(`${family} ${sizeKey(size.n + dn, size.row)}`);
        if (c) {
          choice = c;
          break;
        }
      }
    }
    return choice && { choice, plan: this.launches.get(choice)! };
  }
}

const sizeKey = (n: number, row?: number) => (row === undefined ? `1e${n}` : `1e${n}/1e${row}`);

/** One op as the context has used it: its options, its dims besides the rows, and the size run (none: warmed up only). */
export interface OpUse {
  op: string;
  options: Record<string, unknown>;
  dims: Record<string, number>;
  size?: number;
}

/** What a context's warm-ups and calls have used, by op family and size class (the latest call of each wins). */
export class UsageLog {
  private readonly byClass = new Map<string, OpUse>();

  /** Notes a call (with its size class and size) or a warm-up (neither); an empty call says nothing. */
  note(family: string, op: string, options: Record<string, unknown>, dims: Record<string, number>, size?: { key: string; count: number }): void {
    if (size && size.count === 0) return;
    // A warm-up stands for its family until a call of it is seen.
    if (size) this.byClass.delete(`${family} warm`);
    else if ([...this.byClass.keys()].some((k) => k.startsWith(`${family} `))) return;
    this.byClass.set(`${family} ${size?.key ?? 'warm'}`, { op, options, dims, ...(size ? { size: size.count } : {}) });
  }

  uses(): OpUse[] {
    return [...this.byClass.values()];
  }
}
