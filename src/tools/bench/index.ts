/**
 * `detloss bench`: the cases (cases.ts), the drivers that run the harness in headless Chromium or on
 * Node's WebGPU (drivers.ts), one case's measurement (measure.ts), the run over all cases (run.ts),
 * its tables and chart (report.ts) and files (write.ts). Imports run one way:
 * write → report → run → drivers, measure → cases (format.ts, number formats, under all of them).
 */
export { benchCases, caseLabel, CONTENDERS, defaultCases, DRIVER_CONTENDERS, nodeCases, QUICK_OPS, RANKING_BENCH_OPS, rankingCases, type BenchCase, type BenchDriverKind, type Contender } from './cases';
export { nodeBenchModule, type BenchDriver, type DriverSpec } from './drivers';
export type { BenchRow, CaseSummary } from './measure';
export { runBench, type BenchResult } from './run';
export { benchSvg, benchTable } from './report';
export { adapterStem, nodeBenchFiles, writeBench } from './write';
