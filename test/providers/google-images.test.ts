/**
 * The shared Google mapping (AI Studio and Vertex AI): the size/quality tables, request
 * bodies, every refusal form, usage, and Google's errors → the contract's error kinds.
 */
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { loadCatalog } from "../../src/catalog/catalog.ts";
import { GatewayError } from "../../src/errors/errors.ts";
import {
  type CreateImageRequest,
  CreateImageRequestSchema,
} from "../../src/gen/imagegate/v1/images_pb.js";
import {
  fromGeminiResponse,
  geminiProducedSize,
  toGeminiRequest,
} from "../../src/providers/google-images/gemini-image.ts";
import { fromGoogleError, retryDelaySeconds } from "../../src/providers/google-images/errors.ts";
import {
  fromImagenResponse,
  imagenProducedSize,
  toImagenRequest,
} from "../../src/providers/google-images/imagen.ts";
import { GEMINI_IMAGE_KEYS, IMAGEN_IMAGE_KEYS } from "../../src/providers/google-images/shapes.ts";
import type { UpstreamResponse } from "../../src/providers/http.ts";
import { scanImagesJson } from "../../src/providers/image-json.ts";

const catalog = loadCatalog();
const IMAGEN = catalog.lookup("gemini", "imagen-4.0-generate-001")!;
const FLASH = catalog.lookup("gemini", "gemini-2.5-flash-image")!;
const PRO = catalog.lookup("gemini", "gemini-3-pro-image-preview")!;

const req = (fields: Partial<CreateImageRequest>): CreateImageRequest =>
  create(CreateImageRequestSchema, { prompt: "a lighthouse", ...fields });

const b64 = (s: string) => Buffer.from(s).toString("base64");

function errorResponse(status: number, body: unknown): UpstreamResponse {
  return {
    status,
    headers: { "content-type": "application/json; charset=UTF-8" },
    body: Buffer.from(typeof body === "string" ? body : JSON.stringify(body)),
  };
}

function googleError(code: number, status: string, message: string, details: object[] = []) {
  return { error: { code, status, message, details } };
}

describe("size → aspect ratio → produced pixels (catalog size.upstream / size.produced)", () => {
  it.each([
    ["256x256", "1:1", "1024x1024"],
    ["512x512", "1:1", "1024x1024"],
    ["1024x1024", "1:1", "1024x1024"],
    ["auto", "1:1", "1024x1024"],
    ["1792x1024", "16:9", "1408x768"],
    ["1024x1792", "9:16", "768x1408"],
    ["1536x1024", "4:3", "1280x896"],
    ["1024x1536", "3:4", "896x1280"],
  ])("Imagen: %s → %s → %s at 1K", (size, ratio, pixels) => {
    const body = toImagenRequest(req({ size }), IMAGEN, 1);
    expect(body.parameters.aspectRatio).toBe(ratio);
    expect(body.parameters.sampleImageSize).toBeUndefined();
    expect(imagenProducedSize(body, IMAGEN)).toBe(pixels);
  });

  it.each([
    ["1024x1024", "1:1", "1024x1024", "1024x1024"],
    ["1792x1024", "16:9", "1344x768", "1376x768"],
    ["1024x1792", "9:16", "768x1344", "768x1376"],
    ["1536x1024", "3:2", "1248x832", "1264x848"],
    ["1024x1536", "2:3", "832x1248", "848x1264"],
  ])("Gemini: %s → %s → %s (2.5 Flash) / %s (3 Pro) at 1K", (size, ratio, flash, pro) => {
    const body = toGeminiRequest(req({ size }), PRO);
    expect(body.generationConfig.imageConfig).toEqual({ aspectRatio: ratio });
    expect(geminiProducedSize(FLASH, body)).toBe(flash);
    expect(geminiProducedSize(PRO, body)).toBe(pro);
  });

  it("every size and aspect ratio a Google catalog entry accepts renders to a known size", () => {
    for (const spec of catalog
      .entries()
      // Edit-only models produce the input image's size (imagen-edit.ts), not a catalog one.
      .filter((e) => (e.provider === "gemini" || e.provider === "vertex_ai") && e.generates)) {
      const produced = (r: CreateImageRequest) =>
        spec.family === "imagen"
          ? imagenProducedSize(toImagenRequest(r, spec, 1), spec)
          : geminiProducedSize(spec, toGeminiRequest(r, spec));
      for (const size of spec.size.values)
        expect(produced(req({ size })), `${spec.provider}/${spec.model} ${size}`).toMatch(
          /^\d+x\d+$/,
        );
      for (const ratio of spec.aspect_ratio?.values ?? [])
        expect(produced(req({ aspectRatio: ratio })), `${spec.model} ${ratio}`).toMatch(
          /^\d+x\d+$/,
        );
    }
  });

  it("aspect_ratio is sent as given instead of a size", () => {
    expect(toImagenRequest(req({ aspectRatio: "9:16" }), IMAGEN, 1).parameters.aspectRatio).toBe(
      "9:16",
    );
    const gemini = toGeminiRequest(req({ aspectRatio: "21:9" }), PRO);
    expect(gemini.generationConfig.imageConfig.aspectRatio).toBe("21:9");
    expect(geminiProducedSize(FLASH, gemini)).toBe("1536x672");
  });

  it("a ratio the API lacks is a 400 naming aspect_ratio, not a silent default", () => {
    const e = (() => {
      try {
        toImagenRequest(req({ aspectRatio: "21:9" }), IMAGEN, 1);
      } catch (err) {
        return err as GatewayError;
      }
    })();
    expect(e?.kind).toBe("invalid_request");
    expect(e?.param).toBe("aspect_ratio");
  });
});

