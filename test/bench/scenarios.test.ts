/**
 * The bench's scenario table without running it: the riders fit their hosts, every measured
 * scenario has a plan in both modes, and a result with known figures turns into the rows,
 * ratios and pass/miss marks the README's table shows.
 */
import { describe, expect, it } from "vitest";
import { type BenchResult, FULL_SETTINGS, QUICK_SETTINGS } from "../../bench/harness.ts";
import { toReport } from "../../bench/report.ts";
import {
  isRider,
  SCENARIO_TABLE,
  SCENARIOS,
  type ScenarioId,
  type ScenarioResult,
  type TargetId,
  type TargetSummary,
} from "../../bench/scenarios.ts";

const MB = 1024 * 1024;

function summary(figures: Partial<TargetSummary>): TargetSummary {
  return {
    rounds: [],
    rps: Number.NaN,
    p50Ms: Number.NaN,
    p99Ms: Number.NaN,
    cpuMsPerReq: undefined,
    peakRssBytes: undefined,
    ...figures,
  };
}

function scenario(
  id: ScenarioId,
  connections: number,
  targets: Partial<Record<TargetId, Partial<TargetSummary>>>,
): ScenarioResult {
  return {
    id,
    title: id,
    connections,
    requestsPerRun: 10,
    loadGenerator: "javascript",
    targets: Object.fromEntries(Object.entries(targets).map(([t, f]) => [t, summary(f)])),
  };
}

const RESULT = {
  machine: {
    cpu: "test",
    cores: 2,
    node: "v24",
    platform: "linux",
    date: "2026-12-02T00:00:00.000Z",
    loadAverage: [0, 0],
    otherCpuShare: 0,
  },
  settings: { ...FULL_SETTINGS },
  upstream: { tinyBodyBytes: 139, bigPngBytes: 1_450_000, bigBodyBytes: 1_930_000, slowMs: 1000 },
  portkey: { available: true },
  idleRssBytes: { imagegate: 160 * MB, bare: 80 * MB, portkey: 120 * MB },
  scenarios: {
    a: scenario("a", 1, {
      direct: { p50Ms: 0.05 },
      bare: { p50Ms: 0.25, addedP50Ms: 0.2, addedP99Ms: 1 },
      portkey: { p50Ms: 0.65, addedP50Ms: 0.6, addedP99Ms: 4 },
      imagegate: { p50Ms: 0.3, addedP50Ms: 0.25, addedP99Ms: 2 },
    }),
    b: scenario("b", 64, {
      direct: { rps: 3000, cpuMsPerReq: 0.03 },
      bare: { rps: 1000, cpuMsPerReq: 0.1 },
      portkey: { rps: 350, cpuMsPerReq: 0.4 },
      imagegate: { rps: 700, cpuMsPerReq: 0.12 },
    }),
    c: scenario("c", 16, {
      direct: { rps: 200, cpuMsPerReq: 2, peakRssBytes: 80 * MB },
      bare: { rps: 100, cpuMsPerReq: 3, peakRssBytes: 100 * MB },
      portkey: { rps: 5, cpuMsPerReq: 40, peakRssBytes: 300 * MB },
      imagegate: { rps: 80, cpuMsPerReq: 4, peakRssBytes: 140 * MB, clientCpuMsPerReq: 2 },
      "imagegate-grpc": { rps: 60, cpuMsPerReq: 6, peakRssBytes: 200 * MB, clientCpuMsPerReq: 3 },
    }),
    d: scenario("d", 512, {
      direct: { rps: 510 },
      bare: { rps: 505 },
      imagegate: { rps: 500 },
    }),
    e: scenario("e", 1, {
      imagegate: { p50Ms: 0.3 },
      "imagegate-routed": { p50Ms: 0.35, addedP50Ms: 0.05 },
    }),
    f: scenario("f", 16, {
      imagegate: { rps: 40, p50Ms: 400, cpuMsPerReq: 5, peakRssBytes: 200 * MB },
      "imagegate-stream": {
        rps: 20,
        p50Ms: 800,
        firstEventP50Ms: 100,
        cpuMsPerReq: 12,
        peakRssBytes: 180 * MB,
      },
    }),
    g: scenario("g", 16, {
      imagegate: { rps: 50, p50Ms: 200, cpuMsPerReq: 10, peakRssBytes: 200 * MB },
      "imagegate-edit": { rps: 20, p50Ms: 500, cpuMsPerReq: 30, peakRssBytes: 300 * MB },
    }),
    h: scenario("h", 1, {
      "imagegate-keyed": { p50Ms: 0.5 },
      "imagegate-shared": { p50Ms: 0.9, addedP50Ms: 0.4 },
    }),
    i: scenario("i", 64, {
      "imagegate-keyed": { rps: 500, cpuMsPerReq: 1 },
      "imagegate-shared": { rps: 450, cpuMsPerReq: 1.5 },
    }),
  },
  errors: [],
  durationSeconds: 1,
} satisfies BenchResult;

