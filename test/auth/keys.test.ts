/**
 * Gateway keys on all three protocols: who gets in, what each key may use, its rpm limit
 * and budget (kept across restarts), and that no key ever shows up in any output.
 */
import { createHash } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { InMemoryLogRecordExporter } from "@opentelemetry/sdk-logs";
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../src/gen/google/rpc/error_details_pb.js";
import { ImageService } from "../../src/gen/imagegate/v1/images_pb.js";
import { createTelemetry, type Telemetry } from "../../src/telemetry/telemetry.ts";
import { grpcClient } from "../support/grpc.ts";
import { type Stack, startStack } from "../support/stack.ts";

const TEAM_KEY = "sk-team-a-0123456789abcdef";
const OTHER_KEY = "sk-team-b-fedcba9876543210";
const MASTER = "sk-master-key-for-tests-only";
const sha = (k: string) => createHash("sha256").update(k).digest("hex");

function keysYaml(extra = '  spend_db: ":memory:"\n') {
  return `general_settings:
  master_key: ${MASTER}
${extra}keys:
  - key_sha256: ${sha(TEAM_KEY)}
    name: team-a
    models: [cheap]
    rpm_limit: 3
  - key: ${OTHER_KEY}
    name: team-b
    max_budget: 0.05
model_list:
  - model_name: cheap
    params:
      model: openai/dall-e-2
  - model_name: hq
    params:
      model: openai/dall-e-3
`;
}

let stack: Stack | undefined;
let telemetry: Telemetry | undefined;
afterEach(async () => {
  await stack?.close();
  await telemetry?.shutdown();
  stack = undefined;
  telemetry = undefined;
});

const sdk = (key: string | undefined) =>
  new OpenAI({ baseURL: `${stack!.url}/v1`, apiKey: key ?? "", maxRetries: 0 });
const tiny = { prompt: "a fox", size: "256x256", response_format: "b64_json" } as const;

describe("REST", () => {
  it("admits a configured key and the master key, refuses a missing or wrong key with 401", async () => {
    stack = await startStack({ yaml: keysYaml() });
    await expect(sdk(TEAM_KEY).images.generate({ ...tiny, model: "cheap" })).resolves.toBeDefined();
    await expect(
      sdk(MASTER).images.generate({ ...tiny, model: "hq", size: "1024x1024" }),
    ).resolves.toBeDefined();
    for (const key of [undefined, "sk-wrong", `${TEAM_KEY}x`]) {
      const res = await fetch(`${stack.url}/v1/images/generations`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(key ? { authorization: `Bearer ${key}` } : {}),
        },
        body: JSON.stringify({ ...tiny, model: "cheap" }),
      });
      expect(res.status).toBe(401);
      const body = await res.json();
      expect(body.error).toMatchObject({ type: "authentication_error", code: "invalid_api_key" });
      expect(JSON.stringify(body)).not.toContain("sk-");
    }
    expect(stack.openai.requests).toHaveLength(2);
  });

  it("answers 403 for a model the key may not use, direct provider/model names included", async () => {
    stack = await startStack({ yaml: keysYaml() });
    for (const model of ["hq", "openai/dall-e-2", "dall-e-2"]) {
      const err = await sdk(TEAM_KEY)
        .images.generate({ ...tiny, model })
        .catch((e) => e);
      expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError);
      expect(err.error).toMatchObject({ type: "permission_error", param: "model" });
    }
    expect(stack.openai.requests).toHaveLength(0);
  });

  it("keeps the key's rpm limit with 429 and Retry-After", async () => {
    stack = await startStack({ yaml: keysYaml() });
    for (let i = 0; i < 3; i++) await sdk(TEAM_KEY).images.generate({ ...tiny, model: "cheap" });
    const err = await sdk(TEAM_KEY)
      .images.generate({ ...tiny, model: "cheap" })
      .catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(Number(err.headers.get("retry-after"))).toBeGreaterThan(50);
    // Another key is not affected.
    await expect(sdk(MASTER).images.generate({ ...tiny, model: "cheap" })).resolves.toBeDefined();
  });

  it("stops a key at its budget, and remembers the spend across a restart", async () => {
    const dir = mkdtempSync(join(tmpdir(), "imagegate-spend-"));
    const yaml = keysYaml(`  spend_db: ${join(dir, "spend.sqlite")}\n`);
    stack = await startStack({ yaml });
    // dall-e-3 hd 1024x1024 may cost $0.08: more than the $0.05 budget, refused before any call.
    const hd = {
      prompt: "a fox",
      model: "hq",
      quality: "hd",
      response_format: "b64_json",
    } as const;
    const tooDear = await sdk(OTHER_KEY)
      .images.generate(hd)
      .catch((e) => e);
    expect(tooDear.status).toBe(429);
    expect(tooDear.error).toMatchObject({ type: "insufficient_quota", code: "budget_exceeded" });
    expect(stack.openai.requests).toHaveLength(0);
    // Standard costs $0.04: it fits, once.
    const { response } = await sdk(OTHER_KEY)
      .images.generate({ ...hd, quality: "standard" })
      .withResponse();
    expect(response.headers.get("x-imagegate-cost-usd")).toBe("0.04");
    const err = await sdk(OTHER_KEY)
      .images.generate({ ...tiny, size: "512x512", model: "cheap" })
      .catch((e) => e);
    expect(err.status).toBe(429);
    expect(err.error).toMatchObject({ type: "insufficient_quota", code: "budget_exceeded" });
    expect(err.headers.get("x-should-retry")).toBe("false");
    await stack.close();

    stack = await startStack({ yaml });
    const again = await sdk(OTHER_KEY)
      .images.generate({ ...tiny, size: "512x512", model: "cheap" })
      .catch((e) => e);
    expect(again.error?.code).toBe("budget_exceeded");
    expect(stack.openai.requests).toHaveLength(0);
  });

  it("keeps /healthz, /readyz and the gRPC health check open", async () => {
    stack = await startStack({ yaml: keysYaml() });
    expect((await fetch(`${stack.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${stack.url}/readyz`)).status).toBe(200);
  });
});

