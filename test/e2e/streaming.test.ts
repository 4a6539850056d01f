/**
 * Streaming (`stream: true`) end to end through the `openai` SDK's own stream parser:
 * models whose provider does not stream answer one `completed` event per image, with the
 * cost of each; errors before the first event are ordinary JSON errors.
 */
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { imageSize } from "image-size";
import { type RecraftStack, startRecraftStack } from "../support/recraft-stack.ts";
import { useE2EStack } from "../support/e2e.ts";

const e2e = useE2EStack();

function sdk(url: string): OpenAI {
  return new OpenAI({ apiKey: "unused", baseURL: `${url}/v1`, maxRetries: 0 });
}

interface StreamEvent {
  type: string;
  b64_json: string;
  size?: string;
  output_format?: string;
  partial_image_index?: number;
  imagegate_cost_usd?: number;
}

async function collect(stream: AsyncIterable<unknown>): Promise<StreamEvent[]> {
  const events: StreamEvent[] = [];
  for await (const event of stream) events.push(event as StreamEvent);
  return events;
}

describe("streaming a model whose provider does not stream", () => {
  it("the SDK iterates one completed event with the image, its size and its cost", async () => {
    const stream = await sdk(e2e.stack.url).images.generate({
      model: "dall-e-2",
      prompt: "a lighthouse",
      size: "256x256",
      stream: true,
    } as never);
    const events = await collect(stream as unknown as AsyncIterable<unknown>);
    expect(events.map((e) => e.type)).toEqual(["image_generation.completed"]);
    const [completed] = events;
    const bytes = Buffer.from(completed!.b64_json, "base64");
    expect(imageSize(bytes)).toMatchObject({ width: 256, height: 256 });
    expect(completed!.size).toBe("256x256");
    expect(completed!.output_format).toBe("png");
    // dall-e-2 256x256 lists at $0.016.
    expect(completed!.imagegate_cost_usd).toBeCloseTo(0.016, 10);
  });

  it("answers text/event-stream with the call's headers before the first event", async () => {
    const res = await fetch(`${e2e.stack.url}/v1/images/generations`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "req-stream-1" },
      body: JSON.stringify({ model: "image-hq", prompt: "a boat", stream: true }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    expect(res.headers.get("x-request-id")).toBe("req-stream-1");
    expect(res.headers.get("x-imagegate-model")).toBe("image-hq");
    expect(res.headers.get("x-imagegate-deployment")).toBe("openai-eu-1");
    expect(res.headers.get("x-imagegate-attempts")).toBe("1");
    const text = await res.text();
    const frames = text.split("\n\n").filter((f) => f !== "");
    expect(frames).toHaveLength(1);
    const [eventLine, dataLine] = frames[0]!.split("\n");
    expect(eventLine).toBe("event: image_generation.completed");
    const data = JSON.parse(dataLine!.replace(/^data: /, ""));
    expect(Object.keys(data)[0]).toBe("type");
    expect(data.type).toBe("image_generation.completed");
    expect(data.size).toBe("1024x1024");
    // dall-e-3 standard 1024x1024: $0.04.
    expect(data.imagegate_cost_usd).toBeCloseTo(0.04, 10);
  });

  it("a validation error with stream: true is a plain JSON 400", async () => {
    const res = await fetch(`${e2e.stack.url}/v1/images/generations`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "dall-e-2", prompt: "x", size: "999x999", stream: true }),
    });
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const body = await res.json();
    expect(body.error.param).toBe("size");
  });

  it("partial_images on a model without partial images is a 400 naming it", async () => {
    const err = await sdk(e2e.stack.url)
      .images.generate({
        model: "dall-e-2",
        prompt: "x",
        stream: true,
        partial_images: 2,
      } as never)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("partial_images");
  });

  it("an upstream failure before the first event is the ordinary JSON error", async () => {
    const res = await fetch(`${e2e.stack.url}/v1/images/generations`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "bad-key", prompt: "x", stream: true }),
    });
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.status).toBeGreaterThanOrEqual(500);
    expect((await res.json()).error).toBeDefined();
  });
});

describe("streaming a non-OpenAI provider (Recraft)", () => {
  let recraft: RecraftStack;
  beforeAll(async () => {
    recraft = await startRecraftStack();
  });
  afterAll(() => recraft?.close());

  it("answers one completed event per image, whose costs sum to the request's", async () => {
    const stream = await sdk(recraft.stack.url).images.generate({
      model: "recraft/recraftv3",
      prompt: "a lighthouse",
      n: 2,
      stream: true,
    } as never);
    const events = await collect(stream as unknown as AsyncIterable<unknown>);
    expect(events.map((e) => e.type)).toEqual([
      "image_generation.completed",
      "image_generation.completed",
    ]);
    for (const e of events) {
      const { width, height } = imageSize(Buffer.from(e.b64_json, "base64"));
      expect(`${width}x${height}`).toBe(e.size);
      expect(e.imagegate_cost_usd).toBeGreaterThan(0);
    }
    expect(events[0]!.b64_json).not.toBe(events[1]!.b64_json);
  });
});

describe("streaming a GPT-image model (the upstream streams)", () => {
  it("the SDK iterates the partial images, then the completed image with usage and cost", async () => {
    const stream = await sdk(e2e.stack.url).images.generate({
      model: "gpt-image-1",
      prompt: "a lighthouse",
      size: "1024x1024",
      quality: "low",
      stream: true,
      partial_images: 2,
    });
    const events = await collect(stream as unknown as AsyncIterable<unknown>);
    expect(events.map((e) => e.type)).toEqual([
      "image_generation.partial_image",
      "image_generation.partial_image",
      "image_generation.completed",
    ]);
    expect(events.map((e) => e.partial_image_index)).toEqual([0, 1, undefined]);
    for (const e of events) {
      expect(imageSize(Buffer.from(e.b64_json, "base64"))).toMatchObject({
        width: 1024,
        height: 1024,
      });
      expect(e.size).toBe("1024x1024");
    }
    const completed = events[2] as StreamEvent & { usage: { output_tokens: number } };
    // The emulator bills 272 image tokens for low 1024x1024, plus 100 per partial image.
    expect(completed.usage.output_tokens).toBe(272 + 200);
    expect(completed.imagegate_cost_usd).toBeGreaterThan(0);
    // The upstream was asked to stream, with the partial images.
    expect(e2e.stack.openai.requests.at(-1)?.body).toMatchObject({
      stream: true,
      partial_images: 2,
    });
  });
});
