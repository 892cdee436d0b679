/** The label of the validation error that `settled()` raises on purpose, found in its message. */
export const MARKER = 'detloss-test-marker';

export interface UncapturedWatch {
  /** The messages of the device's uncaptured errors so far (the marker's left out). */
  readonly errors: string[];
  /**
   * The uncaptured errors of everything the device was asked to do before this call: waits for the
   * queue's submitted work, then raises one validation error of its own (a buffer whose usage
   * WebGPU refuses, labelled MARKER), makes a round trip to the GPU, and waits for the marker to
   * arrive. A device's errors arrive in the order they were made, so every earlier one has arrived
   * by then: "no errors" is decided after they happened, not after a guess at how long they take.
   * A marker that never arrives fails.
   */
  settled(): Promise<string[]>;
}

/** Records a device's uncaptured errors from now on. */
export function watchUncaptured(device: GPUDevice): UncapturedWatch {
  const errors: string[] = [];
  let markerArrived: (() => void) | undefined;
  device.addEventListener('uncapturederror', (e) => {
    const message = (e as GPUUncapturedErrorEvent).error.message;
    if (message.includes(MARKER)) {
      // Ours, on purpose: handled here, so Dawn on Node does not print it ("validation: Buffer
      // usages ... is invalid") as it prints an uncaptured error nobody prevented.
      e.preventDefault();
      markerArrived?.();
    } else errors.push(message);
  });
  return {
    errors,
    async settled() {
      await device.queue.onSubmittedWorkDone();
      const arrived = new Promise<void>((ok) => (markerArrived = ok));
      device.createBuffer({ label: MARKER, size: 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE });
      // A round trip sends the marker on where commands are batched (Chromium's GPU process).
      await device.queue.onSubmittedWorkDone();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const never = new Promise<never>((_, fail) => {
        timer = setTimeout(() => fail(new Error('the validation error raised as a marker never arrived as an uncaptured error: this device does not report them, so "no errors" cannot be decided')), 20_000);
      });
      try {
        await Promise.race([arrived, never]);
      } finally {
        clearTimeout(timer);
      }
      return [...errors];
    },
  };
}

/**
 * Makes the calls of `makeCalls` and says when `device.queue.submit` has been called `n` times from
 * then on: `submitted` resolves at the n-th submit, and rejects, naming the count, if every call
 * settles first (one that failed before submitting). For a test that must act once the work is on
 * the queue, without guessing how long that takes.
 */
export function afterSubmits<T extends Promise<unknown>[]>(device: GPUDevice, n: number, makeCalls: () => T): { calls: T; submitted: Promise<void> } {
  const queue = device.queue;
  const submit = queue.submit;
  let count = 0;
  let reached!: () => void;
  const submittedOnly = new Promise<void>((ok) => (reached = ok));
  queue.submit = function (this: GPUQueue, ...args: Parameters<GPUQueue['submit']>) {
    const r = submit.apply(this, args);
    if (++count === n) reached();
    return r;
  };
  const calls = makeCalls();
  const settledFirst = Promise.allSettled(calls).then(() => {
    throw new Error(`only ${count} of ${n} submits were made before every call settled`);
  });
  settledFirst.catch(() => {});
  return { calls, submitted: Promise.race([submittedOnly, settledFirst]) };
}
