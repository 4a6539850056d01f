/**
 * The benchmark's scenarios as data: for each, what one request is, which targets (the
 * gateway and its baselines) it runs against, how many requests at which concurrency in full
 * and quick mode, and which rows of the README's table it yields (figures, ratios, the
 * issue's targets). harness.ts runs every row the same way; report.ts renders the rows.
 *
 * Adding a scenario (shared state, say) is adding an id and a row here, and,
 * when its requests are new, the request shape and the targets that send it (harness.ts).
 */

/** The systems under test: the gateway over each protocol or setup, and the baselines. */
export const TARGETS = [
  "direct",
  "bare",
  "portkey",
  "imagegate",
  "imagegate-grpc",
  "imagegate-routed",
  "imagegate-stream",
  "imagegate-edit",
  "imagegate-keyed",
  "imagegate-shared",
] as const;
export type TargetId = (typeof TARGETS)[number];

export const TARGET_LABELS: Record<TargetId, string> = {
  direct: "direct",
  bare: "bare proxy",
  portkey: "Portkey",
  imagegate: "imagegate",
  "imagegate-grpc": "imagegate gRPC",
  "imagegate-routed": "imagegate, 8 deployments",
  "imagegate-stream": "imagegate streamed",
  "imagegate-edit": "imagegate edit",
  "imagegate-keyed": "imagegate embedded, budgeted key",
  "imagegate-shared": "imagegate Redis + Postgres, budgeted key",
};

/** The baselines every scenario measures the gateway against (Portkey when it runs). */
const BASELINES = ["direct", "bare", "portkey"] as const satisfies readonly TargetId[];

export type ScenarioId = "a" | "b" | "c" | "d" | "e" | "f" | "g" | "h" | "i";

/**
 * Which of the emulator's upstreams answers: a 1×1 PNG, a 1024x1024 one, slowly, or a
 * GPT-image model that streams the 1024x1024 one (emulator.ts).
 */
export type Upstream = "tiny" | "big" | "slow" | "stream";

/** What one request is; the targets turn it into their own calls (harness.ts). */
export interface RequestShape {
  upstream: Upstream;
  /** The OpenAI `size` asked for. */
  size: string;
  /** Partial images a streamed request asks for (`imagegate-stream`). */
  partialImages?: number;
  /** The size of the image an edit uploads (`imagegate-edit`), bytes. */
  uploadBytes?: number;
}

export interface RunPlan {
  connections: number;
  /** Requests per measured run (per target per round). */
  requests: number;
  /** Requests before the rounds, per target (0: only the one correctness check). */
  warmup: number;
}

/** One measured run of one target. */
export interface RoundMeasure {
  round: number;
  ok: number;
  failed: number;
  errors: number;
  elapsedMs: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time of the system under test per ok request (direct: the emulator's). */
  cpuMsPerReq: number | undefined;
  /** Of the upstream emulator, per ok request. */
  upstreamCpuMsPerReq: number | undefined;
  /** Of the load generator (the bench's own process: autocannon, grpc-js, undici), per ok request. */
  clientCpuMsPerReq: number | undefined;
  peakRssBytes: number | undefined;
  timedOut: boolean;
  /** Streams: median time to the first event, ms. */
  firstEventP50Ms?: number;
}

export interface TargetSummary {
  rounds: RoundMeasure[];
  rps: number;
  p50Ms: number;
  p99Ms: number;
  cpuMsPerReq: number | undefined;
  /** Of the load generator, per ok request (median over rounds). */
  clientCpuMsPerReq?: number;
  peakRssBytes: number | undefined;
  /** Streams: median over rounds of the median time to the first event. */
  firstEventP50Ms?: number;
  /** With a latency reference: median over rounds of this target's p50/p99 minus the reference's in the same round. */
  addedP50Ms?: number;
  addedP99Ms?: number;
}

export interface ScenarioResult {
  id: ScenarioId;
  title: string;
  connections: number;
  requestsPerRun: number;
  /** Which program sent the requests: h2load, or the JavaScript clients (autocannon, grpc-js, undici). */
  loadGenerator: "h2load" | "javascript";
  targets: Partial<Record<TargetId, TargetSummary>>;
}

/** What a title or a row may depend on besides the scenario's own figures. */
export interface ScenarioContext {
  upstream: { bigBodyBytes: number; slowMs: number };
  /** Each process's RSS once started and idle, before any request (direct: the emulator's). */
  idleRssBytes?: Partial<Record<Column, number>>;
}

export type Column = "imagegate" | "direct" | "bare" | "portkey";
export const COLUMNS: readonly Column[] = ["imagegate", "direct", "bare", "portkey"];

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
  /** The target for this row, as text, and whether the figures meet it. */
  target?: string;
  pass?: boolean;
}

