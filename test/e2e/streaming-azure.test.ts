/**
 * Streaming from Azure OpenAI GPT-image deployments: the deployment's server-sent events
 * passed on through the SDK (partial images, then the completed image with usage and
 * cost), and a client that goes away cancels the upstream stream.
 */
import OpenAI from "openai";
import { imageSize } from "image-size";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { AzureEmulator } from "@imagegate/emulators/azure";
import { type AzureStack, startAzureStack } from "../support/azure-stack.ts";

function yaml(azure: AzureEmulator): string {
  return `model_list:
  - model_name: gpt-image-prod
    params:
      model: azure/img-prod
      api_base: ${azure.endpoint}
    model_info:
      id: azure-gpt-image
      base_model: gpt-image-1
  - model_name: mystery
    params:
      model: azure/mystery
      api_base: ${azure.endpoint}
router_settings:
  num_retries: 0
`;
}

let ctx: AzureStack;
beforeAll(async () => {
  ctx = await startAzureStack(yaml, { "img-prod": "gpt-image-1", mystery: "gpt-image-1" });
});
afterAll(() => ctx?.close());

const BODY = {
  model: "gpt-image-prod",
  prompt: "a lighthouse",
  size: "1024x1024",
  quality: "low",
  stream: true,
  partial_images: 2,
} as const;

describe("streaming an Azure GPT-image deployment", () => {
  it("the SDK iterates the deployment's partial images, then the completed image", async () => {
    const client = new OpenAI({ apiKey: "x", baseURL: `${ctx.stack.url}/v1`, maxRetries: 0 });
    const events: Array<{ type: string; b64_json: string; imagegate_cost_usd?: number }> = [];
    for await (const e of (await client.images.generate(BODY)) as unknown as AsyncIterable<
      (typeof events)[number]
    >)
      events.push(e);
    expect(events.map((e) => e.type)).toEqual([
      "image_generation.partial_image",
      "image_generation.partial_image",
      "image_generation.completed",
    ]);
    expect(imageSize(Buffer.from(events[2]!.b64_json, "base64"))).toMatchObject({
      width: 1024,
      height: 1024,
    });
    expect(events[2]!.imagegate_cost_usd).toBeGreaterThan(0);
    expect(ctx.azure.requests.at(-1)?.body).toMatchObject({ stream: true, partial_images: 2 });
  });

  it("a client that goes away cancels the deployment's stream", async () => {
    ctx.azure.streamEventDelayMs = 300;
    const before = ctx.azure.abandonedStreams;
    const controller = new AbortController();
    const res = await fetch(`${ctx.stack.url}/v1/images/generations`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(BODY),
      signal: controller.signal,
    });
    await res.body!.getReader().read();
    controller.abort();
    await vi.waitFor(() => expect(ctx.azure.abandonedStreams).toBe(before + 1), {
      timeout: 5000,
      interval: 5,
    });
    ctx.azure.streamEventDelayMs = 0;
  });

  it("a deployment whose model the gateway does not know is not asked to stream: one completed event", async () => {
    const res = await fetch(`${ctx.stack.url}/v1/images/generations`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "mystery", prompt: "a boat", quality: "low", stream: true }),
    });
    expect(res.status).toBe(200);
    const frames = (await res.text()).split("\n\n").filter((f) => f !== "");
    expect(frames.map((f) => f.split("\n")[0])).toEqual(["event: image_generation.completed"]);
    expect(ctx.azure.requests.at(-1)?.body).not.toHaveProperty("stream");
  });
});
