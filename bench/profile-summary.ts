/**
 * Summarises a V8 CPU profile (`node --cpu-prof`, e.g. from `npm run bench -- --profile DIR`):
 * where the busy time goes, by function (self and total time) and by package.
 *
 *   node bench/profile-summary.ts DIR/CPU.*.cpuprofile [--top 25] [--requests N] [--callers NAME]
 *
 * With --requests, times are also given per request. With --callers, the call paths (leaf
 * first) that lead to the function NAME, by its self time.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const IDLE = new Set(["(idle)", "(program)"]);
/** Node's entry points for an incoming HTTP/1.1 request or HTTP/2 stream. */
const REQUEST_FRAMES = new Set(["parserOnIncoming", "onSessionHeaders", "onServerStream"]);

function shortUrl(url: string): string {
  if (url === "") return "";
  const clean = url.replace(/^file:\/\//, "");
  const nm = clean.lastIndexOf("node_modules/");
  if (nm >= 0) return clean.slice(nm + "node_modules/".length);
  const src = clean.indexOf("/src/");
  if (src >= 0) return clean.slice(src + 1);
  return clean.startsWith("node:") ? clean : path.basename(clean);
}

/** Which package or part of the program a frame belongs to. */
export function category(frame: CallFrame): string {
  const url = frame.url.replace(/^file:\/\//, "");
  if (url === "") return frame.functionName.startsWith("(") ? frame.functionName : "(native)";
  if (url.startsWith("node:"))
    return `node:${url.slice(5).split("/")[0] === "internal" ? url.slice(14).split("/")[0] : url.slice(5)}`;
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const rest = url.slice(nm + "node_modules/".length).split("/");
    return rest[0]!.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  const src = url.indexOf("/src/");
  if (src >= 0)
    return url
      .slice(src + 1)
      .split("/")
      .slice(0, 2)
      .join("/");
  return path.basename(url);
}

function frameKey(f: CallFrame): string {
  return `${f.functionName || "(anonymous)"} ${shortUrl(f.url)}${f.url ? `:${f.lineNumber + 1}` : ""}`;
}

export interface ProfileSummary {
  totalMs: number;
  /** Busy time serving (startup excluded). */
  busyMs: number;
  /** Busy time before the first request (loading and starting the program). */
  startupMs: number;
  self: [string, number][];
  total: [string, number][];
  categories: [string, number][];
}

/** Self time of the samples whose leaf function is `name`, grouped by their call path (leaf first). */
export function callers(profile: CpuProfile, name: string, depth = 8): [string, number][] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const paths = new Map<string, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!);
    if (!node || node.callFrame.functionName !== name) continue;
    const frames: string[] = [];
    for (
      let id: number | undefined = node.id;
      id !== undefined && frames.length < depth;
      id = parent.get(id)
    ) {
      frames.push(frameKey(byId.get(id)!.callFrame));
    }
    const key = frames.join(" ← ");
    paths.set(key, (paths.get(key) ?? 0) + (profile.timeDeltas[i + 1] ?? 0) / 1000);
  }
  return [...paths].sort((a, b) => b[1] - a[1]);
}

export function summarise(profile: CpuProfile): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const cats = new Map<string, number>();
  let busy = 0;
  let all = 0;
  let startup = 0;
  // Startup is everything before the first sample taken while serving a request.
  const serving = (id: number): boolean => {
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      const f = byId.get(n)!.callFrame;
      if (REQUEST_FRAMES.has(f.functionName) || f.url.includes("handler-factory")) return true;
    }
    return false;
  };
  const firstServing = profile.samples.findIndex((id) => serving(id));
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = (profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0) / 1000;
    const node = byId.get(profile.samples[i]!);
    if (!node) continue;
    all += dt;
    if (IDLE.has(node.callFrame.functionName)) continue;
    if (i < firstServing || firstServing < 0) {
      startup += dt;
      continue;
    }
    busy += dt;
    const key = frameKey(node.callFrame);
    self.set(key, (self.get(key) ?? 0) + dt);
    const cat = category(node.callFrame);
    cats.set(cat, (cats.get(cat) ?? 0) + dt);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const k = frameKey(byId.get(id)!.callFrame);
      if (seen.has(k)) continue;
      seen.add(k);
      total.set(k, (total.get(k) ?? 0) + dt);
    }
  }
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  return {
    totalMs: all,
    busyMs: busy,
    startupMs: startup,
    self: sorted(self),
    total: sorted(total).filter(([k]) => !k.startsWith("(root)")),
    categories: sorted(cats),
  };
}

function table(
  title: string,
  rows: [string, number][],
  busy: number,
  top: number,
  requests: number | undefined,
): string {
  const head = requests
    ? "| ms | % of busy | µs/request | |\n|--:|--:|--:|---|"
    : "| ms | % of busy | |\n|--:|--:|---|";
  const lines = rows.slice(0, top).map(([k, ms]) => {
    const per = requests ? ` ${((ms * 1000) / requests).toFixed(1)} |` : "";
    return `| ${ms.toFixed(0)} | ${((100 * ms) / busy).toFixed(1)} |${per} \`${k}\` |`;
  });
  return `### ${title}\n\n${head}\n${lines.join("\n")}\n`;
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      top: { type: "string" },
      requests: { type: "string" },
      callers: { type: "string" },
      depth: { type: "string" },
    },
  });
  const file = positionals[0];
  if (file === undefined)
    throw new Error(
      "usage: node bench/profile-summary.ts FILE.cpuprofile [--top N] [--requests N]",
    );
  const top = Number(values.top ?? 25);
  const requests = values.requests === undefined ? undefined : Number(values.requests);
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  if (values.callers !== undefined) {
    for (const [path, ms] of callers(profile, values.callers, Number(values.depth ?? 8)).slice(
      0,
      top,
    ))
      process.stdout.write(`${ms.toFixed(0)} ms  ${path}\n`);
    return;
  }
  const s = summarise(profile);
  const out = [
    `Profile ${path.basename(file)}: ${(s.totalMs / 1000).toFixed(1)} s sampled, ${(s.startupMs / 1000).toFixed(1)} s starting up (left out below), ${(s.busyMs / 1000).toFixed(1)} s busy serving${requests ? `, ${requests} requests: ${((s.busyMs * 1000) / requests).toFixed(0)} µs busy per request` : ""}.\n`,
    table("By package (self time)", s.categories, s.busyMs, top, requests),
    table("Top functions by self time", s.self, s.busyMs, top, requests),
    table("Top functions by total time (self + callees)", s.total, s.busyMs, top, requests),
  ];
  process.stdout.write(`${out.join("\n")}\n`);
}

if (import.meta.main) main();
