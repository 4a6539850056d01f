/**
 * The Bedrock emulator's edit tasks on their own, called through the official AWS SDK
 * (@aws-sdk/client-bedrock-runtime): Titan / Nova INPAINTING and IMAGE_VARIATION and SD3
 * image-to-image bodies it takes, and each one it refuses as Bedrock documents (one of
 * maskImage / maskPrompt, a mask of the image's size with only pure black and white pixels,
 * base64 PNG/JPEG inputs, Nova's opaque inputs and sizes, variation image counts and
 * similarityStrength, SD3's image and strength without aspect_ratio).
 */
import { BedrockRuntimeClient, InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import { type BedrockEmulator, startBedrockEmulator } from "@imagegate/emulators/bedrock";
import { pngSize, renderPng } from "@imagegate/emulators/png";
import { PNG } from "pngjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const CREDENTIALS = {
  accessKeyId: "AKIAEMULATOREDITS001",
  secretAccessKey: "emulator/edit/secret+key/000000000000000",
};
const TITAN_V1 = "amazon.titan-image-generator-v1";
const TITAN_V2 = "amazon.titan-image-generator-v2:0";
const NOVA = "amazon.nova-canvas-v1:0";

let emulator: BedrockEmulator;
let client: BedrockRuntimeClient;

beforeAll(async () => {
  emulator = await startBedrockEmulator({ credentials: [CREDENTIALS], region: "us-east-1" });
  client = new BedrockRuntimeClient({
    region: "us-east-1",
    endpoint: emulator.endpoint,
    credentials: CREDENTIALS,
    maxAttempts: 1,
  });
});
afterAll(async () => {
  client?.destroy();
  await emulator?.close();
});

/** A PNG whose pixel at (x, y) is `pixel(x, y)`, as base64. */
function png(
  width: number,
  height: number,
  pixel: (x: number, y: number) => [number, number, number, number],
): string {
  const image = new PNG({ width, height });
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) image.data.set(pixel(x, y), (y * width + x) * 4);
  return PNG.sync.write(image).toString("base64");
}

const IMAGE = renderPng(512, 512, "edit-bodies").toString("base64");
const MASK = png(512, 512, (x) => (x < 256 ? [0, 0, 0, 255] : [255, 255, 255, 255]));

async function invoke(modelId: string, body: unknown): Promise<Record<string, unknown>> {
  const out = await client.send(
    new InvokeModelCommand({
      modelId,
      body: JSON.stringify(body),
      contentType: "application/json",
      accept: "application/json",
    }),
  );
  return JSON.parse(new TextDecoder().decode(out.body)) as Record<string, unknown>;
}

async function refusal(modelId: string, body: unknown): Promise<{ name: string; message: string }> {
  const err = (await invoke(modelId, body).then(
    () => {
      throw new Error("expected a refusal");
    },
    (e: unknown) => e,
  )) as { name: string; message: string; $metadata: { httpStatusCode: number } };
  expect(err.$metadata.httpStatusCode).toBe(400);
  return { name: err.name, message: err.message };
}

const inpainting = (params: Record<string, unknown>, config: Record<string, unknown> = {}) => ({
  taskType: "INPAINTING",
  inPaintingParams: { image: IMAGE, text: "a door", ...params },
  imageGenerationConfig: { numberOfImages: 1, quality: "standard", ...config },
});

describe("INPAINTING", () => {
  for (const model of [TITAN_V1, TITAN_V2, NOVA]) {
    it(`${model}: a mask image or a mask prompt → images at the input's size`, async () => {
      for (const params of [{ maskImage: MASK }, { maskPrompt: "the wall" }]) {
        const out = await invoke(model, inpainting(params, { numberOfImages: 2 }));
        const images = out.images as string[];
        expect(images).toHaveLength(2);
        expect(pngSize(Buffer.from(images[0]!, "base64"))).toEqual({ width: 512, height: 512 });
      }
    });
  }

  const refused: [string, string, unknown, RegExp][] = [
    ["both mask fields", NOVA, inpainting({ maskImage: MASK, maskPrompt: "x" }), /Exactly one/],
    ["neither mask field", TITAN_V2, inpainting({}), /Exactly one/],
    [
      "a mask of another size",
      NOVA,
      inpainting({ maskImage: png(256, 256, () => [0, 0, 0, 255]) }),
      /must match the input image size 512x512/,
    ],
    [
      "a grey pixel in the mask",
      TITAN_V2,
      inpainting({
        maskImage: png(512, 512, (x, y) =>
          x === 3 && y === 3 ? [128, 128, 128, 255] : [0, 0, 0, 255],
        ),
      }),
      /only pure black and pure white/,
    ],
    [
      "a transparent input for Nova",
      NOVA,
      inpainting({ image: png(512, 512, () => [1, 2, 3, 0]), maskPrompt: "x" }),
      /transparent/,
    ],
    [
      "a 256x256 input for Nova",
      NOVA,
      inpainting({ image: renderPng(256, 256, "s").toString("base64"), maskPrompt: "x" }),
      /between 320 and 4096/,
    ],
    [
      "an image that is not base64",
      TITAN_V1,
      inpainting({ image: "not base64!", maskPrompt: "x" }),
      /base64/,
    ],
    [
      "a GIF",
      TITAN_V1,
      inpainting({ image: Buffer.from("GIF89a....").toString("base64"), maskPrompt: "x" }),
      /unsupported image format/,
    ],
    [
      "inPaintingParams beside TEXT_IMAGE",
      TITAN_V2,
      {
        taskType: "TEXT_IMAGE",
        textToImageParams: { text: "x" },
        inPaintingParams: { image: IMAGE },
      },
      /inPaintingParams is not supported for taskType TEXT_IMAGE/,
    ],
    ["no inPaintingParams", NOVA, { taskType: "INPAINTING" }, /required key \[inPaintingParams\]/],
  ];
  for (const [name, model, body, message] of refused) {
    it(`${name}: ValidationException`, async () => {
      const err = await refusal(model, body);
      expect(err.name).toBe("ValidationException");
      expect(err.message).toMatch(message);
    });
  }
});

