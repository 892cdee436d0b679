/**
 * What went wrong, as a stable machine-readable code.
 *
 * - `no_webgpu`: no `navigator.gpu`, or no adapter could be had.
 * - `unknown_op`, `unknown_input`, `unknown_param`: a name that is not in the catalogue.
 * - `missing_input`, `shape_mismatch`, `wrong_dtype`, `invalid_param` (a bad value, an unknown variant), `invalid_value` (bad data): bad arguments.
 * - `too_large`: the problem does not fit a device limit or a JavaScript array.
 * - `gpu_validation`, `gpu_out_of_memory`, `pipeline`: the GPU refused the work.
 * - `device_lost`: the device is gone; create a new context.
 */
export type DetlossErrorCode =
  | 'no_webgpu'
  | 'unknown_op'
  | 'unknown_input'
  | 'unknown_param'
  | 'missing_input'
  | 'shape_mismatch'
  | 'wrong_dtype'
  | 'invalid_param'
  | 'invalid_value'
  | 'too_large'
  | 'gpu_validation'
  | 'gpu_out_of_memory'
  | 'pipeline'
  | 'device_lost'
  | 'destroyed';

/**
 * The one error type detloss throws. `code` says what kind of failure it is;
 * `argument` names the input or parameter at fault, when there is one.
 *
 * @example
 * try { await dl.run('l1', { pred, target: short }); }
 * catch (e) { if (e instanceof DetlossError && e.code === 'shape_mismatch') console.log(e.argument); }
 */
export class DetlossError extends Error {
  readonly code: DetlossErrorCode;
  readonly argument?: string;
  constructor(code: DetlossErrorCode, message: string, argument?: string) {
    super(message);
    this.name = 'DetlossError';
    this.code = code;
    this.argument = argument;
  }
}
