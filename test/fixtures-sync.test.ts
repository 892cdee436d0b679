import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseFixtures } from '../src/fixtures';
import { needShared, SHARED } from './helpers/shared';

const local = new URL('./fixtures/', import.meta.url);
const shared = new URL('fixtures/', SHARED);
const names = readdirSync(local).filter((f) => f.endsWith('.json'));

describe('test/fixtures', () => {
  it('every file parses and has cases', () => {
    expect(names.length).toBeGreaterThanOrEqual(11);
    for (const f of names) expect(parseFixtures(readFileSync(new URL(f, local), 'utf8'), f).length, f).toBeGreaterThan(0);
  });
  it('the cases with named outputs parse with them: i32 ones as integers, f32 ones with a tolerance each', () => {
    const all = names.flatMap((f) => parseFixtures(readFileSync(new URL(f, local), 'utf8'), f));
    const withOutputs = all.filter((c) => c.expected.outputs);
    expect(new Set(withOutputs.map((c) => c.op))).toEqual(new Set(['tal_assign', 'yolo_detection_loss', 'nms', 'nms_onnx', 'nms_tfjs']));
    const tensors = withOutputs.flatMap((c) => Object.entries(c.expected.outputs!).map(([k, t]) => ({ c, k, t })));
    expect(tensors.filter(({ t }) => t.dtype === 'i32').length).toBeGreaterThan(0);
    for (const { c, k, t } of tensors) {
      if (t.dtype === 'i32') expect(t.data.every(Number.isInteger), `${c.name} outputs.${k}`).toBe(true);
      else expect(c.tolerance.outputs?.[k], `${c.name} tolerance.outputs.${k}`).toBeDefined();
    }
  });
  // Every shared file is here, and so is each file of ../shared/fixtures/more/ taken so far (the
  // ops built since); each copy, and the README that states the comparison rules, equals its
  // source byte for byte. Without ../shared: a failure in CI, a skip that says so elsewhere.
  it('equals ../shared/fixtures (and the files taken from its more/) byte for byte', ({ skip }) => {
    needShared(shared, skip, 'test/fixtures');
    const sharedNames = readdirSync(shared).filter((f) => f.endsWith('.json'));
    const more = new URL('more/', shared);
    const moreNames = existsSync(more) ? readdirSync(more).filter((f) => f.endsWith('.json')) : [];
    for (const f of sharedNames) expect(names, `test/fixtures/${f} is missing: copy it from ../shared/fixtures`).toContain(f);
    let fromMore = 0;
    for (const f of names) {
      const source = sharedNames.includes(f) ? new URL(f, shared) : moreNames.includes(f) ? new URL(f, more) : undefined;
      expect(source, `test/fixtures/${f} has no source in ../shared/fixtures or its more/${existsSync(more) ? '' : ' (../shared/fixtures/more/ is missing)'}`).toBeDefined();
      const same = readFileSync(source!).equals(readFileSync(new URL(f, local)));
      expect(same, `test/fixtures/${f} differs from its source ${source!.pathname.includes('/more/') ? '../shared/fixtures/more/' : '../shared/fixtures/'}${f}: copy it again`).toBe(true);
      if (!sharedNames.includes(f)) fromMore++;
    }
    // The copies taken from more/ are compared too (not only the top of ../shared/fixtures).
    expect(fromMore).toBe(names.length - sharedNames.length);
    expect(fromMore).toBeGreaterThan(0);
    const readme = readFileSync(new URL('README.md', shared)).equals(readFileSync(new URL('README.md', local)));
    expect(readme, 'test/fixtures/README.md differs from ../shared/fixtures/README.md: copy it again').toBe(true);
  });
  it('holds the fixtures of every op in the registry, and only those', async () => {
    const { OPS } = await import('../src/ops/registry');
    const ops = new Set(names.flatMap((f) => parseFixtures(readFileSync(new URL(f, local), 'utf8'), f).map((c) => c.op)));
    for (const op of Object.keys(OPS)) expect(ops, `no fixture case for ${op}`).toContain(op);
    for (const op of ops) expect(Object.keys(OPS), `fixtures of ${op}, which is not an op`).toContain(op);
  });
});

describe('the comparison with ../shared when it is missing', () => {
  const gone = new URL('no-such-folder/', SHARED);
  const skip = (note?: string): never => {
    throw Object.assign(new Error('skipped'), { note });
  };
  const outcome = (env: NodeJS.ProcessEnv) => {
    try {
      needShared(gone, skip, 'test/fixtures', env);
      return 'compared';
    } catch (e) {
      return (e as { note?: string }).note !== undefined ? `skip: ${(e as { note: string }).note}` : `fail: ${(e as Error).message}`;
    }
  };
  it('fails in CI, naming what is missing', () => {
    for (const CI of ['true', '1']) expect(outcome({ CI })).toMatch(/^fail: \/.*\/shared\/no-such-folder\/ is missing, so test\/fixtures was not compared with it\. CI \(CI=/);
  });
  it('elsewhere skips, saying so', () => {
    for (const CI of [undefined, '', 'false', '0']) expect(outcome({ CI }), String(CI)).toMatch(/^skip: .*no-such-folder\/ is missing, so test\/fixtures was not compared with it \(not CI: skipped; set CI=true/);
  });
});
