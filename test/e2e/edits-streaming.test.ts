/**
 * Streamed edits (`stream: true` on POST /v1/images/edits, `EditImageStream` over gRPC and
 * Connect) against the OpenAI emulator: the `openai` SDK's `images.edit({stream: true})`
 * iterating `image_edit.*` events, the JSON form, grpc-js and connect-es clients, a fault
 * mid-stream, a client going away mid-stream (the upstream call cancelled), a validation
 * error answered as plain JSON, and a model whose upstream does not stream (dall-e-2)
 * answering one completed event.
 */
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { renderPng } from "@imagegate/emulators/png";
import { imageSize } from "image-size";
import OpenAI, { type APIError, toFile } from "openai";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type ImageStreamEvent, ImageService } from "../../src/gen/imagegate/v1/images_pb.js";
import { grpcClient } from "../support/grpc.ts";
import { type Stack, startStack } from "../support/stack.ts";

const YAML = `
model_list:
  - model_name: editor
    params:
      model: openai/gpt-image-1
  - model_name: legacy
    params:
      model: openai/dall-e-2
router_settings:
  num_retries: 0
`;

const INPUT = renderPng(256, 256, "stream-edit-input");
const SECOND = renderPng(256, 256, "stream-edit-second");

let stack: Stack;
let sdk: OpenAI;

beforeAll(async () => {
  stack = await startStack({ yaml: YAML });
  sdk = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: "x", maxRetries: 0 });
});
afterAll(async () => {
  await stack?.close();
});

function lastUpstream(): { path: string; body: Record<string, unknown> } {
  const r = stack.openai.requests.at(-1)!;
  return { path: r.path, body: r.body as Record<string, unknown> };
}

/** A server-sent-events body as [event, data] pairs. */
function frames(text: string): [string, Record<string, unknown>][] {
  return text
    .split("\n\n")
    .filter((f) => f.trim() !== "")
    .map((f) => {
      const [event, data] = f.split("\n");
      return [event!.replace(/^event: /, ""), JSON.parse(data!.replace(/^data: /, ""))];
    });
}

function kinds(events: ImageStreamEvent[]): Array<string | undefined> {
  return events.map((e) => e.event.case);
}

describe("the openai SDK's images.edit with stream: true", () => {
  it("iterates two partial images, then the completed image with its usage and cost", async () => {
    const stream = await sdk.images.edit({
      model: "editor",
      image: [
        await toFile(INPUT, "a.png", { type: "image/png" }),
        await toFile(SECOND, "b.png", { type: "image/png" }),
      ],
      prompt: "make it snow",
      size: "1024x1024",
      quality: "low",
      stream: true,
      partial_images: 2,
    });
    const events = [];
    for await (const event of stream) events.push(event);
    expect(events.map((e) => e.type)).toEqual([
      "image_edit.partial_image",
      "image_edit.partial_image",
      "image_edit.completed",
    ]);
    expect(
      events.slice(0, 2).map((e) => (e as { partial_image_index: number }).partial_image_index),
    ).toEqual([0, 1]);
    for (const e of events) {
      expect(imageSize(Buffer.from(e.b64_json, "base64"))).toMatchObject({
        width: 1024,
        height: 1024,
      });
      expect(e).toMatchObject({ size: "1024x1024", quality: "low", output_format: "png" });
    }
    const completed = events[2] as OpenAI.Images.ImageEditCompletedEvent & {
      imagegate_cost_usd: number;
    };
    // The two input images were billed as input image tokens (the emulator counts them).
    expect(completed.usage.input_tokens_details.image_tokens).toBeGreaterThan(0);
    expect(completed.imagegate_cost_usd).toBeGreaterThan(0);
    // Upstream: the edit's multipart form, streamed.
    const up = lastUpstream();
    expect(up.path).toBe("/v1/images/edits");
    expect(up.body).toMatchObject({ model: "gpt-image-1", stream: true, partial_images: 2 });
    expect((up.body.files as { name: string }[]).map((f) => f.name)).toEqual([
      "image[]",
      "image[]",
    ]);
  });

  it("a model whose upstream does not stream (dall-e-2) answers one completed event", async () => {
    const stream = await sdk.images.edit({
      model: "legacy",
      image: await toFile(INPUT, "a.png", { type: "image/png" }),
      prompt: "make it snow",
      size: "256x256",
      stream: true,
    });
    const events = [];
    for await (const event of stream) events.push(event);
    expect(events.map((e) => e.type)).toEqual(["image_edit.completed"]);
    expect(imageSize(Buffer.from(events[0]!.b64_json, "base64"))).toMatchObject({
      width: 256,
      height: 256,
    });
    // dall-e-2 at 256x256: $0.016 (src/pricing/prices/openai.yaml).
    expect((events[0] as unknown as { imagegate_cost_usd: number }).imagegate_cost_usd).toBe(0.016);
    expect(lastUpstream().body).not.toHaveProperty("stream");
  });
});

