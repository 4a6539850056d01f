/**
 * Traces, metrics and logs of real requests, caught by in-memory exporters; `/metrics`
 * read by a Prometheus text parser; and the one-number rule: the cost counter adds up to
 * exactly the cost headers clients saw, retries and fallbacks included.
 */
import { SpanKind } from "@opentelemetry/api";
import { InMemoryLogRecordExporter } from "@opentelemetry/sdk-logs";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace";
import OpenAI from "openai";
import parsePrometheus from "parse-prometheus-text-format";
import { afterEach, describe, expect, it } from "vitest";
import { openaiFaults } from "@imagegate/emulators/openai";
import { ImageService } from "../../src/gen/imagegate/v1/images_pb.js";
import { createTelemetry, otlpUrl, type Telemetry } from "../../src/telemetry/telemetry.ts";
import { grpcClient } from "../support/grpc.ts";
import { type MultiStack, startMultiStack } from "../support/multi-stack.ts";
import { type Stack, startStack } from "../support/stack.ts";

let stack: Stack | MultiStack | undefined;
let telemetry: Telemetry | undefined;
afterEach(async () => {
  await stack?.close();
  await telemetry?.shutdown();
  stack = undefined;
  telemetry = undefined;
});

async function withExporters() {
  const spans = new InMemorySpanExporter();
  const logs = new InMemoryLogRecordExporter();
  telemetry = await createTelemetry({
    env: {},
    logFormat: "none",
    spanExporter: spans,
    logExporter: logs,
  });
  return { spans, logs, telemetry };
}

async function scrape(url: string) {
  const text = await (await fetch(`${url}/metrics`)).text();
  return parsePrometheus(text);
}

function sum(
  families: ReturnType<typeof parsePrometheus>,
  name: string,
  labels: Record<string, string> = {},
): number {
  const family = families.find((f) => f.name === name);
  return (family?.metrics ?? [])
    .filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
    .reduce((total, m) => total + Number(m.value ?? m.count ?? 0), 0);
}

describe("traces", () => {
  it("makes a SERVER span per request under the caller's trace, and a CLIENT span per upstream attempt", async () => {
    const { spans, telemetry } = await withExporters();
    stack = await startStack({ telemetry });
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: "x", maxRetries: 0 });
    await client.images.generate(
      { model: "gpt-image-1", prompt: "a secret prompt about foxes", quality: "low" },
      { headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } },
    );
    const finished = spans.getFinishedSpans();
    const server = finished.find((s) => s.kind === SpanKind.SERVER)!;
    const upstream = finished.find((s) => s.kind === SpanKind.CLIENT)!;
    expect(server.name).toBe("imagegate.v1.ImageService/CreateImage");
    expect(server.spanContext().traceId).toBe(traceId);
    expect(server.parentSpanContext?.spanId).toBe("00f067aa0ba902b7");
    expect(server.attributes).toMatchObject({
      "rpc.system.name": "connectrpc",
      "rpc.method": "imagegate.v1.ImageService/CreateImage",
      "rpc.status_code": "OK",
      "imagegate.model": "openai/gpt-image-1",
      "imagegate.protocol": "rest",
    });
    expect(upstream.name).toBe("generate_content gpt-image-1");
    expect(upstream.spanContext().traceId).toBe(traceId);
    expect(upstream.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
    expect(upstream.attributes).toMatchObject({
      "gen_ai.operation.name": "generate_content",
      "gen_ai.output.type": "image",
      "gen_ai.provider.name": "openai",
      "gen_ai.request.model": "gpt-image-1",
      "gen_ai.response.model": "gpt-image-1",
      "imagegate.deployment": "openai/gpt-image-1",
      "imagegate.images": 1,
    });
    expect(upstream.attributes["gen_ai.usage.output_tokens"]).toBe(272);
    // Prompts are not recorded unless config turns that on.
    expect(JSON.stringify(finished.map((s) => s.attributes))).not.toContain("secret prompt");
  });

  it("marks gRPC calls as grpc and records retries and fallbacks as events on the request span", async () => {
    const { spans, telemetry } = await withExporters();
    stack = await startMultiStack(
      [
        { id: "primary", group: "hq" },
        { id: "backup", group: "backup" },
      ],
      "  num_retries: 1\n  allowed_fails: 10\n  fallbacks: [{ hq: [backup] }]\n",
      telemetry,
    );
    stack.upstream.primary!.faults.push({ ...openaiFaults.serverError(), times: 2 });
    const grpc = grpcClient(ImageService, `127.0.0.1:${stack.gateway.port}`);
    try {
      await grpc.unary("createImage", { prompt: "a fox", model: "hq", size: "256x256" } as never);
    } finally {
      grpc.close();
    }
    const server = spans.getFinishedSpans().find((s) => s.kind === SpanKind.SERVER)!;
    expect(server.attributes["rpc.system.name"]).toBe("grpc");
    expect(server.attributes["imagegate.model"]).toBe("backup");
    expect(server.events.map((e) => e.name)).toEqual(["imagegate.retry", "imagegate.fallback"]);
    const attempts = spans.getFinishedSpans().filter((s) => s.kind === SpanKind.CLIENT);
    expect(attempts.map((s) => s.attributes["imagegate.deployment"])).toEqual([
      "primary",
      "primary",
      "backup",
    ]);
    expect(attempts.map((s) => s.attributes["error.type"])).toEqual([
      "upstream_error",
      "upstream_error",
      undefined,
    ]);
  });
});

