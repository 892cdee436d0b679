/**
 * The differential fuzzing suite's bounded slice in `npm test`: a fixed seed and case count (all of
 * them checked, or the slice fails), every op with a GPU kernel on the GPU (Node's Dawn) against `cpu.run`, with the
 * tolerance rule of test/fuzz/tolerance.ts. `npm run fuzz -- --minutes 30 --seed S` is the long run.
 */
import '../../bench/node-globals';
import '@tensorflow/tfjs-backend-webgpu';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DetlossContext } from '../../src/api';
import { expressible, ortSurface, registerTunedBackend, residentSurface, tfjsSurface } from './adapters';
import { NMS_OPS } from './nms';
import { FUZZ_OPS, generateCase } from './cases';
import { checkCase, failureClasses, fuzzRun, type Surface } from './runner';
import { plant, plantedTally, tallyTable } from './planted';
import { nodeContext } from '../helpers/node-gpu';
import { OPS } from '../../src/ops/registry';
import { note } from '../helpers/note';

const SEED = 9;
/**
 * Cases in the slice: 38 per op (31 ops), tuned to about 60-90 s on two cores with SwiftShader
 * (26 to 88 s measured on 2026-12-07 for 29 ops as the machine was loaded; the 114 NMS cases 2.6 to
 * 6 s; the rotated ops run about 50 cases a second).
 */
const CASES = Number(process.env.FUZZ_SLICE_CASES ?? 1178);
/** The slice's time limit: a runner too slow to check every case in it fails (it does not pass on fewer). */
const CAP_MS = 240_000;

let def: DetlossContext;
let wg: DetlossContext;
let hw: DetlossContext;
let tuned: DetlossContext;
let surfaces: Surface[];
beforeAll(async () => {
  def = await nodeContext();
  wg = await nodeContext({ rowThreshold: 0 });
  // NMS cases tagged 'hw' run the hardware plan's passes (the decision bits and the scan).
  hw = await nodeContext({ plan: 'hardware' });
  // Cases with a random tuned plan run on contexts of their own on this device (ORT's too), and
  // through TF.js on a second webgpu backend: the plans they load never reach the other cases.
  tuned = await nodeContext();
  expect(tuned.device.limits.maxComputeInvocationsPerWorkgroup, 'the tuned plans draw workgroups of up to 256').toBeGreaterThanOrEqual(256);
  // The adapters: TF.js's webgpu backend on its own device, ORT tensors on def's.
  expect(await tf.setBackend('webgpu')).toBe(true);
  surfaces = [tfjsSurface(registerTunedBackend()), ortSurface(def.device, tuned.device), residentSurface((c) => (c.rows === 'wg' ? wg : c.rows === 'hw' ? hw : def))];
});
afterAll(() => {
  def?.destroy();
  wg?.destroy();
  hw?.destroy();
  tuned?.destroy();
});

describe('differential fuzzing (GPU against cpu.run)', () => {
  it(`seed ${SEED}: ${CASES} cases over every op, nothing outside the tolerance rule`, async () => {
    const t0 = Date.now();
    const report = await fuzzRun({ default: def, wg, hw, tuned }, { seed: SEED, count: CASES, deadline: t0 + CAP_MS, big: true, surfaces });
    const classes = failureClasses(report.failures);
    console.log(
      `fuzz seed ${SEED}: ${report.ran} cases in ${((Date.now() - t0) / 1000).toFixed(1)} s; per op: ` +
        Object.entries(report.cases).map(([op, n]) => `${op} ${n}`).join(', '),
    );
    for (const k of classes) console.log(`FUZZ FAILURE (${k.count}x) ${k.key}\n${k.first.repro}\n`);
    // every case of the slice, or a failure: a slow runner must not pass on a fraction of them
    expect(report.ran, `cases checked before the ${CAP_MS / 1000} s limit`).toBe(CASES);
    for (const op of FUZZ_OPS) expect(report.cases[op], `cases of ${op}`).toBeGreaterThanOrEqual(Math.floor(CASES / FUZZ_OPS.length));
    // The adapters take one case in eight each: TF.js every op its device can run (all but margin_ranking), ORT every op.
    console.log(`fuzz seed ${SEED} through the adapters: ${Object.entries(report.bySurface).map(([k, v]) => `${k} ${v.cases} cases over ${v.ops.size} ops (${v.tuned} under a tuned plan)`).join(', ')}`);
    // About one case in five of the fused ops under a random tuned plan, through the core and both adapters.
    const fused = FUZZ_OPS.filter((op) => !OPS[op].gpu?.program);
    const tunedCases = fused.reduce((a, op) => a + report.tuned[op], 0);
    console.log(`fuzz seed ${SEED}: ${tunedCases} cases under a random tuned plan`);
    expect(tunedCases, 'cases under a tuned plan').toBeGreaterThanOrEqual(Math.floor(0.12 * fused.reduce((a, op) => a + report.cases[op], 0)));
    expect(FUZZ_OPS.filter((op) => OPS[op].gpu?.program && report.tuned[op] > 0), 'program ops under a tuned plan').toEqual([]);
    for (const name of ['tfjs', 'ort']) expect(report.bySurface[name].tuned, `${name}: cases under a tuned plan`).toBeGreaterThan(0);
    // runResident with the outputs at capacity and their count read: the NMS ops, one case in four.
    for (const [name, { cases, ops }] of Object.entries(report.bySurface)) {
      if (name === 'resident') {
        expect([...ops].sort(), 'ops through runResident').toEqual([...NMS_OPS].sort());
        expect(cases, 'cases through runResident').toBeGreaterThanOrEqual(Math.floor(report.ran / FUZZ_OPS.length / 2));
        continue;
      }
      expect(cases, `cases through ${name}`).toBeGreaterThanOrEqual(Math.floor(report.ran / 10));
      expect(ops.size, `ops through ${name}`).toBeGreaterThanOrEqual(FUZZ_OPS.length - 2);
    }
    expect(classes.map((k) => `${k.key} (${k.count}x): ${k.first.message}\n${k.first.repro}`)).toEqual([]);
  }, CAP_MS + 60_000);
});

