/**
 * The bench's figures as rows (imagegate beside direct, the bare proxy and Portkey, with the
 * ratios and the issue's targets), rendered as a Markdown table.
 */
import type { BenchResult } from "./harness.ts";
import { COLUMNS, type Ratio, type Row, SCENARIO_TABLE, SCENARIOS } from "./scenarios.ts";

export type { Column, Ratio, Row } from "./scenarios.ts";

export interface Report extends BenchResult {
  rows: Row[];
  targetsMet: number;
  targetsTotal: number;
}

/** Each scenario's rows (scenarios.ts), in the table's order. */
export function buildRows(result: BenchResult): Row[] {
  const rows: Row[] = [];
  for (const id of SCENARIOS) {
    const s = result.scenarios[id];
    if (s) rows.push(...SCENARIO_TABLE[id].rows(s, result));
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
  const shared = report.sharedState;
  if (shared !== undefined && !shared.available && shared.reason !== "not requested")
    lines.push(`(h) and (i) not run: ${shared.reason}`);
  if (report.errors.length > 0)
    lines.push(`ERRORS (${report.errors.length}):`, ...report.errors.map((e) => `  - ${e}`));
  return lines.join("\n");
}
