import { expect } from 'vitest';
import { cpu } from '../../src/cpu';
import { DetlossError } from '../../src/errors';

/** Two box pairs the iou_loss params are tried on. */
export const REFUSAL_PRED = Float32Array.of(0, 0, 2, 2, 1, 1, 4, 3);
export const REFUSAL_TARGET = Float32Array.of(1, 1, 3, 3, 0, 0, 3, 3);

/** The DetlossError `cpu.run('iou_loss', ...)` refuses `options` with; a test failure when it accepts them. */
export function iouRefusal(options: Record<string, unknown>): DetlossError {
  try {
    cpu.run('iou_loss', { pred: REFUSAL_PRED, target: REFUSAL_TARGET }, options);
  } catch (e) {
    expect(e).toBeInstanceOf(DetlossError);
    return e as DetlossError;
  }
  throw new Error(`accepted ${JSON.stringify(options)}`);
}
