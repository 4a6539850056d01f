/**
 * The Google AI Studio emulator on its own: key checks, body validation as the real API
 * does it (Google's error shape), answers with real PNGs, every refusal form, and faults.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type GeminiEmulator,
  googleFaults,
  startGeminiEmulator,
} from "@imagegate/emulators/gemini";
import { pngSize } from "@imagegate/emulators/png";
import { type GoogleJson, imagePart, predictionBytes } from "../support/google-json.ts";

const KEY = "AIza-emulator-test-key";
let emulator: GeminiEmulator;

beforeAll(async () => {
  emulator = await startGeminiEmulator({ apiKey: KEY });
});
afterAll(async () => {
  await emulator?.close();
});
afterEach(() => {
  emulator.faults.clear();
});

interface Answer {
  status: number;
  json: GoogleJson;
}

async function post(
  model: string,
  method: "predict" | "generateContent",
  body: unknown,
  headers: Record<string, string> = { "x-goog-api-key": KEY },
): Promise<Answer> {
  const res = await fetch(`${emulator.baseUrl}/models/${model}:${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as GoogleJson };
}

const imagen = (parameters: object, prompt = "a quiet harbour") => ({
  instances: [{ prompt }],
  parameters,
});
const gemini = (generationConfig: object, prompt = "a quiet harbour") => ({
  contents: [{ role: "user", parts: [{ text: prompt }] }],
  generationConfig,
});
const IMAGE_CONFIG = { responseModalities: ["TEXT", "IMAGE"] };

function expectGoogleError(a: Answer, status: number, grpcStatus: string, message?: RegExp) {
  expect(a.status).toBe(status);
  expect(a.json.error).toMatchObject({ code: status, status: grpcStatus });
  expect(typeof a.json.error?.message).toBe("string");
  if (message) expect(a.json.error?.message).toMatch(message);
}

describe("authentication", () => {
  it("no key: 403 PERMISSION_DENIED", async () => {
    expectGoogleError(
      await post("imagen-4.0-generate-001", "predict", imagen({ sampleCount: 1 }), {}),
      403,
      "PERMISSION_DENIED",
      /unregistered callers/,
    );
  });

  it("a wrong key: 400 INVALID_ARGUMENT with ErrorInfo API_KEY_INVALID", async () => {
    const a = await post("imagen-4.0-generate-001", "predict", imagen({ sampleCount: 1 }), {
      "x-goog-api-key": "nope",
    });
    expectGoogleError(a, 400, "INVALID_ARGUMENT", /API key not valid/);
    expect(a.json.error?.details?.[0]).toMatchObject({
      "@type": "type.googleapis.com/google.rpc.ErrorInfo",
      reason: "API_KEY_INVALID",
    });
  });

  it("?key= works as the header does", async () => {
    const res = await fetch(
      `${emulator.baseUrl}/models/imagen-4.0-generate-001:predict?key=${KEY}`,
      {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(imagen({ sampleCount: 1 })),
      },
    );
    expect(res.status).toBe(200);
  });

  it("unknown model, or the wrong method for it: 404 NOT_FOUND", async () => {
    expectGoogleError(
      await post("imagen-9", "predict", imagen({})),
      404,
      "NOT_FOUND",
      /models\/imagen-9 is not found/,
    );
    expectGoogleError(
      await post("gemini-2.5-flash-image", "predict", imagen({})),
      404,
      "NOT_FOUND",
    );
  });
});

describe("Imagen :predict", () => {
  it("sampleCount defaults to 4; each image is a PNG of the ratio's 1K size", async () => {
    const a = await post(
      "imagen-4.0-fast-generate-001",
      "predict",
      imagen({ aspectRatio: "16:9" }),
    );
    expect(a.status).toBe(200);
    expect(a.json.predictions).toHaveLength(4);
    for (const [i, p] of a.json.predictions!.entries()) {
      expect(p.mimeType).toBe("image/png");
      expect(pngSize(predictionBytes(a.json, i))).toEqual({ width: 1408, height: 768 });
    }
  });

  it.each([
    ["1:1", 1024, 1024],
    ["3:4", 896, 1280],
    ["4:3", 1280, 896],
    ["9:16", 768, 1408],
  ])(
    "aspectRatio %s → %ix%i; sampleImageSize 2K doubles it on Imagen 4",
    async (aspectRatio, w, h) => {
      const one = await post(
        "imagen-4.0-generate-001",
        "predict",
        imagen({ sampleCount: 1, aspectRatio }),
      );
      expect(pngSize(predictionBytes(one.json, 0))).toEqual({ width: w, height: h });
      const two = await post(
        "imagen-4.0-generate-001",
        "predict",
        imagen({ sampleCount: 1, aspectRatio, sampleImageSize: "2K" }),
      );
      expect(pngSize(predictionBytes(two.json, 0))).toEqual({ width: 2 * w, height: 2 * h });
    },
  );

  it.each([
    [{ sampleCount: 0 }, /sampleCount/],
    [{ sampleCount: 5 }, /sampleCount/],
    [{ aspectRatio: "2:3" }, /aspectRatio/],
    [{ personGeneration: "allow_all" }, /personGeneration/],
    [{ safetySetting: "block_none" }, /safetySetting/],
    [{ language: "fr" }, /language/],
    [{ seed: 1 }, /seed parameter is not supported in Gemini API/],
    [{ negativePrompt: "x" }, /negativePrompt parameter is not supported/],
    [{ addWatermark: false }, /addWatermark/],
    [{ enhancePrompt: true }, /enhancePrompt/],
    [{ colour: "red" }, /Unknown name "colour" at 'parameters'/],
  ])("rejects %j with 400 INVALID_ARGUMENT", async (parameters, message) => {
    expectGoogleError(
      await post("imagen-4.0-generate-001", "predict", imagen(parameters)),
      400,
      "INVALID_ARGUMENT",
      message,
    );
  });

  it("sampleImageSize only on Imagen 4 Standard and Ultra; Ultra makes one image per call", async () => {
    expectGoogleError(
      await post("imagen-4.0-fast-generate-001", "predict", imagen({ sampleImageSize: "2K" })),
      400,
      "INVALID_ARGUMENT",
      /sampleImageSize/,
    );
    expectGoogleError(
      await post("imagen-4.0-ultra-generate-001", "predict", imagen({ sampleCount: 2 })),
      400,
      "INVALID_ARGUMENT",
      /1 to 1/,
    );
    expect(
      (await post("imagen-4.0-ultra-generate-001", "predict", imagen({}))).json.predictions,
    ).toHaveLength(1);
  });

  it("unknown top-level and instance fields are Google's 'Cannot find field' 400s with a BadRequest detail", async () => {
    const a = await post("imagen-4.0-generate-001", "predict", { ...imagen({}), labels: {} });
    expectGoogleError(a, 400, "INVALID_ARGUMENT", /Unknown name "labels": Cannot find field/);
    expect(a.json.error?.details?.[0]?.["@type"]).toBe("type.googleapis.com/google.rpc.BadRequest");
    expectGoogleError(
      await post("imagen-4.0-generate-001", "predict", { instances: [{ prompt: "x", image: {} }] }),
      400,
      "INVALID_ARGUMENT",
      /Unknown name "image"/,
    );
  });

  it("a prompt over 480 tokens, a missing prompt, and invalid JSON are 400s", async () => {
    expectGoogleError(
      await post("imagen-4.0-generate-001", "predict", imagen({}, "x".repeat(1921))),
      400,
      "INVALID_ARGUMENT",
      /480 tokens/,
    );
    expectGoogleError(
      await post("imagen-4.0-generate-001", "predict", { instances: [{}] }),
      400,
      "INVALID_ARGUMENT",
      /prompt/,
    );
    expectGoogleError(
      await post("imagen-4.0-generate-001", "predict", "{nope"),
      400,
      "INVALID_ARGUMENT",
      /Invalid JSON payload/,
    );
  });

  it("includeSafetyAttributes adds a 'Positive Prompt' prediction that is not an image", async () => {
    const a = await post(
      "imagen-3.0-generate-002",
      "predict",
      imagen({ sampleCount: 2, includeSafetyAttributes: true }),
    );
    expect(a.json.predictions).toHaveLength(3);
    expect(a.json.predictions!.at(-1)).toEqual({
      contentType: "Positive Prompt",
      safetyAttributes: { categories: [], scores: [] },
    });
  });
});

describe("Imagen refusals", () => {
  it("'forbidden': 400 INVALID_ARGUMENT, sensitive words", async () => {
    expectGoogleError(
      await post("imagen-4.0-generate-001", "predict", imagen({}, "a forbidden scene")),
      400,
      "INVALID_ARGUMENT",
      /sensitive words/,
    );
  });

  it("'forbidden-image': 200 with raiFilteredReason when asked, `{}` when not", async () => {
    const withReason = await post(
      "imagen-4.0-generate-001",
      "predict",
      imagen({ sampleCount: 2, includeRaiReason: true }, "a forbidden-image scene"),
    );
    expect(withReason.status).toBe(200);
    expect(withReason.json).toEqual({
      predictions: [{ raiFilteredReason: expect.stringContaining("All images were filtered out") }],
    });
    const bare = await post(
      "imagen-4.0-generate-001",
      "predict",
      imagen({ sampleCount: 2 }, "a forbidden-image scene"),
    );
    expect(bare).toEqual({ status: 200, json: {} });
  });

  it("'partly-forbidden': fewer images than asked, with a reason when asked", async () => {
    const a = await post(
      "imagen-4.0-generate-001",
      "predict",
      imagen({ sampleCount: 4, includeRaiReason: true }, "a partly-forbidden scene"),
    );
    const images = a.json.predictions!.filter((p) => p.bytesBase64Encoded !== undefined);
    expect(images).toHaveLength(2);
    expect(a.json.predictions!.at(-1)?.raiFilteredReason).toMatch(
      /filtered out 2 generated images/,
    );
    const bare = await post(
      "imagen-4.0-generate-001",
      "predict",
      imagen({ sampleCount: 3 }, "a partly-forbidden scene"),
    );
    expect(bare.json.predictions).toHaveLength(2);
  });
});

describe("Gemini :generateContent", () => {
  it("answers a text part and an inlineData PNG with usage by modality", async () => {
    const a = await post(
      "gemini-2.5-flash-image",
      "generateContent",
      gemini({ ...IMAGE_CONFIG, imageConfig: { aspectRatio: "3:2" } }),
    );
    expect(a.status).toBe(200);
    const candidate = a.json.candidates?.[0];
    expect(candidate?.finishReason).toBe("STOP");
    const image = imagePart(a.json);
    expect(image.mimeType).toBe("image/png");
    expect(pngSize(Buffer.from(image.data, "base64"))).toEqual({ width: 1248, height: 832 });
    expect(candidate?.content?.parts.some((p) => typeof p.text === "string")).toBe(true);
    const usage = a.json.usageMetadata!;
    expect(usage.candidatesTokensDetails).toContainEqual({ modality: "IMAGE", tokenCount: 1290 });
    expect(usage.totalTokenCount).toBe(usage.promptTokenCount + usage.candidatesTokenCount);
  });

  it("Gemini 3 Pro: imageSize 2K doubles the size and costs 1120 tokens", async () => {
    const a = await post(
      "gemini-3-pro-image-preview",
      "generateContent",
      gemini({ ...IMAGE_CONFIG, imageConfig: { aspectRatio: "16:9", imageSize: "2K" } }),
    );
    const image = imagePart(a.json);
    expect(pngSize(Buffer.from(image.data, "base64"))).toEqual({ width: 2752, height: 1536 });
    expect(a.json.usageMetadata?.candidatesTokensDetails).toContainEqual({
      modality: "IMAGE",
      tokenCount: 1120,
    });
  });

  it("without IMAGE in responseModalities the answer is text only", async () => {
    const a = await post("gemini-2.5-flash-image", "generateContent", gemini({}));
    expect(a.json.candidates?.[0]?.content?.parts.every((p) => p.inlineData === undefined)).toBe(
      true,
    );
  });

  it.each([
    [gemini({ ...IMAGE_CONFIG, imageConfig: { imageSize: "2K" } }), /image size/],
    [gemini({ ...IMAGE_CONFIG, imageConfig: { aspectRatio: "7:3" } }), /aspect ratio/],
    [
      gemini({ ...IMAGE_CONFIG, imageConfig: { imageOutputOptions: { mimeType: "image/jpeg" } } }),
      /Unknown name "imageOutputOptions"/,
    ],
    [gemini({ ...IMAGE_CONFIG, candidateCount: 2 }), /Multiple candidates/],
    [gemini({ responseModalities: ["PICTURE"] }), /response_modalities/],
    [gemini({ sampleCount: 2 }), /Unknown name "sampleCount" at 'generation_config'/],
    [{ contents: [] }, /contents is not specified/],
    [{ ...gemini(IMAGE_CONFIG), n: 2 }, /Unknown name "n"/],
  ])("rejects a bad body (%#) with 400 INVALID_ARGUMENT", async (body, message) => {
    expectGoogleError(
      await post("gemini-2.5-flash-image", "generateContent", body),
      400,
      "INVALID_ARGUMENT",
      message,
    );
  });

  it("'forbidden': promptFeedback.blockReason, no candidates", async () => {
    const a = await post(
      "gemini-2.5-flash-image",
      "generateContent",
      gemini(IMAGE_CONFIG, "a forbidden scene"),
    );
    expect(a.status).toBe(200);
    expect(a.json.promptFeedback).toEqual({ blockReason: "PROHIBITED_CONTENT" });
    expect(a.json.candidates).toBeUndefined();
  });

  it("'forbidden-image': finishReason IMAGE_SAFETY with no image part", async () => {
    const a = await post(
      "gemini-2.5-flash-image",
      "generateContent",
      gemini(IMAGE_CONFIG, "a forbidden-image scene"),
    );
    expect(a.json.candidates?.[0]).toMatchObject({ finishReason: "IMAGE_SAFETY" });
    expect(a.json.candidates?.[0]?.content).toBeUndefined();
  });

  it("'partly-forbidden': every second call with the same prompt is withheld", async () => {
    const prompt = `a partly-forbidden scene ${Math.random()}`;
    const reasons: (string | undefined)[] = [];
    for (let i = 0; i < 4; i++) {
      reasons.push(
        (await post("gemini-2.5-flash-image", "generateContent", gemini(IMAGE_CONFIG, prompt))).json
          .candidates?.[0]?.finishReason,
      );
    }
    expect(reasons).toEqual(["STOP", "IMAGE_SAFETY", "STOP", "IMAGE_SAFETY"]);
  });
});

describe("faults", () => {
  it("rateLimit: 429 RESOURCE_EXHAUSTED with QuotaFailure and RetryInfo, and no Retry-After header", async () => {
    emulator.faults.push(googleFaults.rateLimit(42));
    const res = await fetch(`${emulator.baseUrl}/models/imagen-4.0-generate-001:predict`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-goog-api-key": KEY },
      body: JSON.stringify(imagen({})),
    });
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBeNull();
    const json = (await res.json()) as GoogleJson;
    expect(json.error?.status).toBe("RESOURCE_EXHAUSTED");
    expect(json.error?.details).toContainEqual({
      "@type": "type.googleapis.com/google.rpc.RetryInfo",
      retryDelay: "42s",
    });
    expect(json.error?.details?.[0]?.["@type"]).toBe("type.googleapis.com/google.rpc.QuotaFailure");
  });

  it("a fault filtered by model lets other models pass", async () => {
    emulator.faults.push({ ...googleFaults.unavailable(), model: "imagen-3.0-generate-002" });
    expect(
      (await post("imagen-4.0-generate-001", "predict", imagen({ sampleCount: 1 }))).status,
    ).toBe(200);
    expectGoogleError(
      await post("imagen-3.0-generate-002", "predict", imagen({ sampleCount: 1 })),
      503,
      "UNAVAILABLE",
    );
  });

  it("the control endpoint queues, counts and clears faults", async () => {
    const control = `${new URL(emulator.baseUrl).origin}/__emulator/faults`;
    expect(
      (await fetch(control, { method: "POST", body: JSON.stringify(googleFaults.internal()) }))
        .status,
    ).toBe(204);
    expect(await (await fetch(control)).json()).toEqual({ pending: 1 });
    expectGoogleError(
      await post("imagen-4.0-generate-001", "predict", imagen({})),
      500,
      "INTERNAL",
    );
    await fetch(control, { method: "POST", body: JSON.stringify({ status: 503, times: 3 }) });
    expect((await fetch(control, { method: "DELETE" })).status).toBe(204);
    expect(await (await fetch(control)).json()).toEqual({ pending: 0 });
    expect(
      (await fetch(control, { method: "POST", body: JSON.stringify({ bogus: 1 }) })).status,
    ).toBe(400);
  });
});
