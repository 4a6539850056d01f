/**
 * The benchmark: starts the upstream emulator, the gateway and the baselines as separate
 * processes, runs every scenario of the table in scenarios.ts the same way (a correctness
 * check, a warm-up, then interleaved rounds over its targets), and returns the medians
 * (report.ts turns them into the table's rows, with the ratios and targets).
 *
 * Why every system under test is its own process, the load generator being this one: on two
 * cores, an in-process gateway would share one event loop with autocannon and the emulator,
 * so its figures would be those of all three serialised on one core, and its RSS and CPU
 * would include theirs. As separate processes the kernel spreads them over both cores,
 * every system under test meets the same load generator and upstream (a constant cost for
 * all), and /proc gives each one's own RSS and CPU time.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { fromBinary } from "@bufbuild/protobuf";
import { ImagesResponseSchema } from "../src/gen/imagegate/v1/images_pb.js";
import { BENCH_API_KEY, tinyPng, uploadPng } from "./emulator.ts";
import { h2loadInstalled, h2loadLoad } from "./h2load.ts";
import {
  CREATE_IMAGE_PATH,
  grpcCall,
  grpcChannel,
  grpcEnvelope,
  grpcLoad,
  grpcRequestBytes,
  httpLoad,
  type LoadResult,
  streamLoad,
} from "./load.ts";
import {
  type Child,
  childrenCpuMs,
  cpuMs,
  freePort,
  machineBusyMs,
  RssSampler,
  rssBytes,
  spawnNode,
  spawnPlain,
  waitIdle,
} from "./procs.ts";
import {
  type Column,
  isRider,
  type MeasuredId,
  type RequestShape,
  type RoundMeasure,
  type RunPlan,
  SCENARIO_TABLE,
  SCENARIOS,
  type ScenarioContext,
  type ScenarioId,
  type ScenarioResult,
  TARGET_LABELS,
  type TargetId,
  type TargetSummary,
  type Upstream,
} from "./scenarios.ts";

export type BenchSettings = {
  mode: "full" | "quick";
  rounds: number;
  /** Time limit of one run, seconds. */
  maxSeconds: number;
  /** Upstream delay of scenario (d), ms. */
  slowMs: number;
  /** Try to start the Portkey gateway. */
  portkey: boolean;
  /** Scenarios to run (default all); a scenario that rides on another runs in its rounds. */
  only?: readonly ScenarioId[];
  /** Targets to run (default all), e.g. only imagegate while profiling it. */
  targets?: readonly TargetId[];
  /** Extra node flags for the gateway process, e.g. --cpu-prof. */
  gatewayNodeArgs?: readonly string[];
  /**
   * Whether scenarios that ask for h2load (scenarios.ts `loadGenerator`) get it (default:
   * when it is installed); false: autocannon and grpc-js, as the other scenarios.
   */
  h2load?: boolean;
  /** Progress lines (stderr by default). */
  log?: (line: string) => void;
} & Record<MeasuredId, RunPlan>; // each measured scenario's plan, under its id

/** Every measured scenario's plan for the mode, from the table. */
function plans(mode: "full" | "quick"): Record<MeasuredId, RunPlan> {
  const out: Partial<Record<MeasuredId, RunPlan>> = {};
  for (const [id, spec] of Object.entries(SCENARIO_TABLE))
    if (!isRider(spec)) out[id as MeasuredId] = spec.plans[mode];
  return out as Record<MeasuredId, RunPlan>;
}

export const FULL_SETTINGS: BenchSettings = {
  mode: "full",
  rounds: 3,
  maxSeconds: 8,
  slowMs: 1000,
  ...plans("full"),
  portkey: true,
};

export const QUICK_SETTINGS: BenchSettings = {
  mode: "quick",
  rounds: 1,
  maxSeconds: 5,
  slowMs: 200,
  ...plans("quick"),
  portkey: true,
};

export interface BenchResult {
  machine: {
    cpu: string;
    cores: number;
    node: string;
    platform: string;
    date: string;
    /** 1-minute load average when the bench started and when it ended. */
    loadAverage: [number, number];
    /**
     * Share of the machine's CPU time (all cores) used by processes other than the bench's
     * own during the run: above a few percent, something else competed for the cores and
     * the figures are noisier than usual.
     */
    otherCpuShare: number | undefined;
  };
  settings: Omit<BenchSettings, "log">;
  upstream: { tinyBodyBytes: number; bigPngBytes: number; bigBodyBytes: number; slowMs: number };
  portkey: { available: boolean; reason?: string };
  /** Scenarios (h) and (i)'s gateways (they need redis-server and PostgreSQL). */
  sharedState?: { available: boolean; reason?: string };
  /** The gateway's, the bare proxy's and Portkey's RSS once started, before any request. */
  idleRssBytes?: Partial<Record<Column, number>>;
  scenarios: Partial<Record<ScenarioId, ScenarioResult>>;
  /** Non-2xx answers, transport errors, crashes: anything here fails quick mode. */
  errors: string[];
  durationSeconds: number;
}

export class BenchError extends Error {}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const PROMPT = "a lighthouse at dusk";

