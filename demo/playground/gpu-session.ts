/**
 * The demo's hold on the GPU: the detloss context in use (or none), and what happens when its
 * device is lost. Each loss gets one attempt to open a new context; when none can be had, or the
 * new one is lost before it has finished a computation, the page stays on the float64 CPU
 * reference (a reload tries the GPU again). Every change is announced to the listeners, which
 * put it on the page.
 */
import { createDetloss, DetlossError, type DetlossContext } from 'detloss';

/**
 * Where the page stands: `gpu` (the first context), `recovering` (lost, opening a new one),
 * `recovered` (a new context after a loss), `cpu` (lost, no new one: CPU reference),
 * `none` (no WebGPU from the start).
 */
export type GpuState = 'gpu' | 'recovering' | 'recovered' | 'cpu' | 'none';

/** The state, the line the page shows for it, and how many device losses the page has seen. */
export interface GpuStatus {
  state: GpuState;
  message: string;
  losses: number;
}

/** How long opening a new context may take before the page gives up on it. */
const REOPEN_TIMEOUT_MS = 10_000;

/** The GPU context of the page, replaced after a device loss, or dropped for the CPU reference. */
export class GpuSession {
  private dl: DetlossContext | undefined;
  private recovering?: { lost: DetlossContext; next: Promise<DetlossContext | undefined> };
  /** Contexts that finished a computation (a context recreated after a loss must, before it counts as working). */
  private readonly proven = new WeakSet<DetlossContext>();
  private readonly listeners = new Set<(s: GpuStatus) => void>();
  private current: GpuStatus;

  /**
   * @param dl the context opened at start, or undefined without WebGPU
   * @param open how to open a new context (createDetloss by default)
   */
  constructor(
    dl: DetlossContext | undefined,
    private readonly open: () => Promise<DetlossContext> = () => createDetloss(),
  ) {
    this.dl = dl;
    this.current = { state: dl ? 'gpu' : 'none', message: '', losses: 0 };
    if (dl) {
      this.proven.add(dl);
      this.watch(dl);
    }
  }

  /** The context to run on now; undefined means the CPU reference. */
  get context(): DetlossContext | undefined {
    return this.dl;
  }

  /** The current state and its line. */
  get status(): GpuStatus {
    return { ...this.current };
  }

  /** Calls `f` on every change of state (not with the current one). */
  onChange(f: (s: GpuStatus) => void): void {
    this.listeners.add(f);
  }

  /** Records that `dl` finished a computation. */
  worked(dl: DetlossContext): void {
    this.proven.add(dl);
  }

  /**
   * Called when a call on `lost` failed because its device was lost (or its `device.lost`
   * resolved). Resolves to the context to use from now on: a new one, or undefined for the CPU
   * reference. Concurrent callers about the same context share one attempt; a caller about a
   * context already replaced gets the current one.
   */
  recover(lost: DetlossContext): Promise<DetlossContext | undefined> {
    if (this.recovering?.lost === lost) return this.recovering.next;
    if (lost !== this.dl) return Promise.resolve(this.dl);
    const next = this.reopen(lost);
    this.recovering = { lost, next };
    void next.finally(() => {
      if (this.recovering?.next === next) this.recovering = undefined;
    });
    return next;
  }

  /**
   * Whether `e`, thrown by a call on `dl`, means the device went away: a `device_lost` error, a
   * `destroyed` one, or a failure on the GPU's side while `dl`'s device turns out lost within a
   * moment (a readback can fail just before the context has heard of the loss). Bad arguments are
   * never a loss.
   */
  async isLoss(dl: DetlossContext, e: unknown): Promise<boolean> {
    if (e instanceof DetlossError && (e.code === 'device_lost' || e.code === 'destroyed')) return true;
    const gpuSide = !(e instanceof DetlossError) || ['gpu_validation', 'gpu_out_of_memory', 'pipeline'].includes(e.code);
    if (!gpuSide) return false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const lost = await Promise.race([
      dl.device.lost.then(() => true),
      new Promise<boolean>((ok) => (timer = setTimeout(() => ok(false), 100))),
    ]);
    clearTimeout(timer);
    return lost;
  }

  private watch(dl: DetlossContext) {
    void dl.device.lost.then(() => this.recover(dl));
  }

  private async reopen(lost: DetlossContext): Promise<DetlossContext | undefined> {
    const info = await lost.device.lost;
    const reason = `${info.reason ?? 'unknown'}${info.message ? `: ${info.message}` : ''}`;
    const losses = this.current.losses + 1;
    // The lost context is dropped, not destroyed: its device is gone, and calls still in flight on it
    // should end with device_lost (and come here), not with errors about destroyed buffers.
    if (!this.proven.has(lost)) {
      this.dl = undefined;
      this.set({
        state: 'cpu',
        losses,
        message:
          `GPU device lost again (${reason}) before the recreated context finished a computation; ` +
          'computing on the CPU reference from now on. Reload the page to try the GPU again.',
      });
      return undefined;
    }
    this.set({ state: 'recovering', losses, message: `GPU device lost (${reason}); opening a new device…` });
    try {
      const fresh = await withTimeout(this.open(), REOPEN_TIMEOUT_MS);
      this.dl = fresh;
      this.watch(fresh);
      this.set({ state: 'recovered', losses, message: `GPU device lost (${reason}); recreated the context. Computing on the GPU again.` });
      return fresh;
    } catch (e) {
      this.dl = undefined;
      const why = (e as Error).message ?? String(e);
      this.set({
        state: 'cpu',
        losses,
        message:
          `GPU device lost (${reason}); no new device could be opened (${why}), so everything now runs on the ` +
          'float64 CPU reference. Reload the page to try the GPU again.',
      });
      return undefined;
    }
  }

  private set(s: GpuStatus) {
    this.current = s;
    for (const f of this.listeners) f({ ...s });
  }
}

/** `p`, or a rejection after `ms`; a context that arrives late is destroyed. */
function withTimeout(p: Promise<DetlossContext>, ms: number): Promise<DetlossContext> {
  return new Promise((ok, fail) => {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      fail(new Error(`no device within ${ms / 1000} s`));
    }, ms);
    p.then(
      (dl) => {
        clearTimeout(timer);
        if (late) dl.destroy();
        else ok(dl);
      },
      (e) => {
        clearTimeout(timer);
        fail(e);
      },
    );
  });
}