describe("quality → sampleImageSize / imageSize", () => {
  it.each([
    ["hd", "2K", "2048x2048"],
    ["high", "2K", "2048x2048"],
    ["standard", "1K", "1024x1024"],
    ["medium", "1K", "1024x1024"],
    ["low", "1K", "1024x1024"],
    ["auto", "1K", "1024x1024"],
  ])("Imagen 4: %s → %s → %s", (quality, tier, pixels) => {
    const body = toImagenRequest(req({ quality }), IMAGEN, 1);
    expect(body.parameters.sampleImageSize).toBe(tier);
    expect(imagenProducedSize(body, IMAGEN)).toBe(pixels);
  });

  it("Imagen 2K doubles the 1K sizes", () => {
    expect(
      imagenProducedSize(
        toImagenRequest(req({ quality: "hd", size: "1792x1024" }), IMAGEN, 1),
        IMAGEN,
      ),
    ).toBe("2816x1536");
    expect(
      imagenProducedSize(
        toImagenRequest(req({ quality: "hd", size: "1024x1536" }), IMAGEN, 1),
        IMAGEN,
      ),
    ).toBe("1792x2560");
  });

  it("Gemini 3 Pro: hd → imageSize 2K at the ratio's 2K size", () => {
    const body = toGeminiRequest(req({ quality: "hd", size: "1792x1024" }), PRO);
    expect(body.generationConfig.imageConfig).toEqual({ aspectRatio: "16:9", imageSize: "2K" });
    expect(geminiProducedSize(PRO, body)).toBe("2752x1536");
  });
});

describe("Imagen request bodies", () => {
  it("always sends sampleCount (AI Studio defaults to 4) and asks for RAI reasons", () => {
    expect(toImagenRequest(req({}), IMAGEN, 1)).toEqual({
      instances: [{ prompt: "a lighthouse" }],
      parameters: { sampleCount: 1, aspectRatio: "1:1", includeRaiReason: true },
    });
  });

  it("a seed turns the watermark off (Vertex refuses a seed while it is on)", () => {
    const body = toImagenRequest(req({ seed: 42, negativePrompt: "fog" }), IMAGEN, 3);
    expect(body.parameters).toMatchObject({
      sampleCount: 3,
      seed: 42,
      addWatermark: false,
      negativePrompt: "fog",
    });
  });

  it("Gemini bodies ask for text and image output with the prompt as the user's turn", () => {
    expect(toGeminiRequest(req({}), PRO)).toEqual({
      contents: [{ role: "user", parts: [{ text: "a lighthouse" }] }],
      generationConfig: {
        responseModalities: ["TEXT", "IMAGE"],
        imageConfig: { aspectRatio: "1:1" },
      },
    });
  });
});

