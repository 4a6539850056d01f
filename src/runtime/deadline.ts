/**
 * One signal for a piece of work: aborted when its caller's signal aborts or when its time
 * is up. Linked by one listener rather than `AbortSignal.any` (undici then follows a
 * composite signal, a measurable cost per request), and timed by a timer cleared by
 * `dispose` rather than `AbortSignal.timeout`, which, once listened to, is held (with
 * everything its listeners reach) until it fires, long after the work is over.
 */
export interface Deadline {
  readonly signal: AbortSignal;
  /** Whether the time ran out (as opposed to the caller aborting). */
  readonly expired: boolean;
  /** Stops the timer and unlinks the caller's signal; call once the work is over. */
  dispose(): void;
}

/** `caller`, or `timeoutMs` passing (then aborted with a TimeoutError saying `what`). */
export function deadline(caller: AbortSignal, timeoutMs: number, what: string): Deadline {
  const controller = new AbortController();
  let expired = false;
  const onAbort = () => controller.abort(caller.reason);
  if (caller.aborted) onAbort();
  else caller.addEventListener("abort", onAbort, { once: true });
  const timer = setTimeout(() => {
    expired = true;
    controller.abort(new DOMException(what, "TimeoutError"));
  }, timeoutMs);
  return {
    signal: controller.signal,
    get expired() {
      return expired;
    },
    dispose() {
      clearTimeout(timer);
      caller.removeEventListener("abort", onAbort);
    },
  };
}
