import { afterAll, beforeAll } from 'vitest';
import type { GpuPage } from '../../src/tools/browser';

/**
 * The headless-Chromium page a browser test file runs on: `open` launches it (building and serving
 * what the file needs) before the file's first test, the page is given `opts.viewport` if set, and
 * it is closed, browser and server, after the last test. Call it once at the top level of the file.
 *
 * Returns the page as the tests use it (`gp.page`, `gp.browser`, `gp.errors`, `gp.adapter`): each
 * field reads the page `open` gave, so it can be taken inside a test, not before the hook has run.
 *
 * @example
 * const gp = useBrowserPage(() => openGpuPage(dist));
 * it('runs', async () => { await gp.page.evaluate(...); });
 */
export function useBrowserPage(open: () => Promise<GpuPage>, opts: { viewport?: { width: number; height: number } } = {}): GpuPage {
  let gp: GpuPage | undefined;
  beforeAll(async () => {
    gp = await open();
    if (opts.viewport) await gp.page.setViewport(opts.viewport);
  });
  afterAll(async () => {
    await gp?.close();
  });
  const opened = (): GpuPage => {
    if (!gp) throw new Error('the browser page is not open: its beforeAll has not run, or failed (see its error above)');
    return gp;
  };
  return {
    get browser() {
      return opened().browser;
    },
    get page() {
      return opened().page;
    },
    get adapter() {
      return opened().adapter;
    },
    get errors() {
      return opened().errors;
    },
    close: () => opened().close(),
  };
}
