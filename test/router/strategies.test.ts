/** The pick rules of each routing strategy, on a hand-made state. */
import { describe, expect, it } from "vitest";
import type { Deployment } from "../../src/config/deployment.ts";
import { InMemoryRouterState } from "../../src/router/state.ts";
import {
  leastBusy,
  lowestLatency,
  lowestUsage,
  strategyFor,
  weightedShuffle,
} from "../../src/router/strategies.ts";

const d = (id: string, extra: Partial<Deployment> = {}) =>
  ({ id, weight: 1, order: 1, rpm: undefined, ...extra }) as Deployment;
const counts = (pick: () => Deployment, n = 2000) => {
  const c: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const id = pick().id;
    c[id] = (c[id] ?? 0) + 1;
  }
  return c;
};
let seed = 7;
const random = () => {
  seed = (seed * 16807) % 2147483647;
  return (seed - 1) / 2147483646;
};

describe("strategies", () => {
  it("least-busy picks the deployment with the fewest requests in flight, sharing ties", () => {
    const state = new InMemoryRouterState();
    const [a, b, c] = [d("a"), d("b"), d("c")];
    state.begin("a", 0);
    state.begin("a", 0);
    state.begin("b", 0);
    expect(leastBusy(random)([a, b, c], state, 0).id).toBe("c");
    state.begin("c", 0);
    const picks = counts(() => leastBusy(random)([a, b, c], state, 0));
    expect(picks.a).toBeUndefined();
    expect(picks.b! + picks.c!).toBe(2000);
    expect(picks.b).toBeGreaterThan(800);
  });

  it("latency-based picks the fastest, lets near-ties within the buffer share, and tries the unmeasured first", () => {
    const state = new InMemoryRouterState();
    const [fast, close, slow, fresh] = [d("fast"), d("close"), d("slow"), d("fresh")];
    for (let i = 0; i < 5; i++) {
      state.recordLatency("fast", 100);
      state.recordLatency("close", 105);
      state.recordLatency("slow", 300);
    }
    expect(lowestLatency(0.1, random)([fast, close, slow, fresh], state, 0).id).toBe("fresh");
    const picks = counts(() => lowestLatency(0.1, random)([fast, close, slow], state, 0));
    expect(picks.slow).toBeUndefined();
    expect(picks.fast).toBeGreaterThan(800);
    expect(picks.close).toBeGreaterThan(800);
    expect(counts(() => lowestLatency(0, random)([fast, close, slow], state, 0))).toEqual({
      fast: 2000,
    });
  });

  it("usage-based picks the lowest share of its rpm used this minute", () => {
    const state = new InMemoryRouterState();
    const [big, small] = [d("big", { rpm: 100 }), d("small", { rpm: 10 })];
    for (let i = 0; i < 20; i++) state.begin("big", 1000);
    state.begin("small", 1000);
    expect(lowestUsage(random)([big, small], state, 1000).id).toBe("small"); // 1/10 < 20/100
    state.begin("small", 1000);
    state.begin("small", 1000);
    expect(lowestUsage(random)([big, small], state, 1000).id).toBe("big"); // 20/100 < 3/10
    // A minute later the window is empty again.
    expect(state.recentRequests("small", 61_001)).toBe(0);
  });

  it("weights weigh, and unknown names fall back to simple-shuffle", () => {
    const picks = counts(
      () =>
        weightedShuffle(random)(
          [d("a", { weight: 9 }), d("b", { weight: 1 })],
          new InMemoryRouterState(),
          0,
        ),
      5000,
    );
    expect(picks.a! / 5000).toBeGreaterThan(0.87);
    expect(picks.a! / 5000).toBeLessThan(0.93);
    const shuffle = strategyFor(undefined, { latencyBuffer: 0.1, random });
    expect(["a", "b"]).toContain(shuffle([d("a"), d("b")], new InMemoryRouterState(), 0).id);
  });
});
