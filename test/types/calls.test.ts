import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// test/types/calls.ts is a type-level suite: every right call must compile and every
// `@ts-expect-error` must meet an error (an unused one is error TS2578). Vitest strips types
// without checking them, so this compiles it with tsc (tsconfig.calls.json: the project's options,
// that file and what it imports) and fails with tsc's output.
const root = fileURLToPath(new URL('../../', import.meta.url));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

describe('the type-level suite (test/types/calls.ts)', () => {
  it('compiles: every right call type-checks and every wrong one is a type error', () => {
    let out = '';
    let status = 0;
    try {
      out = execFileSync(process.execPath, [tsc, '--noEmit', '--pretty', 'false', '-p', 'test/types/tsconfig.calls.json'], { cwd: root, encoding: 'utf8', stdio: 'pipe' });
    } catch (e) {
      const err = e as { status: number | null; stdout?: string; stderr?: string; message: string };
      status = err.status ?? -1;
      out = `${err.stdout ?? ''}${err.stderr ?? ''}` || err.message;
    }
    expect(`exit ${status}\n${out}`).toBe('exit 0\n');
  });
});