describe('the tolerance rule catches planted defects', () => {
  // Small defects on every element of one output (test/fuzz/planted.ts: 8 to 64 K*u relative, each
  // element its own size and sign), on the GPU's own results: the rule must flag at least 80% of
  // the cases of every op and output, and of the box ops in the far and thin regimes apart. A rule
  // that excused errors many times the kernel's would pass them.
  //
  // Two outputs sit below that, at a float32 floor of their kernels, not of the rule:
  // - kl_div: where the teacher and student rows are nearly equal (a 'near' case) the loss is
  //   sum q psi(l) ~ l^2/2 and the gradient -T q expm1(l) ~ -T q l, with l = log p - log q small;
  //   l carries a few u absolutely (log1p near 0, 2^-21 in WGSL), so neither is good to 8 K*u
  //   relatively there. The other cases are flagged.
  // - ap_loss's loss: the kernel sums the ramp from prefix sums of the sorted scores, which cancel
  //   terms of size |score|/delta (tolerance.ts rankingTerms): with delta = 0.05 and scores near
  //   1 that is 20 u per pair on the ramp.
  const FLOORS: Record<string, Partial<Record<'loss' | 'grad' | 'outputs', number>>> = { kl_div: { loss: 0.5, grad: 0.5 }, ap_loss: { loss: 0.5 } };
  it('at least 80% of small defects flagged, per op and output, far and thin boxes included', async () => {
    const tally = await plantedTally({ default: def, wg, hw }, FUZZ_OPS, { seed: SEED + 1, perOp: 24, boxes: ['far', 'thin'] });
    note(`planted defects flagged (seed ${SEED + 1}):\n${tallyTable(tally)}`);
    for (const [key, row] of tally.rows) {
      const op = key.split('/')[0];
      for (const out of ['loss', 'grad', 'outputs'] as const) {
        if (out === 'grad' && (op === 'pairwise_iou' || op === 'pairwise_probiou')) continue; // no gradient
        if ((op === 'tal_assign' || NMS_OPS.has(op)) && out !== 'outputs') continue; // no loss, no gradient: its outputs are its results
        if (out === 'outputs' && !OPS[op].outputs) continue; // no named outputs
        const { tried, flagged } = row[out];
        expect(tried, `${key} ${out}: cases tried`).toBeGreaterThanOrEqual(8);
        expect(flagged / tried, `${key} ${out}: share of planted defects flagged`).toBeGreaterThanOrEqual(FLOORS[op]?.[out] ?? 0.8);
      }
    }
  }, 240_000);
  it.each(['tfjs', 'ort'] as const)('through the %s adapter, a loss off by a little is flagged', async (name) => {
    const surface = surfaces.find((x) => x.name === name)!;
    let flagged = 0;
    let tried = 0;
    for (const op of FUZZ_OPS) {
      for (let i = 0; i < 3; i++) {
        const c = generateCase(SEED + 2, i, { op, nonFinite: 0 });
        const device = name === 'tfjs' ? (tf.backend() as unknown as { device: GPUDevice }).device : def.device;
        if (c.tags.includes('invalid') || !expressible(c, device)) continue;
        let r: Awaited<ReturnType<Surface['run']>>;
        try {
          r = await surface.run(c);
        } catch {
          continue; // a case the adapter refuses (as the reference does): no numbers to plant in
        }
        const planted = plant(c, r, 'loss', c.seed * 7919 + i);
        if (!planted) continue; // a loss of zeros: nothing to move
        tried++;
        if (await checkCase({ name: `${name} (planted)`, run: async () => planted }, c)) flagged++;
      }
    }
    expect(tried).toBeGreaterThan(20);
    expect(flagged / tried).toBeGreaterThan(0.8);
  });
});
