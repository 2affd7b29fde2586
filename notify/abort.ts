/**
 * A signal that aborts when its parent does or when a deadline passes,
 * with an explicit dispose(). Not AbortSignal.any: in Node 20 a composite
 * of a long-lived parent (the worker's stop signal, a caller's) stays
 * referenced by the parent, so one per delivery would grow without bound.
 */
export interface DeadlineSignal {
  signal: AbortSignal;
  /** True when the deadline, not the parent, aborted it. */
  timedOut(): boolean;
  /** Removes the timer and the parent's listener; call once the work is over. */
  dispose(): void;
}

export function deadlineSignal(parent: AbortSignal | undefined, timeoutMs: number): DeadlineSignal {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new DOMException(`timed out after ${timeoutMs} ms`, 'TimeoutError'));
  }, timeoutMs);
  const onParentAbort = (): void => {
    clearTimeout(timer);
    controller.abort(parent?.reason);
  };
  if (parent?.aborted) onParentAbort();
  else parent?.addEventListener('abort', onParentAbort, { once: true });
  return {
    signal: controller.signal,
    timedOut: () => timedOut,
    dispose() {
      clearTimeout(timer);
      parent?.removeEventListener('abort', onParentAbort);
    },
  };
}
