/**
 * `npm run bench [-- options]`: runs the benchmark and prints the table on stdout (progress
 * on stderr). A full run of every scenario also writes bench/results/latest.json.
 *
 *   --quick            every scenario briefly; exits 1 only if something errors (never on timing)
 *   --only a,c         run only these scenarios ((e) rides on (a)'s rounds)
 *   --targets a,b      run only these targets (direct, bare, portkey, imagegate, imagegate-grpc, imagegate-stream, imagegate-edit,
 *                      imagegate-routed), e.g. to profile one of them
 *   --rounds N         interleaved rounds per scenario (full: 3)
 *   --no-portkey       do not start the Portkey baseline
 *   --no-h2load        (c) with autocannon and grpc-js even where h2load is installed
 *   --node-flags=F…   extra node flags for the gateway process (e.g. --node-flags=--js-base-64), to try one out
 *   --profile DIR      run the gateway with --cpu-prof, writing its profile into DIR
 *   --out FILE         write the JSON report here (default: latest.json for a full run of all)
 *
 * Exit status: 1 when any request failed or any process crashed, else 0.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  BenchError,
  type BenchSettings,
  FULL_SETTINGS,
  QUICK_SETTINGS,
  runBench,
} from "./harness.ts";
import { renderSummary, renderTable, toReport } from "./report.ts";
import { SCENARIOS, type ScenarioId, TARGETS, type TargetId } from "./scenarios.ts";

const HERE = path.dirname(fileURLToPath(import.meta.url));

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean" },
      only: { type: "string" },
      targets: { type: "string" },
      rounds: { type: "string" },
      "no-portkey": { type: "boolean" },
      "no-h2load": { type: "boolean" },
      profile: { type: "string" },
      "node-flags": { type: "string" },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(
      `usage: npm run bench -- [--quick] [--only ${SCENARIOS.join(",")}] [--targets LIST] [--rounds N] [--no-portkey] [--no-h2load] [--node-flags 'F…'] [--profile DIR] [--out FILE]\n`,
    );
    return 0;
  }
  const settings: BenchSettings = { ...(values.quick ? QUICK_SETTINGS : FULL_SETTINGS) };
  if (values.only !== undefined) {
    const only = values.only.split(",").map((s) => s.trim()) as ScenarioId[];
    const bad = only.filter((s) => !SCENARIOS.includes(s));
    if (bad.length > 0)
      throw new BenchError(
        `--only: unknown scenario(s) ${bad.join(", ")}; known: ${SCENARIOS.join(", ")}`,
      );
    settings.only = only;
  }
  if (values.targets !== undefined) {
    const targets = values.targets.split(",").map((s) => s.trim()) as TargetId[];
    const bad = targets.filter((t) => !TARGETS.includes(t));
    if (bad.length > 0)
      throw new BenchError(
        `--targets: unknown target(s) ${bad.join(", ")}; known: ${TARGETS.join(", ")}`,
      );
    settings.targets = targets;
  }
  if (values.rounds !== undefined) {
    const n = Number(values.rounds);
    if (!Number.isInteger(n) || n < 1) throw new BenchError("--rounds must be a positive integer");
    settings.rounds = n;
  }
  if (values["no-portkey"]) settings.portkey = false;
  if (values["no-h2load"]) settings.h2load = false;
  const nodeArgs = values["node-flags"]?.split(/\s+/).filter((f) => f !== "") ?? [];
  if (values.profile !== undefined) {
    const dir = path.resolve(values.profile);
    mkdirSync(dir, { recursive: true });
    nodeArgs.push("--cpu-prof", `--cpu-prof-dir=${dir}`);
  }
  if (nodeArgs.length > 0) settings.gatewayNodeArgs = nodeArgs;

  const report = toReport(await runBench(settings));
  process.stdout.write(`\n${renderTable(report)}\n\n${renderSummary(report)}\n`);

  const complete =
    settings.mode === "full" &&
    settings.only === undefined &&
    settings.targets === undefined &&
    nodeArgs.length === 0;
  const out = values.out ?? (complete ? path.join(HERE, "results/latest.json") : undefined);
  if (out !== undefined) {
    mkdirSync(path.dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
    process.stderr.write(`wrote ${path.relative(process.cwd(), out)}\n`);
  }
  return report.errors.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(
      `bench failed: ${e instanceof BenchError ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
    );
    process.exit(1);
  },
);
