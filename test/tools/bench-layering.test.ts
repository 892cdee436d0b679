// The bench runner (src/tools/bench/) is layered: its imports run one way, from the files that write
// and report down through the run, the drivers and one case's measurement, to the cases.
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { importSpecifiers, resolveRelative, tsFilesUnder } from '../helpers/imports';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = join(root, 'src', 'tools', 'bench');
/** A file may import only files of a lower layer. */
const LAYER: Record<string, number> = { 'format.ts': 0, 'cases.ts': 0, 'drivers.ts': 1, 'measure.ts': 1, 'run.ts': 2, 'probe.ts': 2, 'tuned.ts': 2, 'report.ts': 3, 'tuned-report.ts': 3, 'write.ts': 4, 'index.ts': 5 };

describe('src/tools/bench imports run one way', () => {
  const files = tsFilesUnder(dir);

  it('knows the layer of every file in the folder', () => {
    expect(files.map((f) => basename(f)).filter((f) => LAYER[f] === undefined)).toEqual([]);
  });

  it('imports only from lower layers, and never the CLI', () => {
    const wrong: string[] = [];
    for (const file of files) {
      for (const spec of importSpecifiers(readFileSync(file, 'utf8'))) {
        const target = resolveRelative(file, spec);
        if (!target) continue;
        if (dirname(target) === dir) {
          if (!(LAYER[basename(target)] < LAYER[basename(file)])) wrong.push(`${basename(file)} imports ${spec}`);
        } else if (target === join(root, 'src', 'tools', 'cli.ts')) wrong.push(`${basename(file)} imports the CLI`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('the harness (bench/harness.ts) reads only the cases of the runner', () => {
    const specs = importSpecifiers(readFileSync(join(root, 'bench', 'harness.ts'), 'utf8')).filter((s) => s.includes('tools/'));
    expect(specs).toEqual(['../src/tools/bench/cases']);
  });
});
