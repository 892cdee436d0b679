// The README stays a page for users of the package: short, and like every docs page it speaks of
// nothing a reader cannot see (the project's issue numbers, folders outside the repository).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { markdownFiles, readDoc } from '../helpers/markdown';

/** Lines of a page that name an issue by number or a path outside the repository. */
export function unseen(text: string): string[] {
  return text.split('\n').filter((line) => /\bissues?\s+#?\d+|(^|[\s(`'"])\.\.\/shared\b/i.test(line));
}

describe('README.md and docs/', () => {
  it('README.md is at most 250 lines', () => {
    expect(readDoc('README.md').split('\n').length).toBeLessThanOrEqual(250);
  });

  it('flags an issue number and a path outside the repository', () => {
    expect(unseen('as in issue 14\nfixed in issues 13 to 15\nsee #12\n`../shared/gpu/pack.sh`\nissue tracker\n../bench/x')).toEqual(['as in issue 14', 'fixed in issues 13 to 15', '`../shared/gpu/pack.sh`']);
  });

  it('the section whose commands `npm run newcomer` runs is there, with a command block', () => {
    const script = readFileSync(new URL('../../scripts/newcomer.mjs', import.meta.url), 'utf8');
    const heading = /\^##\\s\+(.+?)\\s\*\$/.exec(script)?.[1];
    expect(heading).toBeTruthy();
    const section = new RegExp(`^## ${heading}\\s*$([\\s\\S]*?)(?=^## )`, 'm').exec(readDoc('README.md'))?.[1] ?? '';
    expect(section).toMatch(/```sh\n[^`]+```/);
  });

  it.each(markdownFiles())('%s names no issue number and no ../shared path', (page) => {
    expect(unseen(readDoc(page))).toEqual([]);
  });
});
