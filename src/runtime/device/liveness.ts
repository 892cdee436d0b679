import { DetlossError } from '../../errors';

/**
 * Whether a context may still work: not destroyed, its device not lost. `lost` rejects with the
 * `device_lost` error when the device goes (reads race it, so none waits forever).
 */
export class Liveness {
  destroyed = false;
  private lostReason?: string;
  readonly lost: Promise<never>;

  constructor(device: GPUDevice) {
    this.lost = device.lost.then((info) => {
      this.lostReason = `${info.reason ?? 'unknown'}${info.message ? `: ${info.message}` : ''}`;
      throw this.lostError();
    });
    this.lost.catch(() => {});
  }

  /** Whether the device was lost. */
  get isLost(): boolean {
    return this.lostReason !== undefined;
  }

  lostError(): DetlossError {
    return new DetlossError('device_lost', `the GPU device was lost (${this.lostReason}); create a new context with createDetloss()`);
  }

  destroyedError(): DetlossError {
    return new DetlossError('destroyed', 'this detloss context was destroyed (destroy() was called); create a new one with createDetloss()');
  }

  /** Throws `destroyed` or `device_lost` when the context can no longer work. */
  check(): void {
    if (this.destroyed) throw this.destroyedError();
    if (this.lostReason !== undefined) throw this.lostError();
  }
}
