import type { Plugin } from 'vite';

/** `code` without its WGSL comments (scripts/wgsl-strip.mjs). */
export function stripWgslComments(code: string): string;
/** The Vite plugin that strips the comments of `.wgsl?raw` imports. */
export function wgslStripComments(): Plugin;