describe("the JSON form with stream: true", () => {
  it("answers server-sent events with OpenAI's image_edit types", async () => {
    const res = await fetch(`${stack.url}/v1/images/edits`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "editor",
        prompt: "a boat",
        images: [{ image_url: `data:image/png;base64,${INPUT.toString("base64")}` }],
        size: "1024x1024",
        quality: "low",
        stream: true,
        partial_images: 1,
      }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    expect(res.headers.get("x-imagegate-model")).toBe("editor");
    const got = frames(await res.text());
    expect(got.map(([event]) => event)).toEqual([
      "image_edit.partial_image",
      "image_edit.completed",
    ]);
    for (const [event, data] of got) expect(data.type).toBe(event);
    expect(got[1]![1].imagegate_cost_usd).toBeGreaterThan(0);
  });

  it("a validation error is a plain JSON 400 naming the field, nothing reaching the upstream", async () => {
    const before = stack.openai.requests.length;
    const res = await fetch(`${stack.url}/v1/images/edits`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "editor",
        prompt: "a boat",
        images: [
          { image_url: `data:image/png;base64,${Buffer.from("not an image").toString("base64")}` },
        ],
        stream: true,
        partial_images: 2,
      }),
    });
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const body = (await res.json()) as { error: { param: string; type: string } };
    expect(body.error).toMatchObject({ param: "image", type: "invalid_request_error" });
    expect(stack.openai.requests.length).toBe(before);
  });

  it("a multipart validation error with stream=true is a plain JSON 400 too", async () => {
    const before = stack.openai.requests.length;
    const err = await sdk.images
      .edit({
        model: "editor",
        image: await toFile(INPUT, "a.png", { type: "image/png" }),
        prompt: "a boat",
        stream: true,
        partial_images: 4,
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as APIError).param).toBe("partial_images");
    expect(stack.openai.requests.length).toBe(before);
  });

  it("an upstream fault mid-stream is one error event, and nothing after it", async () => {
    stack.openai.streamFaults.push({ afterEvents: 1, action: "error" });
    const res = await fetch(`${stack.url}/v1/images/edits`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "editor",
        prompt: "a boat",
        images: [{ image_url: `data:image/png;base64,${INPUT.toString("base64")}` }],
        quality: "low",
        stream: true,
        partial_images: 2,
      }),
    });
    expect(res.status).toBe(200);
    const got = frames(await res.text());
    expect(got.map(([event]) => event)).toEqual(["image_edit.partial_image", "error"]);
    expect(got[1]![1]).toMatchObject({ type: "error", error: { type: expect.any(String) } });
  });
});

describe("a client that goes away mid-stream", () => {
  it("cancels the upstream edit", async () => {
    // Slow enough that the client leaves while the upstream is still drawing.
    stack.openai.streamEventDelayMs = 300;
    try {
      const abandonedBefore = stack.openai.abandonedRequests;
      const controller = new AbortController();
      const res = await fetch(`${stack.url}/v1/images/edits`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: "editor",
          prompt: "a boat",
          images: [{ image_url: `data:image/png;base64,${INPUT.toString("base64")}` }],
          quality: "low",
          stream: true,
          partial_images: 3,
        }),
        signal: controller.signal,
      });
      expect(res.status).toBe(200);
      await res.body!.getReader().read();
      controller.abort();
      await vi.waitFor(() => expect(stack.openai.abandonedRequests).toBe(abandonedBefore + 1), {
        timeout: 5000,
        interval: 5,
      });
      expect(lastUpstream().path).toBe("/v1/images/edits");
    } finally {
      stack.openai.streamEventDelayMs = 0;
    }
  });
});

describe("EditImageStream over gRPC (grpc-js)", () => {
  it("sends the partial image and the completed image as bytes, then the cost in the trailer", async () => {
    const { client } = grpcClient(ImageService, `127.0.0.1:${stack.gateway.port}`);
    try {
      const call = (
        client as unknown as Record<
          string,
          (req: unknown, md: grpc.Metadata) => grpc.ClientReadableStream<ImageStreamEvent>
        >
      ).editImageStream!(
        {
          model: "editor",
          prompt: "a cat",
          images: [{ data: INPUT, mediaType: "image/png" }],
          size: "1024x1024",
          quality: "low",
          partialImages: 1,
        },
        new grpc.Metadata(),
      );
      const trailer = new Promise<grpc.StatusObject>((resolve) => call.once("status", resolve));
      const events: ImageStreamEvent[] = [];
      for await (const event of call) events.push(event as ImageStreamEvent);
      expect(kinds(events)).toEqual(["partialImage", "completed"]);
      const completed = events[1]!.event;
      if (completed.case !== "completed") throw new Error("not completed");
      expect(imageSize(completed.value.b64Json)).toMatchObject({ width: 1024, height: 1024 });
      expect(completed.value.usage?.inputTokensDetails?.imageTokens).toBeGreaterThan(0);
      const status = await trailer;
      expect(status.code).toBe(grpc.status.OK);
      expect(Number(status.metadata.get("x-imagegate-cost-usd")[0])).toBeCloseTo(
        completed.value.imagegateCostUsd!,
        10,
      );
      expect(lastUpstream().path).toBe("/v1/images/edits");
    } finally {
      client.close();
    }
  });
});

describe("EditImageStream over Connect (HTTP/2 binary)", () => {
  it("iterates the events, and a bad image fails before any event", async () => {
    const client = createClient(
      ImageService,
      createConnectTransport({ baseUrl: stack.url, httpVersion: "2", useBinaryFormat: true }),
    );
    const events: ImageStreamEvent[] = [];
    let trailer: Headers | undefined;
    for await (const e of client.editImageStream(
      {
        model: "editor",
        prompt: "a cat",
        images: [{ data: INPUT }],
        quality: "low",
        partialImages: 2,
      },
      { onTrailer: (t) => (trailer = t) },
    ))
      events.push(e);
    expect(kinds(events)).toEqual(["partialImage", "partialImage", "completed"]);
    expect(Number(trailer?.get("x-imagegate-cost-usd"))).toBeGreaterThan(0);

    const failing = async () => {
      for await (const _ of client.editImageStream({
        model: "editor",
        prompt: "a cat",
        images: [{ data: new Uint8Array([1, 2, 3]) }],
      }))
        throw new Error("no event expected");
    };
    await expect(failing()).rejects.toMatchObject({ code: 3 });
  });
});
