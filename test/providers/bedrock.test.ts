/**
 * The Bedrock adapter's pure parts: the size, aspect-ratio and quality tables, the four
 * request bodies, the answers (images, filtered, failures), the error table, the invoke URL
 * and SigV4 signing (checked by the emulator's independent verifier).
 */
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { loadCatalog, type ModelSpec } from "../../src/catalog/catalog.ts";
import { validateRequest } from "../../src/catalog/validate.ts";
import { canonicalRequest, verifySigV4 } from "@imagegate/emulators/sigv4";
import { type GatewayError, isGatewayError } from "../../src/errors/errors.ts";
import {
  type CreateImageRequest,
  CreateImageRequestSchema,
} from "../../src/gen/imagegate/v1/images_pb.js";
import { BEDROCK_ERRORS, fromBedrockError } from "../../src/providers/bedrock/errors.ts";
import { BEDROCK_IMAGE_KEYS } from "../../src/providers/bedrock/shapes.ts";
import {
  bedrockBaseUrl,
  bedrockInvokeUrl,
  signBedrockRequest,
} from "../../src/providers/bedrock/signing.ts";
import {
  bedrockQuality,
  planBedrockRequest,
  seedForCall,
} from "../../src/providers/bedrock/plan.ts";
import { fromBedrockResponse } from "../../src/providers/bedrock/plan.ts";
import { toBedrockRequest } from "../../src/providers/bedrock/plan.ts";
import type { UpstreamResponse } from "../../src/providers/http.ts";
import { scanImagesJson } from "../../src/providers/image-json.ts";

const catalog = loadCatalog();
const spec = (model: string): ModelSpec => {
  const s = catalog.lookup("bedrock", model);
  if (s === undefined) throw new Error(`no catalog entry for bedrock/${model}`);
  return s;
};
const SDXL = spec("stability.stable-diffusion-xl-v1");
const SDXL_V0 = spec("stability.stable-diffusion-xl-v0");
const SD3 = spec("stability.sd3-large-v1:0");
const CORE = spec("stability.stable-image-core-v1:1");
const TITAN = spec("amazon.titan-image-generator-v2:0");
const NOVA = spec("amazon.nova-canvas-v1:0");

function req(fields: Partial<CreateImageRequest>): CreateImageRequest {
  return create(CreateImageRequestSchema, { prompt: "a red fox", ...fields });
}

function caught(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (e) {
    if (isGatewayError(e)) return e;
    throw e;
  }
  throw new Error("expected a GatewayError");
}

describe("catalog entries", () => {
  it("lists every Bedrock model of the brief with its family", () => {
    const families = Object.fromEntries(
      catalog
        .entries()
        .filter((e) => e.provider === "bedrock")
        .map((e) => [e.model, e.family]),
    );
    expect(families).toEqual({
      "stability.stable-diffusion-xl-v0": "sdxl",
      "stability.stable-diffusion-xl-v1": "sdxl",
      "stability.sd3-large-v1:0": "sd3",
      "stability.sd3-5-large-v1:0": "sd3",
      "stability.stable-image-ultra-v1:0": "sd3",
      "stability.stable-image-ultra-v1:1": "sd3",
      "stability.stable-image-core-v1:0": "sd3",
      "stability.stable-image-core-v1:1": "sd3",
      "amazon.titan-image-generator-v1": "titan",
      "amazon.titan-image-generator-v2:0": "titan",
      "amazon.nova-canvas-v1:0": "nova",
    });
  });

  it("has the families' real limits", () => {
    expect([
      SDXL.prompt_max_chars,
      SD3.prompt_max_chars,
      TITAN.prompt_max_chars,
      NOVA.prompt_max_chars,
    ]).toEqual([2000, 10000, 512, 1024]);
    expect([SDXL.seed?.max, SD3.seed?.max, TITAN.seed?.max, NOVA.seed?.max]).toEqual([
      4294967295, 4294967294, 2147483646, 858993459,
    ]);
    expect([
      SDXL.upstream_max_n,
      SD3.upstream_max_n,
      TITAN.upstream_max_n,
      NOVA.upstream_max_n,
    ]).toEqual([1, 1, 5, 5]);
    expect(SD3.aspect_ratio?.values).toEqual([
      "16:9",
      "1:1",
      "21:9",
      "2:3",
      "3:2",
      "4:5",
      "5:4",
      "9:16",
      "9:21",
    ]);
  });

  it("maps every size each entry admits (the tables and the catalog agree)", () => {
    for (const entry of catalog.entries().filter((e) => e.provider === "bedrock")) {
      for (const size of entry.size.values) {
        const plan = planBedrockRequest(req({ size }), entry);
        expect(`${plan.width}x${plan.height}`, `${entry.model} ${size}`).toMatch(/^\d+x\d+$/);
      }
    }
  });

  it("leaves out what Bedrock cannot take, so the gateway rejects it", () => {
    const reject = (body: Partial<CreateImageRequest>, s: ModelSpec) =>
      caught(() => validateRequest(req(body), s, s.model)).param;
    expect(reject({ quality: "hd" }, SDXL)).toBe("quality");
    expect(reject({ style: "vivid" }, SDXL)).toBe("style");
    expect(reject({ style: "PHOTOREALISM" }, TITAN)).toBe("style");
    expect(reject({ aspectRatio: "16:9" }, TITAN)).toBe("aspect_ratio");
    expect(reject({ user: "u1" }, NOVA)).toBe("user");
    expect(reject({ size: "1000x1000" }, SDXL)).toBe("size");
    expect(reject({ size: "300x300" }, NOVA)).toBe("size");
    expect(reject({ seed: 2147483647 }, TITAN)).toBe("seed");
    expect(reject({ n: 11 }, SD3)).toBe("n");
    expect(reject({ outputFormat: "webp" }, SD3)).toBe("output_format");
    expect(reject({ prompt: "x".repeat(513) }, TITAN)).toBe("prompt");
  });
});

