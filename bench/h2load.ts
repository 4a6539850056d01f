/**
 * nghttp2's h2load (Debian: nghttp2-client) as a load generator: one C program for both
 * HTTP/1.1 and HTTP/2, so REST and gRPC meet a client that costs the same per byte. The
 * JavaScript clients do not: grpc-js spends 2.5–3.4× autocannon's CPU per 1.45 MB answer,
 * and on two cores a client's CPU is taken from the gateway's (bench/PROFILE.md), so with
 * them the REST/gRPC ratio measured the clients as much as the gateway.
 *
 * Closed-loop like the others: `connections` connections, each with `streams` requests in
 * flight, `amount` requests in all. Latencies come from h2load's per-request log.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { isInstalled } from "../test/support/test-programs.ts";
import { type LoadResult, summarise } from "./load.ts";

export const H2LOAD = "h2load";

/** Whether h2load is on PATH. */
export function h2loadInstalled(env: NodeJS.ProcessEnv = process.env): boolean {
  return isInstalled(H2LOAD, env);
}

export interface H2LoadOptions {
  url: string;
  /** HTTP/1.1 (one request at a time per connection) or HTTP/2 (prior knowledge, h2c). */
  protocol: "http/1.1" | "h2";
  headers: Record<string, string>;
  /** The same bytes for every request. */
  body: string | Buffer;
  connections: number;
  /** Requests in flight per connection, HTTP/2 only (HTTP/1.1 has one; default 1). */
  streams?: number;
  /** Requests in all; at least connections × streams. */
  amount: number;
  maxSeconds: number;
  /**
   * The smallest answer body that counts as a success. A gRPC error is an HTTP 200 whose
   * status is in the trailers, which h2load does not read; an error's body is empty, an
   * image's is the image, so the answers' bytes tell them apart.
   */
  minBodyBytes?: number;
}

/** `h2load` with the options' flags (the body file and log file given). */
export function h2loadArgs(o: H2LoadOptions, bodyFile: string, logFile: string): string[] {
  const streams = o.protocol === "h2" ? (o.streams ?? 1) : 1;
  const args = [
    "-n",
    String(Math.max(o.amount, o.connections * streams)),
    "-c",
    String(o.connections),
    "-m",
    String(streams),
    "-t",
    "1",
    "-d",
    bodyFile,
    `--log-file=${logFile}`,
  ];
  for (const [name, value] of Object.entries(o.headers)) args.push("-H", `${name}: ${value}`);
  // HTTP/2: 16 MiB stream and 64 MiB connection windows, as the grpc-js client asks for.
  args.push(...(o.protocol === "h2" ? ["-w", "24", "-W", "26"] : ["--h1"]), o.url);
  return args;
}

/** What the load result takes from h2load's closing report (the log gives the rest). */
export interface H2LoadSummary {
  errored: number;
  timeout: number;
  /** Response body bytes (HTTP/2 DATA frames; HTTP/1.1 bodies). */
  dataBytes: number;
}

/** The counters of h2load's closing report. */
export function parseH2LoadReport(stdout: string): H2LoadSummary {
  const req = /requests: .*?, (\d+) errored, (\d+) timeout/.exec(stdout);
  const traffic = /traffic: .*?, [^,]*\((\d+)\) data/.exec(stdout);
  if (!req || !traffic) throw new Error(`h2load: no report in its output:\n${stdout.slice(-600)}`);
  return { errored: Number(req[1]), timeout: Number(req[2]), dataBytes: Number(traffic[1]) };
}

export interface H2LoadLogEntry {
  /** When the request was sent, µs since the epoch. */
  startUs: number;
  status: number;
  durationUs: number;
}

/** h2load's `--log-file`: one line per finished request, start (µs), status, duration (µs). */
export function parseH2LoadLog(text: string): H2LoadLogEntry[] {
  const out: H2LoadLogEntry[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const fields = line.split("\t").map(Number);
    const [start, status, duration] = fields;
    if (fields.length !== 3 || !fields.every(Number.isFinite))
      throw new Error(`h2load log: unexpected line ${JSON.stringify(line)}`);
    out.push({ startUs: start!, status: status!, durationUs: duration! });
  }
  return out;
}

/** A LoadResult from h2load's report and log (see `minBodyBytes`). */
export function h2loadResult(
  summary: H2LoadSummary,
  log: readonly H2LoadLogEntry[],
  minBodyBytes: number | undefined,
  timedOut: boolean,
): LoadResult {
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  for (const e of log) {
    first = Math.min(first, e.startUs);
    last = Math.max(last, e.startUs + e.durationUs);
    if (e.status >= 200 && e.status < 300) latencies.push(e.durationUs / 1000);
    else statuses[e.status] = (statuses[e.status] ?? 0) + 1;
  }
  let ok = latencies.length;
  let failed = log.length - ok;
  let firstError: string | undefined =
    summary.errored + summary.timeout > 0
      ? `h2load: ${summary.errored} errored, ${summary.timeout} timed out`
      : undefined;
  if (minBodyBytes !== undefined && ok > 0 && summary.dataBytes < ok * minBodyBytes) {
    // Some 200s carried no image: count as failed as many as the missing bytes allow.
    const short = ok - Math.floor(summary.dataBytes / minBodyBytes);
    ok -= short;
    failed += short;
    statuses["short answer"] = short;
    firstError ??= `${short} answers shorter than ${minBodyBytes} bytes (an error in the trailers?)`;
  }
  return summarise(latencies.slice(0, ok), {
    ok,
    failed,
    errors: summary.errored + summary.timeout,
    statuses,
    firstError,
    elapsedMs: log.length > 0 ? (last - first) / 1000 : 0,
    bytes: summary.dataBytes,
    timedOut,
  });
}

/** Runs h2load once; its CPU time lands in this process's children's (see `childrenCpuMs`). */
export async function h2loadLoad(o: H2LoadOptions): Promise<LoadResult> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "imagegate-h2load-"));
  try {
    const bodyFile = path.join(dir, "body");
    const logFile = path.join(dir, "log");
    writeFileSync(bodyFile, o.body);
    const child = spawn(H2LOAD, h2loadArgs(o, bodyFile, logFile), {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, o.maxSeconds * 1000);
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on("error", reject);
      child.on("close", resolve);
    });
    clearTimeout(timer);
    const log = parseH2LoadLog(readLog(logFile));
    if (timedOut) {
      // Killed: no report; what the log holds is what finished.
      return h2loadResult({ errored: 0, timeout: 0, dataBytes: 0 }, log, undefined, true);
    }
    if (code !== 0)
      throw new Error(`h2load exited with ${code}: ${(stderr || stdout).slice(-600)}`);
    return h2loadResult(parseH2LoadReport(stdout), log, o.minBodyBytes, false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function readLog(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}
