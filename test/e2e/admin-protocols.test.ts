/**
 * Every AdminService rpc over every RPC protocol the gateway serves (grpc-js; Connect over
 * HTTP/1.1 and HTTP/2, JSON and binary; gRPC-Web): a key's whole life through each, the
 * reads (spend log, report, model info), and the errors each protocol carries (a caller
 * that is not the master key, an unknown key, a negative budget). admin.test.ts covers the
 * REST routes and the semantics in depth; this file proves the one implementation answers
 * the same on every wire.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcWebTransport,
  Http2SessionManager,
} from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminService } from "../../src/gen/imagegate/admin/v1/admin_pb.js";
import { grpcClient } from "../support/grpc.ts";
import { RPC_PROTOCOLS } from "../support/protocols.ts";
import { type Stack, startStack } from "../support/stack.ts";

const MASTER_KEY = "sk-master-admin-protocols-7e21";
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

const YAML = `
model_list:
  - model_name: image-hq
    params:
      model: openai/dall-e-3
      api_key: os.environ/OPENAI_API_KEY
general_settings:
  master_key: os.environ/IMAGEGATE_MASTER_KEY
  spend_db: os.environ/SPEND_DB
`;

type Method = (typeof AdminService.methods)[number];
// biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field
type Answer = any;

/** One unary AdminService call over one protocol: the answer, or the error's code. */
type Caller = (
  method: string,
  request: Record<string, unknown>,
  key?: string,
) => Promise<{ ok: true; answer: Answer } | { ok: false; code: Code; message: string }>;

let stack: Stack;
const closers: (() => void)[] = [];
beforeAll(async () => {
  // A file: the spend log is not kept for an in-memory database.
  const spendDb = join(mkdtempSync(join(tmpdir(), "imagegate-admin-protocols-")), "spend.sqlite");
  stack = await startStack({
    yaml: YAML,
    env: { IMAGEGATE_MASTER_KEY: MASTER_KEY, SPEND_DB: spendDb },
  });
  closers.push(() => rmSync(dirname(spendDb), { recursive: true, force: true }));
});
afterAll(async () => {
  await stack?.close();
  for (const close of closers) close();
});

function connectCaller(transport: Transport): Caller {
  const client = createClient(AdminService, transport) as unknown as Record<
    string,
    (req: unknown, options: unknown) => Promise<unknown>
  >;
  return async (method, request, key = MASTER_KEY) => {
    try {
      const answer = await client[method]!(request, {
        headers: { authorization: `Bearer ${key}` },
      });
      return { ok: true, answer };
    } catch (e) {
      const error = ConnectError.from(e);
      return { ok: false, code: error.code, message: error.rawMessage };
    }
  };
}