/** The size a listed size is sent as: the catalog's `size.upstream`, else itself. */
const sent = (s: ModelSpec, size: string) => s.size.upstream?.[size] ?? size;

describe("size tables (catalog size.upstream / size.produced)", () => {
  it("snaps OpenAI sizes to the allowed SDXL sizes", () => {
    const expected: Record<string, string> = {
      auto: "1024x1024",
      "256x256": "1024x1024",
      "512x512": "1024x1024",
      "1024x1024": "1024x1024",
      "1792x1024": "1344x768",
      "1024x1792": "768x1344",
      "1536x1024": "1216x832",
      "1024x1536": "832x1216",
    };
    for (const [size, produced] of Object.entries(expected)) {
      expect(sent(SDXL, size)).toBe(produced);
      const body = toBedrockRequest(planBedrockRequest(req({ size }), SDXL), 1);
      expect(body).toMatchObject({
        width: Number(produced.split("x")[0]),
        height: Number(produced.split("x")[1]),
      });
    }
    const allowed = [
      "1024x1024",
      "1152x896",
      "896x1152",
      "1216x832",
      "832x1216",
      "1344x768",
      "768x1344",
      "1536x640",
      "640x1536",
    ];
    expect(new Set(SDXL.size.values.map((v) => sent(SDXL, v)))).toEqual(new Set(allowed));
    for (const size of allowed) expect(sent(SDXL, size)).toBe(size);
  });

  it("gives SD3 an aspect ratio, and reports the size Stability renders for it", () => {
    expect(SD3.size.upstream).toMatchObject({
      "1024x1024": "1:1",
      "1792x1024": "16:9",
      "1024x1792": "9:16",
      "1536x1024": "3:2",
      "1024x1536": "2:3",
    });
    const plan = planBedrockRequest(req({ size: "1792x1024" }), SD3);
    expect(plan).toMatchObject({ aspectRatio: "16:9", width: 1344, height: 768 });
    const extra = planBedrockRequest(req({ aspectRatio: "21:9" }), SD3);
    expect(extra).toMatchObject({ aspectRatio: "21:9", width: 1536, height: 640 });
    for (const ratio of SD3.aspect_ratio!.values)
      expect(SD3.size.produced?.[ratio]).toMatch(/^\d+x\d+$/);
  });

  it("maps OpenAI sizes to Titan sizes", () => {
    const expected: Record<string, string> = {
      "256x256": "512x512",
      "512x512": "512x512",
      "1024x1024": "1024x1024",
      "1792x1024": "1408x768",
      "1024x1792": "768x1408",
      "1536x1024": "1152x768",
      "1024x1536": "768x1152",
      "1173x640": "1173x640",
    };
    for (const [size, produced] of Object.entries(expected)) {
      expect(planBedrockRequest(req({ size }), TITAN)).toMatchObject({
        width: Number(produced.split("x")[0]),
        height: Number(produced.split("x")[1]),
      });
    }
  });

  it("sends Nova any size within its rules as is, and 256x256 as its 320 minimum", () => {
    expect(planBedrockRequest(req({ size: "256x256" }), NOVA)).toMatchObject({
      width: 320,
      height: 320,
    });
    expect(planBedrockRequest(req({ size: "1792x1024" }), NOVA)).toMatchObject({
      width: 1792,
      height: 1024,
    });
    expect(planBedrockRequest(req({ size: "2048x512" }), NOVA)).toMatchObject({
      width: 2048,
      height: 512,
    });
  });
});

