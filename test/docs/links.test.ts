// Every relative link in README.md and docs/*.md points at a file of the repository, and every
// '#anchor' at a heading of the page it names. External links (http:, https:, mailto:) are not
// followed.
import { existsSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, expect, it } from 'vitest';
import { headingAnchors, linkTargets, markdownFiles, readDoc, rootPath } from '../helpers/markdown';

/** The problems with the relative links of one page: each an unresolved target, with why. */
export function brokenLinks(page: string, text: string, read: (path: string) => string = readDoc, exists: (path: string) => boolean = (p) => existsSync(rootPath(p))): string[] {
  const broken: string[] = [];
  for (const target of linkTargets(text)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
    const [pathPart, anchor] = target.split('#', 2);
    const file = pathPart === '' ? page : normalize(join(dirname(page), decodeURI(pathPart)));
    if (file.startsWith('..')) {
      broken.push(`${target}: outside the repository`);
      continue;
    }
    if (file !== page && !exists(file)) {
      broken.push(`${target}: no file ${file}`);
      continue;
    }
    if (anchor !== undefined) {
      if (!file.endsWith('.md')) broken.push(`${target}: an anchor into a file that is not markdown`);
      else if (!headingAnchors(file === page ? text : read(file)).has(anchor)) broken.push(`${target}: no heading '#${anchor}' in ${file}`);
    }
  }
  return broken;
}

describe('documentation links', () => {
  it('finds the pages and their links', () => {
    const files = markdownFiles();
    expect(files).toContain('README.md');
    expect(files).toContain('docs/ops.md');
    expect(linkTargets(readDoc('README.md')).length).toBeGreaterThan(10);
  });

  it.each(markdownFiles())('%s: every relative link resolves', (page) => {
    expect(brokenLinks(page, readDoc(page))).toEqual([]);
  });

  it('links every docs page from the README', () => {
    const linked = new Set(linkTargets(readDoc('README.md')).map((t) => t.split('#')[0]));
    const missing = markdownFiles().filter((f) => f.startsWith('docs/') && !linked.has(f));
    expect(missing, 'docs pages the README does not link').toEqual([]);
  });

  it('sees a broken link, a broken anchor and a link out of the repository', () => {
    const page = 'docs/x.md';
    const text = '# Title\n\n## A section, with `code`\n\nSee [it](#a-section-with-code), [api](api.md#errors), [none](nothere.md), [bad](#nope), [out](../../shared/ops.md), [web](https://example.com/x).\n\n```\n[in code](nowhere.md)\n```\n';
    const files: Record<string, string> = { 'docs/api.md': '# API\n\n## Errors\n' };
    const broken = brokenLinks(page, text, (p) => files[p], (p) => p in files);
    expect(broken).toEqual(['nothere.md: no file docs/nothere.md', "#nope: no heading '#nope' in docs/x.md", '../../shared/ops.md: outside the repository']);
  });

});
