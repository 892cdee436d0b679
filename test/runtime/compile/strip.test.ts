import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import commonWgsl from '../../../shaders/common.wgsl?raw';
import fusedHeaderWgsl from '../../../shaders/fused-header.wgsl?raw';
import rankingWgsl from '../../../shaders/ranking.wgsl?raw';
import { stripWgslComments } from '../../../scripts/wgsl-strip.mjs';
import { builtinModules } from '../../../src/tools/layouts-gen';

const shaders = resolve(__dirname, '../../../shaders');

describe('stripWgslComments', () => {
  it('drops line comments, and lines that held only one', () => {
    expect(stripWgslComments('// a file\n\nconst A: u32 = 1u; // one\nfn f() {}\n')).toBe('const A: u32 = 1u;\nfn f() {}\n');
  });
  it('drops block comments, which nest, and the line comments inside them', () => {
    expect(stripWgslComments('a /* x /* nested */ // still\n y */ b\nc')).toBe('a\n b\nc\n');
    expect(stripWgslComments('let x = a/**/-b;')).toBe('let x = a -b;\n');
  });
  it('keeps each line of code on its own line, and one blank line where there were several', () => {
    expect(stripWgslComments('fn f() {\n  return;\n}\n\n\n// g\n\nfn g() {}\n')).toBe('fn f() {\n  return;\n}\n\nfn g() {}\n');
  });
  it('refuses an unclosed block comment', () => {
    expect(() => stripWgslComments('a /* b /* c */')).toThrow(/not closed/);
  });
  it("keeps every token of every shader: the files' text less their line comments, token for token", () => {
    const tokens = (s: string) => s.match(/\w+|[^\w\s]/g) ?? [];
    for (const file of readdirSync(shaders).filter((f) => f.endsWith('.wgsl'))) {
      const text = readFileSync(resolve(shaders, file), 'utf8');
      // The shaders hold no block comment, so a line comment is all from `//` to the line's end.
      expect(text, file).not.toContain('/*');
      expect(tokens(stripWgslComments(text)), file).toEqual(tokens(text.replace(/\/\/[^\n]*/g, '')));
    }
  });
});

describe('the shaders as the runtime gets them', () => {
  it('come through `?raw` without comments under vitest, as in the build (vite.config.ts)', () => {
    for (const text of [commonWgsl, fusedHeaderWgsl, rankingWgsl]) {
      expect(text).not.toMatch(/\/\/|\/\*/);
      expect(text).toBe(stripWgslComments(text));
    }
    expect(fusedHeaderWgsl).toContain('@group(0) @binding(0) var<uniform> run: Run;');
  });
  it('every built-in module, which the layout table is keyed by, holds no comment', () => {
    for (const m of builtinModules()) expect(m.code, m.users.join(', ')).not.toMatch(/\/\/|\/\*/);
  });
});
