/** Requests per minute per key: a sliding one-minute window of request times. */
export class RpmLimiter {
  private readonly windows = new Map<string, number[]>();

  /** Admits a request now, or returns the seconds until one would be admitted. */
  admit(
    key: string,
    limit: number,
    now = Date.now(),
  ): { ok: true } | { ok: false; retryAfterSeconds: number } {
    let times = this.windows.get(key);
    if (times === undefined) {
      times = [];
      this.windows.set(key, times);
    }
    while (times.length > 0 && times[0]! <= now - 60_000) times.shift();
    if (times.length >= limit)
      return {
        ok: false,
        retryAfterSeconds: Math.max(1, Math.ceil((times[0]! + 60_000 - now) / 1000)),
      };
    times.push(now);
    return { ok: true };
  }
}
