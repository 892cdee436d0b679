/**
 * `detloss bench`: the cases (cases.ts), the drivers that run the harness in headless Chromium or on
 * Node's WebGPU (drivers.ts), one case's measurement (measure.ts), the run over all cases (run.ts),
 * its tables and chart (report.ts) and files (write.ts); probe.ts runs the plan probe
 * (`--probe-plans`) and tuned.ts the default plan against tuned ones (`--tuned`, its table in
 * tuned-report.ts) beside run.ts. Imports run one way: write → report → run, probe → drivers,
 * measure → cases (format.ts, number formats, under all of them).
 */
export { benchCases, caseLabel, CONTENDERS, defaultCases, DRIVER_CONTENDERS, nodeCases, probeCases, probePlan, QUICK_OPS, RANKING_BENCH_OPS, rankingCases, type BenchCase, type BenchDriverKind, type Contender, type ProbeCase, type ProbePlan } from './cases';
export { nodeBenchModule, type BenchDriver, type DriverSpec } from './drivers';
export type { BenchRow, CaseSummary } from './measure';
export { runBench, type BenchResult } from './run';
export { runPlanProbe, type ProbeReport, type ProbeResult, type ProbeRow } from './probe';
export { benchSvg, benchTable } from './report';
export { runTunedBench, tunedCases, type TunedCase, type TunedReport, type TunedRow } from './tuned';
export { tunedTable, TUNED_RATIO_LEGEND } from './tuned-report';
export { adapterStem, nodeBenchFiles, writeBench, writeProbe, writeTuned } from './write';
