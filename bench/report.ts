/**
 * The bench's figures as rows (imagegate beside direct, the bare proxy and Portkey, with the
 * ratios and the issue's targets), rendered as a Markdown table.
 */
import type { BenchResult, ScenarioResult, TargetId, TargetSummary } from "./harness.ts";

export type Column = "imagegate" | "direct" | "bare" | "portkey";
const COLUMNS: readonly Column[] = ["imagegate", "direct", "bare", "portkey"];

export interface Ratio {
  label: string;
  value: number;
}

export interface Row {
  scenario: string;
  figure: string;
  unit: string;
  /** Which target the imagegate column shows (e.g. imagegate-grpc). */
  imagegateTarget: TargetId;
  values: Partial<Record<Column, number>>;
  ratios: Ratio[];
  /** The issue's target for this row, as text, and whether the figures meet it. */
  target?: string;
  pass?: boolean;
}

export interface Report extends BenchResult {
  rows: Row[];
  targetsMet: number;
  targetsTotal: number;
}

const MB = 1024 * 1024;

function ratio(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0)
    return undefined;
  return a / b;
}

function ratios(...pairs: [string, number | undefined][]): Ratio[] {
  const out: Ratio[] = [];
  for (const [label, value] of pairs)
    if (value !== undefined && Number.isFinite(value)) out.push({ label, value });
  return out;
}

function pick(s: ScenarioResult | undefined, id: TargetId): TargetSummary | undefined {
  return s?.targets[id];
}

function values(
  s: ScenarioResult,
  get: (t: TargetSummary) => number | undefined,
  imagegate: TargetId = "imagegate",
): Partial<Record<Column, number>> {
  const out: Partial<Record<Column, number>> = {};
  const map: Record<Column, TargetId> = {
    imagegate,
    direct: "direct",
    bare: "bare",
    portkey: "portkey",
  };
  for (const c of COLUMNS) {
    const t = s.targets[map[c]];
    const v = t ? get(t) : undefined;
    if (v !== undefined && Number.isFinite(v)) out[c] = v;
  }
  return out;
}