function grpcCaller(): Caller {
  const g = grpcClient(AdminService, `127.0.0.1:${stack.gateway.port}`);
  closers.push(() => g.close());
  return async (method, request, key = MASTER_KEY) => {
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${key}`);
    try {
      const { response } = await g.unary<DescMessage, DescMessage>(
        method,
        request as Partial<MessageShape<DescMessage>>,
        md,
      );
      return { ok: true, answer: response };
    } catch (e) {
      const error = e as grpc.ServiceError;
      // gRPC status codes and Connect's Code share their numbers.
      return { ok: false, code: error.code as unknown as Code, message: error.details };
    }
  };
}

function callerFor(protocol: (typeof RPC_PROTOCOLS)[number]): Caller {
  const h2 = () => {
    const m = new Http2SessionManager(stack.url);
    closers.push(() => m.abort());
    return m;
  };
  switch (protocol) {
    case "grpc":
      return grpcCaller();
    case "grpc-web":
      return connectCaller(createGrpcWebTransport({ baseUrl: stack.url, httpVersion: "1.1" }));
    case "connect-h1-json":
    case "connect-h1-binary":
      return connectCaller(
        createConnectTransport({
          baseUrl: stack.url,
          httpVersion: "1.1",
          useBinaryFormat: protocol.endsWith("binary"),
        }),
      );
    default:
      return connectCaller(
        createConnectTransport({
          baseUrl: stack.url,
          httpVersion: "2",
          useBinaryFormat: protocol.endsWith("binary"),
          sessionManager: h2(),
        }),
      );
  }
}

/** The rpcs this file calls, so a new one cannot go untested here. */
const CALLED = new Set<string>();

describe.each(RPC_PROTOCOLS)("AdminService over %s", (protocol) => {
  let call: Caller;
  beforeAll(() => {
    const inner = callerFor(protocol);
    call = (method, request, key) => {
      CALLED.add(method);
      return inner(method, request, key);
    };
  });

  const ok = async (method: string, request: Record<string, unknown>) => {
    const result = await call(method, request);
    if (!result.ok) throw new Error(`${method}: ${Code[result.code]} ${result.message}`);
    return result.answer;
  };

  it("a key's whole life, and every read", async () => {
    const alias = `team-${protocol}`;
    const made = await ok("generateKey", {
      keyAlias: alias,
      models: ["image-hq"],
      rpmLimit: 30,
      maxBudget: 5,
      budgetDuration: "30d",
    });
    expect(made.key).toMatch(/^sk-/);
    expect(made.token).toBe(sha256(made.key));
    expect(made).toMatchObject({ keyAlias: alias, models: ["image-hq"], rpmLimit: 30 });

    // The key works for images, so the spend log and report have a row of it.
    const image = await fetch(`${stack.url}/v1/images/generations`, {
      method: "POST",
      headers: { authorization: `Bearer ${made.key}`, "content-type": "application/json" },
      body: JSON.stringify({ prompt: "a lighthouse", model: "image-hq" }),
    });
    expect(image.status).toBe(200);
    const cost = Number(image.headers.get("x-imagegate-cost-usd"));
    expect(cost).toBeGreaterThan(0);

    const info = await ok("getKeyInfo", { key: made.key });
    expect(info.key).toBe(made.token);
    expect(info.info).toMatchObject({
      keyAlias: alias,
      maxBudget: 5,
      source: "api",
      blocked: false,
    });
    expect(info.info.spend).toBeCloseTo(cost, 10);

    const updated = await ok("updateKey", { key: made.token, maxBudget: 7, rpmLimit: 60 });
    expect(updated).toMatchObject({ token: made.token, maxBudget: 7, rpmLimit: 60 });
    expect((await ok("blockKey", { key: made.token })).blocked).toBe(true);
    expect((await ok("unblockKey", { key: made.key })).blocked).toBe(false);

    const again = await ok("regenerateKey", { key: made.key });
    expect(again.token).toBe(sha256(again.key));
    expect(again.token).not.toBe(made.token);
    expect((await ok("listKeys", { keyAlias: alias })).keys).toEqual([again.token]);
    expect((await call("getKeyInfo", { key: made.key })).ok).toBe(false);

    // The log keeps the token the request was made with.
    const logs = (await ok("listSpendLogs", { apiKey: made.token })).logs;
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatchObject({ keyAlias: alias, model: "image-hq", status: "success" });
    expect(logs[0].spend).toBeCloseTo(cost, 10);
    const groups = (await ok("getSpendReport", { groupBy: "api_key" })).groups;
    expect(groups.find((g: Answer) => g.group === made.token)?.spend).toBeCloseTo(cost, 10);

    const series = await ok("getSpendSeries", { bucket: "day", groupBy: "api_key" });
    expect(series.bucket).toBe("day");
    const point = series.points.find((p: Answer) => p.group === made.token);
    expect(point).toMatchObject({ requests: 1, images: 1, errors: 0, keyAlias: alias });
    expect(point.spend).toBeCloseTo(cost, 10);
    const stats = (await ok("getModelStats", {})).data;
    expect(stats.find((d: Answer) => d.modelName === "image-hq")).toMatchObject({
      inRotation: true,
      provider: "openai",
    });

    const models = (await ok("getModelInfo", {})).data;
    expect(models.map((d: Answer) => d.modelName)).toEqual(["image-hq"]);
    expect(JSON.stringify(models)).not.toContain("sk-test-emulator");

    expect((await ok("deleteKeys", { keys: [again.key] })).deletedKeys).toEqual([again.token]);
    expect((await ok("listKeys", { keyAlias: alias })).keys).toEqual([]);
  });

  it("errors carry their codes: not the master key, no key, an unknown key, a negative budget", async () => {
    const made = await ok("generateKey", { keyAlias: `plain-${protocol}` });
    const codeOf = async (r: ReturnType<Caller>) => {
      const result = await r;
      return result.ok ? "ok" : Code[result.code];
    };
    expect(await codeOf(call("listKeys", {}, made.key))).toBe(Code[Code.PermissionDenied]);
    expect(await codeOf(call("listKeys", {}, "sk-not-a-key"))).toBe(Code[Code.Unauthenticated]);
    expect(await codeOf(call("getKeyInfo", { key: "sk-nope" }))).toBe(Code[Code.NotFound]);
    expect(await codeOf(call("generateKey", { maxBudget: -3 }))).toBe(Code[Code.InvalidArgument]);
    await ok("deleteKeys", { keys: [made.token] });
  });
});

describe("coverage", () => {
  it("calls every AdminService rpc on every protocol", () => {
    const all = AdminService.methods.map((m: Method) => m.localName);
    expect(all.filter((name) => !CALLED.has(name))).toEqual([]);
  });
});