describe("logs", () => {
  it("writes one structured record per request, without the prompt or any key", async () => {
    const { logs, telemetry } = await withExporters();
    stack = await startStack({ telemetry });
    const client = new OpenAI({
      baseURL: `${stack.url}/v1`,
      apiKey: "sk-client-secret-123",
      maxRetries: 0,
    });
    await client.images.generate({
      model: "dall-e-3",
      prompt: "a private lighthouse",
      quality: "hd",
      response_format: "b64_json",
    });
    await client.images
      .generate({ model: "dall-e-3", prompt: "something forbidden" })
      .catch(() => {});
    const records = logs.getFinishedLogRecords();
    expect(records).toHaveLength(2);
    const [ok, refused] = records;
    expect(ok!.attributes).toMatchObject({
      "imagegate.model": "openai/dall-e-3",
      "imagegate.deployment": "openai/dall-e-3",
      "imagegate.provider": "openai",
      "imagegate.status": "200",
      "imagegate.attempts": 1,
      "imagegate.cost_usd": 0.08,
      "imagegate.images": 1,
      "imagegate.size": "1024x1024",
      "imagegate.quality": "hd",
    });
    expect(ok!.attributes["imagegate.request_id"]).toMatch(/^req_/);
    expect(ok!.spanContext?.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(typeof ok!.attributes["imagegate.duration_ms"]).toBe("number");
    expect(refused!.attributes).toMatchObject({
      "imagegate.status": "400",
      "error.type": "INVALID_ARGUMENT",
    });
    const all = JSON.stringify(records.map((r) => [r.body, r.attributes]));
    expect(all).not.toContain("private lighthouse");
    expect(all).not.toContain("sk-client-secret-123");
    expect(all).not.toContain("sk-test-emulator-key");
  });
});

describe("metrics", () => {
  it("adds up the cost counter to exactly the cost headers over a run with retries and fallbacks", async () => {
    stack = await startMultiStack(
      [
        { id: "flaky", group: "hq", model: "dall-e-3" },
        { id: "steady", group: "hq", model: "dall-e-3" },
        { id: "cheap", group: "cheap", model: "dall-e-2" },
      ],
      "  num_retries: 1\n  allowed_fails: 1000\n  fallbacks: [{ hq: [cheap] }]\n",
    );
    stack.upstream.flaky!.faults.push({
      ...openaiFaults.serverError(),
      times: Number.POSITIVE_INFINITY,
      probability: 0.5,
    });
    stack.upstream.steady!.faults.push({
      ...openaiFaults.serverError(),
      times: Number.POSITIVE_INFINITY,
      probability: 0.3,
    });
    const client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: "x", maxRetries: 0 });
    let headerTotal = 0;
    let answered = 0;
    let fellBack = 0;
    for (let i = 0; i < 60; i++) {
      const quality = i % 2 === 0 ? "hd" : "standard";
      try {
        const { response } = await client.images
          .generate({
            model: "hq",
            prompt: "a fox",
            quality: quality as "hd",
            response_format: "b64_json",
          })
          .withResponse();
        headerTotal += Number(response.headers.get("x-imagegate-cost-usd"));
        answered += 1;
        if (response.headers.get("x-imagegate-model") === "cheap") fellBack += 1;
      } catch (e) {
        // A failed request costs nothing, and says so.
        expect((e as { headers: Headers }).headers.get("x-imagegate-cost-usd")).toBe("0");
      }
    }
    expect(answered).toBeGreaterThan(30);
    const families = await scrape(stack.url);
    expect(sum(families, "imagegate_cost_total")).toBeCloseTo(headerTotal, 9);
    expect(sum(families, "imagegate_images_total")).toBe(answered);
    // A fallback's success is charged to the model that answered.
    expect(sum(families, "imagegate_images_total", { imagegate_model: "cheap" })).toBe(fellBack);
    expect(
      sum(families, "imagegate_upstream_attempts_total", { imagegate_outcome: "upstream_error" }),
    ).toBeGreaterThan(0);
    expect(
      sum(families, "imagegate_upstream_attempts_total", { imagegate_outcome: "success" }),
    ).toBe(answered);
  });

  it("exposes the contract's instruments in Prometheus text, with deployment health", async () => {
    stack = await startMultiStack(
      [{ id: "a", group: "g" }],
      "  allowed_fails: 1\n  cooldown_time: 60\n  num_retries: 0\n",
    );
    const client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: "x", maxRetries: 0 });
    await client.images.generate({ model: "g", prompt: "a fox", size: "256x256" });
    let families = await scrape(stack.url);
    const names = families.map((f) => f.name);
    for (const name of [
      "imagegate_cost_total",
      "imagegate_images_total",
      "imagegate_upstream_attempts_total",
      "imagegate_deployment_healthy",
      "imagegate_requests_in_flight",
      "gen_ai_client_operation_duration",
      "rpc_server_call_duration",
    ]) {
      expect(
        names.some((n) => n === name || n.startsWith(name)),
        name,
      ).toBe(true);
    }
    expect(sum(families, "imagegate_deployment_healthy", { imagegate_deployment: "a" })).toBe(1);
    stack.upstream.a!.faults.push(openaiFaults.serverError());
    await client.images.generate({ model: "g", prompt: "a fox", size: "256x256" }).catch(() => {});
    families = await scrape(stack.url);
    expect(sum(families, "imagegate_deployment_healthy", { imagegate_deployment: "a" })).toBe(0);
  });
});

describe("OTLP configuration", () => {
  it("derives each signal's URL from the standard variables", () => {
    expect(otlpUrl({}, "TRACES")).toBeUndefined();
    expect(otlpUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/" }, "TRACES")).toBe(
      "http://collector:4318/v1/traces",
    );
    expect(
      otlpUrl(
        {
          OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318",
          OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: "http://l/x",
        },
        "LOGS",
      ),
    ).toBe("http://l/x");
    expect(
      otlpUrl(
        { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_METRICS_EXPORTER: "none" },
        "METRICS",
      ),
    ).toBeUndefined();
  });
});
