/**
 * What the router remembers about deployments: in-flight counts, requests and failures in
 * the last minute, cooldowns and recent latency. Behind an interface so a shared store
 * (for several gateway replicas) can replace the in-memory one without touching the
 * strategies.
 */
export interface RouterState {
  inflight(id: string): number;
  begin(id: string, now: number): void;
  end(id: string): void;
  /** Requests started within the last minute. */
  recentRequests(id: string, now: number): number;
  /** When the oldest request of the last minute leaves the window (for rpm Retry-After). */
  windowFreesAt(id: string, now: number): number;
  /** Records a failure; returns failures within the last minute, this one included. */
  recordFailure(id: string, now: number): number;
  cooldownUntil(id: string, now: number): number | undefined;
  coolDown(id: string, until: number): void;
  recordLatency(id: string, ms: number): void;
  /** Mean of recent latencies, or undefined before the first success. */
  latency(id: string): number | undefined;
}

const WINDOW_MS = 60_000;
const LATENCY_SAMPLES = 10;

interface Entry {
  inflight: number;
  requests: number[];
  failures: number[];
  cooldownUntil: number;
  latencies: number[];
}

export class InMemoryRouterState implements RouterState {
  private readonly entries = new Map<string, Entry>();

  private entry(id: string): Entry {
    let e = this.entries.get(id);
    if (e === undefined) {
      e = { inflight: 0, requests: [], failures: [], cooldownUntil: 0, latencies: [] };
      this.entries.set(id, e);
    }
    return e;
  }

  inflight(id: string): number {
    return this.entries.get(id)?.inflight ?? 0;
  }

  begin(id: string, now: number): void {
    const e = this.entry(id);
    e.inflight += 1;
    prune(e.requests, now);
    e.requests.push(now);
  }

  end(id: string): void {
    const e = this.entry(id);
    e.inflight = Math.max(0, e.inflight - 1);
  }

  recentRequests(id: string, now: number): number {
    const e = this.entries.get(id);
    if (e === undefined) return 0;
    prune(e.requests, now);
    return e.requests.length;
  }

  windowFreesAt(id: string, now: number): number {
    const oldest = this.entries.get(id)?.requests[0];
    return oldest === undefined ? now : oldest + WINDOW_MS;
  }

  recordFailure(id: string, now: number): number {
    const e = this.entry(id);
    prune(e.failures, now);
    e.failures.push(now);
    return e.failures.length;
  }

  cooldownUntil(id: string, now: number): number | undefined {
    const until = this.entries.get(id)?.cooldownUntil ?? 0;
    return until > now ? until : undefined;
  }

  coolDown(id: string, until: number): void {
    const e = this.entry(id);
    e.cooldownUntil = Math.max(e.cooldownUntil, until);
    // A deployment comes back with a clean slate.
    e.failures.length = 0;
  }

  recordLatency(id: string, ms: number): void {
    const l = this.entry(id).latencies;
    l.push(ms);
    if (l.length > LATENCY_SAMPLES) l.shift();
  }

  latency(id: string): number | undefined {
    const l = this.entries.get(id)?.latencies;
    if (l === undefined || l.length === 0) return undefined;
    return l.reduce((a, b) => a + b, 0) / l.length;
  }
}

/** Drops timestamps older than the window (they are in ascending order). */
function prune(times: number[], now: number): void {
  let i = 0;
  while (i < times.length && times[i]! <= now - WINDOW_MS) i++;
  if (i > 0) times.splice(0, i);
}
