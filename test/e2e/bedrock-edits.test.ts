/**
 * Bedrock edits and variations end to end through the `openai` SDK, against the Bedrock
 * emulator (which checks each task's body, the base64 images, the mask's size and pixels,
 * and the SigV4 signature): Titan and Nova Canvas INPAINTING with a mask (converted to
 * black = change) or a mask_prompt, IMAGE_VARIATION from the edit's images (similarityStrength
 * from strength) and from the variations rpc, SD3 / SD3.5 Large image-to-image with strength;
 * per-image costs; and each input check as a 400 that reaches no upstream.
 */
import { renderPng } from "@imagegate/emulators/png";
import { create } from "@bufbuild/protobuf";
import OpenAI, { type APIError, toFile } from "openai";
import { PNG } from "pngjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ImageService, InputImageSchema } from "../../src/gen/imagegate/v1/images_pb.js";
import { type BedrockStack, startBedrockStack } from "../support/bedrock-stack.ts";
import { grpcClient } from "../support/grpc.ts";

/** An RGBA PNG, transparent (where to edit) on its left half. */
function openAIMask(width: number, height: number): Buffer {
  const png = new PNG({ width, height });
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      png.data.set([0, 0, 0, x < width / 2 ? 0 : 255], (y * width + x) * 4);
  return PNG.sync.write(png);
}

const IMAGE = renderPng(512, 512, "bedrock-edit-image");
const OTHER = renderPng(512, 512, "bedrock-edit-other");
const MASK = openAIMask(512, 512);

let ctx: BedrockStack;
let sdk: OpenAI;

beforeAll(async () => {
  ctx = await startBedrockStack({ yaml: "router_settings:\n  num_retries: 0\n" });
  sdk = new OpenAI({ baseURL: `${ctx.stack.url}/v1`, apiKey: "x", maxRetries: 0 });
});
afterAll(async () => {
  await ctx?.close();
});

const png = (bytes: Buffer, name = "image.png") => toFile(bytes, name, { type: "image/png" });

function lastBody(): Record<string, unknown> {
  return ctx.bedrock.requests.at(-1)!.body as Record<string, unknown>;
}

function cost(response: Response): number {
  return Number(response.headers.get("x-imagegate-cost-usd"));
}

describe("Titan and Nova Canvas: INPAINTING", () => {
  for (const [model, each] of [
    ["bedrock/amazon.titan-image-generator-v2:0", 0.008],
    ["bedrock/amazon.nova-canvas-v1:0", 0.04],
  ] as const) {
    it(`${model}: a mask is sent black where transparent; the image keeps its size; priced per image`, async () => {
      const { data, response } = await sdk.images
        .edit({
          model,
          image: await png(IMAGE),
          mask: await png(MASK, "mask.png"),
          prompt: "a red door",
          n: 2,
          negative_prompt: "text",
          seed: 7,
        } as OpenAI.Images.ImageEditParamsNonStreaming)
        .withResponse();
      expect(data.data).toHaveLength(2);
      expect(data.size).toBe("512x512");
      const body = lastBody() as {
        taskType: string;
        inPaintingParams: Record<string, string>;
        imageGenerationConfig: Record<string, unknown>;
      };
      expect(body.taskType).toBe("INPAINTING");
      expect(body.inPaintingParams.text).toBe("a red door");
      expect(body.inPaintingParams.negativeText).toBe("text");
      expect(Buffer.from(body.inPaintingParams.image!, "base64")).toEqual(IMAGE);
      const mask = PNG.sync.read(Buffer.from(body.inPaintingParams.maskImage!, "base64"));
      expect([mask.data[0], mask.data[(512 - 1) * 4]]).toEqual([0, 255]); // left black, right white
      expect(body.imageGenerationConfig).toEqual({
        numberOfImages: 2,
        quality: "standard",
        seed: 7,
      });
      // src/pricing/prices/bedrock.yaml, at the input's 512x512: Titan's 512² tier standard
      // $0.008, Nova's ≤1024² tier $0.04.
      expect(cost(response)).toBeCloseTo(2 * each, 10);
    });
  }

  it("mask_prompt instead of a mask → maskPrompt", async () => {
    const { data } = await sdk.images.edit({
      model: "bedrock/amazon.titan-image-generator-v1",
      image: await png(IMAGE),
      prompt: "a cat",
      mask_prompt: "the dog",
    } as OpenAI.Images.ImageEditParamsNonStreaming);
    expect(data).toHaveLength(1);
    const params = (lastBody() as { inPaintingParams: Record<string, string> }).inPaintingParams;
    expect(params.maskPrompt).toBe("the dog");
    expect(params.maskImage).toBeUndefined();
  });
});

