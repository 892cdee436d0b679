import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';

/**
 * Gives this process a valid XDG_RUNTIME_DIR before Dawn (Node's `webgpu`) or Chromium starts, when
 * it has none. On a Linux machine without a login session it is unset, and libwayland-client, which
 * SwiftShader and ANGLE load to look for a display, prints "error: XDG_RUNTIME_DIR is invalid or not
 * set in the environment." each time they look, on runs that then succeed. An empty private folder
 * (mkdtemp makes it mode 0700, as the XDG spec asks) has no display in it, so the look fails
 * quietly. A folder the user already has is left alone. Linux only; removed when the process exits.
 * For the CLI and the repository's scripts that open Dawn themselves, not for the library: an app
 * passes its own `gpu` and owns its environment.
 */
export function ensureRuntimeDir(): void {
  if (process.platform !== 'linux') return;
  const xdg = process.env.XDG_RUNTIME_DIR;
  if (xdg && isAbsolute(xdg) && existsSync(xdg)) return;
  const dir = mkdtempSync(join(tmpdir(), 'detloss-runtime-'));
  process.env.XDG_RUNTIME_DIR = dir;
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
}
