import type { AdapterFacts, PlanChoice, PlanRecord } from '../../src/runtime/public';
import { VERSION } from '../../src/version';

/** A plan record holding `plans`, for `adapter` and this version of detloss (as tune() would write it). */
export function recordOf(adapter: Pick<AdapterFacts, 'vendor' | 'architecture' | 'device' | 'description'>, plans: PlanChoice[]): PlanRecord {
  return {
    format: 'detloss-plans',
    detloss: VERSION,
    adapter: { vendor: adapter.vendor, architecture: adapter.architecture, device: adapter.device, description: adapter.description },
    timer: 'wall',
    created: '2026-12-07T00:00:00.000Z',
    plans,
  };
}