describe("Imagen responses and filtered output (every Vertex form)", () => {
  it("keeps bytes, MIME type and the enhanced prompt", () => {
    const { result, refusal } = fromImagenResponse(
      {
        predictions: [
          {
            bytesBase64Encoded: b64("png1"),
            mimeType: "image/png",
            prompt: "an enhanced lighthouse",
          },
        ],
      },
      1,
      "1024x1024",
    );
    expect(refusal).toBeUndefined();
    expect(result).toMatchObject({ filtered: 0, size: "1024x1024" });
    expect(Buffer.from(result.images[0]!.bytes!).toString()).toBe("png1");
    expect(result.images[0]).toMatchObject({
      mimeType: "image/png",
      revisedPrompt: "an enhanced lighthouse",
    });
  });

  it("the extra 'Positive Prompt' prediction is not an image", () => {
    const { result } = fromImagenResponse(
      {
        predictions: [
          {
            bytesBase64Encoded: b64("a"),
            mimeType: "image/png",
            safetyAttributes: { categories: [], scores: [] },
          },
          { contentType: "Positive Prompt", safetyAttributes: { categories: [], scores: [] } },
        ],
      },
      1,
      "1024x1024",
    );
    expect(result.images).toHaveLength(1);
    expect(result.filtered).toBe(0);
  });

  it("200 with raiFilteredReason and nothing else: all filtered, with the reason", () => {
    const reason =
      "All images were filtered out… You will not be charged for blocked images… Support codes: 29310472";
    const { result, refusal } = fromImagenResponse(
      { predictions: [{ raiFilteredReason: reason }] },
      2,
      "1024x1024",
    );
    expect(result.images).toHaveLength(0);
    expect(result.filtered).toBe(2);
    expect(refusal).toBe(reason);
  });

  it("200 with `{}` (no predictions): all filtered", () => {
    const { result, refusal } = fromImagenResponse({}, 3, "1024x1024");
    expect(result).toMatchObject({ images: [], filtered: 3 });
    expect(refusal).toMatch(/3 of 3 image\(s\) were filtered/);
  });

  it("fewer images than asked: survivors kept, the rest counted as filtered", () => {
    const { result, refusal } = fromImagenResponse(
      {
        predictions: [
          { bytesBase64Encoded: b64("x"), mimeType: "image/png" },
          { bytesBase64Encoded: b64("y"), mimeType: "image/png" },
        ],
      },
      4,
      "1408x768",
    );
    expect(result.images).toHaveLength(2);
    expect(result.filtered).toBe(2);
    expect(refusal).toBeDefined();
  });

  it("a body that is not Imagen's is malformed, never a success", () => {
    expect(() => fromImagenResponse([], 1, "1024x1024")).toThrow(/malformed/);
    expect(() => fromImagenResponse({ predictions: "nope" }, 1, "1024x1024")).toThrow(
      /predictions/,
    );
  });
});

describe("Gemini responses and refusals", () => {
  const usageMetadata = {
    promptTokenCount: 20,
    candidatesTokenCount: 1298,
    totalTokenCount: 1318,
    promptTokensDetails: [{ modality: "TEXT", tokenCount: 20 }],
    candidatesTokensDetails: [
      { modality: "IMAGE", tokenCount: 1290 },
      { modality: "TEXT", tokenCount: 8 },
    ],
  };

  it("takes inlineData parts among text parts, with usage split by modality", () => {
    const { result, refusal } = fromGeminiResponse(geminiImageAnswer(usageMetadata), "1024x1024");
    expect(refusal).toBeUndefined();
    expect(result.images).toHaveLength(1);
    expect(result.size).toBe("1024x1024");
    expect(result.usage).toMatchObject({
      inputTokens: 20,
      outputTokens: 1298,
      totalTokens: 1318,
      inputTokensDetails: { textTokens: 20, imageTokens: 0 },
      outputTokensDetails: { imageTokens: 1290, textTokens: 8 },
    });
  });

  it.each([
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "NO_IMAGE",
    "IMAGE_OTHER",
    "IMAGE_RECITATION",
    "SAFETY",
    "PROHIBITED_CONTENT",
  ])(
    "finishReason %s without an image is a refusal, and its tokens are not billed",
    (finishReason) => {
      const { result, refusal } = fromGeminiResponse(
        { candidates: [{ finishReason }], usageMetadata },
        "1024x1024",
      );
      expect(result).toMatchObject({ images: [], filtered: 1 });
      expect(result.usage).toBeUndefined();
      expect(refusal).toContain(finishReason);
    },
  );

  it("promptFeedback.blockReason is a refusal", () => {
    const { result, refusal } = fromGeminiResponse(
      { promptFeedback: { blockReason: "PROHIBITED_CONTENT" }, usageMetadata },
      undefined,
    );
    expect(result.filtered).toBe(1);
    expect(refusal).toContain("PROHIBITED_CONTENT");
  });

  it("a text-only STOP answer is an upstream failure, not an empty success", () => {
    try {
      fromGeminiResponse(
        {
          candidates: [{ content: { parts: [{ text: "I drew nothing" }] }, finishReason: "STOP" }],
        },
        "1024x1024",
      );
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(GatewayError);
      expect((e as GatewayError).code).toBe("upstream_no_images");
      expect((e as GatewayError).message).toContain("I drew nothing");
    }
  });

  it("thought parts are skipped", () => {
    const { result } = fromGeminiResponse(
      {
        candidates: [
          {
            content: {
              parts: [
                { thought: true, inlineData: { mimeType: "image/png", data: b64("draft") } },
                { inlineData: { mimeType: "image/png", data: b64("final") } },
              ],
            },
          },
        ],
      },
      "1024x1024",
    );
    expect(result.images.map((i) => Buffer.from(i.bytes!).toString())).toEqual(["final"]);
  });
});