export function buildRows(result: BenchResult): Row[] {
  const rows: Row[] = [];
  const { a, b, c, d, e } = result.scenarios;
  if (a) {
    const sc = "(a) tiny, c=1";
    const v = values(a, (t) => t.p50Ms);
    rows.push({
      scenario: sc,
      figure: "p50 latency",
      unit: "ms",
      imagegateTarget: "imagegate",
      values: v,
      ratios: ratios(["× direct", ratio(v.imagegate, v.direct)]),
    });
    const added = values(a, (t) => t.addedP50Ms);
    const ig = added.imagegate;
    rows.push({
      scenario: sc,
      figure: "added p50 latency over direct",
      unit: "ms",
      imagegateTarget: "imagegate",
      values: added,
      ratios: ratios(
        ["× bare proxy's", ratio(ig, added.bare)],
        ["× Portkey's", ratio(ig, added.portkey)],
      ),
      target: "≤ 0.3 ms",
      ...(ig !== undefined ? { pass: ig <= 0.3 } : {}),
    });
    const added99 = values(a, (t) => t.addedP99Ms);
    rows.push({
      scenario: sc,
      figure: "added p99 latency over direct",
      unit: "ms",
      imagegateTarget: "imagegate",
      values: added99,
      ratios: ratios(
        ["× bare proxy's", ratio(added99.imagegate, added99.bare)],
        ["× Portkey's", ratio(added99.imagegate, added99.portkey)],
      ),
    });
  }
  if (b) {
    const sc = "(b) tiny, c=64";
    const v = values(b, (t) => t.rps);
    const r = ratio(v.imagegate, v.bare);
    rows.push({
      scenario: sc,
      figure: "throughput",
      unit: "rps",
      imagegateTarget: "imagegate",
      values: v,
      ratios: ratios(
        ["× direct", ratio(v.imagegate, v.direct)],
        ["× bare", r],
        ["× Portkey", ratio(v.imagegate, v.portkey)],
      ),
      target: "≥ 0.6× bare",
      ...(r !== undefined ? { pass: r >= 0.6 } : {}),
    });
    const cpu = values(b, (t) => t.cpuMsPerReq);
    rows.push({
      scenario: sc,
      figure: "CPU per request (direct: the emulator's)",
      unit: "ms",
      imagegateTarget: "imagegate",
      values: cpu,
      ratios: ratios(
        ["× bare", ratio(cpu.imagegate, cpu.bare)],
        ["× Portkey", ratio(cpu.imagegate, cpu.portkey)],
      ),
    });
  }
  if (c) {
    const sc = "(c) 2 MB, c=16";
    const v = values(c, (t) => t.rps);
    const rBare = ratio(v.imagegate, v.bare);
    const rPk = ratio(v.imagegate, v.portkey);
    rows.push({
      scenario: sc,
      figure: "throughput, REST",
      unit: "rps",
      imagegateTarget: "imagegate",
      values: v,
      ratios: ratios(
        ["× direct", ratio(v.imagegate, v.direct)],
        ["× bare", rBare],
        ["× Portkey", rPk],
      ),
      target: "≥ 0.7× bare, ≥ 10× Portkey",
      ...(rBare !== undefined ? { pass: rBare >= 0.7 && (rPk === undefined || rPk >= 10) } : {}),
    });
    const g = pick(c, "imagegate-grpc");
    if (g) {
      const vg = values(c, (t) => t.rps, "imagegate-grpc");
      const rRest = ratio(vg.imagegate, v.imagegate);
      rows.push({
        scenario: sc,
        figure: "throughput, gRPC (raw bytes)",
        unit: "rps",
        imagegateTarget: "imagegate-grpc",
        values: { imagegate: vg.imagegate } as Partial<Record<Column, number>>,
        ratios: ratios(
          ["× REST", rRest],
          ["× bare", ratio(vg.imagegate, v.bare)],
          ["× Portkey", ratio(vg.imagegate, v.portkey)],
        ),
        target: "≥ 1× REST",
        ...(rRest !== undefined ? { pass: rRest >= 1 } : {}),
      });
    }
    for (const [id, label] of [
      ["imagegate", "REST"],
      ["imagegate-grpc", "gRPC"],
    ] as const) {
      if (!pick(c, id)) continue;
      const rss = values(
        c,
        (t) => (t.peakRssBytes === undefined ? undefined : t.peakRssBytes / MB),
        id,
      );
      delete rss.direct;
      const r = ratio(rss.imagegate, rss.bare);
      rows.push({
        scenario: sc,
        figure: `peak RSS, imagegate over ${label}`,
        unit: "MB",
        imagegateTarget: id,
        values: rss,
        ratios: ratios(["× bare", r], ["× Portkey", ratio(rss.imagegate, rss.portkey)]),
        target: "≤ 1.5× bare",
        ...(r !== undefined ? { pass: r <= 1.5 } : {}),
      });
    }
    for (const [id, label] of [
      ["imagegate", "REST"],
      ["imagegate-grpc", "gRPC"],
    ] as const) {
      if (!pick(c, id)) continue;
      const cpu = values(c, (t) => t.cpuMsPerReq, id);
      rows.push({
        scenario: sc,
        figure: `CPU per request, imagegate over ${label} (direct: the emulator's)`,
        unit: "ms",
        imagegateTarget: id,
        values: cpu,
        ratios: ratios(
          ["× bare", ratio(cpu.imagegate, cpu.bare)],
          ["× Portkey", ratio(cpu.imagegate, cpu.portkey)],
        ),
      });
    }
  }
  if (d) {
    const ideal = (d.connections * 1000) / result.upstream.slowMs;
    const v = values(d, (t) => t.rps);
    const r = ratio(v.imagegate, ideal);
    rows.push({
      scenario: `(d) ${result.upstream.slowMs} ms upstream, c=${d.connections}`,
      figure: `throughput (ideal ${ideal.toFixed(0)})`,
      unit: "rps",
      imagegateTarget: "imagegate",
      values: v,
      ratios: ratios(
        ["× ideal", r],
        ["× direct", ratio(v.imagegate, v.direct)],
        ["× bare", ratio(v.imagegate, v.bare)],
        ["× Portkey", ratio(v.imagegate, v.portkey)],
      ),
      target: "≥ 0.95× ideal",
      ...(r !== undefined ? { pass: r >= 0.95 } : {}),
    });
  }
  if (e) {
    const one = pick(e, "imagegate");
    const routed = pick(e, "imagegate-routed");
    if (one && routed) {
      rows.push({
        scenario: "(e) router, tiny, c=1",
        figure: "p50 latency: 8 deployments + fallbacks (one deployment in the direct column)",
        unit: "ms",
        imagegateTarget: "imagegate-routed",
        values: { imagegate: routed.p50Ms, direct: one.p50Ms },
        ratios: ratios(
          ["× one deployment", ratio(routed.p50Ms, one.p50Ms)],
          ["ms added", routed.addedP50Ms],
        ),
      });
    }
  }
  return rows;
}