describe("the bench's scenario table", () => {
  it("has riders that share their host's request and run their latency reference", () => {
    for (const id of SCENARIOS) {
      const spec = SCENARIO_TABLE[id];
      if (!isRider(spec)) continue;
      const host = SCENARIO_TABLE[spec.ridesOn];
      expect(isRider(host), `${id} rides on ${spec.ridesOn}`).toBe(false);
      expect(spec.request, id).toEqual(host.request);
      if (spec.latencyReference) expect(spec.targets, id).toContain(spec.latencyReference);
    }
  });

  it("gives every measured scenario a plan in full and quick mode, and none to riders", () => {
    for (const settings of [FULL_SETTINGS, QUICK_SETTINGS]) {
      const planned = Object.keys(settings).filter((k) => (SCENARIOS as string[]).includes(k));
      expect(planned).toEqual(SCENARIOS.filter((id) => !isRider(SCENARIO_TABLE[id])));
    }
  });

  it("turns known figures into the table's rows, ratios and marks", () => {
    const report = toReport(RESULT);
    const rows = report.rows.map((r) => ({
      row: `${r.scenario} | ${r.figure}`,
      ratios: r.ratios.map((x) => `${x.value.toFixed(3)}${x.label}`).join(", "),
      ...(r.pass !== undefined ? { pass: r.pass } : {}),
    }));
    expect(rows).toEqual([
      { row: "(a) tiny, c=1 | p50 latency", ratios: "6.000× direct" },
      {
        row: "(a) tiny, c=1 | added p50 latency over direct",
        ratios: "1.250× bare proxy's, 0.417× Portkey's",
        pass: true,
      },
      {
        row: "(a) tiny, c=1 | added p99 latency over direct",
        ratios: "2.000× bare proxy's, 0.500× Portkey's",
      },
      {
        row: "(b) tiny, c=64 | throughput",
        ratios: "0.233× direct, 0.700× bare, 2.000× Portkey",
        pass: true,
      },
      {
        row: "(b) tiny, c=64 | CPU per request (direct: the emulator's)",
        ratios: "1.200× bare, 0.300× Portkey",
      },
      {
        row: "(c) 2 MB, c=16 | throughput, REST",
        ratios: "0.400× direct, 0.800× bare, 16.000× Portkey",
        pass: true,
      },
      {
        row: "(c) 2 MB, c=16 | throughput, gRPC (raw bytes)",
        ratios: "0.750× REST, 0.600× bare, 12.000× Portkey",
        pass: false,
      },
      {
        row: "(c) 2 MB, c=16 | idle RSS, started and before any request",
        ratios: "2.000× bare, 1.333× Portkey",
      },
      {
        row: "(c) 2 MB, c=16 | peak RSS, imagegate over REST",
        ratios: "1.400× bare, 0.467× Portkey",
        pass: true,
      },
      {
        row: "(c) 2 MB, c=16 | peak RSS, imagegate over gRPC",
        ratios: "2.000× bare, 0.667× Portkey",
        pass: false,
      },
      {
        row: "(c) 2 MB, c=16 | CPU per request, imagegate over REST (direct: the emulator's)",
        ratios: "1.333× bare, 0.100× Portkey",
      },
      {
        row: "(c) 2 MB, c=16 | CPU per request, imagegate over gRPC (direct: the emulator's)",
        ratios: "1.500× REST, 2.000× bare, 0.150× Portkey",
      },
      {
        row: "(c) 2 MB, c=16 | CPU per request of the load generator, REST (autocannon)",
        ratios: "",
      },
      {
        row: "(c) 2 MB, c=16 | CPU per request of the load generator, gRPC (grpc-js)",
        ratios: "1.500× REST's",
      },
      {
        row: "(d) 1000 ms upstream, c=512 | throughput (ideal 512)",
        ratios: "0.977× ideal, 0.980× direct, 0.990× bare",
        pass: true,
      },
      {
        row: "(e) router, tiny, c=1 | p50 latency: 8 deployments + fallbacks (one deployment in the direct column)",
        ratios: "1.167× one deployment, 0.050ms added",
      },
      {
        row: "(f) stream, c=16 | throughput, streamed (unstreamed in the direct column)",
        ratios: "0.500× unstreamed, 1.500× unstreamed in images sent",
      },
      {
        row: "(f) stream, c=16 | p50 time to the first event, streamed (unstreamed: p50 time to the whole answer)",
        ratios: "0.250× unstreamed answer",
      },
      {
        row: "(f) stream, c=16 | p50 time to the last event, streamed (unstreamed: to the whole answer)",
        ratios: "2.000× unstreamed",
      },
      {
        row: "(f) stream, c=16 | peak RSS, streamed (unstreamed in the direct column)",
        ratios: "0.900× unstreamed",
      },
      {
        row: "(f) stream, c=16 | CPU per request, streamed (unstreamed in the direct column)",
        ratios: "2.400× unstreamed",
      },
      {
        row: "(g) edit, 4 MB up, c=16 | throughput, edits (generations in the direct column)",
        ratios: "0.400× generations",
      },
      {
        row: "(g) edit, 4 MB up, c=16 | p50 latency, edits (generations in the direct column)",
        ratios: "2.500× generations",
      },
      {
        row: "(g) edit, 4 MB up, c=16 | peak RSS, edits (generations in the direct column)",
        ratios: "1.500× generations",
      },
      {
        row: "(g) edit, 4 MB up, c=16 | CPU per request, edits (generations in the direct column)",
        ratios: "3.000× generations",
      },
      {
        row: "(h) shared state, c=1 | p50 latency, Redis + Postgres (embedded in the direct column)",
        ratios: "1.800× embedded, 0.400ms added",
        pass: false,
      },
      {
        row: "(i) shared state, c=64 | throughput, Redis + Postgres (embedded in the direct column)",
        ratios: "0.900× embedded",
        pass: true,
      },
      {
        row: "(i) shared state, c=64 | CPU per request of the gateway, Redis + Postgres (embedded in the direct column)",
        ratios: "1.500× embedded",
      },
    ]);
    expect([report.targetsMet, report.targetsTotal]).toEqual([6, 9]);
    // (h) and (i) show the embedded mode in the direct column.
    expect(report.rows[25]!.values).toEqual({ imagegate: 0.9, direct: 0.5 });
    // Idle RSS: the gateway, the bare proxy and Portkey, in MB.
    expect(report.rows[7]!.values).toEqual({ imagegate: 160, bare: 80, portkey: 120 });
    // The RSS rows leave the direct column empty; (e) shows one deployment there.
    expect(report.rows[8]!.values).toEqual({ imagegate: 140, bare: 100, portkey: 300 });
    expect(report.rows[15]!.values).toEqual({ imagegate: 0.35, direct: 0.3 });
    // The load generator's CPU: its own, in the imagegate column only.
    expect(report.rows[12]!.values).toEqual({ imagegate: 2 });
    expect(report.rows[13]!.values).toEqual({ imagegate: 3 });
    // (f) shows the unstreamed path in the direct column.
    expect(report.rows[17]!.values).toEqual({ imagegate: 100, direct: 400 });
    // (g) shows the generation in the direct column.
    expect(report.rows[23]!.values).toEqual({ imagegate: 300, direct: 200 });
  });
});