describe("Google errors → the contract's kinds", () => {
  it("429 RESOURCE_EXHAUSTED is rate_limit with RetryInfo.retryDelay as the hint", () => {
    const e = fromGoogleError(
      errorResponse(
        429,
        googleError(429, "RESOURCE_EXHAUSTED", "Quota exceeded", [
          { "@type": "type.googleapis.com/google.rpc.QuotaFailure", violations: [] },
          { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "53s" },
        ]),
      ),
      "Vertex AI",
    );
    expect(e.kind).toBe("rate_limit");
    expect(e.retryAfterSeconds).toBe(53);
    expect(e.message).toBe("Vertex AI: Quota exceeded");
  });

  it("retryDelay reads fractional and object durations", () => {
    const t = "type.googleapis.com/google.rpc.RetryInfo";
    expect(retryDelaySeconds([{ "@type": t, retryDelay: "1.5s" }])).toBe(1.5);
    expect(
      retryDelaySeconds([{ "@type": t, retryDelay: { seconds: 2, nanos: 500_000_000 } }]),
    ).toBe(2.5);
    expect(retryDelaySeconds([{ "@type": t, retryDelay: "soon" }])).toBeUndefined();
    expect(retryDelaySeconds([])).toBeUndefined();
  });

  it("a 429 without RetryInfo has no hint (there is no header)", () => {
    const e = fromGoogleError(
      {
        ...errorResponse(429, googleError(429, "RESOURCE_EXHAUSTED", "slow down")),
        headers: { "retry-after": "9" },
      },
      "x",
    );
    expect(e.kind).toBe("rate_limit");
    expect(e.retryAfterSeconds).toBeUndefined();
  });

  it("a sensitive-prompt 400 is a content_policy refusal", () => {
    const e = fromGoogleError(
      errorResponse(
        400,
        googleError(
          400,
          "INVALID_ARGUMENT",
          "Image generation failed with the following error: The prompt could not be submitted. This prompt contains sensitive words that violate Google's Responsible AI practices.",
        ),
      ),
      "Vertex AI",
    );
    expect(e.kind).toBe("content_policy");
  });

  it("AI Studio's wrong key (400 API_KEY_INVALID) and 401/403 are upstream_auth_failed (502)", () => {
    const badKey = fromGoogleError(
      errorResponse(
        400,
        googleError(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", [
          {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            reason: "API_KEY_INVALID",
            domain: "googleapis.com",
          },
        ]),
      ),
      "Google AI Studio",
    );
    expect(badKey.kind).toBe("upstream");
    expect(badKey.code).toBe("upstream_auth_failed");
    for (const [status, grpc] of [
      [401, "UNAUTHENTICATED"],
      [403, "PERMISSION_DENIED"],
    ] as const) {
      const e = fromGoogleError(
        errorResponse(status, googleError(status, grpc, "no")),
        "Vertex AI",
      );
      expect(e.code).toBe("upstream_auth_failed");
    }
  });

  it("other INVALID_ARGUMENTs are invalid_request with the field mapped to our param", () => {
    const e = fromGoogleError(
      errorResponse(
        400,
        googleError(400, "INVALID_ARGUMENT", "sampleCount must be from 1 to 4", [
          {
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            fieldViolations: [{ field: "parameters.sampleCount", description: "x" }],
          },
        ]),
      ),
      "Vertex AI",
    );
    expect(e.kind).toBe("invalid_request");
    expect(e.param).toBe("n");
    expect(
      fromGoogleError(
        errorResponse(400, googleError(400, "INVALID_ARGUMENT", "negativePrompt is not supported")),
        "x",
      ).param,
    ).toBe("negative_prompt");
  });

  it("5xx are upstream (503 kept), 504 DEADLINE_EXCEEDED is a timeout, 404 is upstream", () => {
    expect(
      fromGoogleError(errorResponse(500, googleError(500, "INTERNAL", "boom")), "x"),
    ).toMatchObject({ kind: "upstream", httpStatus: 502 });
    expect(
      fromGoogleError(errorResponse(503, googleError(503, "UNAVAILABLE", "overloaded")), "x"),
    ).toMatchObject({ kind: "upstream", httpStatus: 503 });
    expect(
      fromGoogleError(errorResponse(504, googleError(504, "DEADLINE_EXCEEDED", "late")), "x").kind,
    ).toBe("timeout");
    expect(
      fromGoogleError(
        errorResponse(404, googleError(404, "NOT_FOUND", "models/x is not found")),
        "x",
      ),
    ).toMatchObject({
      kind: "upstream",
      code: "upstream_not_found",
    });
  });

  it("a non-JSON error body still becomes an error naming the status", () => {
    const e = fromGoogleError(
      { status: 502, headers: {}, body: Buffer.from("<html>Bad Gateway</html>") },
      "Vertex AI",
    );
    expect(e.kind).toBe("upstream");
    expect(e.message).toContain("502");
  });
});

