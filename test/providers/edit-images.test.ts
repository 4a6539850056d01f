/**
 * Masks converted from OpenAI's convention (transparent where to change) to black-and-white
 * for Titan/Nova (black edits) and Vertex/Recraft (white edits), and transparency flattened
 * for Nova, read back pixel by pixel from real PNGs.
 */
import { PNG } from "pngjs";
import { describe, expect, it } from "vitest";
import type { InputImageData } from "../../src/catalog/edit-rules.ts";
import { GatewayError } from "../../src/errors/errors.ts";
import { flattenTransparency, maskFromAlpha } from "../../src/providers/edit-images.ts";

/** An RGBA PNG whose pixel at (x, y) is `pixel(x, y)`. */
function rgba(
  width: number,
  height: number,
  pixel: (x: number, y: number) => [number, number, number, number],
): InputImageData {
  const png = new PNG({ width, height });
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) png.data.set(pixel(x, y), (y * width + x) * 4);
  const bytes = PNG.sync.write(png);
  return { bytes, format: "png", mimeType: "image/png", width, height };
}

function opaqueRgb(width: number, height: number): InputImageData {
  const png = new PNG({ width, height, colorType: 2, inputHasAlpha: false });
  png.data = Buffer.alloc(width * height * 3, 200);
  const bytes = PNG.sync.write(png, { colorType: 2, inputHasAlpha: false });
  return { bytes, format: "png", mimeType: "image/png", width, height };
}

/** The decoded pixels, as RGBA whatever the PNG's colour type. */
function read(bytes: Uint8Array): PNG {
  return PNG.sync.read(Buffer.from(bytes));
}

/** The PNG's colour type, from its IHDR chunk (0 grey, 2 RGB, 6 RGBA). */
function colourType(bytes: Uint8Array): number {
  return bytes[25]!;
}

// Left half transparent (edit), right half opaque (keep); one half-transparent pixel keeps.
const MASK = rgba(8, 4, (x, y) =>
  x === 5 && y === 1 ? [0, 0, 0, 128] : [9, 9, 9, x < 4 ? 0 : 255],
);

describe("maskFromAlpha", () => {
  it("Titan/Nova: black where the mask was transparent, white elsewhere, opaque RGB", async () => {
    const bytes = await maskFromAlpha(MASK, "black");
    const out = read(bytes);
    expect([out.width, out.height]).toEqual([8, 4]);
    expect(colourType(bytes)).toBe(2); // RGB, no alpha
    for (let y = 0; y < 4; y++) {
      for (let x = 0; x < 8; x++) {
        const i = (y * 8 + x) * 4;
        const v = x < 4 ? 0 : 255;
        expect([...out.data.subarray(i, i + 4)]).toEqual([v, v, v, 255]);
      }
    }
  });

  it("Vertex/Recraft: white where the mask was transparent, one grey channel", async () => {
    const bytes = await maskFromAlpha(MASK, "white", "grey");
    const out = read(bytes);
    expect(colourType(bytes)).toBe(0); // greyscale
    const values = new Set<string>();
    for (let y = 0; y < 4; y++)
      for (let x = 0; x < 8; x++) {
        const i = (y * 8 + x) * 4;
        values.add(`${x < 4}:${out.data[i]}`);
      }
    expect([...values].sort()).toEqual(["false:0", "true:255"]);
  });

  it("a mask without an alpha channel is a 400 naming mask", async () => {
    const err = await maskFromAlpha(opaqueRgb(4, 4), "black").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).param).toBe("mask");
  });
});

describe("flattenTransparency", () => {
  it("puts transparent pixels on white and keeps opaque ones", async () => {
    const image = rgba(2, 1, (x) => (x === 0 ? [10, 20, 30, 0] : [10, 20, 30, 255]));
    const flat = await flattenTransparency(image);
    const out = read(flat.bytes);
    expect(flat.format).toBe("png");
    expect([...out.data.subarray(0, 4)]).toEqual([255, 255, 255, 255]);
    expect([...out.data.subarray(4, 8)]).toEqual([10, 20, 30, 255]);
  });

  it("leaves an image without alpha as it is", async () => {
    const image = opaqueRgb(3, 3);
    expect(await flattenTransparency(image)).toBe(image);
  });
});
