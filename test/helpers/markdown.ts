import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The repository's root folder. */
export const ROOT = new URL('../../', import.meta.url);

/** README.md and every docs/*.md, as paths relative to the root. */
export function markdownFiles(): string[] {
  const docs = readdirSync(new URL('docs/', ROOT)).filter((f) => f.endsWith('.md')).sort();
  return ['README.md', ...docs.map((f) => `docs/${f}`)];
}

export const readDoc = (path: string): string => readFileSync(new URL(path, ROOT), 'utf8');
export const rootPath = (path: string): string => fileURLToPath(new URL(path, ROOT));

/** The text with fenced code blocks removed and inline code spans replaced by a placeholder. */
export function prose(text: string): string {
  return text.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`+[^`\n]*`+/g, 'code');
}

/** Targets of every link and image in the prose: `[text](target)`, `![alt](target "title")`. */
export function linkTargets(text: string): string[] {
  return [...prose(text).matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]);
}

/** GitHub's anchors for the headings of a markdown text (lower case, punctuation dropped, spaces to '-', repeats numbered). */
export function headingAnchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  const noFences = text.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
  for (const m of noFences.matchAll(/^#{1,6}[ \t]+(.+?)[ \t#]*$/gm)) {
    const base = m[1]
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/**
 * The code of the first ```ts block under the heading `heading` (a whole heading line, e.g.
 * '## Quick start'), or undefined when there is none before the next heading of that level.
 */
export function codeUnder(text: string, heading: string): string | undefined {
  const lines = text.split('\n');
  const start = lines.indexOf(heading);
  if (start < 0) return undefined;
  const level = heading.match(/^#+/)![0];
  const code: string[] = [];
  let inBlock = false;
  for (const line of lines.slice(start + 1)) {
    if (!inBlock && new RegExp(`^#{1,${level.length}} `).test(line)) return undefined;
    if (!inBlock && /^```ts\s*$/.test(line)) inBlock = true;
    else if (inBlock && /^```\s*$/.test(line)) return code.join('\n');
    else if (inBlock) code.push(line);
  }
  return undefined;
}
