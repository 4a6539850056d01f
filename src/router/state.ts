/**
 * What the router remembers about deployments: in-flight counts, requests and failures in
 * the last minute, cooldowns and recent latency. Behind an interface so a shared store
 * (for several gateway replicas, shared-state.ts) can replace the in-memory one without
 * touching the strategies. Reads are synchronous (the strategies run on every request);
 * only the two decisions a shared store must make atomically may answer later: whether a
 * deployment with limits takes one more request, and the failure count.
 */
import { SlidingWindow } from "../runtime/sliding-window.ts";

export interface RouterState {
  inflight(id: string): number;
  /**
   * Starts a request on `id`. With `limits`, admits it only while the deployment is under
   * its rpm and parallel-request limits (false: it is not, and nothing was recorded).
   */
  begin(id: string, now: number, limits?: DeploymentLimits): boolean | Promise<boolean>;
  end(id: string): void;
  /** Requests started within the last minute. */
  recentRequests(id: string, now: number): number;
  /** When the oldest request of the last minute leaves the window (for rpm Retry-After). */
  windowFreesAt(id: string, now: number): number;
  /** Records a failure; returns failures within the last minute, this one included. */
  recordFailure(id: string, now: number): number | Promise<number>;
  cooldownUntil(id: string, now: number): number | undefined;
  coolDown(id: string, until: number): void;
  recordLatency(id: string, ms: number): void;
  /** Mean of recent latencies, or undefined before the first success. */
  latency(id: string): number | undefined;
  /** Stops background work (a shared store's sync). */
  close?(): Promise<void>;
}

/** A deployment's `rpm` and `max_parallel_requests`. */
export interface DeploymentLimits {
  rpm?: number | undefined;
  maxParallel?: number | undefined;
}

const LATENCY_SAMPLES = 10;

interface Entry {
  inflight: number;
  requests: SlidingWindow;
  failures: SlidingWindow;
  cooldownUntil: number;
  latencies: number[];
}

export class InMemoryRouterState implements RouterState {
  private readonly entries = new Map<string, Entry>();

  private entry(id: string): Entry {
    let e = this.entries.get(id);
    if (e === undefined) {
      e = {
        inflight: 0,
        requests: new SlidingWindow(),
        failures: new SlidingWindow(),
        cooldownUntil: 0,
        latencies: [],
      };
      this.entries.set(id, e);
    }
    return e;
  }

  inflight(id: string): number {
    return this.entries.get(id)?.inflight ?? 0;
  }

  /** Always admits: the router checked the limits on this same state, synchronously. */
  begin(id: string, now: number): true {
    const e = this.entry(id);
    e.inflight += 1;
    e.requests.add(now);
    return true;
  }

  end(id: string): void {
    const e = this.entry(id);
    e.inflight = Math.max(0, e.inflight - 1);
  }

  recentRequests(id: string, now: number): number {
    return this.entries.get(id)?.requests.count(now) ?? 0;
  }

  windowFreesAt(id: string, now: number): number {
    return this.entries.get(id)?.requests.freesAt(now) ?? now;
  }

  recordFailure(id: string, now: number): number {
    const failures = this.entry(id).failures;
    failures.add(now);
    return failures.count(now);
  }

  cooldownUntil(id: string, now: number): number | undefined {
    const until = this.entries.get(id)?.cooldownUntil ?? 0;
    return until > now ? until : undefined;
  }

  coolDown(id: string, until: number): void {
    const e = this.entry(id);
    e.cooldownUntil = Math.max(e.cooldownUntil, until);
    // A deployment comes back with a clean slate.
    e.failures.clear();
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
