export { cpu } from './cpu';
export type { CpuResult } from './cpu';
export { DetlossError } from './errors';
export type { DetlossErrorCode } from './errors';