describe("quality table (Titan and Nova)", () => {
  it.each([
    [undefined, "standard"],
    ["standard", "standard"],
    ["auto", "standard"],
    ["low", "standard"],
    ["medium", "standard"],
    ["hd", "premium"],
    ["high", "premium"],
    ["premium", "premium"],
  ])("%s → %s", (quality, expected) => {
    for (const s of [TITAN, NOVA, spec("amazon.titan-image-generator-v1")]) {
      expect(bedrockQuality(quality, s)).toBe(expected);
      const body = toBedrockRequest(
        planBedrockRequest(req(quality === undefined ? {} : { quality }), s),
        1,
      );
      expect(body).toMatchObject({ imageGenerationConfig: { quality: expected } });
    }
  });
});

describe("request bodies", () => {
  it("SDXL: text prompts with the negative prompt as weight -1, style_preset, seed; no cfg_scale or steps", () => {
    const plan = planBedrockRequest(
      req({ negativePrompt: "blur", style: "anime", seed: 7, size: "1536x1024" }),
      SDXL_V0,
    );
    expect(toBedrockRequest(plan, 1)).toEqual({
      text_prompts: [
        { text: "a red fox", weight: 1 },
        { text: "blur", weight: -1 },
      ],
      width: 1216,
      height: 832,
      samples: 1,
      seed: 7,
      style_preset: "anime",
    });
    expect(toBedrockRequest(planBedrockRequest(req({ style: "none" }), SDXL), 1)).toEqual({
      text_prompts: [{ text: "a red fox", weight: 1 }],
      width: 1024,
      height: 1024,
      samples: 1,
    });
  });

  it("SD3: prompt, negative_prompt, aspect_ratio, seed, output_format", () => {
    const plan = planBedrockRequest(
      req({ negativePrompt: "blur", seed: 9, outputFormat: "jpeg", size: "1024x1536" }),
      CORE,
    );
    expect(toBedrockRequest(plan, 1)).toEqual({
      prompt: "a red fox",
      aspect_ratio: "2:3",
      negative_prompt: "blur",
      seed: 9,
      output_format: "jpeg",
    });
    expect(toBedrockRequest(planBedrockRequest(req({}), SD3), 1)).toEqual({
      prompt: "a red fox",
      aspect_ratio: "1:1",
    });
  });

  it("Titan and Nova: TEXT_IMAGE with imageGenerationConfig; Nova's style", () => {
    const titan = planBedrockRequest(
      req({ negativePrompt: "blur", quality: "hd", seed: 3, size: "1792x1024" }),
      TITAN,
    );
    expect(toBedrockRequest(titan, 4)).toEqual({
      taskType: "TEXT_IMAGE",
      textToImageParams: { text: "a red fox", negativeText: "blur" },
      imageGenerationConfig: {
        numberOfImages: 4,
        width: 1408,
        height: 768,
        quality: "premium",
        seed: 3,
      },
    });
    const nova = planBedrockRequest(req({ style: "PHOTOREALISM", size: "1024x1024" }), NOVA);
    expect(toBedrockRequest(nova, 2)).toEqual({
      taskType: "TEXT_IMAGE",
      textToImageParams: { text: "a red fox", style: "PHOTOREALISM" },
      imageGenerationConfig: { numberOfImages: 2, width: 1024, height: 1024, quality: "standard" },
    });
  });

  it("drops an empty negative prompt (Bedrock requires 1+ characters)", () => {
    const body = toBedrockRequest(planBedrockRequest(req({ negativePrompt: "" }), TITAN), 1);
    expect(body).toMatchObject({ textToImageParams: { text: "a red fox" } });
    expect((body as { textToImageParams: object }).textToImageParams).not.toHaveProperty(
      "negativeText",
    );
  });
});

