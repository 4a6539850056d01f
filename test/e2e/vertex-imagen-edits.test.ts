/**
 * Vertex AI `imagen-3.0-capability-001` edits end to end through the `openai` SDK, against
 * the Vertex emulator (which checks the `:predict` body's reference images, edit mode and
 * mask as the API reference documents them): a mask → EDIT_MODE_INPAINT_INSERTION with the
 * mask converted to white = change; no mask → EDIT_MODE_DEFAULT with the image alone. A
 * generation, a size or a WebP is a 400 before any call; cost per image.
 */
import { renderPng } from "@imagegate/emulators/png";
import OpenAI, { type APIError, toFile } from "openai";
import { PNG } from "pngjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type GoogleStack, startGoogleStack } from "../support/google-stack.ts";

const MODEL = "vertex_ai/imagen-3.0-capability-001";

/** An RGBA PNG, transparent (where to edit) on its left half. */
function openAIMask(width: number, height: number): Buffer {
  const png = new PNG({ width, height });
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      png.data.set([0, 0, 0, x < width / 2 ? 0 : 255], (y * width + x) * 4);
  return PNG.sync.write(png);
}

const IMAGE = renderPng(320, 240, "imagen-edit");

let ctx: GoogleStack;
let sdk: OpenAI;

beforeAll(async () => {
  ctx = await startGoogleStack({ yaml: "router_settings:\n  num_retries: 0\n" });
  sdk = new OpenAI({ baseURL: `${ctx.stack.url}/v1`, apiKey: "x", maxRetries: 0 });
});
afterAll(async () => {
  await ctx?.close();
});

const png = (bytes: Buffer, name = "image.png") => toFile(bytes, name, { type: "image/png" });

type Reference = {
  referenceType: string;
  referenceId: number;
  referenceImage?: { bytesBase64Encoded: string };
  maskImageConfig?: { maskMode: string };
};
type Sent = {
  instances: [{ prompt: string; referenceImages: Reference[] }];
  parameters: Record<string, unknown>;
};
const sent = () => ctx.vertex.requests.at(-1)!.body as Sent;

describe("Vertex imagen-3.0-capability-001 edits", () => {
  it("a mask → EDIT_MODE_INPAINT_INSERTION, RAW and MASK references, white where transparent", async () => {
    const { data, response } = await sdk.images
      .edit({
        model: MODEL,
        image: await png(IMAGE),
        mask: await png(openAIMask(320, 240), "mask.png"),
        prompt: "a red balloon",
        n: 2,
        negative_prompt: "text",
        seed: 5,
      } as OpenAI.Images.ImageEditParamsNonStreaming)
      .withResponse();
    expect(data.data).toHaveLength(2);
    expect(data.size).toBe("320x240");
    const body = sent();
    expect(body.parameters).toEqual({
      editMode: "EDIT_MODE_INPAINT_INSERTION",
      sampleCount: 2,
      includeRaiReason: true,
      negativePrompt: "text",
      seed: 5,
      addWatermark: false,
    });
    const [raw, mask] = body.instances[0].referenceImages;
    expect(body.instances[0].prompt).toBe("a red balloon");
    expect(raw).toMatchObject({ referenceType: "REFERENCE_TYPE_RAW", referenceId: 1 });
    expect(Buffer.from(raw!.referenceImage!.bytesBase64Encoded, "base64")).toEqual(IMAGE);
    expect(mask).toMatchObject({
      referenceType: "REFERENCE_TYPE_MASK",
      referenceId: 2,
      maskImageConfig: { maskMode: "MASK_MODE_USER_PROVIDED" },
    });
    const pixels = PNG.sync.read(Buffer.from(mask!.referenceImage!.bytesBase64Encoded, "base64"));
    expect([pixels.data[0], pixels.data[(320 - 1) * 4]]).toEqual([255, 0]);
    const out = PNG.sync.read(Buffer.from(data.data![0]!.b64_json!, "base64"));
    expect([out.width, out.height]).toEqual([320, 240]);
    // src/pricing/prices/vertex_ai.yaml: $0.04 per image (as Imagen 3 generation).
    expect(Number(response.headers.get("x-imagegate-cost-usd"))).toBeCloseTo(0.08, 10);
  });

  it("no mask → EDIT_MODE_DEFAULT with the image alone (edit by prompt)", async () => {
    const { data } = await sdk.images.edit({
      model: MODEL,
      image: await png(IMAGE),
      prompt: "make it winter",
    });
    expect(data).toHaveLength(1);
    const body = sent();
    expect(body.parameters.editMode).toBe("EDIT_MODE_DEFAULT");
    expect(body.instances[0].referenceImages.map((r) => r.referenceType)).toEqual([
      "REFERENCE_TYPE_RAW",
    ]);
  });

  it("a generation on the edit-only model: 400 naming model, nothing sent", async () => {
    const before = ctx.vertex.requests.length;
    const err = (await sdk.images
      .generate({ model: MODEL, prompt: "x" })
      .catch((e: unknown) => e)) as APIError;
    expect(err.status).toBe(400);
    expect(err.param).toBe("model");
    expect(ctx.vertex.requests.length).toBe(before);
  });

  const refusals: [string, () => Promise<Record<string, unknown>>, string][] = [
    [
      "a size (the result keeps the input's)",
      async () => ({ model: MODEL, image: await png(IMAGE), prompt: "x", size: "1024x1024" }),
      "size",
    ],
    [
      "a mask of another size",
      async () => ({
        model: MODEL,
        image: await png(IMAGE),
        mask: await png(openAIMask(64, 64), "mask.png"),
        prompt: "x",
      }),
      "mask",
    ],
    [
      "two images (it edits one)",
      async () => ({ model: MODEL, image: [await png(IMAGE), await png(IMAGE)], prompt: "x" }),
      "image",
    ],
    [
      "strength (not taken)",
      async () => ({ model: MODEL, image: await png(IMAGE), prompt: "x", strength: 0.5 }),
      "strength",
    ],
  ];
  for (const [name, params, param] of refusals) {
    it(`${name}: 400 naming '${param}', nothing sent`, async () => {
      const before = ctx.vertex.requests.length;
      const err = (await sdk.images
        .edit((await params()) as unknown as OpenAI.Images.ImageEditParamsNonStreaming)
        .catch((e: unknown) => e)) as APIError;
      expect(err.status).toBe(400);
      expect(err.param).toBe(param);
      expect(ctx.vertex.requests.length).toBe(before);
    });
  }
});