interface Upstreams {
  tiny: string;
  big: string;
  slow: string;
  stream: string;
  bigPngBytes: number;
  bigBodyBytes: number;
}

interface Subject {
  id: TargetId;
  /** The processes of the system under test (RSS and CPU are theirs). */
  pids: number[];
  /** One request, checked for a 200 carrying the whole image; throws otherwise. */
  verify(): Promise<void>;
  load(plan: RunPlan, requests: number, maxSeconds: number): Promise<LoadResult>;
}

interface Stack {
  upstreams: Upstreams;
  emulator: Child;
  gateway: { child: Child; url: string };
  /**
   * While a scenario with `ownGateways` runs: its gateways, one per protocol, started for it
   * (`startOwnGateways`) and stopped after (`stopOwnGateways`); the gateway's targets go
   * there instead of to `gateway`.
   */
  own: { rest: { child: Child; url: string }; grpc: { child: Child; url: string } } | undefined;
  startOwnGateways(): Promise<void>;
  stopOwnGateways(): Promise<void>;
  /** CPU time of the children already stopped (own gateways), ms. */
  stoppedCpuMs(): number;
  bare: Record<Upstream, { child: Child; url: string }>;
  portkey: { child: Child; url: string } | undefined;
  portkeyReason?: string;
  /** Scenarios (h) and (i): the gateway with a budgeted key, embedded and with Redis + Postgres. */
  keyed:
    | { embedded: { child: Child; url: string }; shared: { child: Child; url: string } }
    | undefined;
  keyedReason?: string;
  targets: readonly TargetId[] | undefined;
  children(): Child[];
  close(): Promise<void>;
}