export function toReport(result: BenchResult): Report {
  const rows = buildRows(result);
  const judged = rows.filter((r) => r.target !== undefined);
  return {
    ...result,
    rows,
    targetsMet: judged.filter((r) => r.pass === true).length,
    targetsTotal: judged.length,
  };
}

function num(v: number | undefined, unit: string): string {
  if (v === undefined) return "—";
  const digits =
    unit === "ms" ? (Math.abs(v) < 10 ? 2 : 1) : unit === "MB" ? 0 : Math.abs(v) < 10 ? 1 : 0;
  return v.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

function ratioText(r: Ratio): string {
  if (r.label === "ms added") return `${r.value >= 0 ? "+" : ""}${r.value.toFixed(3)} ms`;
  const digits = r.value >= 10 ? 0 : r.value >= 1 ? 1 : 2;
  return `${r.value.toFixed(digits)}${r.label}`;
}

/** The Markdown table of the rows. */
export function renderTable(report: Report): string {
  const pk = report.portkey.available ? "Portkey" : "Portkey (n/a)";
  const out = [
    `| scenario | figure | imagegate | direct | bare proxy | ${pk} | ratios | target | result |`,
    "|---|---|--:|--:|--:|--:|---|---|---|",
  ];
  for (const r of report.rows) {
    const cells = COLUMNS.map((c) =>
      c === "portkey" && !report.portkey.available ? "n/a" : num(r.values[c], r.unit),
    );
    const result =
      r.target === undefined ? "" : r.pass === undefined ? "?" : r.pass ? "pass" : "**miss**";
    out.push(
      `| ${r.scenario} | ${r.figure} (${r.unit}) | ${cells.join(" | ")} | ${r.ratios.map(ratioText).join(", ")} | ${r.target ?? ""} | ${result} |`,
    );
  }
  return out.join("\n");
}

export function renderSummary(report: Report): string {
  const m = report.machine;
  const lines = [
    `Machine: ${m.cpu}, ${m.cores} cores, Node ${m.node}, ${m.platform}; ${m.date.slice(0, 10)}; ${report.settings.mode} mode, ${report.settings.rounds} interleaved round(s), medians; ${report.durationSeconds.toFixed(0)} s.`,
    `Upstream bodies: tiny ${report.upstream.tinyBodyBytes} B; realistic ${(report.upstream.bigBodyBytes / 1e6).toFixed(2)} MB JSON (PNG ${(report.upstream.bigPngBytes / 1e6).toFixed(2)} MB).`,
    `Targets met: ${report.targetsMet} of ${report.targetsTotal}.`,
  ];
  const other = m.otherCpuShare;
  lines.push(
    `Other work on the machine: load average ${m.loadAverage[0].toFixed(1)} at start, ${m.loadAverage[1].toFixed(1)} at end; processes outside the bench used ${other === undefined ? "?" : `${(100 * other).toFixed(0)}%`} of the CPU during the run${other !== undefined && other > 0.05 ? " (the figures are noisier than on an idle machine)" : ""}.`,
  );
  if (!report.portkey.available) lines.push(`Portkey unavailable: ${report.portkey.reason}`);
  if (report.errors.length > 0)
    lines.push(`ERRORS (${report.errors.length}):`, ...report.errors.map((e) => `  - ${e}`));
  return lines.join("\n");
}