describe("seeds across a fan-out", () => {
  it("uses seed + call index, wrapping within the model's range", () => {
    const plan = planBedrockRequest(req({ seed: 4294967294 }), SDXL);
    expect([0, 1, 2].map((i) => seedForCall(plan, i, 3))).toEqual([4294967294, 4294967295, 0]);
  });

  it("without a seed: none for Stability (random upstream), distinct ones for Titan/Nova when fanning out", () => {
    expect(seedForCall(planBedrockRequest(req({}), SD3), 1, 3)).toBeUndefined();
    const titan = planBedrockRequest(req({}), TITAN);
    expect(seedForCall(titan, 0, 1)).toBeUndefined(); // one call: the upstream default applies
    let next = 100;
    expect([0, 1].map((i) => seedForCall(titan, i, 2, () => next++))).toEqual([100, 101]);
  });
});

describe("answers", () => {
  const png = Buffer.from("89504e470d0a1a0a", "hex").toString("base64");

  it("SDXL: SUCCESS is an image, CONTENT_FILTERED is filtered (never returned), ERROR fails", () => {
    const plan = planBedrockRequest(req({ size: "1792x1024" }), SDXL);
    const ok = fromBedrockResponse(
      { result: "success", artifacts: [{ seed: 1, base64: png, finishReason: "SUCCESS" }] },
      plan,
      1,
    );
    expect(ok).toMatchObject({ filtered: 0, size: "1344x768" });
    expect(ok.images).toHaveLength(1);
    expect(ok.images[0]!.mimeType).toBe("image/png");
    const filtered = fromBedrockResponse(
      {
        result: "success",
        artifacts: [{ seed: 1, base64: png, finishReason: "CONTENT_FILTERED" }],
      },
      plan,
      1,
    );
    expect(filtered).toMatchObject({ images: [], filtered: 1 });
    const error = caught(() =>
      fromBedrockResponse({ artifacts: [{ finishReason: "ERROR" }] }, plan, 1),
    );
    expect([error.kind, error.code]).toEqual(["upstream", "upstream_model_error"]);
    expect(caught(() => fromBedrockResponse({ result: "success" }, plan, 1)).code).toBe(
      "upstream_malformed_response",
    );
  });

  it("SD3: null finish reason is an image, 'Filter reason: …' is filtered, other reasons fail", () => {
    const plan = planBedrockRequest(req({ outputFormat: "jpeg" }), SD3);
    const ok = fromBedrockResponse({ seeds: [1], finish_reasons: [null], images: [png] }, plan, 1);
    expect(ok).toMatchObject({ filtered: 0, size: "1024x1024", outputFormat: "jpeg" });
    expect(ok.images[0]!.mimeType).toBe("image/jpeg");
    for (const reason of ["Filter reason: prompt", "Filter reason: output image"]) {
      expect(
        fromBedrockResponse({ seeds: [1], finish_reasons: [reason], images: [png] }, plan, 1),
      ).toMatchObject({ images: [], filtered: 1 });
      expect(
        fromBedrockResponse({ seeds: [1], finish_reasons: [reason], images: [] }, plan, 1),
      ).toMatchObject({ images: [], filtered: 1 });
    }
    expect(
      caught(() =>
        fromBedrockResponse({ finish_reasons: ["Inference error"], images: [] }, plan, 1),
      ).code,
    ).toBe("upstream_model_error");
  });

  it("Titan/Nova: images; a content-filter error with fewer images counts the rest as filtered", () => {
    const plan = planBedrockRequest(req({}), NOVA);
    expect(fromBedrockResponse({ images: [png, png], error: null }, plan, 2)).toMatchObject({
      filtered: 0,
      size: "1024x1024",
    });
    const partial = fromBedrockResponse(
      { images: [png], error: "Some images have been blocked by our content filters." },
      plan,
      3,
    );
    expect(partial.images).toHaveLength(1);
    expect(partial.filtered).toBe(2);
    expect(
      fromBedrockResponse(
        { images: [], error: "This request has been blocked by our content filters." },
        plan,
        1,
      ),
    ).toMatchObject({ images: [], filtered: 1 });
    expect(
      caught(() => fromBedrockResponse({ images: [], error: "Something broke" }, plan, 1)).code,
    ).toBe("upstream_model_error");
    expect(caught(() => fromBedrockResponse([], plan, 1)).code).toBe("upstream_malformed_response");
  });
});

