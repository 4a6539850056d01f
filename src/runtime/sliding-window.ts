/**
 * The times of the events within the last minute (or another span), for per-minute limits:
 * a gateway key's rpm (auth/rate.ts), a deployment's rpm and failure count (router/state.ts).
 * Exact rather than bucketed: a limit of N admits the (N+1)th request exactly when the
 * oldest leaves the window, so `Retry-After` is exact too. No clock of its own: the caller
 * passes `now` (ascending), which keeps tests deterministic. An event exactly one span old
 * has left the window.
 */
export const MINUTE_MS = 60_000;

export class SlidingWindow {
  readonly #spanMs: number;
  /** Ascending; the oldest first. */
  readonly #times: number[] = [];

  constructor(spanMs = MINUTE_MS) {
    this.#spanMs = spanMs;
  }

  /** The events within the span that ends at `now`. */
  count(now: number): number {
    this.#drop(now);
    return this.#times.length;
  }

  /** Records an event at `now`. */
  add(now: number): void {
    this.#drop(now);
    this.#times.push(now);
  }

  /** When the oldest event within the window leaves it; `now` when there is none. */
  freesAt(now: number): number {
    this.#drop(now);
    const oldest = this.#times[0];
    return oldest === undefined ? now : oldest + this.#spanMs;
  }

  clear(): void {
    this.#times.length = 0;
  }

  #drop(now: number): void {
    let i = 0;
    while (i < this.#times.length && this.#times[i]! <= now - this.#spanMs) i++;
    if (i > 0) this.#times.splice(0, i);
  }
}
