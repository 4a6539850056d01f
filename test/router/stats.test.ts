import { describe, expect, it } from "vitest";
import { DeploymentStatsWindow, percentile } from "../../src/router/stats.ts";

describe("DeploymentStatsWindow", () => {
  it("gives nearest-rank p50 and p95 of answered attempts and the share that failed", () => {
    const w = new DeploymentStatsWindow({ windowMs: 60_000 });
    for (let ms = 1; ms <= 100; ms++) w.success("a", 1000 + ms, ms);
    w.failure("a", 2000);
    w.failure("a", 2001);
    const s = w.read("a", 3000);
    expect(s).toEqual({
      attempts: 102,
      failures: 2,
      errorRate: 2 / 102,
      latencyP50: 50,
      latencyP95: 95,
    });
    expect(w.read("b", 3000)).toEqual({
      attempts: 0,
      failures: 0,
      errorRate: undefined,
      latencyP50: undefined,
      latencyP95: undefined,
    });
  });

  it("forgets attempts older than the window, and keeps at most maxSamples", () => {
    const w = new DeploymentStatsWindow({ windowMs: 10_000, maxSamples: 3 });
    w.failure("a", 0);
    w.success("a", 5_000, 40);
    expect(w.read("a", 10_001)).toMatchObject({ attempts: 1, failures: 0, latencyP50: 40 });
    for (const ms of [10, 20, 30, 50]) w.success("a", 11_000, ms);
    expect(w.read("a", 11_000)).toMatchObject({ attempts: 3, latencyP50: 30, latencyP95: 50 });
    expect(w.read("a", 30_000).attempts).toBe(0);
  });

  it("percentile of one value is that value", () => {
    expect(percentile([7], 0.5)).toBe(7);
    expect(percentile([7], 0.95)).toBe(7);
    expect(percentile([], 0.5)).toBeUndefined();
  });
});
