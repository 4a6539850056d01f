/**
 * Routing strategies: each picks one deployment from the candidates the router already
 * filtered (healthy, under their limits, in the best priority tier).
 */
import type { Deployment } from "../config/deployment.ts";
import type { RouterState } from "./state.ts";

export type Strategy = (
  candidates: readonly Deployment[],
  state: RouterState,
  now: number,
) => Deployment;

export interface StrategyOptions {
  /** latency-based: deployments within this fraction of the fastest share load. */
  latencyBuffer: number;
  random: () => number;
}

/** Weighted random over the whole candidate set (LiteLLM's default). */
export function weightedShuffle(random: () => number): Strategy {
  return (candidates) => {
    const total = candidates.reduce((sum, d) => sum + d.weight, 0);
    let r = random() * total;
    for (const d of candidates) {
      r -= d.weight;
      if (r < 0) return d;
    }
    return candidates[candidates.length - 1]!;
  };
}

/** Fewest requests in flight; ties broken at random so equal deployments share load. */
export function leastBusy(random: () => number): Strategy {
  return (candidates, state) => pickLowest(candidates, (d) => state.inflight(d.id), 0, random);
}

/**
 * Lowest recent mean latency, with a tolerance band so near-ties share load. A deployment
 * not measured yet counts as fastest, so every deployment gets measured.
 */
export function lowestLatency(buffer: number, random: () => number): Strategy {
  return (candidates, state) =>
    pickLowest(candidates, (d) => state.latency(d.id) ?? 0, buffer, random);
}

/** Lowest share of its rpm used in the last minute (or fewest requests when no rpm). */
export function lowestUsage(random: () => number): Strategy {
  return (candidates, state, now) =>
    pickLowest(candidates, (d) => state.recentRequests(d.id, now) / (d.rpm ?? 1), 0, random);
}

function pickLowest(
  candidates: readonly Deployment[],
  score: (d: Deployment) => number,
  buffer: number,
  random: () => number,
): Deployment {
  const scores = candidates.map(score);
  const best = Math.min(...scores);
  const limit = best * (1 + buffer);
  const near = candidates.filter((_, i) => scores[i]! <= limit);
  return near[Math.floor(random() * near.length)] ?? candidates[0]!;
}

export function strategyFor(name: string | undefined, options: StrategyOptions): Strategy {
  switch (name ?? "simple-shuffle") {
    case "least-busy":
      return leastBusy(options.random);
    case "latency-based-routing":
      return lowestLatency(options.latencyBuffer, options.random);
    case "usage-based-routing":
    case "usage-based-routing-v2":
      return lowestUsage(options.random);
    default:
      return weightedShuffle(options.random);
  }
}
