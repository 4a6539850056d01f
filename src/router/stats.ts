/**
 * Each deployment's recent upstream attempts, for people to read (`/model/stats`, the
 * console's Deployments page): latency percentiles and error rate over a time window.
 * Routing never reads it; the router state's short latency mean (state.ts) is what the
 * latency strategy uses. Kept per replica, in memory, and bounded: at most `maxSamples`
 * attempts per deployment, the oldest dropped first, so a busy deployment's window may be
 * shorter than `windowMs`.
 */

export interface AttemptStats {
  attempts: number;
  failures: number;
  /** Undefined without attempts. */
  errorRate: number | undefined;
  /** Of the window's answered attempts, in ms; undefined without any. */
  latencyP50: number | undefined;
  latencyP95: number | undefined;
}

interface Sample {
  at: number;
  /** Latency in ms; undefined for a failure. */
  ms: number | undefined;
}

export class DeploymentStatsWindow {
  readonly windowMs: number;
  readonly #maxSamples: number;
  readonly #samples = new Map<string, Sample[]>();

  constructor(options: { windowMs?: number; maxSamples?: number } = {}) {
    this.windowMs = options.windowMs ?? 5 * 60_000;
    this.#maxSamples = options.maxSamples ?? 1000;
  }

  success(id: string, now: number, latencyMs: number): void {
    this.#add(id, { at: now, ms: latencyMs });
  }

  failure(id: string, now: number): void {
    this.#add(id, { at: now, ms: undefined });
  }

  #add(id: string, sample: Sample): void {
    let list = this.#samples.get(id);
    if (list === undefined) {
      list = [];
      this.#samples.set(id, list);
    }
    list.push(sample);
    if (list.length > this.#maxSamples) list.splice(0, list.length - this.#maxSamples);
  }

  /** The figures of the attempts within the window ending at `now`. */
  read(id: string, now: number): AttemptStats {
    const list = this.#samples.get(id) ?? [];
    const from = now - this.windowMs;
    // Samples arrive in time order: drop the expired head once, here.
    const firstKept = list.findIndex((s) => s.at > from);
    if (firstKept !== 0) list.splice(0, firstKept === -1 ? list.length : firstKept);
    const latencies = list
      .filter((s) => s.ms !== undefined)
      .map((s) => s.ms!)
      .sort((a, b) => a - b);
    const failures = list.length - latencies.length;
    return {
      attempts: list.length,
      failures,
      errorRate: list.length === 0 ? undefined : failures / list.length,
      latencyP50: percentile(latencies, 0.5),
      latencyP95: percentile(latencies, 0.95),
    };
  }
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}
