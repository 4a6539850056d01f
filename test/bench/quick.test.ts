/**
 * Keeps the benchmark from rotting: every scenario once, with tiny counts, against every
 * target (Portkey when it is installed). Only correctness is asserted, never timing.
 */
import { describe, expect, it } from "vitest";
import { type BenchSettings, QUICK_SETTINGS, runBench } from "../../bench/harness.ts";
import { renderSummary, renderTable, toReport } from "../../bench/report.ts";

const TINY: BenchSettings = {
  ...QUICK_SETTINGS,
  rounds: 1,
  maxSeconds: 10,
  slowMs: 100,
  a: { connections: 1, requests: 10, warmup: 0 },
  b: { connections: 8, requests: 16, warmup: 0 },
  // Low concurrency: this checks the wiring, not the gateway's capacity.
  c: { connections: 2, requests: 4, warmup: 0 },
  d: { connections: 32, requests: 32, warmup: 0 },
  f: { connections: 2, requests: 4, warmup: 0 },
  g: { connections: 2, requests: 4, warmup: 0 },
  portkey: true,
  log: () => {},
};

describe("bench (quick, tiny counts)", () => {
  it("runs every scenario against every target without a failed request", async () => {
    const result = await runBench(TINY);
    expect(result.errors).toEqual([]);
    expect(Object.keys(result.scenarios).sort()).toEqual(["a", "b", "c", "d", "e", "f", "g"]);
    const expected = {
      a: ["direct", "bare", "imagegate"],
      b: ["direct", "bare", "imagegate"],
      c: ["direct", "bare", "imagegate", "imagegate-grpc"],
      d: ["direct", "bare", "imagegate"],
      e: ["imagegate", "imagegate-routed"],
      f: ["imagegate", "imagegate-stream"],
      g: ["imagegate", "imagegate-edit"],
    } as const;
    for (const [id, targets] of Object.entries(expected)) {
      const scenario = result.scenarios[id as keyof typeof expected]!;
      for (const t of targets) {
        const summary = scenario.targets[t];
        expect(summary, `${id}/${t}`).toBeDefined();
        expect(summary!.rounds[0]!.ok, `${id}/${t}`).toBeGreaterThan(0);
      }
      if (result.portkey.available && id !== "e" && id !== "f" && id !== "g")
        expect(scenario.targets.portkey?.rounds[0]?.ok, `${id}/portkey`).toBeGreaterThan(0);
    }
    expect(result.upstream.bigBodyBytes).toBeGreaterThan(1_500_000);

    const report = toReport(result);
    expect(report.targetsTotal).toBe(7);
    const table = renderTable(report);
    for (const s of ["(a)", "(b)", "(c)", "(d)", "(e)", "(f)", "(g)"]) expect(table).toContain(s);
    expect(renderSummary(report)).toContain("Targets met");
  }, 60_000);
});