describe("IMAGE_VARIATION", () => {
  const variation = (params: Record<string, unknown>) => ({
    taskType: "IMAGE_VARIATION",
    imageVariationParams: { images: [IMAGE], ...params },
    imageGenerationConfig: { numberOfImages: 1, width: 512, height: 512, quality: "standard" },
  });

  it("Titan v2 and Nova: 1-5 images and similarityStrength → images at the config's size", async () => {
    for (const model of [TITAN_V2, NOVA]) {
      const out = await invoke(
        model,
        variation({ images: [IMAGE, IMAGE], similarityStrength: 0.6 }),
      );
      expect(pngSize(Buffer.from((out.images as string[])[0]!, "base64"))).toEqual({
        width: 512,
        height: 512,
      });
    }
  });

  const refused: [string, string, unknown, RegExp][] = [
    [
      "two images on Titan v1",
      TITAN_V1,
      variation({ images: [IMAGE, IMAGE] }),
      /maximum item count: 1/,
    ],
    [
      "similarityStrength on Titan v1",
      TITAN_V1,
      variation({ similarityStrength: 0.5 }),
      /extraneous key \[similarityStrength\]/,
    ],
    [
      "similarityStrength under 0.2",
      NOVA,
      variation({ similarityStrength: 0.1 }),
      /not greater or equal to 0.2/,
    ],
    [
      "six images on Nova",
      NOVA,
      variation({ images: Array(6).fill(IMAGE) }),
      /maximum item count: 5/,
    ],
  ];
  for (const [name, model, body, message] of refused) {
    it(`${name}: ValidationException`, async () => {
      expect((await refusal(model, body)).message).toMatch(message);
    });
  }
});

describe("SD3 / SD3.5 Large image-to-image", () => {
  const image = renderPng(640, 448, "i2i").toString("base64");
  it("mode image-to-image with image and strength → an image at the input's size", async () => {
    for (const model of ["stability.sd3-large-v1:0", "stability.sd3-5-large-v1:0"]) {
      const out = await invoke(model, {
        prompt: "x",
        mode: "image-to-image",
        image,
        strength: 0.4,
      });
      expect(pngSize(Buffer.from((out.images as string[])[0]!, "base64"))).toEqual({
        width: 640,
        height: 448,
      });
    }
  });

  const refused: [string, unknown, RegExp][] = [
    ["no strength", { prompt: "x", mode: "image-to-image", image }, /required key \[strength\]/],
    ["no image", { prompt: "x", mode: "image-to-image", strength: 0.5 }, /required key \[image\]/],
    [
      "aspect_ratio beside image-to-image",
      { prompt: "x", mode: "image-to-image", image, strength: 0.5, aspect_ratio: "1:1" },
      /aspect_ratio is not supported/,
    ],
    [
      "an image with text-to-image",
      { prompt: "x", image, strength: 0.5 },
      /only supported with mode image-to-image/,
    ],
    [
      "strength over 1",
      { prompt: "x", mode: "image-to-image", image, strength: 1.5 },
      /not less or equal to 1/,
    ],
  ];
  for (const [name, body, message] of refused) {
    it(`${name}: ValidationException`, async () => {
      expect((await refusal("stability.sd3-5-large-v1:0", body)).message).toMatch(message);
    });
  }

  it("Stable Image Core takes no mode", async () => {
    const err = await refusal("stability.stable-image-core-v1:1", {
      prompt: "x",
      mode: "image-to-image",
      image,
      strength: 0.5,
    });
    expect(err.message).toMatch(/extraneous key \[mode\]/);
  });
});
