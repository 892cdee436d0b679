/**
 * The long differential fuzz run, driven by scripts/fuzz.mjs (`npm run fuzz -- --minutes 30 --seed S`)
 * through environment variables: FUZZ_SEED, FUZZ_MINUTES, FUZZ_CASE (replay one case), FUZZ_OPS (only
 * these ops, comma-separated: case i is then of ops[i % ops.length]).
 */
import '../../bench/node-globals';
import '@tensorflow/tfjs-backend-webgpu';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { DetlossContext } from '../../src/api';
import { nodeContext } from '../helpers/node-gpu';
import { ortSurface, registerTunedBackend, residentSurface, tfjsSurface } from './adapters';
import { env } from './config';
import { failureClasses, fuzzRun, hasNonFinite, type FuzzReport, type Surface } from './runner';
import { generateCase } from './cases';

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
  // A share of the cases also goes through detloss/tfjs (TF.js's webgpu backend) and detloss/ort,
  // and the NMS ops' through runResident (their outputs at capacity, with a count).
  expect(await tf.setBackend('webgpu')).toBe(true);
  surfaces = [tfjsSurface(registerTunedBackend()), ortSurface(def.device, tuned.device), residentSurface((c) => (c.rows === 'wg' ? wg : c.rows === 'hw' ? hw : def))];
});
afterAll(() => {
  def?.destroy();
  wg?.destroy();
  hw?.destroy();
  tuned?.destroy();
});

const out = (s: string) => process.stdout.write(`${s}\n`);
const perOp = (r: FuzzReport) => Object.entries(r.cases).map(([op, n]) => `${op} ${n}`).join(', ');

it(`fuzz seed ${env.seed} for ${env.minutes} min`, async () => {
  const t0 = Date.now();
  let lastPrint = t0;
  const seen = new Set<string>();
  const report = await fuzzRun(
    { default: def, wg, hw, tuned },
    {
      seed: env.seed,
      from: env.only ?? 0,
      count: env.only !== undefined ? 1 : undefined,
      deadline: t0 + env.minutes * 60_000,
      big: true,
      surfaces,
      ops: env.ops,
      onCase: (c, f, r) => {
        if (f && !seen.has(f.key)) {
          seen.add(f.key);
          out(`\nNEW FAILURE CLASS ${f.key} (case ${c.index})\n${f.repro}\n`);
        }
        if (Date.now() - lastPrint > 30_000) {
          lastPrint = Date.now();
          out(`[fuzz ${((Date.now() - t0) / 60000).toFixed(1)} min] ${r.ran} cases, ${r.failures.length} failures (${seen.size} classes); ${perOp(r)}`);
        }
      },
    },
  );
  const classes = failureClasses(report.failures);
  // (the failures of cases with a NaN or an infinity in an input, apart: ops.md's rule for those)
  const nonFiniteIdx = new Set(report.failures.filter((f) => hasNonFinite(generateCase(f.seed, f.index, { big: true, op: env.ops?.length ? env.ops[f.index % env.ops.length] : undefined }))).map((f) => f.index));
  out(`\n=== fuzz summary: seed ${env.seed}${env.ops ? ` (ops ${env.ops.join(',')})` : ''}, ${report.ran} cases in ${(report.ms / 1000).toFixed(0)} s, ${report.failures.length} failures in ${classes.length} classes`);
  out(`cases per op: ${perOp(report)}`);
  out(`with a NaN or an infinity in an input: ${Object.values(report.nonFinite).reduce((a, b) => a + b, 0)} (${Object.entries(report.nonFinite).map(([op, n]) => `${op} ${n}`).join(', ')})`);
  out(`under a random tuned plan: ${Object.values(report.tuned).reduce((a, b) => a + b, 0)} (${Object.entries(report.tuned).map(([op, n]) => `${op} ${n}`).join(', ')})`);
  out(`through the adapters: ${Object.entries(report.bySurface).map(([k, v]) => `${k} ${v.cases} cases over ${v.ops.size} ops (${v.tuned} under a tuned plan)`).join(', ')}`);
  out(`failures on finite inputs: ${report.failures.length - nonFiniteIdx.size}${report.failures.length ? ` (cases ${report.failures.filter((f) => !nonFiniteIdx.has(f.index)).slice(0, 40).map((f) => f.index).join(', ')})` : ''}; with a NaN or an infinity in an input: ${nonFiniteIdx.size}`);
  for (const k of classes) out(`  ${k.count}x ${k.key} (first: case ${k.first.index})`);
  if (process.env.FUZZ_REPORT) writeFileSync(process.env.FUZZ_REPORT, JSON.stringify({ seed: env.seed, ops: env.ops, ran: report.ran, ms: report.ms, cases: report.cases, tuned: report.tuned, classes }, null, 1));
  expect(classes.map((k) => k.key)).toEqual([]);
});
