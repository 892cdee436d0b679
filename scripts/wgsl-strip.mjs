// The WGSL that detloss ships is only what the GPU reads: `?raw` imports of `.wgsl` files have
// their comments removed by the Vite plugin here. Every Vite pipeline that imports the shaders
// uses it (vite.config.ts for the build and vitest, bench/ and demo/ configs, and
// scripts/gen-layouts.mjs), so the build-time layout table, keyed by a hash of the module's text,
// is keyed by the same text the runtime sees.
import { readFileSync } from 'node:fs';

/**
 * `code` without its comments: `//` to the end of the line, and `/* ... *\/` blocks, which nest in
 * WGSL. WGSL has no string literals, so nothing else can hold a `//` or a `/*`. Lines keep their
 * order and code keeps its line: a block comment inside a line becomes one space, the line breaks
 * of a block comment over several lines stay. Then trailing blanks go, lines that held only a
 * comment go, runs of blank lines become one, and the text ends with one newline.
 */
export function stripWgslComments(code) {
  let out = '';
  let i = 0;
  const n = code.length;
  while (i < n) {
    const c = code[i];
    const next = code[i + 1];
    if (c === '/' && next === '/') {
      // A line comment ends before the line break (kept).
      while (i < n && code[i] !== '\n' && code[i] !== '\r') i++;
      out += '\u0000';
    } else if (c === '/' && next === '*') {
      let depth = 1;
      let breaks = '';
      i += 2;
      while (i < n && depth > 0) {
        if (code[i] === '/' && code[i + 1] === '*') {
          depth++;
          i += 2;
        } else if (code[i] === '*' && code[i + 1] === '/') {
          depth--;
          i += 2;
        } else {
          if (code[i] === '\n') breaks += '\n';
          i++;
        }
      }
      if (depth > 0) throw new Error('WGSL: a block comment is not closed');
      // NUL marks where a comment was: a line left with nothing else is dropped below.
      out += breaks ? breaks.replace(/\n/g, '\u0000\n') + '\u0000' : ' \u0000';
    } else {
      out += c;
      i++;
    }
  }
  const lines = [];
  for (const raw of out.split(/\r?\n/)) {
    const had = raw.includes('\u0000');
    const line = raw.replace(/\u0000/g, '').replace(/[ \t]+$/, '');
    if (line === '') {
      if (had) continue;
      if (lines.length === 0 || lines[lines.length - 1] === '') continue;
    }
    lines.push(line);
  }
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  return lines.length ? `${lines.join('\n')}\n` : '';
}

/** A Vite plugin: `import text from './x.wgsl?raw'` gives the file's text without its comments. */
export function wgslStripComments() {
  return {
    name: 'detloss-wgsl-strip-comments',
    enforce: 'pre',
    load(id) {
      const [file, query] = id.split('?', 2);
      if (!file.endsWith('.wgsl') || query !== 'raw') return null;
      this.addWatchFile(file);
      return `export default ${JSON.stringify(stripWgslComments(readFileSync(file, 'utf8')))};`;
    },
  };
}