describe("gRPC and Connect", () => {
  it("read the same authorization metadata and give the same answers", async () => {
    stack = await startStack({ yaml: keysYaml() });
    const g = grpcClient(ImageService, `127.0.0.1:${stack.gateway.port}`);
    const md = (key?: string) => {
      const m = new grpc.Metadata();
      if (key) m.set("authorization", `Bearer ${key}`);
      return m;
    };
    try {
      const ok = await g.unary(
        "createImage",
        { prompt: "a fox", model: "cheap", size: "256x256" } as never,
        md(TEAM_KEY),
      );
      expect(ok.headers.get("x-request-id")).toHaveLength(1);
      const missing = await g
        .unary("createImage", { prompt: "a fox", model: "cheap" } as never, md())
        .catch((e) => e);
      expect(missing.code).toBe(grpc.status.UNAUTHENTICATED);
      const forbidden = await g
        .unary("createImage", { prompt: "a fox", model: "hq" } as never, md(TEAM_KEY))
        .catch((e) => e);
      expect(forbidden.code).toBe(grpc.status.PERMISSION_DENIED);
    } finally {
      g.close();
    }

    const connect = (key?: string) =>
      createClient(
        ImageService,
        createConnectTransport({
          baseUrl: stack!.url,
          httpVersion: "1.1",
          interceptors: [
            (next) => (req) => {
              if (key) req.header.set("authorization", `Bearer ${key}`);
              return next(req);
            },
          ],
        }),
      );
    await expect(
      connect(MASTER).createImage({ prompt: "a fox", model: "hq" }),
    ).resolves.toBeDefined();
    const err = ConnectError.from(
      await connect("nope")
        .createImage({ prompt: "a fox", model: "cheap" })
        .catch((e) => e),
    );
    expect(err.code).toBe(Code.Unauthenticated);
    expect(err.findDetails(ErrorInfoSchema)[0]).toMatchObject({
      reason: "invalid_api_key",
      domain: "imagegate",
    });
    const denied = ConnectError.from(
      await connect(TEAM_KEY)
        .createImage({ prompt: "a fox", model: "hq" })
        .catch((e) => e),
    );
    expect(denied.code).toBe(Code.PermissionDenied);
    expect(denied.findDetails(ErrorInfoSchema)[0]?.metadata).toMatchObject({
      type: "permission_error",
      param: "model",
    });
    // team-a's three requests this minute are spent (two over grpc-js, one refused above): 429.
    const limited = ConnectError.from(
      await connect(TEAM_KEY)
        .createImage({ prompt: "a fox", model: "cheap" })
        .catch((e) => e),
    );
    expect(limited.code).toBe(Code.ResourceExhausted);
    expect(limited.findDetails(ErrorInfoSchema)[0]?.reason).toBe("key_rate_limit_exceeded");
  });
});

describe("secrets", () => {
  it("never puts a key in logs, metrics or error messages", async () => {
    const logs = new InMemoryLogRecordExporter();
    telemetry = await createTelemetry({ env: {}, logFormat: "none", logExporter: logs });
    stack = await startStack({ yaml: keysYaml(), telemetry });
    await sdk(TEAM_KEY).images.generate({ ...tiny, model: "cheap" });
    await sdk(TEAM_KEY)
      .images.generate({ ...tiny, model: "hq" })
      .catch(() => {});
    await sdk("sk-someone-guessing-123")
      .images.generate({ ...tiny, model: "cheap" })
      .catch(() => {});
    const metrics = await (await fetch(`${stack.url}/metrics`)).text();
    const all = JSON.stringify(logs.getFinishedLogRecords().map((r) => r.attributes)) + metrics;
    for (const secret of [TEAM_KEY, OTHER_KEY, MASTER, "sk-someone-guessing-123", sha(TEAM_KEY)])
      expect(all).not.toContain(secret);
    expect(metrics).toContain('imagegate_key="team-a"');
  });
});