describe("errors by x-amzn-ErrorType", () => {
  function res(status: number, errorType: string | undefined, message: string): UpstreamResponse {
    const headers: UpstreamResponse["headers"] = { "content-type": "application/json" };
    if (errorType !== undefined)
      headers["x-amzn-errortype"] =
        `${errorType}:http://internal.amazon.com/coral/com.amazon.bedrock/`;
    return { status, headers, body: Buffer.from(JSON.stringify({ message })) };
  }

  it.each([
    [429, "ThrottlingException", "rate_limit", undefined, undefined],
    [429, "ModelNotReadyException", "rate_limit", undefined, undefined],
    [400, "ValidationException", "invalid_request", undefined, undefined],
    [403, "AccessDeniedException", "upstream", "upstream_auth_failed", 502],
    [403, "UnrecognizedClientException", "upstream", "upstream_auth_failed", 502],
    [403, "InvalidSignatureException", "upstream", "upstream_auth_failed", 502],
    [404, "ResourceNotFoundException", "upstream", "upstream_not_found", 502],
    [408, "ModelTimeoutException", "timeout", undefined, undefined],
    [503, "ServiceUnavailableException", "upstream", "upstream_unavailable", 503],
    [500, "InternalServerException", "upstream", "upstream_error", 502],
    [424, "ModelErrorException", "upstream", "upstream_model_error", 502],
  ])("%i %s → %s", (status, type, kind, code, httpStatus) => {
    const e = fromBedrockError(res(status, type, "something happened"));
    expect(e.kind).toBe(kind);
    if (code !== undefined) expect(e.code).toBe(code);
    expect(e.httpStatus).toBe(httpStatus);
    expect(e.retryAfterSeconds).toBeUndefined(); // Bedrock never hints
    expect(e.message).toContain("something happened");
    expect(Object.hasOwn(BEDROCK_ERRORS, type)).toBe(true);
  });

  it("a content-filter ValidationException is a refusal", () => {
    const e = fromBedrockError(
      res(400, "ValidationException", "This request has been blocked by our content filters."),
    );
    expect([e.kind, e.details?.provider_code]).toEqual(["content_policy", "ValidationException"]);
  });

  it("names the field of a schema violation", () => {
    const msg = (path: string) =>
      `Malformed input request: ${path}: 9 is not less or equal to 5, please reformat your input and try again.`;
    expect(
      fromBedrockError(
        res(400, "ValidationException", msg("#/imageGenerationConfig/numberOfImages")),
      ).param,
    ).toBe("n");
    expect(
      fromBedrockError(res(400, "ValidationException", msg("#/text_prompts/0/text"))).param,
    ).toBe("prompt");
    expect(
      fromBedrockError(res(400, "ValidationException", msg("#/imageGenerationConfig/width"))).param,
    ).toBe("size");
    expect(
      fromBedrockError(res(400, "ValidationException", "The provided model identifier is invalid."))
        .param,
    ).toBeUndefined();
  });

  it("falls back to the HTTP status without an error class", () => {
    expect(fromBedrockError(res(429, undefined, "slow down")).kind).toBe("rate_limit");
    expect(fromBedrockError(res(403, undefined, "no")).code).toBe("upstream_auth_failed");
    expect(fromBedrockError(res(503, undefined, "down")).httpStatus).toBe(503);
    expect(
      fromBedrockError({ status: 502, headers: {}, body: Buffer.from("<html>bad gateway</html>") })
        .message,
    ).toContain("bad gateway");
  });
});

