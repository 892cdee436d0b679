import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { OPS } from '../../../src/ops/registry';
import { fixtureFiles, formatOutcome, runParity } from '../../../src/tools/parity';

const dist = fileURLToPath(new URL('../../../dist/', import.meta.url));
const fixtures = fileURLToPath(new URL('../../fixtures/', import.meta.url));
const gpuOps = Object.values(OPS).filter((d) => d.gpu).map((d) => d.name);

// Each test runs every fixture case (1,153): the hang guard grows with them, 3 minutes.
describe('GPU parity in headless Chromium (puppeteer-core)', { timeout: 180_000 }, () => {
  it('every fixture case of every GPU op passes on the GPU and on the CPU', async () => {
    const report = await runParity({ files: fixtureFiles([fixtures]), ops: gpuOps, distDir: dist });
    const a = report.adapter;
    console.log(`adapter: ${a.vendor} / ${a.architecture} ${a.description}${a.isFallbackAdapter ? ' (software fallback)' : ''}`);
    const failed = report.outcomes.filter((o) => o.status !== 'passed').map(formatOutcome);
    expect(failed).toEqual([]);
    for (const op of gpuOps) expect(report.outcomes.some((o) => o.op === op && o.status === 'passed'), op).toBe(true);
    console.log(`parity: ${report.passed} fixture cases agree with PyTorch on the GPU and the CPU reference`);
  });
});