export interface ScenarioSpec {
  /** The progress line and the JSON's title. */
  title(plan: RunPlan, ctx: ScenarioContext): string;
  request: RequestShape;
  /** In the order of the first round (later rounds rotate it). */
  targets: readonly TargetId[];
  /** Per round, every other target's p50/p99 minus this one's: addedP50Ms, addedP99Ms. */
  latencyReference?: TargetId;
  /**
   * `h2load`: every target of the scenario, REST and gRPC alike, meets nghttp2's h2load
   * (bench/h2load.ts) when it is installed, instead of autocannon and grpc-js.
   */
  loadGenerator?: "h2load";
  /**
   * The gateway's targets run on gateways started for this scenario alone, one per protocol
   * (REST, gRPC), and stopped after it: as the bare proxy has a process per upstream, each
   * peak RSS is that protocol's own, not what earlier scenarios or the other protocol left.
   */
  ownGateways?: boolean;
  /** The README table's rows from the scenario's figures. */
  rows(s: ScenarioResult, ctx: ScenarioContext): Row[];
}

/** A scenario with runs of its own. */
export interface MeasuredSpec extends ScenarioSpec {
  plans: { full: RunPlan; quick: RunPlan };
}

/**
 * A scenario measured in another's rounds (same request, same plan), from its own targets
 * there: they run with the host's targets, and its result is theirs, apart.
 */
export interface RiderSpec extends ScenarioSpec {
  ridesOn: ScenarioId;
}

const MB = 1024 * 1024;

export function ratio(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0)
    return undefined;
  return a / b;
}

/** (c)'s gRPC rows: the ratio of a figure to REST's; none on REST's own row. */
function againstRest(
  id: TargetId,
  label: string,
  figure: number | undefined,
  rest: number | undefined,
): [string, number | undefined][] {
  return id === "imagegate" ? [] : [[label, ratio(figure, rest)]];
}

function ratios(...pairs: [string, number | undefined][]): Ratio[] {
  const out: Ratio[] = [];
  for (const [label, value] of pairs)
    if (value !== undefined && Number.isFinite(value)) out.push({ label, value });
  return out;
}

/** The table's columns for one figure; the imagegate column shows `imagegate`. */
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

/** A figure's row with imagegate compared with each baseline column, `× direct` etc. */
function againstBaselines(
  v: Partial<Record<Column, number>>,
  columns: readonly [Column, string][],
): [string, number | undefined][] {
  return columns.map(([c, label]) => [label, ratio(v.imagegate, v[c])]);
}

const THROUGHPUT_RATIOS: readonly [Column, string][] = [
  ["direct", "× direct"],
  ["bare", "× bare"],
  ["portkey", "× Portkey"],
];
const COST_RATIOS: readonly [Column, string][] = [
  ["bare", "× bare"],
  ["portkey", "× Portkey"],
];
const ADDED_RATIOS: readonly [Column, string][] = [
  ["bare", "× bare proxy's"],
  ["portkey", "× Portkey's"],
];

/** The gateway's two protocols in (c), for the RSS and CPU rows. */
const PROTOCOLS = [
  ["imagegate", "REST"],
  ["imagegate-grpc", "gRPC"],
] as const;

/** Scenario (f)'s partial images per stream. */
const TABLE_F_PARTIALS = 2;

/** Scenario (g)'s upload: one PNG of about 4 MB per edit. */
const TABLE_G_UPLOAD_BYTES = 4_000_000;

/** A row's two figures: the target's in the imagegate column, the comparison's in direct. */
function pair(a: number | undefined, b: number | undefined): Partial<Record<Column, number>> {
  const out: Partial<Record<Column, number>> = {};
  if (a !== undefined && Number.isFinite(a)) out.imagegate = a;
  if (b !== undefined && Number.isFinite(b)) out.direct = b;
  return out;
}

