/** Number and adapter formats shared by the log lines (measure.ts, run.ts) and the report. */

/** The adapter as one line: vendor / architecture / description, and whether it is a software fallback. */
export const adapterLine = (a: Record<string, unknown>) => `${[a.vendor, a.architecture, a.description].filter(Boolean).join(' / ')}${a.isFallbackAdapter ? ' (software fallback)' : ''}`;
/** A speed-up: whole numbers from 10 on. */
export const fmtX = (x: number | undefined) => (x === undefined ? '-' : x >= 10 ? x.toFixed(0) : x.toFixed(1));
/** A fraction as a whole percentage. */
export const pct = (x: number | undefined) => (x === undefined ? '-' : `${(100 * x).toFixed(0)}%`);
/** Milliseconds with three significant figures or so. */
export const ms = (x: number | undefined) => (x === undefined ? '-' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
/** As `ms`, with microseconds below 1 ms (GPU times on hardware). */
export const msN = (x: number | undefined) => (x === undefined ? '-' : x >= 1 ? ms(x) : x.toFixed(3));

/** A case's size as the tables show it: 1e+4 for the large ones, 16 (images) for the YOLO cases. */
export const nText = (n: number) => (n < 1000 ? String(n) : n.toExponential(0));
