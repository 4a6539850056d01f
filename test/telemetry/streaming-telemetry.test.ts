/**
 * A stream's telemetry: the request's SERVER span lasts until the last event, with an event
 * per partial image; the time to the first event is the histogram
 * `imagegate.stream.first_event.duration`; the cost counter adds the stream's cost.
 */
import { SpanKind } from "@opentelemetry/api";
import { InMemoryLogRecordExporter } from "@opentelemetry/sdk-logs";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace";
import OpenAI from "openai";
import parsePrometheus from "parse-prometheus-text-format";
import { afterEach, describe, expect, it } from "vitest";
import { createTelemetry, type Telemetry } from "../../src/telemetry/telemetry.ts";
import { type Stack, startStack } from "../support/stack.ts";

let stack: Stack | undefined;
let telemetry: Telemetry | undefined;
afterEach(async () => {
  await stack?.close();
  await telemetry?.shutdown();
  stack = undefined;
  telemetry = undefined;
});

describe("a streamed request's telemetry", () => {
  it("one span over the whole stream with an event per partial image, the first-event histogram, the cost", async () => {
    const spans = new InMemorySpanExporter();
    telemetry = await createTelemetry({
      env: {},
      logFormat: "none",
      spanExporter: spans,
      logExporter: new InMemoryLogRecordExporter(),
    });
    stack = await startStack({ telemetry });
    stack.openai.streamEventDelayMs = 20;
    const client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: "x", maxRetries: 0 });
    const stream = await client.images.generate({
      model: "gpt-image-1",
      prompt: "a lighthouse",
      size: "1024x1024",
      quality: "low",
      stream: true,
      partial_images: 3,
    });
    let cost = 0;
    for await (const e of stream as unknown as AsyncIterable<{ imagegate_cost_usd?: number }>)
      cost += e.imagegate_cost_usd ?? 0;
    // The span ends with the stream; give the exporter its turn.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const server = spans
      .getFinishedSpans()
      .find(
        (s) =>
          s.kind === SpanKind.SERVER && s.name === "imagegate.v1.ImageService/CreateImageStream",
      );
    expect(server).toBeDefined();
    expect(server!.events.filter((e) => e.name === "imagegate.partial_image")).toHaveLength(3);
    expect(server!.attributes["rpc.status_code"]).toBe("OK");
    const families = parsePrometheus(await (await fetch(`${stack.url}/metrics`)).text());
    const first = families.find((f) => f.name === "imagegate_stream_first_event_duration");
    expect(first, families.map((f) => f.name).join(", ")).toBeDefined();
    // One observation: the `+Inf` bucket counts every one.
    const buckets = (first!.metrics[0] as { buckets: Record<string, string> }).buckets;
    expect(buckets["+Inf"]).toBe("1");
    const costFamily = families.find((f) => f.name === "imagegate_cost_total");
    const counted = (costFamily?.metrics ?? []).reduce((t, m) => t + Number(m.value ?? 0), 0);
    expect(cost).toBeGreaterThan(0);
    expect(counted).toBeCloseTo(cost, 10);
  });
});