const TABLE = {
  a: {
    title: (p) => `tiny image, concurrency ${p.connections}: latency`,
    request: { upstream: "tiny", size: "256x256" },
    targets: [...BASELINES, "imagegate"],
    latencyReference: "direct",
    plans: {
      full: { connections: 1, requests: 2000, warmup: 300 },
      quick: { connections: 1, requests: 20, warmup: 0 },
    },
    rows(s) {
      const sc = `(a) tiny, c=${s.connections}`;
      const v = values(s, (t) => t.p50Ms);
      const added = values(s, (t) => t.addedP50Ms);
      const added99 = values(s, (t) => t.addedP99Ms);
      const ig = added.imagegate;
      const row = { unit: "ms", imagegateTarget: "imagegate" } as const;
      return [
        {
          scenario: sc,
          figure: "p50 latency",
          ...row,
          values: v,
          ratios: ratios(["× direct", ratio(v.imagegate, v.direct)]),
        },
        {
          scenario: sc,
          figure: "added p50 latency over direct",
          ...row,
          values: added,
          ratios: ratios(...againstBaselines(added, ADDED_RATIOS)),
          target: "≤ 0.25 ms",
          ...(ig !== undefined ? { pass: ig <= 0.25 } : {}),
        },
        {
          scenario: sc,
          figure: "added p99 latency over direct",
          ...row,
          values: added99,
          ratios: ratios(...againstBaselines(added99, ADDED_RATIOS)),
        },
      ];
    },
  },
  b: {
    title: (p) => `tiny image, concurrency ${p.connections}: throughput`,
    request: { upstream: "tiny", size: "256x256" },
    targets: [...BASELINES, "imagegate"],
    plans: {
      full: { connections: 64, requests: 4000, warmup: 500 },
      quick: { connections: 64, requests: 128, warmup: 0 },
    },
    rows(s) {
      const sc = `(b) tiny, c=${s.connections}`;
      const v = values(s, (t) => t.rps);
      const r = ratio(v.imagegate, v.bare);
      const cpu = values(s, (t) => t.cpuMsPerReq);
      return [
        {
          scenario: sc,
          figure: "throughput",
          unit: "rps",
          imagegateTarget: "imagegate",
          values: v,
          ratios: ratios(...againstBaselines(v, THROUGHPUT_RATIOS)),
          target: "≥ 0.7× bare",
          ...(r !== undefined ? { pass: r >= 0.7 } : {}),
        },
        {
          scenario: sc,
          figure: "CPU per request (direct: the emulator's)",
          unit: "ms",
          imagegateTarget: "imagegate",
          values: cpu,
          ratios: ratios(...againstBaselines(cpu, COST_RATIOS)),
        },
      ];
    },
  },
  c: {
    title: (p, ctx) =>
      `1024x1024 PNG (${(ctx.upstream.bigBodyBytes / 1e6).toFixed(1)} MB JSON), concurrency ${p.connections}: throughput and peak RSS`,
    request: { upstream: "big", size: "1024x1024" },
    targets: [...BASELINES, "imagegate", "imagegate-grpc"],
    loadGenerator: "h2load",
    ownGateways: true,
    plans: {
      // A longer warm-up: its gateways are fresh processes (ownGateways), and a fresh one
      // spends ~1 ms more CPU per answer for its first few hundred (JIT, heap growth).
      full: { connections: 16, requests: 300, warmup: 200 },
      quick: { connections: 16, requests: 32, warmup: 0 },
    },
    rows(s, ctx) {
      const sc = `(c) 2 MB, c=${s.connections}${s.loadGenerator === "h2load" ? ", h2load" : ""}`;
      const rows: Row[] = [];
      const v = values(s, (t) => t.rps);
      const rBare = ratio(v.imagegate, v.bare);
      const rPk = ratio(v.imagegate, v.portkey);
      rows.push({
        scenario: sc,
        figure: "throughput, REST",
        unit: "rps",
        imagegateTarget: "imagegate",
        values: v,
        ratios: ratios(...againstBaselines(v, THROUGHPUT_RATIOS)),
        target: "≥ 0.7× bare, ≥ 10× Portkey",
        ...(rBare !== undefined ? { pass: rBare >= 0.7 && (rPk === undefined || rPk >= 10) } : {}),
      });
      if (s.targets["imagegate-grpc"]) {
        const grpc = values(s, (t) => t.rps, "imagegate-grpc").imagegate;
        const rRest = ratio(grpc, v.imagegate);
        rows.push({
          scenario: sc,
          figure: "throughput, gRPC (raw bytes)",
          unit: "rps",
          imagegateTarget: "imagegate-grpc",
          values: { imagegate: grpc } as Partial<Record<Column, number>>,
          ratios: ratios(
            ["× REST", rRest],
            ...againstBaselines({ ...v, imagegate: grpc }, COST_RATIOS),
          ),
          target: "≥ 1× REST",
          ...(rRest !== undefined ? { pass: rRest >= 1 } : {}),
        });
      }
      const idle = ctx.idleRssBytes;
      if (idle?.imagegate !== undefined) {
        const mb = Object.fromEntries(
          Object.entries(idle).flatMap(([c, b]) =>
            c === "direct" || b === undefined ? [] : [[c, b / MB]],
          ),
        ) as Partial<Record<Column, number>>;
        rows.push({
          scenario: sc,
          figure: "idle RSS, started and before any request",
          unit: "MB",
          imagegateTarget: "imagegate",
          values: mb,
          ratios: ratios(...againstBaselines(mb, COST_RATIOS)),
        });
      }
      for (const [id, label] of PROTOCOLS) {
        if (!s.targets[id]) continue;
        const rss = values(
          s,
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
          ratios: ratios(...againstBaselines(rss, COST_RATIOS)),
          target: "≤ 1.5× bare",
          ...(r !== undefined ? { pass: r <= 1.5 } : {}),
        });
      }
      const restCpu = values(s, (t) => t.cpuMsPerReq).imagegate;
      for (const [id, label] of PROTOCOLS) {
        if (!s.targets[id]) continue;
        const cpu = values(s, (t) => t.cpuMsPerReq, id);
        rows.push({
          scenario: sc,
          figure: `CPU per request, imagegate over ${label} (direct: the emulator's)`,
          unit: "ms",
          imagegateTarget: id,
          values: cpu,
          ratios: ratios(
            ...againstRest(id, "× REST", cpu.imagegate, restCpu),
            ...againstBaselines(cpu, COST_RATIOS),
          ),
        });
      }
      // The load generator shares the machine's cores with the gateway: a client that costs
      // more per answer leaves the gateway less CPU (see bench/PROFILE.md).
      const restClient = values(s, (t) => t.clientCpuMsPerReq).imagegate;
      for (const [id, label] of PROTOCOLS) {
        if (!s.targets[id]) continue;
        const cpu = values(s, (t) => t.clientCpuMsPerReq, id);
        if (cpu.imagegate === undefined) continue;
        rows.push({
          scenario: sc,
          figure: `CPU per request of the load generator, ${label} (${s.loadGenerator === "h2load" ? "h2load" : id === "imagegate" ? "autocannon" : "grpc-js"})`,
          unit: "ms",
          imagegateTarget: id,
          values: { imagegate: cpu.imagegate } as Partial<Record<Column, number>>,
          ratios: ratios(...againstRest(id, "× REST's", cpu.imagegate, restClient)),
        });
      }
      return rows;
    },
  },
  d: {
    title: (p, ctx) =>
      `upstream taking ${ctx.upstream.slowMs} ms, concurrency ${p.connections}: throughput vs ideal`,
    request: { upstream: "slow", size: "256x256" },
    targets: [...BASELINES, "imagegate"],
    plans: {
      full: { connections: 512, requests: 3 * 512, warmup: 512 },
      quick: { connections: 512, requests: 512, warmup: 0 },
    },
    rows(s, ctx) {
      const ideal = (s.connections * 1000) / ctx.upstream.slowMs;
      const v = values(s, (t) => t.rps);
      const r = ratio(v.imagegate, ideal);
      return [
        {
          scenario: `(d) ${ctx.upstream.slowMs} ms upstream, c=${s.connections}`,
          figure: `throughput (ideal ${ideal.toFixed(0)})`,
          unit: "rps",
          imagegateTarget: "imagegate",
          values: v,
          ratios: ratios(["× ideal", r], ...againstBaselines(v, THROUGHPUT_RATIOS)),
          target: "≥ 0.95× ideal",
          ...(r !== undefined ? { pass: r >= 0.95 } : {}),
        },
      ];
    },
  },
  e: {
    title: () =>
      "router overhead: 8 weighted deployments and a fallback group vs one deployment, tiny, concurrency 1",
    request: { upstream: "tiny", size: "256x256" },
    ridesOn: "a",
    targets: ["imagegate", "imagegate-routed"],
    latencyReference: "imagegate",
    rows(s) {
      const one = s.targets.imagegate;
      const routed = s.targets["imagegate-routed"];
      if (!one || !routed) return [];
      return [
        {
          scenario: `(e) router, tiny, c=${s.connections}`,
          figure: "p50 latency: 8 deployments + fallbacks (one deployment in the direct column)",
          unit: "ms",
          imagegateTarget: "imagegate-routed",
          values: { imagegate: routed.p50Ms, direct: one.p50Ms },
          ratios: ratios(
            ["× one deployment", ratio(routed.p50Ms, one.p50Ms)],
            ["ms added", routed.addedP50Ms],
          ),
        },
      ];
    },
  },
  f: {
    title: (p) =>
      `1024x1024 GPT-image streamed with 2 partial images (3 events of 1.9 MB) against the same image unstreamed, concurrency ${p.connections}`,
    request: { upstream: "stream", size: "1024x1024", partialImages: TABLE_F_PARTIALS },
    targets: ["imagegate", "imagegate-stream"],
    plans: {
      full: { connections: 16, requests: 200, warmup: 32 },
      quick: { connections: 16, requests: 32, warmup: 0 },
    },
    rows(s) {
      const whole = s.targets.imagegate;
      const streamed = s.targets["imagegate-stream"];
      if (!whole || !streamed) return [];
      const sc = `(f) stream, c=${s.connections}`;
      const partials = TABLE_F_PARTIALS;
      const row = { scenario: sc, imagegateTarget: "imagegate-stream" } as const;
      const mb = (b: number | undefined) => (b === undefined ? undefined : b / MB);
      return [
        {
          ...row,
          figure: "throughput, streamed (unstreamed in the direct column)",
          unit: "rps",
          values: pair(streamed.rps, whole.rps),
          ratios: ratios(
            ["× unstreamed", ratio(streamed.rps, whole.rps)],
            // A stream carries its partial images too: images written per second.
            ["× unstreamed in images sent", ratio(streamed.rps * (partials + 1), whole.rps)],
          ),
        },
        {
          ...row,
          figure:
            "p50 time to the first event, streamed (unstreamed: p50 time to the whole answer)",
          unit: "ms",
          values: pair(streamed.firstEventP50Ms, whole.p50Ms),
          ratios: ratios(["× unstreamed answer", ratio(streamed.firstEventP50Ms, whole.p50Ms)]),
        },
        {
          ...row,
          figure: "p50 time to the last event, streamed (unstreamed: to the whole answer)",
          unit: "ms",
          values: pair(streamed.p50Ms, whole.p50Ms),
          ratios: ratios(["× unstreamed", ratio(streamed.p50Ms, whole.p50Ms)]),
        },
        {
          ...row,
          figure: "peak RSS, streamed (unstreamed in the direct column)",
          unit: "MB",
          values: pair(mb(streamed.peakRssBytes), mb(whole.peakRssBytes)),
          ratios: ratios([
            "× unstreamed",
            ratio(mb(streamed.peakRssBytes), mb(whole.peakRssBytes)),
          ]),
        },
        {
          ...row,
          figure: "CPU per request, streamed (unstreamed in the direct column)",
          unit: "ms",
          values: pair(streamed.cpuMsPerReq, whole.cpuMsPerReq),
          ratios: ratios(["× unstreamed", ratio(streamed.cpuMsPerReq, whole.cpuMsPerReq)]),
        },
      ];
    },
  },
  g: {
    title: (p) =>
      `edits uploading a ${(TABLE_G_UPLOAD_BYTES / 1e6).toFixed(0)} MB PNG (multipart) against the same 1024x1024 GPT-image answer generated, concurrency ${p.connections}`,
    request: { upstream: "stream", size: "1024x1024", uploadBytes: TABLE_G_UPLOAD_BYTES },
    targets: ["imagegate", "imagegate-edit"],
    plans: {
      full: { connections: 16, requests: 200, warmup: 32 },
      quick: { connections: 16, requests: 32, warmup: 0 },
    },
    rows(s) {
      const generated = s.targets.imagegate;
      const edited = s.targets["imagegate-edit"];
      if (!generated || !edited) return [];
      const row = {
        scenario: `(g) edit, ${(TABLE_G_UPLOAD_BYTES / 1e6).toFixed(0)} MB up, c=${s.connections}`,
        imagegateTarget: "imagegate-edit",
      } as const;
      const mb = (b: number | undefined) => (b === undefined ? undefined : b / MB);
      return [
        {
          ...row,
          figure: "throughput, edits (generations in the direct column)",
          unit: "rps",
          values: pair(edited.rps, generated.rps),
          ratios: ratios(["× generations", ratio(edited.rps, generated.rps)]),
        },
        {
          ...row,
          figure: "p50 latency, edits (generations in the direct column)",
          unit: "ms",
          values: pair(edited.p50Ms, generated.p50Ms),
          ratios: ratios(["× generations", ratio(edited.p50Ms, generated.p50Ms)]),
        },
        {
          ...row,
          figure: "peak RSS, edits (generations in the direct column)",
          unit: "MB",
          values: pair(mb(edited.peakRssBytes), mb(generated.peakRssBytes)),
          ratios: ratios([
            "× generations",
            ratio(mb(edited.peakRssBytes), mb(generated.peakRssBytes)),
          ]),
        },
        {
          ...row,
          figure: "CPU per request, edits (generations in the direct column)",
          unit: "ms",
          values: pair(edited.cpuMsPerReq, generated.cpuMsPerReq),
          ratios: ratios(["× generations", ratio(edited.cpuMsPerReq, generated.cpuMsPerReq)]),
        },
      ];
    },
  },
  h: sharedStateRider("a"),
  i: sharedStateRider("b"),
} satisfies Record<ScenarioId, MeasuredSpec | RiderSpec>;