function median(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

function medianOrUndefined(values: (number | undefined)[]): number | undefined {
  const defined = values.filter((x): x is number => x !== undefined);
  return defined.length === 0 ? undefined : median(defined);
}

function gatewayYaml(up: Upstreams, slowMs: number, routerExtra = ""): string {
  const deployment = (group: string, base: string, id: string, extra = "", model = "dall-e-2") =>
    `  - model_name: ${group}\n    params:\n      model: openai/${model}\n      api_key: ${BENCH_API_KEY}\n      api_base: ${base}/v1\n${extra}    model_info:\n      id: ${id}\n`;
  const lines = [
    "model_list:",
    deployment("tiny", up.tiny, "tiny-1").trimEnd(),
    deployment("big", up.big, "big-1").trimEnd(),
    deployment(
      "slow",
      up.slow,
      "slow-1",
      `      timeout: ${Math.ceil(slowMs / 1000) + 30}\n`,
    ).trimEnd(),
    // Scenarios (f) and (g): a GPT-image model, which streams and edits.
    deployment("stream", up.stream, "stream-1", "", "gpt-image-1").trimEnd(),
  ];
  // Scenario (e): one group of 8 healthy deployments (weighted, rpm-tracked) with a fallback group.
  for (let i = 1; i <= 8; i++) {
    lines.push(
      deployment(
        "routed",
        up.tiny,
        `routed-${i}`,
        `      weight: ${(i % 3) + 1}\n      rpm: 1000000\n`,
      ).trimEnd(),
    );
  }
  for (let i = 1; i <= 2; i++)
    lines.push(deployment("routed-backup", up.tiny, `routed-backup-${i}`).trimEnd());
  lines.push(
    "router_settings:",
    "  num_retries: 2",
    "  allowed_fails: 3",
    "  cooldown_time: 5",
    "  fallbacks: [{ routed: [routed-backup] }]",
    `${routerExtra}`,
  );
  return lines.join("\n");
}

/** The node flags `npm start` and `bin/imagegate.mjs` run the gateway with (a test keeps them equal). */
export const GATEWAY_NODE_FLAGS = ["--max-semi-space-size=16"];

async function startStack(settings: BenchSettings, log: (line: string) => void): Promise<Stack> {
  const started: Child[] = [];
  const services: { close(): Promise<void> }[] = [];
  const tmp = mkdtempSync(path.join(os.tmpdir(), "imagegate-bench-"));
  const closeAll = async () => {
    await Promise.all(started.map((c) => c.stop()));
    await Promise.all(services.map((s) => s.close()));
    rmSync(tmp, { recursive: true, force: true });
  };
  try {
    const emu = await spawnNode(
      "emulator",
      [path.join(ROOT, "bench/emulator.ts"), "--slow-ms", String(settings.slowMs)],
      {
        ready: (line) => (line.startsWith("{") ? (JSON.parse(line) as Upstreams) : undefined),
      },
    );
    started.push(emu.child);
    const upstreams = emu.info;
    const configFile = path.join(tmp, "imagegate.yaml");
    writeFileSync(configFile, gatewayYaml(upstreams, settings.slowMs));

    const gateway = (name: string) =>
      spawnGateway(name, configFile, settings).then((g) => {
        started.push(g.child);
        return g;
      });
    const gatewayP = gateway("imagegate");
    const bareP = (kind: Upstream) =>
      spawnNode(
        `bare proxy (${kind})`,
        [path.join(ROOT, "bench/bare-proxy.ts"), "--upstream", upstreams[kind]],
        {
          ready: (line) =>
            line.startsWith("{") ? (JSON.parse(line) as { url: string }).url : undefined,
        },
      ).then((r) => {
        started.push(r.child);
        return { child: r.child, url: r.info };
      });
    const portkeyP = settings.portkey
      ? startPortkey(upstreams, started)
      : Promise.resolve({ reason: "not requested (--no-portkey)" });
    const keyedP = wantsKeyed(settings)
      ? startKeyedGateways(upstreams, settings, tmp, started, services)
      : Promise.resolve({ reason: "not requested" });
    const [main, tiny, big, slow, stream, pk, kg] = await Promise.all([
      gatewayP,
      bareP("tiny"),
      bareP("big"),
      bareP("slow"),
      bareP("stream"),
      portkeyP,
      keyedP,
    ]);
    const keyed = "embedded" in kg ? kg : undefined;
    const keyedReason = "reason" in kg ? kg.reason : undefined;
    if (keyedReason !== undefined && keyedReason !== "not requested")
      log(`(h) and (i) skipped: ${keyedReason}`);
    const portkey = "url" in pk ? pk : undefined;
    const portkeyReason = "reason" in pk ? pk.reason : undefined;
    if (portkeyReason !== undefined) log(`Portkey unavailable: ${portkeyReason}`);
    let stoppedCpu = 0;
    const stack: Stack = {
      upstreams,
      emulator: emu.child,
      gateway: main,
      own: undefined,
      async startOwnGateways() {
        const [rest, grpc] = await Promise.all([
          gateway("imagegate, REST"),
          gateway("imagegate, gRPC"),
        ]);
        stack.own = { rest, grpc };
        await waitIdle([rest.child.pid, grpc.child.pid]);
      },
      async stopOwnGateways() {
        const own = stack.own;
        if (!own) return;
        stack.own = undefined;
        for (const g of [own.rest, own.grpc]) {
          stoppedCpu += cpuMs(g.child.pid) ?? 0;
          started.splice(started.indexOf(g.child), 1);
          await g.child.stop();
        }
      },
      stoppedCpuMs: () => stoppedCpu,
      bare: { tiny, big, slow, stream },
      portkey,
      ...(portkeyReason !== undefined ? { portkeyReason } : {}),
      keyed,
      ...(keyedReason !== undefined ? { keyedReason } : {}),
      targets: settings.targets,
      children: () => [...started],
      close: closeAll,
    };
    return stack;
  } catch (e) {
    await closeAll();
    throw e;
  }
}

/** `imagegate serve --config FILE` on a free port, ready once it says where it listens. */
async function spawnGateway(
  name: string,
  configFile: string,
  settings: BenchSettings,
): Promise<{ child: Child; url: string }> {
  const r = await spawnNode(
    name,
    [
      ...GATEWAY_NODE_FLAGS,
      ...(settings.gatewayNodeArgs ?? []),
      path.join(ROOT, "src/cli.ts"),
      "serve",
      "--config",
      configFile,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
    ],
    { ready: (line) => /listening on (https?:\/\/[^\s"]+)/.exec(line)?.[1] },
  );
  return { child: r.child, url: r.info };
}

/** The gateway key of scenarios (h) and (i): an rpm_limit and a budget no run reaches. */
export const BENCH_GATEWAY_KEY = "sk-bench-gateway-key-0123456789";
const KEYED_HEADERS = {
  "content-type": "application/json",
  authorization: `Bearer ${BENCH_GATEWAY_KEY}`,
};

function wantsKeyed(settings: BenchSettings): boolean {
  const keyed: readonly TargetId[] = ["imagegate-keyed", "imagegate-shared"];
  return (
    (settings.only === undefined || settings.only.some((id) => id === "h" || id === "i")) &&
    (settings.targets === undefined || settings.targets.some((t) => keyed.includes(t)))
  );
}

/**
 * The two gateways of (h) and (i), same models and key: one embedded (memory, SQLite in
 * the bench's temp directory), one with a real redis-server and PostgreSQL the bench
 * starts (test/support/services.ts), or the reason they cannot run here.
 */
async function startKeyedGateways(
  up: Upstreams,
  settings: BenchSettings,
  tmp: string,
  started: Child[],
  services: { close(): Promise<void> }[],
): Promise<NonNullable<Stack["keyed"]> | { reason: string }> {
  const { postgresBin, redisBin, startPostgres, startRedis } = await import(
    "../test/support/services.ts"
  );
  if (redisBin() === undefined || postgresBin() === undefined)
    return { reason: "redis-server or PostgreSQL is not installed" };
  const [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
  services.push(redis, postgres);
  const databaseUrl = await postgres.createDatabase("bench");
  const key = `keys:\n  - key: ${BENCH_GATEWAY_KEY}\n    name: bench\n    rpm_limit: 100000000\n    max_budget: 1000000\n`;
  const embeddedFile = path.join(tmp, "embedded.yaml");
  writeFileSync(
    embeddedFile,
    `${gatewayYaml(up, settings.slowMs)}general_settings:\n  spend_db: ${path.join(tmp, "embedded.sqlite")}\n${key}`,
  );
  const sharedFile = path.join(tmp, "shared.yaml");
  writeFileSync(
    sharedFile,
    `${gatewayYaml(up, settings.slowMs, `  redis_url: ${redis.url}\n`)}general_settings:\n  database_url: ${databaseUrl}\n  spend_journal_dir: ${path.join(tmp, "journal")}\n${key}`,
  );
  const [embedded, shared] = await Promise.all([
    spawnGateway("imagegate embedded", embeddedFile, settings),
    spawnGateway("imagegate shared", sharedFile, settings),
  ]);
  started.push(embedded.child, shared.child);
  return { embedded, shared };
}

/** Portkey's open-source gateway from node_modules, or the reason it cannot run here. */
async function startPortkey(
  up: Upstreams,
  started: Child[],
): Promise<{ child: Child; url: string } | { reason: string }> {
  const script = path.join(ROOT, "node_modules/@portkey-ai/gateway/build/start-server.js");
  if (!existsSync(script))
    return {
      reason: "@portkey-ai/gateway is not installed (npm ci installs it as a devDependency)",
    };
  const port = await freePort();
  const { child } = spawnPlain("Portkey", process.execPath, [
    script,
    `--port=${port}`,
    "--headless",
  ]);
  started.push(child);
  const url = `http://127.0.0.1:${port}`;
  const deadline = performance.now() + 30_000;
  while (performance.now() < deadline) {
    if (child.crash) return { reason: `${child.crash}: ${child.tail().slice(-500)}` };
    try {
      const res = await fetch(`${url}/`);
      await res.arrayBuffer();
      if (res.ok) {
        // It answers; now check it really proxies an image call to the emulator.
        try {
          await verifyHttp(
            `${url}/v1/images/generations`,
            portkeyHeaders(up.tiny),
            requestBody("dall-e-2", "256x256"),
            undefined,
          );
          return { child, url };
        } catch (e) {
          await child.stop();
          return { reason: `it started but did not proxy an image call: ${(e as Error).message}` };
        }
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await child.stop();
  return { reason: `not answering on ${url} after 30 s: ${child.tail().slice(-500)}` };
}

function requestBody(model: string, size: string): string {
  return JSON.stringify({ model, prompt: PROMPT, size, response_format: "b64_json" });
}

const JSON_HEADERS = {
  "content-type": "application/json",
  authorization: `Bearer ${BENCH_API_KEY}`,
};

function portkeyHeaders(upstream: string): Record<string, string> {
  return {
    ...JSON_HEADERS,
    "x-portkey-provider": "openai",
    "x-portkey-custom-host": `${upstream}/v1`,
  };
}

/** One request: a 200 whose data[0].b64_json has the expected length (when given). */
async function verifyHttp(
  url: string,
  headers: Record<string, string>,
  body: string | Buffer,
  b64Length: number | undefined,
): Promise<void> {
  const res = await fetch(url, {
    method: "POST",
    headers,
    body: typeof body === "string" ? body : new Uint8Array(body),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  const json = JSON.parse(text) as { data?: { b64_json?: string }[] };
  const b64 = json.data?.[0]?.b64_json;
  if (typeof b64 !== "string")
    throw new Error(`${url}: 200 without data[0].b64_json: ${text.slice(0, 300)}`);
  if (b64Length !== undefined && b64.length !== b64Length) {
    throw new Error(`${url}: b64_json has ${b64.length} characters, expected ${b64Length}`);
  }
}

function httpSubject(
  id: TargetId,
  pids: number[],
  url: string,
  headers: Record<string, string>,
  body: string | Buffer,
  b64Length: number,
  generator: LoadGenerator,
): Subject {
  return {
    id,
    pids,
    verify: () => verifyHttp(url, headers, body, b64Length),
    load: (plan, requests, maxSeconds) => {
      const o = { url, headers, body, connections: plan.connections, amount: requests, maxSeconds };
      return generator === "h2load" ? h2loadLoad({ ...o, protocol: "http/1.1" }) : httpLoad(o);
    },
  };
}

function grpcSubject(
  id: TargetId,
  pids: number[],
  gatewayUrl: string,
  model: string,
  size: string,
  pngBytes: number,
  generator: LoadGenerator,
): Subject {
  const address = new URL(gatewayUrl).host;
  const target = { address, model, size };
  return {
    id,
    pids,
    async verify() {
      const client = grpcChannel(address);
      try {
        const raw = await grpcCall(client, grpcRequestBytes(target)).done;
        const res = fromBinary(ImagesResponseSchema, raw);
        const got = res.data[0]?.b64Json?.length;
        if (got !== pngBytes)
          throw new Error(`gRPC ${address}: image has ${got} bytes, expected ${pngBytes}`);
      } finally {
        client.close();
      }
    },
    load: (plan, requests, maxSeconds) =>
      generator === "h2load"
        ? // As a gRPC client does: one HTTP/2 connection carrying every call.
          h2loadLoad({
            url: new URL(CREATE_IMAGE_PATH, gatewayUrl).href,
            protocol: "h2",
            headers: { "content-type": "application/grpc", te: "trailers" },
            body: grpcEnvelope(grpcRequestBytes(target)),
            connections: 1,
            streams: plan.connections,
            amount: requests,
            maxSeconds,
            minBodyBytes: pngBytes,
          })
        : grpcLoad({ target, concurrency: plan.connections, amount: requests, maxSeconds }),
  };
}

const IMAGES_PATH = "/v1/images/generations";

/**
 * A streamed request (`stream: true`, `partial_images`) and its check: a 200 of server-sent
 * events, the partial images then one completed image, each image whole.
 */
function streamSubject(
  id: TargetId,
  pids: number[],
  base: string,
  model: string,
  size: string,
  partials: number,
  b64Length: number,
): Subject {
  const url = `${base}${IMAGES_PATH}`;
  const body = JSON.stringify({
    model,
    prompt: PROMPT,
    size,
    stream: true,
    partial_images: partials,
  });
  return {
    id,
    pids,
    async verify() {
      const res = await fetch(url, { method: "POST", headers: JSON_HEADERS, body });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status}: ${text.slice(0, 300)}`);
      const events = text
        .split("\n\n")
        .filter((e) => e.trim() !== "")
        .map((e) => {
          const data = e.split("\n").find((l) => l.startsWith("data: "));
          return JSON.parse(data?.slice(6) ?? "{}") as { type?: string; b64_json?: string };
        });
      const types = events.map((e) => e.type);
      const expected = [
        ...Array.from({ length: partials }, () => "image_generation.partial_image"),
        "image_generation.completed",
      ];
      if (JSON.stringify(types) !== JSON.stringify(expected))
        throw new Error(`${url}: events ${types.join(", ")}, expected ${expected.join(", ")}`);
      for (const e of events)
        if (e.b64_json?.length !== b64Length)
          throw new Error(
            `${url}: an event's image has ${e.b64_json?.length} base64 characters, expected ${b64Length}`,
          );
    },
    load: (plan, requests, maxSeconds) =>
      streamLoad({
        url,
        headers: JSON_HEADERS,
        body,
        connections: plan.connections,
        amount: requests,
        maxSeconds,
      }),
  };
}

const EDITS_PATH = "/v1/images/edits";
const BOUNDARY = "----imagegate-bench-edit";

/** Uploads by size, built once per bench run (noise PNGs take a moment to encode). */
const uploads = new Map<number, Buffer>();

/**
 * An edit (`POST /v1/images/edits`, OpenAI's multipart form as the SDK sends it) uploading
 * one PNG of `uploadBytes`, serialised once; checked like a generation's answer.
 */
function editSubject(
  id: TargetId,
  pids: number[],
  base: string,
  model: string,
  size: string,
  uploadBytes: number,
  b64Length: number,
  generator: LoadGenerator,
): Subject {
  let png = uploads.get(uploadBytes);
  if (png === undefined) {
    png = uploadPng(uploadBytes);
    uploads.set(uploadBytes, png);
  }
  const field = (name: string, value: string) =>
    `--${BOUNDARY}\r\ncontent-disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
  const body = Buffer.concat([
    Buffer.from(
      field("model", model) +
        field("prompt", PROMPT) +
        field("size", size) +
        field("response_format", "b64_json") +
        `--${BOUNDARY}\r\ncontent-disposition: form-data; name="image"; filename="photo.png"\r\ncontent-type: image/png\r\n\r\n`,
    ),
    png,
    Buffer.from(`\r\n--${BOUNDARY}--\r\n`),
  ]);
  const headers = {
    "content-type": `multipart/form-data; boundary=${BOUNDARY}`,
    authorization: `Bearer ${BENCH_API_KEY}`,
  };
  return httpSubject(id, pids, `${base}${EDITS_PATH}`, headers, body, b64Length, generator);
}

/** What sends a scenario's requests (scenarios.ts `loadGenerator`, bench/h2load.ts). */
type LoadGenerator = ScenarioResult["loadGenerator"];

/** What every target needs to send a scenario's request and check its answer. */
interface SubjectContext {
  stack: Stack;
  request: RequestShape;
  generator: LoadGenerator;
  /** The size of the image the upstream answers with, and of its base64. */
  pngBytes: number;
  b64Length: number;
}

/** Where an HTTP target is sent the request, which processes are it, and the model it names. */
interface HttpTarget {
  pids: number[];
  base: string;
  headers?: Record<string, string>;
  model: string;
}

function viaHttp(id: TargetId, where: (x: SubjectContext) => HttpTarget | undefined) {
  return (x: SubjectContext): Subject | undefined => {
    const t = where(x);
    if (!t) return undefined;
    const body = requestBody(t.model, x.request.size);
    const url = `${t.base}${IMAGES_PATH}`;
    return httpSubject(id, t.pids, url, t.headers ?? JSON_HEADERS, body, x.b64Length, x.generator);
  };
}

/**
 * How each target sends a scenario's request: the baselines call the emulator's upstream for
 * it (Portkey naming it in a header), the gateway the model group of that name (`routed`: the
 * 8-deployment group). Undefined: the target cannot run here (Portkey did not start).
 */
const SUBJECTS: Record<TargetId, (x: SubjectContext) => Subject | undefined> = {
  direct: viaHttp("direct", ({ stack, request }) => ({
    pids: [stack.emulator.pid],
    base: stack.upstreams[request.upstream],
    model: "dall-e-2",
  })),
  bare: viaHttp("bare", ({ stack, request }) => ({
    pids: [stack.bare[request.upstream].child.pid],
    base: stack.bare[request.upstream].url,
    model: "dall-e-2",
  })),
  portkey: viaHttp(
    "portkey",
    ({ stack, request }) =>
      stack.portkey && {
        pids: [stack.portkey.child.pid],
        base: stack.portkey.url,
        headers: portkeyHeaders(stack.upstreams[request.upstream]),
        model: "dall-e-2",
      },
  ),
  imagegate: viaHttp("imagegate", ({ stack, request }) => {
    const g = gatewayFor(stack, "rest");
    return { pids: [g.child.pid], base: g.url, model: request.upstream };
  }),
  "imagegate-grpc": ({ stack, request, pngBytes, generator }) => {
    const g = gatewayFor(stack, "grpc");
    return grpcSubject(
      "imagegate-grpc",
      [g.child.pid],
      g.url,
      request.upstream,
      request.size,
      pngBytes,
      generator,
    );
  },
  "imagegate-routed": viaHttp("imagegate-routed", ({ stack }) => ({
    pids: [stack.gateway.child.pid],
    base: stack.gateway.url,
    model: "routed",
  })),
  "imagegate-keyed": viaHttp(
    "imagegate-keyed",
    ({ stack, request }) =>
      stack.keyed && {
        pids: [stack.keyed.embedded.child.pid],
        base: stack.keyed.embedded.url,
        headers: KEYED_HEADERS,
        model: request.upstream,
      },
  ),
  "imagegate-shared": viaHttp(
    "imagegate-shared",
    ({ stack, request }) =>
      stack.keyed && {
        pids: [stack.keyed.shared.child.pid],
        base: stack.keyed.shared.url,
        headers: KEYED_HEADERS,
        model: request.upstream,
      },
  ),
  "imagegate-stream": ({ stack, request, b64Length }) =>
    streamSubject(
      "imagegate-stream",
      [stack.gateway.child.pid],
      stack.gateway.url,
      request.upstream,
      request.size,
      request.partialImages ?? 0,
      b64Length,
    ),
  "imagegate-edit": ({ stack, request, b64Length, generator }) =>
    editSubject(
      "imagegate-edit",
      [stack.gateway.child.pid],
      stack.gateway.url,
      request.upstream,
      request.size,
      request.uploadBytes ?? 0,
      b64Length,
      generator,
    ),
};

/** The gateway process a protocol's requests go to: the scenario's own while it has them, else the main one. */
function gatewayFor(stack: Stack, protocol: "rest" | "grpc"): { child: Child; url: string } {
  return stack.own?.[protocol] ?? stack.gateway;
}

function subjectsFor(
  targets: readonly TargetId[],
  request: RequestShape,
  stack: Stack,
  tinyPngBytes: number,
  generator: LoadGenerator,
): Subject[] {
  const pngBytes =
    request.upstream === "big" || request.upstream === "stream"
      ? stack.upstreams.bigPngBytes
      : tinyPngBytes;
  const x: SubjectContext = {
    stack,
    request,
    generator,
    pngBytes,
    b64Length: Math.ceil(pngBytes / 3) * 4,
  };
  return targets
    .filter((t) => !stack.targets || stack.targets.includes(t))
    .map((t) => SUBJECTS[t](x))
    .filter((s): s is Subject => s !== undefined);
}

function rotate<T>(items: readonly T[], by: number): T[] {
  const k = by % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/** Runs one scenario: check, warm up, then `rounds` interleaved rounds over the subjects. */
async function runScenario(
  id: ScenarioId,
  title: string,
  plan: RunPlan,
  generator: LoadGenerator,
  subjects: Subject[],
  stack: Stack,
  settings: BenchSettings,
  errors: string[],
  log: (line: string) => void,
): Promise<ScenarioResult> {
  const allPids = stack.children().map((c) => c.pid);
  const checkCrashes = () => {
    for (const c of stack.children()) {
      if (c.crash) throw new BenchError(`${c.crash} during scenario (${id}):\n${c.tail()}`);
    }
  };
  const note = (s: Subject, what: string, r: LoadResult) => {
    if (r.failed > 0 || r.errors > 0) {
      errors.push(
        `(${id}) ${TARGET_LABELS[s.id]} ${what}: ${r.failed} failed ${JSON.stringify(r.statuses)}, ${r.errors} errors${r.firstError ? ` (first: ${r.firstError})` : ""}`,
      );
    }
  };
  log(`(${id}) ${title}`);
  for (const s of subjects) {
    try {
      await s.verify();
    } catch (e) {
      errors.push(`(${id}) ${TARGET_LABELS[s.id]}: ${(e as Error).message}`);
    }
    checkCrashes();
    if (plan.warmup > 0) {
      await waitIdle(allPids);
      note(s, "warm-up", await s.load(plan, plan.warmup, settings.maxSeconds));
      checkCrashes();
    }
  }
  const measures = new Map<TargetId, RoundMeasure[]>();
  for (let round = 0; round < settings.rounds; round++) {
    const parts: string[] = [];
    for (const s of rotate(subjects, round)) {
      await waitIdle(allPids);
      const cpu0 = s.pids.map((p) => cpuMs(p));
      const up0 = cpuMs(stack.emulator.pid);
      const client0 = process.cpuUsage();
      const children0 = childrenCpuMs();
      const sampler = new RssSampler(s.pids);
      const r = await s.load(plan, plan.requests, settings.maxSeconds);
      const peaks = sampler.stop();
      const client = process.cpuUsage(client0);
      // h2load is a child process: its CPU time is this process's children's once it has exited.
      const children = (childrenCpuMs() ?? 0) - (children0 ?? 0);
      const cpu1 = s.pids.map((p) => cpuMs(p));
      const up1 = cpuMs(stack.emulator.pid);
      checkCrashes();
      note(s, `round ${round + 1}`, r);
      const cpu = cpu0.every((v, i) => v !== undefined && cpu1[i] !== undefined)
        ? cpu1.reduce<number>((sum, v, i) => sum + (v! - cpu0[i]!), 0)
        : undefined;
      const rss = s.pids.reduce<number | undefined>(
        (sum, p) => (peaks.has(p) ? (sum ?? 0) + peaks.get(p)! : sum),
        undefined,
      );
      const m: RoundMeasure = {
        round: round + 1,
        ok: r.ok,
        failed: r.failed,
        errors: r.errors,
        elapsedMs: r.elapsedMs,
        rps: r.rps,
        p50Ms: r.p50Ms,
        p99Ms: r.p99Ms,
        cpuMsPerReq: cpu !== undefined && r.ok > 0 ? cpu / r.ok : undefined,
        upstreamCpuMsPerReq:
          up0 !== undefined && up1 !== undefined && r.ok > 0 ? (up1 - up0) / r.ok : undefined,
        clientCpuMsPerReq:
          r.ok > 0 ? ((client.user + client.system) / 1000 + children) / r.ok : undefined,
        peakRssBytes: rss,
        timedOut: r.timedOut,
        ...(r.firstEventP50Ms !== undefined ? { firstEventP50Ms: r.firstEventP50Ms } : {}),
      };
      measures.set(s.id, [...(measures.get(s.id) ?? []), m]);
      parts.push(
        `${TARGET_LABELS[s.id]} ${m.rps.toFixed(0)} rps p50 ${m.p50Ms.toFixed(2)} ms${r.timedOut ? " (time limit)" : ""}`,
      );
    }
    log(`  round ${round + 1}: ${parts.join(" | ")}`);
  }
  const targets: Partial<Record<TargetId, TargetSummary>> = {};
  for (const [tid, rounds] of measures) {
    targets[tid] = {
      rounds,
      rps: median(rounds.map((m) => m.rps)),
      p50Ms: median(rounds.map((m) => m.p50Ms)),
      p99Ms: median(rounds.map((m) => m.p99Ms)),
      cpuMsPerReq: medianOrUndefined(rounds.map((m) => m.cpuMsPerReq)),
      clientCpuMsPerReq: medianOrUndefined(rounds.map((m) => m.clientCpuMsPerReq)),
      firstEventP50Ms: medianOrUndefined(rounds.map((m) => m.firstEventP50Ms)),
      peakRssBytes: rounds.reduce<number | undefined>(
        (max, m) => (m.peakRssBytes === undefined ? max : Math.max(max ?? 0, m.peakRssBytes)),
        undefined,
      ),
    };
  }
  return {
    id,
    title,
    connections: plan.connections,
    requestsPerRun: plan.requests,
    loadGenerator: generator,
    targets,
  };
}

/** Per round, a target's latency minus the reference's in the same round; the median of those. */
function addLatencyDeltas(result: ScenarioResult, reference: TargetId): void {
  const ref = result.targets[reference];
  if (!ref) return;
  for (const [tid, summary] of Object.entries(result.targets) as [TargetId, TargetSummary][]) {
    if (tid === reference) continue;
    const byRound = new Map(ref.rounds.map((m) => [m.round, m]));
    const d50: number[] = [];
    const d99: number[] = [];
    for (const m of summary.rounds) {
      const r = byRound.get(m.round);
      if (!r) continue;
      d50.push(m.p50Ms - r.p50Ms);
      d99.push(m.p99Ms - r.p99Ms);
    }
    summary.addedP50Ms = median(d50);
    summary.addedP99Ms = median(d99);
  }
}

export async function runBench(settings: BenchSettings): Promise<BenchResult> {
  const log = settings.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const t0 = performance.now();
  const load0 = os.loadavg()[0]!;
  const machine0 = machineBusyMs();
  const self0 = process.cpuUsage();
  const children0 = childrenCpuMs();
  let ours = 0;
  const h2load = settings.h2load ?? h2loadInstalled();
  let h2loadMissingSaid = false;
  const only = new Set(settings.only ?? SCENARIOS);
  const errors: string[] = [];
  log(
    `starting the emulator, imagegate, the bare proxies${settings.portkey ? " and Portkey" : ""}…`,
  );
  const stack = await startStack(settings, log);
  const tinyPngBytes = tinyPng().length;
  const scenarios: Partial<Record<ScenarioId, ScenarioResult>> = {};
  // Idle RSS: every process started, checked once, quiet again; before any measured request.
  const idlePids = {
    imagegate: stack.gateway.child.pid,
    bare: stack.bare.big.child.pid,
    portkey: stack.portkey?.child.pid,
  };
  await waitIdle(Object.values(idlePids).filter((p) => p !== undefined));
  const idleRssBytes = Object.fromEntries(
    Object.entries(idlePids).map(([c, pid]) => [c, pid === undefined ? undefined : rssBytes(pid)]),
  ) as Partial<Record<Column, number>>;
  const ctx: ScenarioContext = {
    upstream: { bigBodyBytes: stack.upstreams.bigBodyBytes, slowMs: settings.slowMs },
    idleRssBytes,
  };
  try {
    for (const id of SCENARIOS) {
      const spec = SCENARIO_TABLE[id];
      if (isRider(spec)) continue;
      const plan = settings[id as MeasuredId];
      const riders = SCENARIOS.filter((r) => {
        const rs = SCENARIO_TABLE[r];
        return only.has(r) && isRider(rs) && rs.ridesOn === id;
      });
      const riderTargets = riders.flatMap((r) => SCENARIO_TABLE[r].targets);
      if (!only.has(id) && riders.length === 0) continue;
      // The riders' targets join the host's; without the host, only they and its reference run.
      const targets = [...new Set([...spec.targets, ...riderTargets])].filter(
        (t) => only.has(id) || riderTargets.includes(t) || t === spec.latencyReference,
      );
      const generator: LoadGenerator =
        spec.loadGenerator === "h2load" && h2load ? "h2load" : "javascript";
      if (spec.loadGenerator === "h2load" && !h2load && !h2loadMissingSaid) {
        h2loadMissingSaid = true;
        log(
          settings.h2load === false
            ? "h2load not used (h2load: false): autocannon and grpc-js send every scenario's requests"
            : "h2load is not installed (Debian: apt-get install nghttp2-client): autocannon and grpc-js send every scenario's requests, and their own CPU on a small machine holds gRPC back (bench/PROFILE.md)",
        );
      }
      if (spec.ownGateways) await stack.startOwnGateways();
      let result: ScenarioResult;
      try {
        result = await runScenario(
          id,
          spec.title(plan, ctx),
          plan,
          generator,
          subjectsFor(targets, spec.request, stack, tinyPngBytes, generator),
          stack,
          settings,
          errors,
          log,
        );
      } finally {
        await stack.stopOwnGateways();
      }
      if (spec.latencyReference) addLatencyDeltas(result, spec.latencyReference);
      for (const r of riders) {
        const rs = SCENARIO_TABLE[r];
        if (!rs.targets.every((t) => result.targets[t])) continue;
        const rider: ScenarioResult = {
          id: r,
          title: rs.title(plan, ctx),
          connections: result.connections,
          requestsPerRun: result.requestsPerRun,
          loadGenerator: result.loadGenerator,
          targets: Object.fromEntries(
            rs.targets.map((t) => [t, structuredClone(result.targets[t])]),
          ),
        };
        if (rs.latencyReference) addLatencyDeltas(rider, rs.latencyReference);
        scenarios[r] = rider;
        for (const t of rs.targets) if (!spec.targets.includes(t)) delete result.targets[t];
      }
      if (only.has(id)) scenarios[id] = result;
    }
  } finally {
    const children = stack.children().map((c) => cpuMs(c.pid));
    const self = process.cpuUsage(self0);
    // A child already stopped (Portkey after a failed check) counts as 0: a slight overestimate of "other".
    const reaped = (childrenCpuMs() ?? 0) - (children0 ?? 0); // h2load's runs
    ours =
      children.reduce<number>((a, v) => a + (v ?? 0), 0) +
      stack.stoppedCpuMs() +
      (self.user + self.system) / 1000 +
      reaped;
    await stack.close();
  }
  const machine1 = machineBusyMs();
  const wallMs = performance.now() - t0;
  const otherCpuShare =
    machine0 !== undefined && machine1 !== undefined
      ? Math.max(0, (machine1 - machine0 - ours) / (wallMs * os.cpus().length))
      : undefined;
  const { log: _log, ...recorded } = settings;
  return {
    machine: {
      cpu: os.cpus()[0]?.model ?? "unknown",
      cores: os.cpus().length,
      node: process.version,
      platform: `${os.platform()} ${os.release()}`,
      date: new Date().toISOString(),
      loadAverage: [load0, os.loadavg()[0]!],
      otherCpuShare,
    },
    settings: recorded,
    upstream: {
      tinyBodyBytes: Buffer.byteLength(
        JSON.stringify({
          created: 1_713_833_628,
          data: [{ b64_json: "x".repeat(Math.ceil(tinyPngBytes / 3) * 4) }],
        }),
      ),
      bigPngBytes: stack.upstreams.bigPngBytes,
      bigBodyBytes: stack.upstreams.bigBodyBytes,
      slowMs: settings.slowMs,
    },
    portkey: stack.portkey
      ? { available: true }
      : { available: false, reason: stack.portkeyReason ?? "unknown" },
    sharedState: stack.keyed
      ? { available: true }
      : { available: false, reason: stack.keyedReason ?? "unknown" },
    idleRssBytes,
    scenarios,
    errors,
    durationSeconds: wallMs / 1000,
  };
}