describe("images read straight from the body", () => {
  /** The body in 5-byte chunks, as the adapter reads it. */
  const chunks = (json: unknown) => {
    const body = Buffer.from(JSON.stringify(json, null, 1));
    return Array.from({ length: Math.ceil(body.length / 5) }, (_, i) =>
      body.subarray(i * 5, i * 5 + 5),
    );
  };

  it("Imagen: the same answer as from the parsed JSON, with the bytes decoded once", () => {
    const json = {
      predictions: [
        { bytesBase64Encoded: b64("png1"), mimeType: "image/png", prompt: "enhanced" },
        { bytesBase64Encoded: "", raiFilteredReason: "filtered: one" },
        { contentType: "Positive Prompt", safetyAttributes: { categories: [] } },
        { bytesBase64Encoded: b64("jpeg2"), mimeType: "image/jpeg" },
      ],
    };
    const parsed = scanImagesJson(chunks(json), IMAGEN_IMAGE_KEYS)!;
    expect(parsed.images.size).toBe(2);
    const outcome = fromImagenResponse(parsed.json, 3, "1024x1024", parsed.images);
    expect(outcome).toEqual(fromImagenResponse(json, 3, "1024x1024"));
    expect(outcome.result.images.map((i) => i.bytes)).toEqual([...parsed.images.values()]);
  });

  it("Gemini: the same answer as from the parsed JSON, with the bytes decoded once", () => {
    const json = geminiImageAnswer({ promptTokenCount: 20, candidatesTokenCount: 1290 });
    const parsed = scanImagesJson(chunks(json), GEMINI_IMAGE_KEYS)!;
    expect(parsed.images.size).toBe(1);
    const outcome = fromGeminiResponse(parsed.json, "1024x1024", parsed.images);
    expect(outcome).toEqual(fromGeminiResponse(json, "1024x1024"));
    expect(outcome.result.images[0]!.bytes).toBe([...parsed.images.values()][0]);
  });
});

/** A Gemini answer with a text part and one image part. */
function geminiImageAnswer(usageMetadata: object) {
  return {
    candidates: [
      {
        content: {
          parts: [
            { text: "Here you go" },
            { inlineData: { mimeType: "image/png", data: b64("img") } },
          ],
        },
        finishReason: "STOP",
      },
    ],
    usageMetadata,
  };
}