describe("Titan and Nova Canvas: IMAGE_VARIATION", () => {
  it("an edit without a mask is IMAGE_VARIATION of its images, guided by the prompt", async () => {
    const { data, response } = await sdk.images
      .edit({
        model: "bedrock/amazon.nova-canvas-v1:0",
        image: [await png(IMAGE), await png(OTHER)],
        prompt: "in watercolour",
        size: "1024x1024",
        strength: 0.5,
      } as OpenAI.Images.ImageEditParamsNonStreaming)
      .withResponse();
    expect(data.data).toHaveLength(1);
    const body = lastBody() as {
      taskType: string;
      imageVariationParams: { images: string[]; text: string; similarityStrength: number };
      imageGenerationConfig: Record<string, unknown>;
    };
    expect(body.taskType).toBe("IMAGE_VARIATION");
    expect(body.imageVariationParams.images.map((b) => Buffer.from(b, "base64"))).toEqual([
      IMAGE,
      OTHER,
    ]);
    expect(body.imageVariationParams.text).toBe("in watercolour");
    expect(body.imageVariationParams.similarityStrength).toBe(0.6); // 1 - 0.5 × 0.8
    expect(body.imageGenerationConfig).toMatchObject({ width: 1024, height: 1024 });
    expect(cost(response)).toBeCloseTo(0.04, 10);
  });

  for (const model of [
    "bedrock/amazon.titan-image-generator-v1",
    "bedrock/amazon.titan-image-generator-v2:0",
    "bedrock/amazon.nova-canvas-v1:0",
  ]) {
    it(`${model}: images.createVariation → IMAGE_VARIATION without text`, async () => {
      const { data, response } = await sdk.images
        .createVariation({ model, image: await png(IMAGE), n: 2, size: "512x512" })
        .withResponse();
      expect(data.data).toHaveLength(2);
      const body = lastBody() as {
        taskType: string;
        imageVariationParams: Record<string, unknown>;
      };
      expect(body.taskType).toBe("IMAGE_VARIATION");
      expect(Object.keys(body.imageVariationParams)).toEqual(["images"]);
      expect(cost(response)).toBeGreaterThan(0);
    });
  }

  it("a transparent input is flattened for Nova (which refuses transparency)", async () => {
    const { data } = await sdk.images.createVariation({
      model: "bedrock/amazon.nova-canvas-v1:0",
      image: await png(openAIMask(512, 512)),
    });
    expect(data).toHaveLength(1);
    const sent = (lastBody() as { imageVariationParams: { images: string[] } }).imageVariationParams
      .images[0]!;
    const flat = PNG.sync.read(Buffer.from(sent, "base64"));
    expect(flat.data[3]).toBe(255);
    expect(flat.data[0]).toBe(255); // transparent → white
  });
});

describe("SD3 / SD3.5 Large: image-to-image", () => {
  for (const model of ["bedrock/stability.sd3-large-v1:0", "bedrock/stability.sd3-5-large-v1:0"]) {
    it(`${model}: mode image-to-image with strength; $0.08 per image`, async () => {
      const image = renderPng(640, 448, "sd3-i2i");
      const { data, response } = await sdk.images
        .edit({
          model,
          image: await png(image),
          prompt: "at dusk",
          strength: 0.35,
          response_format: "b64_json",
        } as OpenAI.Images.ImageEditParamsNonStreaming)
        .withResponse();
      expect(data.data).toHaveLength(1);
      expect(data.size).toBe("640x448");
      const body = lastBody();
      expect(body).toEqual({
        prompt: "at dusk",
        mode: "image-to-image",
        image: image.toString("base64"),
        strength: expect.closeTo(0.35, 6),
      });
      expect(cost(response)).toBeCloseTo(0.08, 10);
    });
  }
});

