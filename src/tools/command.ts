import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ToolError } from './errors';

// What the CLI's commands share: parsing their arguments, and the adapter as a line.

/** Parses `args` for one command; a parse error is a `bad_args` ToolError (the message names the option). */
export function parse<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O, positionals: boolean) {
  try {
    return parseArgs({ args, options, allowPositionals: positionals, strict: true });
  } catch (e) {
    if (String((e as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS')) throw new ToolError('bad_args', (e as Error).message, { cause: e });
    throw e;
  }
}

/** A comma-separated list, none of it empty. */
export function list(option: string, v: string): string[] {
  const items = v.split(',').map((s) => s.trim());
  if (items.some((s) => !s)) throw new ToolError('bad_args', `--${option} takes a comma-separated list, got "${v}"`);
  return items;
}

/** A comma-separated list of positive integers (`1e4` notation is fine). */
export function positiveInts(option: string, v: string): number[] {
  const ns = list(option, v).map(Number);
  if (ns.some((n) => !Number.isInteger(n) || n < 1)) throw new ToolError('bad_args', `--${option} takes positive integers (1e4 is fine), got "${v}"`);
  return ns;
}

/** The adapter as one line: vendor / architecture / device / description, and whether it is a software fallback. */
export const adapterLine = (a: { vendor: string; architecture: string; device?: string; description: string; isFallbackAdapter: boolean }) =>
  `${[a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ')}${a.isFallbackAdapter ? ' (software fallback)' : ''}`;

/** A number of milliseconds > 0 (`2e4` is fine). */
export function milliseconds(option: string, v: string): number {
  const ms = Number(v);
  if (!v.trim() || !Number.isFinite(ms) || ms <= 0) throw new ToolError('bad_args', `--${option} takes milliseconds (a number > 0; 2e4 is fine), got "${v}"`);
  return ms;
}
