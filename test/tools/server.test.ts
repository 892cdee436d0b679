// Issue 11 item 7: the static file server (src/tools/browser.ts serveStatic) serves its folder and
// nothing outside it. Requests go over raw HTTP (node:http keeps the path as written; fetch would
// normalise `..` away before sending).
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveStatic } from '../../src/tools/browser';

const SECRET = 'secret-must-not-be-served';
let base: string;
let server: { url: string; close(): Promise<void> };
let port: number;

beforeAll(async () => {
  // base/site is served; base/sitesecret, base/site2 and base/key.txt lie beside it.
  base = mkdtempSync(join(tmpdir(), 'detloss-serve-'));
  const site = join(base, 'site');
  mkdirSync(join(site, 'sub'), { recursive: true });
  writeFileSync(join(site, 'index.html'), '<p>home</p>');
  writeFileSync(join(site, 'app.js'), 'export const x = 1;');
  writeFileSync(join(site, 'sub', 'data.json'), '{"ok":true}');
  writeFileSync(join(site, 'has space.txt'), 'spaced');
  for (const dir of ['sitesecret', 'site2']) {
    mkdirSync(join(base, dir));
    writeFileSync(join(base, dir, 'key.txt'), SECRET);
  }
  writeFileSync(join(base, 'key.txt'), SECRET);
  symlinkSync(join(base, 'key.txt'), join(site, 'link-out.txt'));
  symlinkSync(join(base, 'site2'), join(site, 'dir-out'));
  symlinkSync(join(site, 'app.js'), join(site, 'link-in.js'));
  server = await serveStatic(site);
  port = Number(new URL(server.url).port);
});
afterAll(async () => {
  await server?.close();
  if (base) rmSync(base, { recursive: true, force: true });
});

/** GET `path` exactly as written, with no client-side normalisation. */
function get(path: string): Promise<{ status: number; body: string; type?: string }> {
  return new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => ok({ status: res.statusCode ?? 0, body, type: res.headers['content-type'] }));
    });
    req.on('error', fail);
    req.end();
  });
}

describe('serveStatic', () => {
  it('serves the files in its folder, with their types', async () => {
    expect(await get('/')).toMatchObject({ status: 200, body: '<p>home</p>', type: 'text/html' });
    expect(await get('/app.js')).toMatchObject({ status: 200, body: 'export const x = 1;', type: 'text/javascript' });
    expect(await get('/sub/data.json')).toMatchObject({ status: 200, body: '{"ok":true}', type: 'application/json' });
    expect(await get('/sub/../app.js?v=2')).toMatchObject({ status: 200, body: 'export const x = 1;' });
    expect(await get('/has%20space.txt')).toMatchObject({ status: 200, body: 'spaced' });
    // A link that stays inside the folder is fine.
    expect(await get('/link-in.js')).toMatchObject({ status: 200, body: 'export const x = 1;' });
  });

  it('answers 404 for what is not there, and for folders', async () => {
    expect((await get('/nope.js')).status).toBe(404);
    expect((await get('/sub')).status).toBe(404);
    expect((await get('/sub/')).status).toBe(404);
  });

  it.each([
    ['encoded slashes (the reported request)', '/..%2Fsitesecret%2Fkey.txt'],
    ['plain ..', '/../key.txt'],
    ['plain .. into a sibling whose name starts with the root', '/../site2/key.txt'],
    ['encoded .. into that sibling', '/..%2Fsite2%2Fkey.txt'],
    ['encoded dots', '/%2e%2e/key.txt'],
    ['fully encoded', '/%2E%2E%2F%2E%2E%2Fkey.txt'],
    ['.. after a folder', '/sub/../../key.txt'],
    ['encoded climb from a folder', '/sub/..%2F..%2Fsite2/key.txt'],
  ])('refuses a path leading outside the folder: %s', async (_name, path) => {
    const r = await get(path);
    expect(r.status).toBe(403);
    expect(r.body).not.toContain(SECRET);
  });

  it('refuses symbolic links that lead outside the folder', async () => {
    for (const path of ['/link-out.txt', '/dir-out/key.txt']) {
      const r = await get(path);
      expect(r.status, path).toBe(403);
      expect(r.body).not.toContain(SECRET);
    }
  });

  it('refuses NUL bytes and malformed escapes with 400, and keeps serving afterwards', async () => {
    expect((await get('/app.js%00.html')).status).toBe(400);
    expect((await get('/%E0%A4%A')).status).toBe(400);
    expect(await get('/app.js')).toMatchObject({ status: 200, body: 'export const x = 1;' });
  });
});
