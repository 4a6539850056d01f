/**
 * Interceptors see a server-streaming call end when its messages do, not when `next`
 * returns (connect-es runs the implementation lazily, as the protocol pulls its messages).
 * `watchStream` wraps a response's messages so an interceptor can act before the first one
 * leaves (headers are still open then), convert what the stream throws, and finish once
 * the stream is over, however it ends (done, failed, or given up by a client gone away).
 */
export interface StreamHooks {
  /** Before the first message is handed on: the response headers can still change. */
  first?(): void;
  /** What the stream throws, as it should leave (the error, converted). */
  error?(e: unknown): unknown;
  /** Once the stream is over; `failure` is what it threw (converted), if anything. */
  end?(failure: unknown): void | Promise<void>;
}

export async function* watchStream<T>(source: AsyncIterable<T>, hooks: StreamHooks) {
  let first = true;
  let failure: unknown;
  try {
    for await (const message of source) {
      if (first) {
        first = false;
        hooks.first?.();
      }
      yield message;
    }
  } catch (e) {
    failure = hooks.error ? hooks.error(e) : e;
    throw failure;
  } finally {
    await hooks.end?.(failure);
  }
}
