/**
 * The Recraft emulator's edit endpoints on their own, over plain HTTP with the platform's
 * FormData: `imageToImage` and `inpaint` bodies it takes (answered at the input's size,
 * credits per image), and each it refuses as Recraft documents (strength required 0-1,
 * inputs PNG/JPEG/WebP of 256-4096 px, a mask of the image's size with only pure black and
 * white pixels, models without edits, fields the endpoint does not take).
 */
import { pngSize, renderPng } from "@imagegate/emulators/png";
import { type RecraftEmulator, startRecraftEmulator } from "@imagegate/emulators/recraft";
import { PNG } from "pngjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const KEY = "rc-emulator-edit-key";
let emu: RecraftEmulator;

beforeAll(async () => {
  emu = await startRecraftEmulator({ apiKey: KEY });
});
afterAll(async () => {
  await emu.close();
});

const IMAGE = renderPng(512, 384, "recraft-edit-bodies");

function grey(width: number, height: number, value: (x: number) => number): Buffer {
  const png = new PNG({ width, height });
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const v = value(x);
      png.data.set([v, v, v, 255], (y * width + x) * 4);
    }
  return PNG.sync.write(png);
}
const MASK = grey(512, 384, (x) => (x < 256 ? 255 : 0));

async function post(
  path: "imageToImage" | "inpaint",
  fields: Record<string, string>,
  files: Record<string, Buffer>,
): Promise<{
  status: number;
  json: { code?: string; message?: string; credits?: number; data?: { b64_json: string }[] };
}> {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  for (const [name, bytes] of Object.entries(files))
    form.append(name, new Blob([new Uint8Array(bytes)], { type: "image/png" }), `${name}.png`);
  const res = await fetch(`${emu.baseUrl}/images/${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}` },
    body: form,
  });
  return { status: res.status, json: (await res.json()) as never };
}

describe("imageToImage", () => {
  it("answers n images at the input's size, credits per image", async () => {
    const { status, json } = await post(
      "imageToImage",
      { prompt: "x", model: "recraftv3", strength: "0.4", n: "2", response_format: "b64_json" },
      { image: IMAGE },
    );
    expect(status).toBe(200);
    expect(json.credits).toBe(80);
    expect(pngSize(Buffer.from(json.data![1]!.b64_json, "base64"))).toEqual({
      width: 512,
      height: 384,
    });
  });

  const refused: [string, Record<string, string>, Record<string, Buffer>, string][] = [
    ["no strength", { prompt: "x", model: "recraftv3" }, { image: IMAGE }, "invalid_strength"],
    [
      "strength over 1",
      { prompt: "x", model: "recraftv3", strength: "1.2" },
      { image: IMAGE },
      "invalid_strength",
    ],
    ["no image", { prompt: "x", model: "recraftv3", strength: "0.5" }, {}, "invalid_image"],
    [
      "an image under 256 px a side",
      { prompt: "x", model: "recraftv3", strength: "0.5" },
      { image: renderPng(200, 300, "s") },
      "invalid_image",
    ],
    [
      "a mask (not taken here)",
      { prompt: "x", model: "recraftv3", strength: "0.5" },
      { image: IMAGE, mask: MASK },
      "invalid_request",
    ],
    [
      "V2 (no edits)",
      { prompt: "x", model: "recraftv2", strength: "0.5" },
      { image: IMAGE },
      "not_supported",
    ],
    [
      "an unknown field",
      { prompt: "x", model: "recraftv3", strength: "0.5", size: "1024x1024" },
      { image: IMAGE },
      "invalid_request",
    ],
  ];
  for (const [name, fields, files, code] of refused) {
    it(`${name}: 400 ${code}`, async () => {
      const { status, json } = await post("imageToImage", fields, files);
      expect(status).toBe(400);
      expect(json.code).toBe(code);
    });
  }
});

describe("inpaint", () => {
  it("takes a pure black-and-white mask of the image's size", async () => {
    const { status, json } = await post(
      "inpaint",
      { prompt: "a window", model: "recraftv4_1", response_format: "b64_json" },
      { image: IMAGE, mask: MASK },
    );
    expect(status).toBe(200);
    expect(pngSize(Buffer.from(json.data![0]!.b64_json, "base64"))).toEqual({
      width: 512,
      height: 384,
    });
  });

  const refused: [string, Record<string, string>, Record<string, Buffer>, string][] = [
    ["no mask", { prompt: "x", model: "recraftv3" }, { image: IMAGE }, "invalid_mask"],
    [
      "a mask of another size",
      { prompt: "x", model: "recraftv3" },
      { image: IMAGE, mask: grey(512, 512, () => 0) },
      "invalid_mask",
    ],
    [
      "a grey mask pixel",
      { prompt: "x", model: "recraftv3" },
      { image: IMAGE, mask: grey(512, 384, (x) => (x === 7 ? 128 : 0)) },
      "invalid_mask",
    ],
    [
      "strength (not taken here)",
      { prompt: "x", model: "recraftv3", strength: "0.5" },
      { image: IMAGE, mask: MASK },
      "invalid_request",
    ],
  ];
  for (const [name, fields, files, code] of refused) {
    it(`${name}: 400 ${code}`, async () => {
      const { status, json } = await post("inpaint", fields, files);
      expect(status).toBe(400);
      expect(json.code).toBe(code);
    });
  }
});