describe("input checks: 400 naming the field, nothing sent to Bedrock", () => {
  const cases: [string, () => Promise<Record<string, unknown>>, string][] = [
    [
      "a mask and a mask_prompt",
      async () => ({
        model: "bedrock/amazon.nova-canvas-v1:0",
        image: await png(IMAGE),
        mask: await png(MASK, "mask.png"),
        mask_prompt: "the door",
        prompt: "x",
      }),
      "mask_prompt",
    ],
    [
      "a mask of another size",
      async () => ({
        model: "bedrock/amazon.titan-image-generator-v2:0",
        image: await png(IMAGE),
        mask: await png(openAIMask(256, 256), "mask.png"),
        prompt: "x",
      }),
      "mask",
    ],
    [
      "a mask without transparency",
      async () => ({
        model: "bedrock/amazon.titan-image-generator-v2:0",
        image: await png(IMAGE),
        mask: await png(renderPng(512, 512, "opaque"), "mask.png"),
        prompt: "x",
      }),
      "mask",
    ],
    [
      "two images with a mask (inpainting takes one)",
      async () => ({
        model: "bedrock/amazon.nova-canvas-v1:0",
        image: [await png(IMAGE), await png(OTHER)],
        mask: await png(MASK, "mask.png"),
        prompt: "x",
      }),
      "image",
    ],
    [
      "six images for Nova (it takes 5)",
      async () => ({
        model: "bedrock/amazon.nova-canvas-v1:0",
        image: await Promise.all([0, 1, 2, 3, 4, 5].map(() => png(IMAGE))),
        prompt: "x",
      }),
      "image",
    ],
    [
      "an image under Nova's 320-pixel side",
      async () => ({
        model: "bedrock/amazon.nova-canvas-v1:0",
        image: await png(renderPng(256, 256, "small")),
        prompt: "x",
      }),
      "image",
    ],
    [
      "a WebP for Titan (PNG or JPEG only)",
      async () => ({
        model: "bedrock/amazon.titan-image-generator-v2:0",
        image: await toFile(
          Buffer.from(
            "RIFF\x24\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
            "latin1",
          ),
          "a.webp",
          { type: "image/webp" },
        ),
        prompt: "x",
      }),
      "image",
    ],
    [
      "strength on Titan v1",
      async () => ({
        model: "bedrock/amazon.titan-image-generator-v1",
        image: await png(IMAGE),
        prompt: "x",
        strength: 0.5,
      }),
      "strength",
    ],
    [
      "SD3.5 Large without strength",
      async () => ({
        model: "bedrock/stability.sd3-5-large-v1:0",
        image: await png(IMAGE),
        prompt: "x",
      }),
      "strength",
    ],
    [
      "a size for an inpainting (it keeps the image's)",
      async () => ({
        model: "bedrock/amazon.titan-image-generator-v2:0",
        image: await png(IMAGE),
        mask_prompt: "the door",
        prompt: "x",
        size: "1024x1024",
      }),
      "size",
    ],
    [
      "SDXL (no edits)",
      async () => ({
        model: "bedrock/stability.stable-diffusion-xl-v1",
        image: await png(IMAGE),
        prompt: "x",
      }),
      "model",
    ],
  ];
  for (const [name, params, param] of cases) {
    it(`${name}: 400 naming '${param}'`, async () => {
      const before = ctx.bedrock.requests.length;
      const err = (await sdk.images
        .edit((await params()) as unknown as OpenAI.Images.ImageEditParamsNonStreaming)
        .catch((e: unknown) => e)) as APIError;
      expect(err.status).toBe(400);
      expect(err.param).toBe(param);
      expect(ctx.bedrock.requests.length).toBe(before);
    });
  }

  it("a variation from SD3.5 Large (no variations): 400 naming model", async () => {
    const before = ctx.bedrock.requests.length;
    const err = (await sdk.images
      .createVariation({ model: "bedrock/stability.sd3-5-large-v1:0", image: await png(IMAGE) })
      .catch((e: unknown) => e)) as APIError;
    expect(err.status).toBe(400);
    expect(err.param).toBe("model");
    expect(ctx.bedrock.requests.length).toBe(before);
  });
});

