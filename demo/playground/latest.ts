/**
 * Coalesces requests for asynchronous work: at most one run in flight, and when it ends only the
 * latest state asked for meanwhile runs next (the ones in between are dropped).
 *
 * @example
 * const update = latestOnly(async (boxes) => render(await computeAll(boxes)));
 * canvas.onpointermove = () => update(currentBoxes()); // never queues more than one
 */
export function latestOnly<T>(work: (state: T) => Promise<void>, onError: (e: unknown) => void): (state: T) => void {
  let running = false;
  let pending: { state: T } | undefined;
  const loop = async () => {
    running = true;
    while (pending) {
      const { state } = pending;
      pending = undefined;
      try {
        await work(state);
      } catch (e) {
        onError(e);
      }
    }
    running = false;
  };
  return (state: T) => {
    pending = { state };
    if (!running) void loop();
  };
}
