// The package's version (package.json's; a test keeps the two equal). A leaf: it imports nothing.

/** detloss's version, as tuned plan records carry it. */
export const VERSION = '0.1.0';
