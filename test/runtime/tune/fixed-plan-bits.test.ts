// A fixed plan gives the same bits as before launch plans could be tuned: the golden hashes in
// fixed-plan-bits.json were written by this file (DETLOSS_WRITE_PLAN_BITS=1) on the runtime as it
// was before the tuner, on Node's WebGPU over SwiftShader, and every later runtime must give the
// same loss and gradient bits under the same fixed plan (the software and the hardware plan).
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import type { Detloss } from '../../../src/runtime/context';
import { nodeContext } from '../../helpers/node-gpu';

const file = new URL('./fixed-plan-bits.json', import.meta.url);

/** A seeded generator of floats in [0, 1) (a 32-bit LCG: the same numbers on every machine). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** FNV-1a over the 32-bit words of an array: its exact bits, as a hex string. */
function fnv(a: Float32Array): string {
  const words = new Uint32Array(a.buffer, a.byteOffset, a.length);
  let h = 0x811c9dc5;
  for (const w of words) {
    for (let k = 0; k < 4; k++) {
      h ^= (w >>> (8 * k)) & 0xff;
      h = Math.imul(h, 0x01000193) >>> 0;
    }
  }
  return `${a.length}:${h.toString(16).padStart(8, '0')}`;
}

interface Case {
  name: string;
  op: string;
  inputs: () => Record<string, { data: Float32Array | Int32Array; shape: number[] }>;
  options: Record<string, unknown>;
}

function boxes(n: number, r: () => number, near?: Float32Array): Float32Array {
  const b = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) {
    const x = near ? near[i * 4] + (r() - 0.5) * 6 : r() * 500;
    const y = near ? near[i * 4 + 1] + (r() - 0.5) * 6 : r() * 500;
    b.set([x, y, x + 4 + r() * 60, y + 4 + r() * 60], i * 4);
  }
  return b;
}
const floats = (len: number, r: () => number, lo: number, hi: number) => Float32Array.from({ length: len }, () => lo + r() * (hi - lo));

const CASES: Case[] = [
  { name: 'smooth_l1 n=100003 sum', op: 'smooth_l1', options: { reduction: 'sum' }, inputs: () => { const r = lcg(1); return { pred: { data: floats(100003, r, -3, 3), shape: [100003] }, target: { data: floats(100003, r, -3, 3), shape: [100003] } }; } },
  { name: 'smooth_l1 n=100000 mean (vec4)', op: 'smooth_l1', options: { reduction: 'mean' }, inputs: () => { const r = lcg(2); return { pred: { data: floats(1e5, r, -3, 3), shape: [1e5] }, target: { data: floats(1e5, r, -3, 3), shape: [1e5] } }; } },
  { name: 'sigmoid_focal n=200000 sum (vec4)', op: 'sigmoid_focal', options: { reduction: 'sum' }, inputs: () => { const r = lcg(3); return { logits: { data: floats(2e5, r, -6, 6), shape: [2e5] }, targets: { data: Float32Array.from({ length: 2e5 }, () => (r() < 0.1 ? 1 : 0)), shape: [2e5] } }; } },
  { name: 'iou_loss ciou n=50000 mean', op: 'iou_loss', options: { variant: 'ciou', reduction: 'mean' }, inputs: () => { const r = lcg(4); const t = boxes(5e4, r); return { pred: { data: boxes(5e4, r, t), shape: [5e4, 4] }, target: { data: t, shape: [5e4, 4] } }; } },
  { name: 'cross_entropy n=20000 c=80 mean', op: 'cross_entropy', options: { reduction: 'mean' }, inputs: () => { const r = lcg(5); return { logits: { data: floats(2e4 * 80, r, -6, 6), shape: [2e4, 80] }, labels: { data: Int32Array.from({ length: 2e4 }, () => Math.floor(r() * 80)), shape: [2e4] } }; } },
  { name: 'cross_entropy n=700 c=1000 sum', op: 'cross_entropy', options: { reduction: 'sum' }, inputs: () => { const r = lcg(6); return { logits: { data: floats(7e5, r, -6, 6), shape: [700, 1000] }, labels: { data: Int32Array.from({ length: 700 }, () => Math.floor(r() * 1000)), shape: [700] } }; } },
  { name: 'rotated_iou_loss probiou n=30000 mean', op: 'rotated_iou_loss', options: { variant: 'probiou', reduction: 'mean' }, inputs: () => {
    const r = lcg(7);
    const t = new Float32Array(3e4 * 5);
    const p = new Float32Array(3e4 * 5);
    for (let i = 0; i < 3e4; i++) {
      t.set([r() * 500, r() * 500, 4 + r() * 60, 4 + r() * 60, (r() - 0.5) * 2.6], i * 5);
      p.set([t[i * 5] + (r() - 0.5) * 8, t[i * 5 + 1] + (r() - 0.5) * 8, t[i * 5 + 2] * (0.8 + r() * 0.4), t[i * 5 + 3] * (0.8 + r() * 0.4), t[i * 5 + 4] + (r() - 0.5) * 0.5], i * 5);
    }
    return { pred: { data: p, shape: [3e4, 5] }, target: { data: t, shape: [3e4, 5] } };
  } },
];

const contexts: Detloss[] = [];
afterAll(() => contexts.forEach((d) => d.destroy()));

async function hashes(plan: 'software' | 'hardware'): Promise<Record<string, Record<string, string>>> {
  const dl = await nodeContext({ plan });
  contexts.push(dl);
  const out: Record<string, Record<string, string>> = {};
  for (const c of CASES) {
    const r = await dl.run(c.op, c.inputs(), c.options);
    out[c.name] = { loss: fnv(r.loss), ...Object.fromEntries(Object.entries(r.grad).map(([k, g]) => [`grad.${k}`, fnv(g)])) };
  }
  return out;
}

describe('a fixed plan gives the bits it gave before plans could be tuned', { timeout: 120_000 }, () => {
  for (const plan of ['software', 'hardware'] as const) {
    it(`the ${plan} plan: loss and gradient bits of seven calls`, async () => {
      const got = await hashes(plan);
      if (process.env.DETLOSS_WRITE_PLAN_BITS) {
        let all: Record<string, unknown> = {};
        try {
          all = JSON.parse(readFileSync(file, 'utf8'));
        } catch {}
        all[plan] = got;
        writeFileSync(file, `${JSON.stringify(all, null, 1)}\n`);
      }
      const golden = JSON.parse(readFileSync(file, 'utf8'))[plan];
      expect(Object.keys(golden)).toHaveLength(CASES.length);
      expect(got).toEqual(golden);
    });
  }
});
