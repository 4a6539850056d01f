/**
 * Gemini image models edit through Google AI Studio and Vertex AI: the `openai` SDK's
 * images.edit with one file and with an array, sent as inline parts after the prompt of a
 * `:generateContent` call; input image tokens priced at the model's image-input rate. A mask,
 * more images than the model takes, and Imagen models (no edits mapped) are 400s before
 * any upstream call. With `stream: true` (Gemini does not stream images) the answer is one
 * `image_edit.completed` event per image.
 */
import { renderPng } from "@imagegate/emulators/png";
import OpenAI, { type APIError, toFile } from "openai";
import { PNG } from "pngjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type GoogleStack, startGoogleStack } from "../support/google-stack.ts";

const A = renderPng(96, 96, "gemini-edit-a");
const B = renderPng(64, 96, "gemini-edit-b");

let ctx: GoogleStack;
let sdk: OpenAI;

beforeAll(async () => {
  ctx = await startGoogleStack({ yaml: "router_settings:\n  num_retries: 0\n" });
  sdk = new OpenAI({ baseURL: `${ctx.stack.url}/v1`, apiKey: "x", maxRetries: 0 });
});
afterAll(async () => {
  await ctx?.close();
});

type Parts = { text?: string; inlineData?: { mimeType: string; data: string } }[];

function sentParts(requests: { body: unknown }[]): Parts {
  const body = requests.at(-1)!.body as { contents: { parts: Parts }[] };
  return body.contents[0]!.parts;
}

describe("Gemini image edits", () => {
  for (const [name, model, requests] of [
    ["Google AI Studio", "gemini/gemini-2.5-flash-image", () => ctx.gemini.requests],
    ["Vertex AI", "vertex_ai/gemini-2.5-flash-image", () => ctx.vertex.requests],
  ] as const) {
    it(`${name}: two images as inline parts after the prompt, image tokens priced`, async () => {
      const { data, response } = await sdk.images
        .edit({
          model,
          image: [
            await toFile(A, "a.png", { type: "image/png" }),
            await toFile(B, "b.png", { type: "image/png" }),
          ],
          prompt: "make it night",
          response_format: "b64_json",
        })
        .withResponse();
      expect(data.data).toHaveLength(1);
      const parts = sentParts(requests());
      expect(parts[0]).toEqual({ text: "make it night" });
      expect(parts.slice(1).map((p) => Buffer.from(p.inlineData!.data, "base64"))).toEqual([A, B]);
      expect(parts.slice(1).map((p) => p.inlineData!.mimeType)).toEqual(["image/png", "image/png"]);
      // $0.30/M text and image input, $30/M image output (src/pricing/prices/gemini.yaml).
      const u = data.usage!;
      expect(u.input_tokens_details.image_tokens).toBe(2 * 258);
      const expected =
        (u.input_tokens_details.text_tokens * 0.3 + 2 * 258 * 0.3 + u.output_tokens * 30) / 1e6;
      expect(Number(response.headers.get("x-imagegate-cost-usd"))).toBeCloseTo(expected, 9);
    });
  }

  const refusals: [string, () => Promise<Parameters<OpenAI["images"]["edit"]>[0]>, string][] = [
    [
      "a mask (Gemini takes none)",
      async () => ({
        model: "gemini/gemini-2.5-flash-image",
        image: await toFile(A, "a.png"),
        mask: await toFile(A, "m.png"),
        prompt: "x",
      }),
      "mask",
    ],
    [
      "four images for gemini-2.5-flash-image (it takes 3)",
      async () => ({
        model: "gemini/gemini-2.5-flash-image",
        image: await Promise.all([0, 1, 2, 3].map(() => toFile(A, "a.png"))),
        prompt: "x",
      }),
      "image",
    ],
    [
      "an Imagen model (no edits mapped)",
      async () => ({
        model: "gemini/imagen-4.0-generate-001",
        image: await toFile(A, "a.png"),
        prompt: "x",
      }),
      "model",
    ],
  ];
  for (const [name, params, param] of refusals) {
    it(`${name}: 400 naming '${param}', nothing sent`, async () => {
      const before = ctx.gemini.requests.length;
      const err = (await sdk.images.edit(await params()).catch((e: unknown) => e)) as APIError;
      expect(err.status).toBe(400);
      expect(err.param).toBe(param);
      expect(ctx.gemini.requests.length).toBe(before);
    });
  }
});

describe("Gemini image edits with stream: true", () => {
  it("answer one completed event with the image, its usage and its cost", async () => {
    const stream = await sdk.images.edit({
      model: "gemini/gemini-2.5-flash-image",
      image: await toFile(A, "a.png", { type: "image/png" }),
      prompt: "make it night",
      stream: true,
    });
    const events = [];
    for await (const event of stream) events.push(event);
    expect(events.map((e) => e.type)).toEqual(["image_edit.completed"]);
    const completed = events[0] as OpenAI.Images.ImageEditCompletedEvent & {
      imagegate_cost_usd: number;
    };
    expect(Buffer.from(completed.b64_json, "base64").subarray(1, 4).toString()).toBe("PNG");
    expect(completed.usage.input_tokens_details.image_tokens).toBe(258);
    expect(completed.imagegate_cost_usd).toBeGreaterThan(0);
    expect(sentParts(ctx.gemini.requests)[1]!.inlineData!.data).toBe(A.toString("base64"));
  });
});

describe("a large upload", () => {
  it("reaches the upstream byte for byte (read in many chunks, joined into pooled memory)", async () => {
    // 400x400 RGB noise: about 480 KB that deflate cannot shrink, so many socket reads.
    const png = new PNG({ width: 400, height: 400 });
    let x = 0x1234567;
    for (let i = 0; i < png.data.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      png.data[i] = i % 4 === 3 ? 255 : x & 0xff;
    }
    const big = PNG.sync.write(png, { colorType: 2 });
    expect(big.length).toBeGreaterThan(400_000);
    await sdk.images.edit({
      model: "gemini/gemini-2.5-flash-image",
      image: [await toFile(big, "big.png", { type: "image/png" }), await toFile(A, "a.png")],
      prompt: "make it night",
    });
    const parts = sentParts(ctx.gemini.requests);
    expect(Buffer.from(parts[1]!.inlineData!.data, "base64").equals(big)).toBe(true);
    expect(Buffer.from(parts[2]!.inlineData!.data, "base64").equals(A)).toBe(true);
  });
});
