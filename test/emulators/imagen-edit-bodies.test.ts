/**
 * The Vertex emulator's Imagen editing model (`imagen-3.0-capability-001` `:predict`) on its
 * own, through the service the emulator runs: the bodies it takes (a RAW reference alone in
 * EDIT_MODE_DEFAULT, RAW + a user-provided MASK for inpainting; answered at the raw image's
 * size) and each it refuses as Vertex documents, with INVALID_ARGUMENT naming the field.
 */
import {
  GoogleApiError,
  GoogleImageService,
  type ImagenRules,
  VERTEX_MODELS,
} from "@imagegate/emulators/google-images";
import { pngSize, renderPng } from "@imagegate/emulators/png";
import { describe, expect, it } from "vitest";

const MODEL = "imagen-3.0-capability-001";
const RULES = VERTEX_MODELS[MODEL] as ImagenRules;
const service = new GoogleImageService("vertex");

const b64 = (width: number, height: number) =>
  renderPng(width, height, `ref-${width}x${height}`).toString("base64");
const RAW = {
  referenceType: "REFERENCE_TYPE_RAW",
  referenceId: 1,
  referenceImage: { bytesBase64Encoded: b64(320, 240) },
};
const MASK = {
  referenceType: "REFERENCE_TYPE_MASK",
  referenceId: 2,
  referenceImage: { bytesBase64Encoded: b64(320, 240) },
  maskImageConfig: { maskMode: "MASK_MODE_USER_PROVIDED" },
};

const body = (references: object[], parameters: Record<string, unknown>) => ({
  instances: [{ prompt: "a lamp", referenceImages: references }],
  parameters,
});

function refusal(raw: unknown): GoogleApiError {
  try {
    service.predict(MODEL, RULES, raw);
  } catch (e) {
    if (e instanceof GoogleApiError) return e;
    throw e;
  }
  throw new Error("expected a refusal");
}

describe("imagen-3.0-capability-001 :predict", () => {
  it("inpainting (RAW + user mask) and mask-free editing answer at the raw image's size", () => {
    for (const [refs, editMode] of [
      [[RAW, MASK], "EDIT_MODE_INPAINT_INSERTION"],
      [[RAW], "EDIT_MODE_DEFAULT"],
    ] as const) {
      const out = service.predict(MODEL, RULES, body([...refs], { editMode, sampleCount: 2 })) as {
        predictions: { bytesBase64Encoded: string }[];
      };
      expect(out.predictions).toHaveLength(2);
      expect(pngSize(Buffer.from(out.predictions[0]!.bytesBase64Encoded, "base64"))).toEqual({
        width: 320,
        height: 240,
      });
    }
  });

  const refused: [string, unknown, RegExp][] = [
    [
      "an inpainting mode without a mask",
      body([RAW], { editMode: "EDIT_MODE_INPAINT_INSERTION" }),
      /requires a REFERENCE_TYPE_MASK/,
    ],
    [
      "a mask in EDIT_MODE_DEFAULT",
      body([RAW, MASK], { editMode: "EDIT_MODE_DEFAULT" }),
      /takes no mask/,
    ],
    [
      "a mask of another size",
      body([RAW, { ...MASK, referenceImage: { bytesBase64Encoded: b64(64, 64) } }], {
        editMode: "EDIT_MODE_INPAINT_INSERTION",
      }),
      /same dimensions/,
    ],
    [
      "no RAW reference",
      body([MASK], { editMode: "EDIT_MODE_INPAINT_INSERTION" }),
      /REFERENCE_TYPE_RAW image is required/,
    ],
    [
      "two RAW references",
      body([RAW, { ...RAW, referenceId: 3 }], {}),
      /Only one REFERENCE_TYPE_RAW/,
    ],
    ["a repeated referenceId", body([RAW, { ...MASK, referenceId: 1 }], {}), /unique/],
    ["an unknown editMode", body([RAW], { editMode: "EDIT_MODE_MAGIC" }), /Invalid editMode/],
    [
      "a mask image with a model-made mask mode",
      body([RAW, { ...MASK, maskImageConfig: { maskMode: "MASK_MODE_BACKGROUND" } }], {
        editMode: "EDIT_MODE_INPAINT_INSERTION",
      }),
      /only taken with MASK_MODE_USER_PROVIDED/,
    ],
    [
      "a WebP image",
      body(
        [
          {
            ...RAW,
            referenceImage: {
              bytesBase64Encoded: Buffer.from("RIFF0000WEBPVP8X").toString("base64"),
            },
          },
        ],
        {},
      ),
      /PNG or JPEG/,
    ],
    ["a seed with the watermark on", body([RAW], { seed: 3 }), /addWatermark/],
    [
      "sampleCount 5",
      body([RAW], { sampleCount: 5 }),
      /sampleCount must be an integer from 1 to 4/,
    ],
    [
      "aspectRatio (not an edit parameter)",
      body([RAW], { aspectRatio: "1:1" }),
      /Unknown name "aspectRatio"/,
    ],
  ];
  for (const [name, raw, message] of refused) {
    it(`${name}: 400 INVALID_ARGUMENT`, () => {
      const err = refusal(raw);
      expect(err.status).toBe(400);
      expect(err.message).toMatch(message);
    });
  }

  it("a generation body (no referenceImages) is refused", () => {
    expect(refusal({ instances: [{ prompt: "x" }], parameters: {} }).message).toMatch(
      /referenceImages must be a non-empty list/,
    );
  });
});
