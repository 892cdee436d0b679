import { execFileSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

let flock: boolean | undefined;

/**
 * Runs a command in the repository through the build lock (/tmp/detloss-build.lock, held by
 * whoever rebuilds dist/), where the machine has `flock`; returns its stdout.
 */
export function underBuildLock(cmd: string, args: string[]): string {
  flock ??= (() => {
    try {
      execFileSync('flock', ['--version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();
  const [file, argv] = flock ? ['flock', ['/tmp/detloss-build.lock', cmd, ...args]] : [cmd, args];
  return execFileSync(file, argv, { cwd: repo, encoding: 'utf8', maxBuffer: 64 << 20 });
}
