/**
 * The differential fuzzing suite's bounded slice in `npm test`: a fixed seed and case count, under
 * a hard time cap, every op with a GPU kernel on the GPU (Node's Dawn) against `cpu.run`, with the
 * tolerance rule of test/fuzz/tolerance.ts. `npm run fuzz -- --minutes 30 --seed S` is the long run.
 */
import '../../bench/node-globals';
import '@tensorflow/tfjs-backend-webgpu';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DetlossContext } from '../../src/api';
import { expressible, ortSurface, tfjsSurface } from '../fuzz/adapters';
import { FUZZ_OPS, generateCase } from '../fuzz/cases';
import { checkCase, failureClasses, fuzzRun, type Surface } from '../fuzz/runner';
import { nodeContext } from '../helpers/node-gpu';

const SEED = 9;
/** Cases in the slice: tuned to about 60-90 s (70 s measured) on two cores with SwiftShader. */
const CASES = Number(process.env.FUZZ_SLICE_CASES ?? 1000);
/** Hard cap: the slice stops here whatever the case count. */
const CAP_MS = 100_000;
const MIN_PER_OP = 10;

let def: DetlossContext;
let wg: DetlossContext;
let surfaces: Surface[];
beforeAll(async () => {
  def = await nodeContext();
  wg = await nodeContext({ rowThreshold: 0 });
  // The adapters: TF.js's webgpu backend on its own device, ORT tensors on def's.
  expect(await tf.setBackend('webgpu')).toBe(true);
  surfaces = [tfjsSurface(), ortSurface(def.device)];
});
afterAll(() => {
  def?.destroy();
  wg?.destroy();
});

describe('differential fuzzing (GPU against cpu.run)', () => {
  it(`seed ${SEED}: ${CASES} cases over every op, nothing outside the tolerance rule`, async () => {
    const t0 = Date.now();
    const report = await fuzzRun({ default: def, wg }, { seed: SEED, count: CASES, deadline: t0 + CAP_MS, big: true, surfaces });
    const classes = failureClasses(report.failures);
    console.log(
      `fuzz seed ${SEED}: ${report.ran} cases in ${((Date.now() - t0) / 1000).toFixed(1)} s; per op: ` +
        Object.entries(report.cases).map(([op, n]) => `${op} ${n}`).join(', '),
    );
    for (const k of classes) console.log(`FUZZ FAILURE (${k.count}x) ${k.key}\n${k.first.repro}\n`);
    for (const op of FUZZ_OPS) expect(report.cases[op], `cases of ${op}`).toBeGreaterThanOrEqual(MIN_PER_OP);
    // The adapters take one case in eight each: TF.js every op its device can run (all but margin_ranking), ORT every op.
    console.log(`fuzz seed ${SEED} through the adapters: ${Object.entries(report.bySurface).map(([k, v]) => `${k} ${v.cases} cases over ${v.ops.size} ops`).join(', ')}`);
    for (const [name, { cases, ops }] of Object.entries(report.bySurface)) {
      expect(cases, `cases through ${name}`).toBeGreaterThanOrEqual(Math.floor(report.ran / 10));
      expect(ops.size, `ops through ${name}`).toBeGreaterThanOrEqual(FUZZ_OPS.length - 2);
    }
    expect(classes.map((k) => `${k.key} (${k.count}x): ${k.first.message}\n${k.first.repro}`)).toEqual([]);
  }, CAP_MS + 60_000);
});

describe('the tolerance rule catches planted defects', () => {
  // A context whose results are off by a little (a relative 1e-3 on one value, or a gradient
  // element's sign): the rule must flag most cases of every op; a rule that excused anything
  // would pass them all.
  const planted = (how: 'loss' | 'grad') =>
    ({
      run: async (...a: Parameters<DetlossContext['run']>) => {
        const r = await def.run(...a);
        if (how === 'loss' && r.loss.length) r.loss[0] = r.loss[0] * 1.001 + 1e-3;
        const g = Object.values(r.grad)[0];
        if (how === 'grad' && g?.length) g[0] = -g[0] + 1e-3;
        return r;
      },
    }) as unknown as DetlossContext;
  it.each(['loss', 'grad'] as const)('a %s off by a little is flagged', async (how) => {
    const ctx = planted(how);
    let flagged = 0;
    let tried = 0;
    for (const op of FUZZ_OPS) {
      if (how === 'grad' && op === 'pairwise_iou') continue; // no gradient
      for (let i = 0; i < 4; i++) {
        const c = generateCase(SEED + 1, i, { op });
        // A planted error in a NaN loss is still NaN: only finite, valid cases can show it.
        if (c.tags.includes('invalid') || c.nonFinite) continue;
        tried++;
        if (await checkCase(ctx, c)) flagged++;
      }
    }
    expect(tried).toBeGreaterThan(20);
    expect(flagged / tried).toBeGreaterThan(0.8);
  });
  it.each(['tfjs', 'ort'] as const)('through the %s adapter, a loss off by a little is flagged', async (name) => {
    const surface = surfaces.find((x) => x.name === name)!;
    const off: Surface = {
      name: `${name} (planted)`,
      run: async (c) => {
        const r = await surface.run(c);
        const loss = Float32Array.from(r.loss);
        if (loss.length) loss[0] = loss[0] * 1.001 + 1e-3;
        return { ...r, loss };
      },
    };
    let flagged = 0;
    let tried = 0;
    for (const op of FUZZ_OPS) {
      for (let i = 0; i < 3; i++) {
        const c = generateCase(SEED + 2, i, { op });
        const device = name === 'tfjs' ? (tf.backend() as unknown as { device: GPUDevice }).device : def.device;
        if (c.tags.includes('invalid') || c.nonFinite || !expressible(c, device)) continue;
        tried++;
        if (await checkCase(off, c)) flagged++;
      }
    }
    expect(tried).toBeGreaterThan(20);
    expect(flagged / tried).toBeGreaterThan(0.8);
  });
});
