/**
 * The Google AI Studio adapter against its emulator, without the gateway: URL and key
 * header, sampleCount fan-out, and partial and full refusals as GenerationResults.
 */
import { create } from "@bufbuild/protobuf";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadCatalog } from "../../src/catalog/catalog.ts";
import { buildDeployment, type Deployment } from "../../src/config/deployment.ts";
import {
  type GeminiEmulator,
  googleFaults,
  startGeminiEmulator,
} from "@imagegate/emulators/gemini";
import { pngSize } from "@imagegate/emulators/png";
import { GatewayError } from "../../src/errors/errors.ts";
import {
  type CreateImageRequest,
  CreateImageRequestSchema,
} from "../../src/gen/imagegate/v1/images_pb.js";
import {
  GEMINI_DEFAULT_BASE,
  geminiAdapter,
  geminiUrl,
} from "../../src/providers/gemini/adapter.ts";

const KEY = "AIza-adapter-test-key";
const catalog = loadCatalog();
let emulator: GeminiEmulator;

beforeAll(async () => {
  emulator = await startGeminiEmulator({ apiKey: KEY });
});
afterAll(async () => {
  await emulator?.close();
});
afterEach(() => {
  emulator.faults.clear();
  emulator.requests.length = 0;
});

function deployment(model: string, params: Record<string, string> = {}): Deployment {
  return buildDeployment(
    {
      group: `gemini/${model}`,
      params: { model: `gemini/${model}`, api_key: KEY, api_base: emulator.baseUrl, ...params },
      where: "test",
      defaultTimeoutSeconds: 10,
    },
    catalog,
    {},
  );
}

function generate(
  model: string,
  fields: Partial<CreateImageRequest>,
  params?: Record<string, string>,
) {
  return geminiAdapter.generate({
    deployment: deployment(model, params),
    request: create(CreateImageRequestSchema, { prompt: "a harbour at dawn", ...fields }),
    signal: new AbortController().signal,
  });
}

async function failure(p: Promise<unknown>): Promise<GatewayError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof GatewayError) return e;
    throw e;
  }
  throw new Error("expected a GatewayError");
}

describe("Google AI Studio adapter", () => {
  it("builds {api_base}/models/{model}:{method}, default base v1beta", () => {
    expect(geminiUrl(GEMINI_DEFAULT_BASE, "imagen-4.0-generate-001", "predict")).toBe(
      "https://generativelanguage.googleapis.com/v1beta/models/imagen-4.0-generate-001:predict",
    );
    expect(geminiUrl("http://h/v1beta/", "gemini-2.5-flash-image", "generateContent")).toBe(
      "http://h/v1beta/models/gemini-2.5-flash-image:generateContent",
    );
  });

  it("Imagen: sends the key header and sampleCount, reports the produced size", async () => {
    const result = await generate("imagen-4.0-generate-001", { size: "1024x1536", n: 2 });
    expect(result.images).toHaveLength(2);
    expect(result.size).toBe("896x1280");
    expect(result.filtered).toBe(0);
    for (const img of result.images)
      expect(pngSize(img.bytes!)).toEqual({ width: 896, height: 1280 });
    const [call] = emulator.requests;
    expect(call?.path).toBe("/v1beta/models/imagen-4.0-generate-001:predict");
    expect(call?.headers["x-goog-api-key"]).toBe(KEY);
    expect(call?.body).toEqual({
      instances: [{ prompt: "a harbour at dawn" }],
      parameters: { sampleCount: 2, aspectRatio: "3:4", includeRaiReason: true },
    });
  });

  it("n above 4 fans out into sampleCount 4 + the rest", async () => {
    const result = await generate("imagen-4.0-fast-generate-001", { n: 6 });
    expect(result.images).toHaveLength(6);
    const counts = emulator.requests.map(
      (r) => (r.body as { parameters: { sampleCount: number } }).parameters.sampleCount,
    );
    expect(counts.sort()).toEqual([2, 4]);
  });

  it("Imagen 4 Ultra makes one image per call", async () => {
    const result = await generate("imagen-4.0-ultra-generate-001", { n: 3, quality: "hd" });
    expect(result.images).toHaveLength(3);
    expect(result.size).toBe("2048x2048");
    expect(emulator.requests).toHaveLength(3);
    for (const r of emulator.requests)
      expect((r.body as { parameters: object }).parameters).toMatchObject({
        sampleCount: 1,
        sampleImageSize: "2K",
      });
  });

  it("Gemini: one call per image, usage summed over the calls", async () => {
    const result = await generate("gemini-2.5-flash-image", { n: 2, size: "1792x1024" });
    expect(result.images).toHaveLength(2);
    expect(result.size).toBe("1344x768");
    expect(pngSize(result.images[0]!.bytes!)).toEqual({ width: 1344, height: 768 });
    expect(emulator.requests).toHaveLength(2);
    expect(result.usage?.outputTokensDetails?.imageTokens).toBe(2 * 1290);
  });

  it("Gemini fan-out with one call refused: survivors returned, the refused one counted and not billed", async () => {
    const result = await generate("gemini-2.5-flash-image", {
      n: 3,
      prompt: `partly-forbidden harbour ${Date.now()}`,
    });
    expect(result.images).toHaveLength(2);
    expect(result.filtered).toBe(1);
    expect(result.usage?.outputTokensDetails?.imageTokens).toBe(2 * 1290);
  });

  it("Imagen partial filter in one call: survivors returned, filtered counted", async () => {
    const result = await generate("imagen-4.0-generate-001", {
      n: 4,
      prompt: "a partly-forbidden harbour",
    });
    expect(result.images).toHaveLength(2);
    expect(result.filtered).toBe(2);
  });

  it("everything filtered is a refusal carrying the upstream's reason", async () => {
    const imagen = await failure(
      generate("imagen-3.0-generate-002", { n: 2, prompt: "a forbidden-image harbour" }),
    );
    expect(imagen.kind).toBe("content_policy");
    expect(imagen.message).toContain("All images were filtered out");
    const gemini = await failure(
      generate("gemini-3-pro-image-preview", { prompt: "a forbidden harbour" }),
    );
    expect(gemini.kind).toBe("content_policy");
    expect(gemini.message).toContain("PROHIBITED_CONTENT");
  });

  it("a wrong key is upstream_auth_failed and the message holds no key", async () => {
    const e = await failure(
      generate("imagen-4.0-generate-001", {}, { api_key: "AIza-wrong-key-123" }),
    );
    expect(e.kind).toBe("upstream");
    expect(e.code).toBe("upstream_auth_failed");
    expect(e.message).not.toContain("AIza-wrong-key-123");
  });

  it("429 RESOURCE_EXHAUSTED carries RetryInfo's delay", async () => {
    emulator.faults.push(googleFaults.rateLimit(7));
    const e = await failure(generate("imagen-4.0-generate-001", {}));
    expect(e.kind).toBe("rate_limit");
    expect(e.retryAfterSeconds).toBe(7);
  });

  it("a truncated 200 body is a malformed response", async () => {
    emulator.faults.push(googleFaults.malformed());
    const e = await failure(generate("imagen-4.0-generate-001", {}));
    expect(e.code).toBe("upstream_malformed_response");
  });
});
