import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import checkWgsl from '../../../shaders/check.wgsl?raw';
import guardWgsl from '../../../shaders/guard.wgsl?raw';
import reduceWgsl from '../../../shaders/reduce.wgsl?raw';
import { DetlossError } from '../../../src/errors';
import { HELPER_OPS, OPS } from '../../../src/ops/registry';
import { l1Op } from '../../../src/ops/regression';
import { kernelVariants } from '../../../src/runtime/compile/contract';
import { SHADER_LAYOUTS } from '../../../src/runtime/compile/layouts.generated';
import { builtinModules, generateLayouts, LAYOUTS_COMMAND, LAYOUTS_FILE } from '../../../src/tools/layouts-gen';
import { reflectShader, registerShaderInfo, setShaderReflector, shaderKey } from '../../../src/runtime/compile/reflect';
import { enableRuntimeReflection, reflectWgsl } from '../../../src/runtime/compile/reflect-wgsl';

const root = resolve(__dirname, '../../..');
const stale = `${LAYOUTS_FILE} is stale: run \`${LAYOUTS_COMMAND}\``;

describe('the layouts generated at build time hold against wgsl_reflect', () => {
  const fresh = generateLayouts();
  it('the committed table is what wgsl_reflect reads from the current shaders', () => {
    expect(SHADER_LAYOUTS, stale).toEqual(fresh.table);
  });
  it('the committed file is exactly what the generator writes', () => {
    expect(readFileSync(resolve(root, LAYOUTS_FILE), 'utf8'), stale).toBe(fresh.source);
  });
  it('the generator finds no contract problems in the registry', () => expect(fresh.problems).toEqual([]));
  it("every module of every op, reduce.wgsl and the runtime's check.wgsl and guard.wgsl, is in the table, and the runtime reads it from there", () => {
    const codes = [reduceWgsl, checkWgsl, guardWgsl, ...[...Object.values(OPS), ...HELPER_OPS].flatMap((d) => (d.gpu ? kernelVariants(d.gpu).map((v) => v.shader) : []))];
    expect(codes.length).toBeGreaterThan(Object.keys(OPS).length);
    for (const code of codes) {
      expect(Object.keys(SHADER_LAYOUTS), stale).toContain(shaderKey(code));
      expect(reflectShader(code)).toEqual(reflectWgsl(code));
    }
    expect(Object.keys(SHADER_LAYOUTS).length).toBe(new Set(codes.map(shaderKey)).size);
  });
  it('the subgroup and vec4 variants are among the modules', () => {
    const users = builtinModules().flatMap((m) => m.users);
    for (const d of Object.values(OPS)) {
      if (d.gpu?.rows?.subgroup) expect(users).toContain(`${d.gpu.rows.subgroup.shaderId} (${d.name})`);
      if (d.gpu?.vec4) expect(users).toContain(`${d.gpu.vec4.shaderId} (${d.name})`);
    }
  });
  it('the generator reports an op whose descriptor and shader disagree', () => {
    const broken = { ...l1Op, gpu: { ...l1Op.gpu!, shader: l1Op.gpu!.shader.replace(/in_target/g, 'in_targt') } };
    expect(generateLayouts([broken]).problems.join('\n')).toMatch(/^l1: binding in_targt matches no input/m);
  });
  it('`node scripts/gen-layouts.mjs --check` passes on the committed table', async () => {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [resolve(root, 'scripts/gen-layouts.mjs'), '--check'], { cwd: root });
    expect(stderr).toBe('');
    expect(stdout).toBe('');
  });
});

describe('shaderKey', () => {
  it('is 16 hex digits, the same for the same text, different after a one-character edit', () => {
    const k = shaderKey(reduceWgsl);
    expect(k).toMatch(/^[0-9a-f]{16}$/);
    expect(shaderKey(String(reduceWgsl))).toBe(k);
    expect(shaderKey(reduceWgsl.replace('count', 'counT'))).not.toBe(k);
    expect(shaderKey(`${reduceWgsl} `)).not.toBe(k);
    expect(shaderKey('')).not.toBe(shaderKey(' '));
  });
});

describe('WGSL that is not in the table (an op of your own)', () => {
  afterEach(() => setShaderReflector(undefined));
  const own = l1Op.gpu!.shader.replace('fn ', '// an op of your own\nfn ');
  it('is a pipeline error that names the module and the command, with no reflector', () => {
    let e: unknown;
    try {
      reflectShader(own);
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(DetlossError);
    expect((e as DetlossError).code).toBe('pipeline');
    expect((e as Error).message).toContain(shaderKey(own));
    expect((e as Error).message).toContain(LAYOUTS_COMMAND);
    expect((e as Error).message).toContain('enableRuntimeReflection');
  });
  it('is read by the reflector once one is enabled, and refused again once it is turned off', () => {
    enableRuntimeReflection();
    expect(reflectShader(own)).toEqual(reflectWgsl(l1Op.gpu!.shader));
    setShaderReflector(undefined);
    expect(() => reflectShader(own)).toThrow(DetlossError);
  });
  it('a reflector is not asked about the built-in modules', () => {
    const asked: string[] = [];
    setShaderReflector((code) => {
      asked.push(code);
      return reflectWgsl(code);
    });
    reflectShader(reduceWgsl);
    reflectShader(l1Op.gpu!.shader);
    expect(asked).toEqual([]);
    reflectShader(own);
    expect(asked).toEqual([own]);
  });
  it('registerShaderInfo gives the runtime a module without a reflector', () => {
    const mine = `${own}\n// registered`;
    const info = reflectWgsl(mine);
    registerShaderInfo(mine, info);
    expect(reflectShader(mine)).toBe(info);
  });
});

describe('wgsl_reflect stays out of what src/index.ts reaches', () => {
  // The static import graph of the library, read from the sources: `reflect-wgsl.ts` and the
  // generator are reachable from the tests and the build script only.
  const reached = new Map<string, string>();
  const walk = (file: string) => {
    if (reached.has(file)) return;
    const text = readFileSync(file, 'utf8');
    reached.set(file, text);
    for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'";]*?from\s*'([^']+)'|(?:^|\n)\s*import\s*'([^']+)'|import\(\s*'([^']+)'\s*\)/g)) {
      const spec = m[1] ?? m[2] ?? m[3];
      if (!spec.startsWith('.') || spec.endsWith('?raw')) continue;
      const base = resolve(dirname(file), spec);
      const path = [base, `${base}.ts`, resolve(base, 'index.ts')].find((p) => existsSync(p) && !p.endsWith('/') && p.endsWith('.ts'));
      if (path) walk(path);
    }
  };
  walk(resolve(root, 'src/index.ts'));
  it('reaches the runtime reflection and its table', () => {
    expect([...reached.keys()]).toContain(resolve(root, 'src/runtime/compile/reflect.ts'));
    expect([...reached.keys()]).toContain(resolve(root, 'src/runtime/compile/layouts.generated.ts'));
  });
  it('but no module that imports wgsl_reflect', () => {
    const importers = [...reached].filter(([, text]) => /from\s*'wgsl_reflect|import\(\s*'wgsl_reflect/.test(text)).map(([f]) => f);
    expect(importers).toEqual([]);
    expect([...reached.keys()]).not.toContain(resolve(root, 'src/runtime/compile/reflect-wgsl.ts'));
  });
});
