/**
 * Keeps the benchmark from rotting: every scenario once, with tiny counts, against every
 * target (Portkey when it is installed). Only correctness is asserted, never timing.
 */
import { describe, expect, it } from "vitest";
import { type BenchSettings, QUICK_SETTINGS, runBench } from "../../bench/harness.ts";
import { renderSummary, renderTable, toReport } from "../../bench/report.ts";
import type { ScenarioId, TargetId } from "../../bench/scenarios.ts";
import { postgresBin, redisBin } from "../support/services.ts";
import { isInstalled } from "../support/test-programs.ts";

/** (h) and (i) need a real redis-server and PostgreSQL; without them the bench skips both. */
const shared = redisBin() !== undefined && postgresBin() !== undefined;
/** (c) runs on h2load where it is installed (autocannon and grpc-js elsewhere; both paths are checked). */
const h2load = isInstalled("h2load");

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
    expect(Object.keys(result.scenarios).sort()).toEqual(
      shared ? ["a", "b", "c", "d", "e", "f", "g", "h", "i"] : ["a", "b", "c", "d", "e", "f", "g"],
    );
    const expected: Partial<Record<ScenarioId, readonly TargetId[]>> = {
      a: ["direct", "bare", "imagegate"],
      b: ["direct", "bare", "imagegate"],
      c: ["direct", "bare", "imagegate", "imagegate-grpc"],
      d: ["direct", "bare", "imagegate"],
      e: ["imagegate", "imagegate-routed"],
      f: ["imagegate", "imagegate-stream"],
      g: ["imagegate", "imagegate-edit"],
      ...(shared
        ? { h: ["imagegate-keyed", "imagegate-shared"], i: ["imagegate-keyed", "imagegate-shared"] }
        : {}),
    };
    for (const [id, targets] of Object.entries(expected)) {
      const scenario = result.scenarios[id as ScenarioId]!;
      for (const t of targets) {
        const summary = scenario.targets[t];
        expect(summary, `${id}/${t}`).toBeDefined();
        expect(summary!.rounds[0]!.ok, `${id}/${t}`).toBeGreaterThan(0);
      }
      if (result.portkey.available && ["a", "b", "c", "d"].includes(id))
        expect(scenario.targets.portkey?.rounds[0]?.ok, `${id}/portkey`).toBeGreaterThan(0);
    }
    expect(result.upstream.bigBodyBytes).toBeGreaterThan(1_500_000);
    expect(result.scenarios.c?.loadGenerator).toBe(h2load ? "h2load" : "javascript");
    expect(result.scenarios.a?.loadGenerator).toBe("javascript");

    const report = toReport(result);
    expect(report.targetsTotal).toBe(shared ? 9 : 7);
    const table = renderTable(report);
    for (const s of [
      "(a)",
      "(b)",
      "(c)",
      "(d)",
      "(e)",
      "(f)",
      "(g)",
      ...(shared ? ["(h)", "(i)"] : []),
    ])
      expect(table).toContain(s);
    if (!shared) expect(renderSummary(report)).toContain("(h) and (i) not run");
    expect(table).toContain(
      h2load ? "load generator, gRPC (h2load)" : "load generator, gRPC (grpc-js)",
    );
    expect(renderSummary(report)).toContain("Targets met");
  }, 60_000);

  it("runs (c) on autocannon and grpc-js when h2load is not to be used", async () => {
    const result = await runBench({ ...TINY, only: ["c"], portkey: false, h2load: false });
    expect(result.errors).toEqual([]);
    const c = result.scenarios.c!;
    expect(c.loadGenerator).toBe("javascript");
    expect(c.targets["imagegate-grpc"]?.rounds[0]?.ok).toBeGreaterThan(0);
    expect(renderTable(toReport(result))).toContain("load generator, gRPC (grpc-js)");
  }, 60_000);
});
