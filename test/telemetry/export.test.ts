/**
 * Telemetry leaving the process as an operator would collect it: OTLP/HTTP to a collector
 * (here a local receiver that decodes what arrives), and `/metrics` scraped by a real
 * Prometheus server whose query API must return the cost total the clients were charged.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { createTelemetry, type Telemetry } from "../../src/telemetry/telemetry.ts";
import { type Stack, startStack } from "../support/stack.ts";
import { hasTestProgram } from "../support/test-programs.ts";

let stack: Stack | undefined;
let telemetry: Telemetry | undefined;
let cleanup: (() => void)[] = [];
afterEach(async () => {
  await stack?.close();
  await telemetry?.shutdown();
  for (const c of cleanup) c();
  stack = undefined;
  telemetry = undefined;
  cleanup = [];
});

interface Received {
  path: string;
  contentType: string;
  body: unknown;
}

async function startReceiver(): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    let text = "";
    req.on("data", (d) => {
      text += d;
    });
    req.on("end", () => {
      received.push({
        path: req.url ?? "",
        contentType: req.headers["content-type"] ?? "",
        body: JSON.parse(text),
      });
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{}");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  cleanup.push(() => server.close());
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received };
}

describe("OTLP/HTTP export", () => {
  it("sends traces, metrics and logs to the collector the standard variables name", async () => {
    const receiver = await startReceiver();
    telemetry = await createTelemetry({
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_SERVICE_NAME: "imagegate-test" },
      logFormat: "none",
    });
    stack = await startStack({ telemetry });
    const client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: "x", maxRetries: 0 });
    await client.images.generate({
      model: "dall-e-3",
      prompt: "a fox",
      response_format: "b64_json",
    });
    await telemetry.forceFlush();

    const byPath = (p: string) =>
      receiver.received.filter((r) => r.path === p).map((r) => JSON.stringify(r.body));
    const traces = byPath("/v1/traces").join();
    expect(traces).toContain("imagegate.v1.ImageService/CreateImage");
    expect(traces).toContain("generate_content dall-e-3");
    expect(traces).toContain("imagegate-test");
    const logs = byPath("/v1/logs").join();
    expect(logs).toContain("imagegate.cost_usd");
    expect(logs).toContain("openai/dall-e-3");
    const metrics = byPath("/v1/metrics").join();
    expect(metrics).toContain("imagegate.cost");
    expect(metrics).toContain("gen_ai.client.operation.duration");
    expect(receiver.received.every((r) => r.contentType.startsWith("application/json"))).toBe(true);
  });
});

// Runs where prometheus is installed; .ci/run installs it and makes it mandatory.
describe.skipIf(!hasTestProgram("prometheus"))("a real Prometheus server", () => {
  it("scrapes /metrics and answers the cost total the clients were charged", async () => {
    stack = await startStack();
    const client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: "x", maxRetries: 0 });
    let charged = 0;
    for (const [model, quality] of [
      ["dall-e-3", "hd"],
      ["dall-e-3", "standard"],
      ["dall-e-2", "standard"],
      ["gpt-image-1", "low"],
    ] as const) {
      const { response } = await client.images
        .generate({
          model,
          prompt: "a fox",
          quality,
          ...(model === "gpt-image-1" ? {} : { response_format: "b64_json" }),
        })
        .withResponse();
      charged += Number(response.headers.get("x-imagegate-cost-usd"));
    }
    const dir = mkdtempSync(join(tmpdir(), "imagegate-prom-"));
    const configFile = join(dir, "prometheus.yml");
    writeFileSync(
      configFile,
      `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: imagegate\n    static_configs:\n      - targets: ["127.0.0.1:${stack.gateway.port}"]\n`,
    );
    const port = 19090 + Math.floor(Math.random() * 500);
    const prom: ChildProcess = spawn(
      "prometheus",
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: "ignore" },
    );
    cleanup.push(() => prom.kill("SIGKILL"));
    const query = `http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent("sum(imagegate_cost_total)")}`;
    let value: number | undefined;
    for (let i = 0; i < 60 && value === undefined; i++) {
      await new Promise((r) => setTimeout(r, 500));
      const answer = await fetch(query)
        .then((r) => r.json() as Promise<{ data?: { result?: { value: [number, string] }[] } }>)
        .catch(() => undefined);
      const v = answer?.data?.result?.[0]?.value[1];
      if (v !== undefined) value = Number(v);
    }
    expect(value).toBeCloseTo(charged, 9);
    expect(charged).toBeGreaterThan(0.1);
  }, 40_000);
});