/**
 * Scenarios (h) and (i): the gateway with `redis_url` and `database_url` (replicas' shared
 * state) against the embedded mode (memory and SQLite), both with a key that has an
 * rpm_limit and a budget, so that every request takes the key's rate, holds and settles
 * its budget and reaches the router's state, in (a)'s rounds at concurrency 1 (added p50
 * latency) and (b)'s at concurrency 64 (throughput). Without redis-server or PostgreSQL
 * their targets do not start and the bench says so in one line.
 */
function sharedStateRider(host: "a" | "b"): RiderSpec {
  return {
    title: (p) =>
      `shared state (Redis + Postgres) against embedded (memory + SQLite), budgeted key, tiny, concurrency ${p.connections}`,
    request: { upstream: "tiny", size: "256x256" },
    ridesOn: host,
    targets: ["imagegate-keyed", "imagegate-shared"],
    latencyReference: "imagegate-keyed",
    rows(s) {
      const embedded = s.targets["imagegate-keyed"];
      const shared = s.targets["imagegate-shared"];
      if (!embedded || !shared) return [];
      const row = {
        scenario: `(${host === "a" ? "h" : "i"}) shared state, c=${s.connections}`,
        imagegateTarget: "imagegate-shared",
      } as const;
      if (host === "a") {
        const added = shared.addedP50Ms;
        return [
          {
            ...row,
            figure: "p50 latency, Redis + Postgres (embedded in the direct column)",
            unit: "ms",
            values: pair(shared.p50Ms, embedded.p50Ms),
            ratios: ratios(
              ["× embedded", ratio(shared.p50Ms, embedded.p50Ms)],
              ["ms added", added],
            ),
            target: "≤ +0.3 ms over embedded",
            ...(added !== undefined && Number.isFinite(added) ? { pass: added <= 0.3 } : {}),
          },
        ];
      }
      const r = ratio(shared.rps, embedded.rps);
      return [
        {
          ...row,
          figure: "throughput, Redis + Postgres (embedded in the direct column)",
          unit: "rps",
          values: pair(shared.rps, embedded.rps),
          ratios: ratios(["× embedded", r]),
          target: "≥ 0.8× embedded",
          ...(r !== undefined ? { pass: r >= 0.8 } : {}),
        },
        {
          ...row,
          figure:
            "CPU per request of the gateway, Redis + Postgres (embedded in the direct column)",
          unit: "ms",
          values: pair(shared.cpuMsPerReq, embedded.cpuMsPerReq),
          ratios: ratios(["× embedded", ratio(shared.cpuMsPerReq, embedded.cpuMsPerReq)]),
        },
      ];
    },
  };
}

/** The scenarios, in the order they run and are reported. */
export const SCENARIO_TABLE: Readonly<Record<ScenarioId, MeasuredSpec | RiderSpec>> = TABLE;
export const SCENARIOS = Object.keys(TABLE) as ScenarioId[];

/** The scenarios with runs of their own (the others ride on them): each has a plan in the settings. */
export type MeasuredId = {
  [K in ScenarioId]: (typeof TABLE)[K] extends MeasuredSpec ? K : never;
}[ScenarioId];

export function isRider(spec: MeasuredSpec | RiderSpec): spec is RiderSpec {
  return "ridesOn" in spec;
}
