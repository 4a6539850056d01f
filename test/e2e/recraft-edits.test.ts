/**
 * Recraft edits end to end through the `openai` SDK against the Recraft emulator (which reads
 * the multipart body and checks the image, strength and mask as Recraft documents them):
 * without a mask → `imageToImage` with `strength`; with one → `inpaint` with the mask
 * converted to grey, white where it was transparent. Cost from the answer's credits; each
 * input check a 400 before any call.
 */
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { renderPng } from "@imagegate/emulators/png";
import OpenAI, { type APIError, toFile } from "openai";
import { PNG } from "pngjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ImageService } from "../../src/gen/imagegate/v1/images_pb.js";
import { type RecraftStack, startRecraftStack } from "../support/recraft-stack.ts";

/** An RGBA PNG, transparent (where to edit) on its left half. */
function openAIMask(width: number, height: number): Buffer {
  const png = new PNG({ width, height });
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      png.data.set([0, 0, 0, x < width / 2 ? 0 : 255], (y * width + x) * 4);
  return PNG.sync.write(png);
}

const IMAGE = renderPng(512, 384, "recraft-edit");
const MASK = openAIMask(512, 384);

let ctx: RecraftStack;
let sdk: OpenAI;

beforeAll(async () => {
  ctx = await startRecraftStack(() => "router_settings:\n  num_retries: 0\n");
  sdk = new OpenAI({ baseURL: `${ctx.stack.url}/v1`, apiKey: "x", maxRetries: 0 });
});
afterAll(async () => {
  await ctx?.close();
});

const png = (bytes: Buffer, name = "image.png") => toFile(bytes, name, { type: "image/png" });

type Recorded = {
  path: string;
  body: Record<string, unknown> & {
    files: { name: string; width: number; height: number; format: string; bytes: Buffer }[];
  };
};
const last = () => ctx.recraft.requests.at(-1) as unknown as Recorded;

describe("Recraft edits", () => {
  it("without a mask: imageToImage with strength, style and n; priced from credits", async () => {
    const { data, response } = await sdk.images
      .edit({
        model: "recraft/recraftv3",
        image: await png(IMAGE),
        prompt: "as a watercolour",
        n: 2,
        strength: 0.3,
        style: "digital_illustration",
        response_format: "b64_json",
      } as OpenAI.Images.ImageEditParamsNonStreaming)
      .withResponse();
    expect(data.data).toHaveLength(2);
    expect(data.size).toBe("512x384");
    const sent = last();
    expect(sent.path).toBe("/v1/images/imageToImage");
    expect(sent.body).toMatchObject({
      prompt: "as a watercolour",
      model: "recraftv3",
      n: 2,
      strength: "0.3",
      style: "digital_illustration",
      response_format: "b64_json",
    });
    expect(sent.body.files.map((f) => f.name)).toEqual(["image"]);
    expect(sent.body.files[0]!.bytes).toEqual(IMAGE);
    const out = PNG.sync.read(Buffer.from(data.data![0]!.b64_json!, "base64"));
    expect([out.width, out.height]).toEqual([512, 384]);
    // 40 credits per raster V3 image, 1000 credits = $1.
    expect(Number(response.headers.get("x-imagegate-cost-usd"))).toBeCloseTo(0.08, 10);
  });

  it("with a mask: inpaint, the mask grey and white where it was transparent", async () => {
    const { data } = await sdk.images.edit({
      model: "recraft/recraftv4_1",
      image: await png(IMAGE),
      mask: await png(MASK, "mask.png"),
      prompt: "a window",
    });
    expect(data).toHaveLength(1);
    const sent = last();
    expect(sent.path).toBe("/v1/images/inpaint");
    expect(sent.body.strength).toBeUndefined();
    const mask = sent.body.files.find((f) => f.name === "mask")!;
    expect([mask.format, mask.width, mask.height]).toEqual(["png", 512, 384]);
    expect(mask.bytes[25]).toBe(0); // greyscale colour type
    const pixels = PNG.sync.read(mask.bytes);
    expect([pixels.data[0], pixels.data[(512 - 1) * 4]]).toEqual([255, 0]);
  });

  it("Connect (binary) with the image as bytes, strength and style", async () => {
    const client = createClient(
      ImageService,
      createConnectTransport({
        baseUrl: ctx.stack.url,
        httpVersion: "1.1",
        useBinaryFormat: true,
      }),
    );
    const res = await client.editImage({
      model: "recraft/recraftv3_vector",
      prompt: "as an icon",
      images: [{ data: IMAGE, mediaType: "image/png" }],
      strength: 0.6,
      style: "icon",
    });
    expect(res.data).toHaveLength(1);
    expect(last().body).toMatchObject({
      model: "recraftv3_vector",
      style: "icon",
      strength: "0.6",
    });
  });

  const refusals: [string, () => Promise<Record<string, unknown>>, string][] = [
    [
      "no strength without a mask",
      async () => ({ model: "recraft/recraftv3", image: await png(IMAGE), prompt: "x" }),
      "strength",
    ],
    [
      "strength with a mask",
      async () => ({
        model: "recraft/recraftv3",
        image: await png(IMAGE),
        mask: await png(MASK, "mask.png"),
        prompt: "x",
        strength: 0.5,
      }),
      "strength",
    ],
    [
      "an image under 256 px a side",
      async () => ({
        model: "recraft/recraftv3",
        image: await png(renderPng(200, 300, "small")),
        prompt: "x",
        strength: 0.5,
      }),
      "image",
    ],
    [
      "two images",
      async () => ({
        model: "recraft/recraftv3",
        image: [await png(IMAGE), await png(IMAGE)],
        prompt: "x",
        strength: 0.5,
      }),
      "image",
    ],
    [
      "a mask of another size",
      async () => ({
        model: "recraft/recraftv3",
        image: await png(IMAGE),
        mask: await png(openAIMask(512, 512), "mask.png"),
        prompt: "x",
      }),
      "mask",
    ],
    [
      "a style V4 does not take",
      async () => ({
        model: "recraft/recraftv4",
        image: await png(IMAGE),
        prompt: "x",
        strength: 0.5,
        style: "digital_illustration",
      }),
      "style",
    ],
    [
      "V2 (no edits)",
      async () => ({
        model: "recraft/recraftv2",
        image: await png(IMAGE),
        prompt: "x",
        strength: 0.5,
      }),
      "model",
    ],
  ];
  for (const [name, params, param] of refusals) {
    it(`${name}: 400 naming '${param}', nothing sent`, async () => {
      const before = ctx.recraft.requests.length;
      const err = (await sdk.images
        .edit((await params()) as unknown as OpenAI.Images.ImageEditParamsNonStreaming)
        .catch((e: unknown) => e)) as APIError;
      expect(err.status).toBe(400);
      expect(err.param).toBe(param);
      expect(ctx.recraft.requests.length).toBe(before);
    });
  }
});
