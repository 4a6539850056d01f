import { SlidingWindow } from "../runtime/sliding-window.ts";

/** Requests per minute per key: a sliding one-minute window of request times. */
export class RpmLimiter {
  private readonly windows = new Map<string, SlidingWindow>();

  /** Admits a request now, or returns the seconds until one would be admitted. */
  admit(
    key: string,
    limit: number,
    now = Date.now(),
  ): { ok: true } | { ok: false; retryAfterSeconds: number } {
    let window = this.windows.get(key);
    if (window === undefined) {
      window = new SlidingWindow();
      this.windows.set(key, window);
    }
    if (window.count(now) >= limit)
      return {
        ok: false,
        retryAfterSeconds: Math.max(1, Math.ceil((window.freesAt(now) - now) / 1000)),
      };
    window.add(now);
    return { ok: true };
  }
}