describe("invoke URL and SigV4", () => {
  it("defaults to the region's endpoint; api_base wins", () => {
    expect(bedrockBaseUrl({ aws_region_name: "eu-central-1" })).toBe(
      "https://bedrock-runtime.eu-central-1.amazonaws.com",
    );
    expect(
      bedrockBaseUrl({
        aws_region_name: "eu-central-1",
        api_base: "http://127.0.0.1:9/",
      }),
    ).toBe("http://127.0.0.1:9");
  });

  it("encodes the model id as one path segment (':' → %3A)", () => {
    expect(bedrockInvokeUrl("https://h", "stability.sd3-large-v1:0")).toBe(
      "https://h/model/stability.sd3-large-v1%3A0/invoke",
    );
    expect(
      bedrockInvokeUrl(
        "https://h",
        "arn:aws:bedrock:us-east-1:1:inference-profile/us.amazon.nova-canvas-v1:0",
      ),
    ).toBe(
      "https://h/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fus.amazon.nova-canvas-v1%3A0/invoke",
    );
  });

  const credentials = {
    accessKeyId: "AKIDEXAMPLE",
    secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
  };
  const url =
    "https://bedrock-runtime.us-west-2.amazonaws.com/model/amazon.titan-image-generator-v2%3A0/invoke";
  const body = JSON.stringify({ taskType: "TEXT_IMAGE", textToImageParams: { text: "fox" } });
  const date = new Date(Date.UTC(2026, 10, 25, 12, 0, 0));

  async function signedRequest(extra: { sessionToken?: string } = {}) {
    const headers = await signBedrockRequest({
      url,
      body,
      credentials: { ...credentials, ...extra },
      region: "us-west-2",
      date,
    });
    const lowered = Object.fromEntries(
      Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]),
    );
    return {
      method: "POST",
      target: new URL(url).pathname,
      headers: lowered,
      body: Buffer.from(body),
    };
  }
  const expectation = (token?: string) => ({
    service: "bedrock",
    region: "us-west-2",
    now: date.getTime(),
    credential: (id: string) =>
      id === credentials.accessKeyId
        ? { ...credentials, ...(token === undefined ? {} : { sessionToken: token }) }
        : undefined,
  });

  it("signs for service 'bedrock' with the region's scope, verified by an independent implementation", async () => {
    const signed = await signedRequest();
    expect(signed.headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/20261125\/us-west-2\/bedrock\/aws4_request, SignedHeaders=accept;content-type;host;x-amz-date, Signature=[0-9a-f]{64}$/,
    );
    expect(signed.headers["x-amz-date"]).toBe("20261125T120000Z");
    expect(verifySigV4(signed, expectation())).toMatchObject({ ok: true });
    // The canonical URI double-encodes the model id's colon.
    expect(canonicalRequest(signed, ["host"]).split("\n")[1]).toBe(
      "/model/amazon.titan-image-generator-v2%253A0/invoke",
    );
  });

  it("a signature of the single-encoded path, or of another body, does not verify", async () => {
    const signed = await signedRequest();
    expect(
      verifySigV4(
        { ...signed, target: "/model/amazon.titan-image-generator-v2:0/invoke" },
        expectation(),
      ),
    ).toMatchObject({
      ok: false,
      errorType: "InvalidSignatureException",
    });
    expect(verifySigV4({ ...signed, body: Buffer.from(`${body} `) }, expectation())).toMatchObject({
      ok: false,
      errorType: "InvalidSignatureException",
    });
  });

  it("carries and signs a session token", async () => {
    const signed = await signedRequest({ sessionToken: "session-token-1" });
    expect(signed.headers["x-amz-security-token"]).toBe("session-token-1");
    expect(signed.headers.authorization).toContain("x-amz-security-token");
    expect(verifySigV4(signed, expectation("session-token-1"))).toMatchObject({ ok: true });
    expect(verifySigV4(signed, expectation("another-token"))).toMatchObject({
      ok: false,
      errorType: "UnrecognizedClientException",
    });
  });
});

describe("images read from the answer's chunks", () => {
  const b64 = (text: string) => Buffer.from(text).toString("base64");
  /** `json` as its bytes cut into 7-byte chunks. */
  const chunks = (json: unknown) => {
    const buf = Buffer.from(JSON.stringify(json));
    const out: Buffer[] = [];
    for (let i = 0; i < buf.length; i += 7) out.push(buf.subarray(i, i + 7));
    return out;
  };
  const answers: Array<[string, ModelSpec, unknown, number]> = [
    [
      "SDXL",
      SDXL,
      {
        result: "success",
        artifacts: [
          { seed: 1, base64: b64("png one"), finishReason: "SUCCESS" },
          { seed: 2, base64: b64("blurred"), finishReason: "CONTENT_FILTERED" },
        ],
      },
      1,
    ],
    [
      "SD3",
      SD3,
      { seeds: [1, 2], finish_reasons: [null, null], images: [b64("png one"), b64("png two")] },
      2,
    ],
    ["Titan", TITAN, { images: [b64("png one"), b64("png two")], error: null }, 2],
  ];
  for (const [name, spec, json, produced] of answers) {
    it(`${name}: the same answer as from the parsed JSON, with the bytes decoded once`, () => {
      const plan = planBedrockRequest(req({}), spec);
      const parsed = scanImagesJson(chunks(json), BEDROCK_IMAGE_KEYS)!;
      expect(parsed.images.size).toBeGreaterThanOrEqual(produced);
      const result = fromBedrockResponse(parsed.json, plan, 2, parsed.images);
      expect(result).toEqual(fromBedrockResponse(json, plan, 2));
      expect(result.images).toHaveLength(produced);
      for (const image of result.images) expect([...parsed.images.values()]).toContain(image.bytes);
    });
  }
});
