/**
 * Errors of the Node tooling (the CLI, parity, bench) that are about the machine or the command
 * line rather than about detloss's results. The CLI's exit status comes from these codes and from
 * DetlossError's, never from message text.
 */

/**
 * - `bad_args`: an unknown option, a bad value, a missing file or a malformed fixture file.
 * - `missing_package`: an optional package (puppeteer-core, webgpu) is not installed.
 * - `no_chromium`: no Chromium to run headless, or it would not start.
 * - `no_adapter`: no WebGPU adapter (in Chromium, or on Node's WebGPU).
 * - `no_build`: a build output the command needs is missing (dist/, bench/dist).
 * - `not_a_clone`: the command needs the repository (the benchmark), not the installed package.
 */
export type ToolErrorCode = 'bad_args' | 'missing_package' | 'no_chromium' | 'no_adapter' | 'no_build' | 'not_a_clone';

/** A failure of the tooling's environment or arguments: the CLI exits 2 on it. */
export class ToolError extends Error {
  readonly code: ToolErrorCode;
  constructor(code: ToolErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ToolError';
    this.code = code;
  }
}

/**
 * The exit status for an error: 2 for the environment or the arguments (a ToolError, or detloss's
 * `no_webgpu`, read from `code` so that a DetlossError from another bundle counts too), 1 otherwise.
 */
export function exitCodeOf(e: unknown): 1 | 2 {
  if (e instanceof ToolError) return 2;
  const code = (e as { code?: unknown } | null)?.code;
  return code === 'no_webgpu' ? 2 : 1;
}

/**
 * Imports an optional package by name. When it cannot be found (Node's `ERR_MODULE_NOT_FOUND`, for
 * it or for one of its own dependencies): a `missing_package` ToolError saying `hint`. The name is a
 * variable so that bundlers leave the import to run time.
 */
export async function importOptional<T>(name: string, hint: string): Promise<T> {
  try {
    return (await import(/* @vite-ignore */ name)) as T;
  } catch (e) {
    if ((e as { code?: unknown } | null)?.code !== 'ERR_MODULE_NOT_FOUND') throw e;
    throw new ToolError('missing_package', `the optional package ${name} could not be loaded (${(e as Error).message.split('\n')[0]}): ${hint}`, { cause: e });
  }
}
