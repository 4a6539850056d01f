/**
 * The per-model edit checks (catalog/edit-rules.ts) against the real catalog entries, and
 * the input reading (service/input-images.ts): each problem a 400 naming image, mask or the field.
 */
import { renderPng } from "@imagegate/emulators/png";
import { describe, expect, it } from "vitest";
import { loadCatalog } from "../../src/catalog/catalog.ts";
import { type EditInput, validateEdit } from "../../src/catalog/edit-rules.ts";
import { GatewayError } from "../../src/errors/errors.ts";
import { measureImage, sniffFormat } from "../../src/service/input-images.ts";

const catalog = loadCatalog();
const spec = (model: string) => catalog.lookup("openai", model)!;
const square = measureImage(renderPng(64, 64, "sq"), "image");
const wide = measureImage(renderPng(80, 64, "wide"), "image");

function refusal(fn: () => void): { param: string | undefined; message: string } {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(GatewayError);
    const g = e as GatewayError;
    expect(g.kind).toBe("invalid_request");
    return { param: g.param, message: g.message };
  }
  throw new Error("expected a 400");
}

describe("validateEdit", () => {
  it("accepts what each model takes", () => {
    validateEdit({ kind: "edit", images: [square], mask: square }, spec("dall-e-2"), "d2");
    validateEdit({ kind: "variation", images: [square] }, spec("dall-e-2"), "d2");
    validateEdit(
      { kind: "edit", images: [square, wide], mask: square, inputFidelity: "high" },
      spec("gpt-image-1"),
      "g1",
    );
  });

  const cases: [string, EditInput, string, string, RegExp][] = [
    [
      "a non-square dall-e-2 image",
      { kind: "edit", images: [wide] },
      "dall-e-2",
      "image",
      /square/,
    ],
    [
      "two dall-e-2 images",
      { kind: "edit", images: [square, square] },
      "dall-e-2",
      "image",
      /at most 1/,
    ],
    [
      "17 GPT images",
      { kind: "edit", images: Array(17).fill(square) },
      "gpt-image-1",
      "image",
      /at most 16/,
    ],
    [
      "a JPEG for dall-e-2",
      { kind: "edit", images: [{ ...square, format: "jpeg" }] },
      "dall-e-2",
      "image",
      /JPEG/,
    ],
    [
      "a 4 MB dall-e-2 image",
      { kind: "edit", images: [{ ...square, bytes: new Uint8Array(4 * 1024 * 1024) }] },
      "dall-e-2",
      "image",
      /under 4 MB/,
    ],
    [
      "a WebP mask",
      { kind: "edit", images: [square], mask: { ...square, format: "webp" } },
      "gpt-image-1",
      "mask",
      /WEBP/,
    ],
    [
      "input_fidelity high on 1-mini",
      { kind: "edit", images: [square], inputFidelity: "high" },
      "gpt-image-1-mini",
      "input_fidelity",
      /'low'/,
    ],
    [
      "input_fidelity on gpt-image-2",
      { kind: "edit", images: [square], inputFidelity: "low" },
      "gpt-image-2",
      "input_fidelity",
      /not supported/,
    ],
    [
      "strength on OpenAI",
      { kind: "edit", images: [square], strength: 0.5 },
      "gpt-image-1",
      "strength",
      /not supported/,
    ],
    [
      "mask_prompt on OpenAI",
      { kind: "edit", images: [square], maskPrompt: "the sky" },
      "gpt-image-1",
      "mask_prompt",
      /not supported/,
    ],
    [
      "an edit on dall-e-3",
      { kind: "edit", images: [square] },
      "dall-e-3",
      "model",
      /does not support image edits/,
    ],
    [
      "a variation on gpt-image-1",
      { kind: "variation", images: [square] },
      "gpt-image-1",
      "model",
      /does not support image variations/,
    ],
    [
      "a non-square variation",
      { kind: "variation", images: [wide] },
      "dall-e-2",
      "image",
      /square/,
    ],
  ];
  for (const [name, edit, model, param, message] of cases) {
    it(`${name}: 400 naming '${param}'`, () => {
      const r = refusal(() => validateEdit(edit, spec(model), model));
      expect(r.param).toBe(param);
      expect(r.message).toMatch(message);
    });
  }
});

describe("measureImage", () => {
  it("reads PNG, JPEG and WebP by their magic numbers, whatever was declared", () => {
    expect(sniffFormat(renderPng(2, 2, "x"))).toBe("png");
    expect(sniffFormat(new Uint8Array([0xff, 0xd8, 0xff, 0xe0]))).toBe("jpeg");
    expect(sniffFormat(Buffer.from("RIFF\0\0\0\0WEBPVP8 "))).toBe("webp");
    expect(sniffFormat(Buffer.from("GIF89a"))).toBeUndefined();
    expect(square).toMatchObject({ format: "png", width: 64, height: 64 });
  });

  it("is a 400 naming the param for text, an empty file, or an unreadable header", () => {
    expect(refusal(() => measureImage(Buffer.from("hello"), "mask")).param).toBe("mask");
    expect(refusal(() => measureImage(new Uint8Array(0), "image")).message).toMatch(/empty/);
    const truncated = renderPng(8, 8, "t").subarray(0, 12);
    expect(refusal(() => measureImage(truncated, "image")).message).toMatch(/could not be read/);
  });
});

describe("validateEdit: input dimensions and required strength", () => {
  const bedrock = (model: string) => catalog.lookup("bedrock", model)!;
  const recraft = catalog.lookup("recraft", "recraftv3")!;
  const of = (w: number, h: number) => measureImage(renderPng(w, h, `${w}x${h}`), "image");

  it("Nova takes sides of 320-4096 px and at most 4,194,304 pixels, on edits and variations", () => {
    const nova = bedrock("amazon.nova-canvas-v1:0");
    validateEdit({ kind: "edit", images: [of(320, 4096 / 4)] }, nova, "nova");
    for (const [w, h, words] of [
      [256, 512, /at least 320/],
      [2100, 2100, /at most 4194304 pixels/],
    ] as const) {
      for (const kind of ["edit", "variation"] as const) {
        const r = refusal(() => validateEdit({ kind, images: [of(w, h)] }, nova, "nova"));
        expect(r.param).toBe("image");
        expect(r.message).toMatch(words);
      }
    }
  });

  it("a second image out of bounds is named as image 2", () => {
    const two = { ...recraft, edits: { ...recraft.edits!, max_images: 2 } };
    const r = refusal(() =>
      validateEdit({ kind: "edit", images: [of(300, 300), of(200, 300)] }, two, "rc"),
    );
    expect(r.param).toBe("image");
    expect(r.message).toMatch(/'image' \(image 2\).*at least 256/);
  });

  it("SD3.5 Large needs strength; Titan v1 takes none", () => {
    const sd35 = bedrock("stability.sd3-5-large-v1:0");
    expect(
      refusal(() => validateEdit({ kind: "edit", images: [of(64, 64)] }, sd35, "sd")).param,
    ).toBe("strength");
    validateEdit({ kind: "edit", images: [of(64, 64)], strength: 0.3 }, sd35, "sd");
    const titan = bedrock("amazon.titan-image-generator-v1");
    expect(
      refusal(() =>
        validateEdit({ kind: "edit", images: [of(64, 64)], strength: 0.3 }, titan, "t1"),
      ).param,
    ).toBe("strength");
  });
});
