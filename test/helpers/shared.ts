import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * ../shared, beside the repository: the operator contract and the golden fixtures the repository
 * copies. The project's workspace and CI (.ci/run, which sets CI=true) have it; a clone elsewhere
 * may not, and then tests its own copies only.
 */
export const SHARED = new URL('../../../shared/', import.meta.url);

/** Whether this run is CI's: `CI` set to anything but '', 'false' or '0' (CI services set it; so does .ci/run). */
export function inCI(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env.CI;
  return v !== undefined && v !== '' && v !== 'false' && v !== '0';
}

/**
 * Makes sure `url` (a file or folder under ../shared) is there before a test compares with it. In CI
 * a missing one fails the test, naming it; elsewhere the test is skipped with a note saying what was
 * not compared (vitest reports it as skipped, and the summary line names it), never passed.
 */
export function needShared(url: URL, skip: (note?: string) => never, what: string, env: NodeJS.ProcessEnv = process.env): void {
  if (existsSync(url)) return;
  const missing = `${fileURLToPath(url)} is missing, so ${what} was not compared with it`;
  if (inCI(env)) throw new Error(`${missing}. CI (CI=${env.CI}) runs the tests with ../shared beside the repository: check it out there.`);
  skip(`${missing} (not CI: skipped; set CI=true to make this a failure)`);
}