describe("a budgeted key's hold on an inpainting", () => {
  it("prices the input's size (the image keeps it): a 2048x1024 Nova inpainting outgrows $0.05", async () => {
    const key = "sk-bedrock-hold-0123456789abcdef";
    const held = await startBedrockStack({
      yaml: `keys:\n  - key: ${key}\n    name: holder\n    max_budget: 0.05\n`,
    });
    try {
      const client = new OpenAI({ baseURL: `${held.stack.url}/v1`, apiKey: key, maxRetries: 0 });
      const inpaint = async (width: number, height: number) =>
        client.images
          .edit({
            model: "bedrock/amazon.nova-canvas-v1:0",
            image: await png(renderPng(width, height, "hold")),
            mask_prompt: "the sky",
            prompt: "a storm",
          } as OpenAI.Images.ImageEditParamsNonStreaming)
          .withResponse();
      // Held at the input's 2048x1024: Nova's ≤2048² tier, $0.06, past the budget.
      const err = (await inpaint(2048, 1024).catch((e: unknown) => e)) as APIError;
      expect(err.status).toBe(429);
      expect(err.code).toBe("budget_exceeded");
      expect(held.bedrock.requests).toHaveLength(0);
      // 512x512 ($0.04) fits, and is billed at that.
      const { response } = await inpaint(512, 512);
      expect(Number(response.headers.get("x-imagegate-cost-usd"))).toBeCloseTo(0.04, 10);
      expect(held.bedrock.requests).toHaveLength(1);
    } finally {
      await held.close();
    }
  });
});

describe("a Bedrock edit with stream: true", () => {
  it("answers one image_edit.completed event per image, with its cost", async () => {
    const stream = await sdk.images.edit({
      model: "bedrock/amazon.titan-image-generator-v2:0",
      image: await png(IMAGE),
      mask: await png(MASK, "mask.png"),
      prompt: "a red door",
      n: 2,
      stream: true,
    });
    const events = [];
    for await (const event of stream) events.push(event);
    expect(events.map((e) => e.type)).toEqual(["image_edit.completed", "image_edit.completed"]);
    const first = events[0] as OpenAI.Images.ImageEditCompletedEvent & {
      imagegate_cost_usd: number;
    };
    expect(Buffer.from(first.b64_json, "base64").subarray(1, 4).toString()).toBe("PNG");
    expect(first.imagegate_cost_usd).toBeCloseTo(0.008, 10);
    expect((lastBody() as { taskType: string }).taskType).toBe("INPAINTING");
  });
});

describe("a Bedrock edit over gRPC", () => {
  it("takes the image and mask as bytes", async () => {
    const g = grpcClient(ImageService, `127.0.0.1:${ctx.stack.gateway.port}`);
    try {
      const { response } = await g.unary("editImage", {
        model: "bedrock/amazon.nova-canvas-v1:0",
        prompt: "a red door",
        images: [create(InputImageSchema, { data: IMAGE, mediaType: "image/png" })],
        mask: create(InputImageSchema, { data: MASK, mediaType: "image/png" }),
      } as never);
      expect((response as unknown as { data: unknown[] }).data).toHaveLength(1);
      const body = lastBody() as { taskType: string; inPaintingParams: { maskImage: string } };
      expect(body.taskType).toBe("INPAINTING");
      expect(body.inPaintingParams.maskImage.length).toBeGreaterThan(0);
    } finally {
      g.close();
    }
  });
});
