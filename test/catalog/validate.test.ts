import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { loadCatalog, type ModelSpec, parseCatalog } from "../../src/catalog/catalog.ts";
import { resolveDefaults, validateRequest } from "../../src/catalog/validate.ts";
import { type GatewayError, isGatewayError } from "../../src/errors/errors.ts";
import {
  type CreateImageRequest,
  CreateImageRequestSchema,
} from "../../src/gen/imagegate/v1/images_pb.js";

const catalog = loadCatalog();

function spec(model: string): ModelSpec {
  const found = catalog.lookup("openai", model);
  if (!found) throw new Error(`no catalog entry for openai/${model}`);
  return found;
}

function request(fields: MessageInitShape<typeof CreateImageRequestSchema>): CreateImageRequest {
  return create(CreateImageRequestSchema, { prompt: "a lighthouse at dusk", ...fields });
}

/** The 400 `validateRequest` throws for `fields` on `model`. */
function rejection(
  model: string,
  fields: MessageInitShape<typeof CreateImageRequestSchema>,
  on: ModelSpec = spec(model),
): GatewayError {
  try {
    validateRequest(request(fields), on, model);
  } catch (e) {
    if (isGatewayError(e)) return e;
    throw e;
  }
  throw new Error(`expected ${JSON.stringify(fields)} to be rejected for ${model}`);
}

function expectRejected(
  model: string,
  fields: MessageInitShape<typeof CreateImageRequestSchema>,
  param: string,
  message: string | RegExp,
  on?: ModelSpec,
): void {
  const error = rejection(model, fields, on);
  expect(error.kind).toBe("invalid_request");
  expect(error.param).toBe(param);
  expect(error.message).toMatch(message);
}

function expectAccepted(
  model: string,
  fields: MessageInitShape<typeof CreateImageRequestSchema>,
  on: ModelSpec = spec(model),
): void {
  expect(() => validateRequest(request(fields), on, model)).not.toThrow();
}

describe("validateRequest: prompt", () => {
  it("requires a prompt", () => {
    const error = (() => {
      try {
        validateRequest(create(CreateImageRequestSchema, {}), spec("dall-e-3"), "dall-e-3");
      } catch (e) {
        return e as GatewayError;
      }
      throw new Error("missing prompt accepted");
    })();
    expect(error.param).toBe("prompt");
    expect(error.message).toBe("Missing required parameter: 'prompt'.");
  });

  it("rejects an empty prompt", () => {
    expectRejected("dall-e-3", { prompt: "" }, "prompt", /empty/);
  });

  it("enforces each model's prompt length", () => {
    expectRejected(
      "dall-e-3",
      { prompt: "x".repeat(4001) },
      "prompt",
      "is too long: 4001 characters; the maximum for dall-e-3 is 4000.",
    );
    expectRejected(
      "dall-e-2",
      { prompt: "x".repeat(1001) },
      "prompt",
      /maximum for dall-e-2 is 1000/,
    );
    expectRejected("gpt-image-1", { prompt: "x".repeat(32001) }, "prompt", /32000/);
    expectAccepted("dall-e-3", { prompt: "x".repeat(4000) });
  });

  it("counts characters, not UTF-16 units", () => {
    expectAccepted("dall-e-2", { prompt: "🎨".repeat(1000) });
  });
});

describe("validateRequest: n", () => {
  it("allows dall-e-3 only one image", () => {
    expectRejected(
      "dall-e-3",
      { n: 2 },
      "n",
      "Invalid value for 'n': 2. For dall-e-3, 'n' must be only 1.",
    );
    expectAccepted("dall-e-3", { n: 1 });
  });

  it("keeps n within 1..10 elsewhere", () => {
    expectRejected("dall-e-2", { n: 11 }, "n", /from 1 to 10/);
    expectRejected("gpt-image-1", { n: 0 }, "n", /from 1 to 10/);
    expectAccepted("gpt-image-1", { n: 10 });
  });
});

describe("validateRequest: size", () => {
  it("lists the supported sizes", () => {
    expectRejected(
      "dall-e-3",
      { size: "999x999" },
      "size",
      "Invalid value: '999x999'. Supported values for dall-e-3 are: '1024x1024', '1792x1024', '1024x1792'.",
    );
    expectRejected("dall-e-2", { size: "1792x1024" }, "size", /'256x256', '512x512', '1024x1024'/);
    expectRejected("gpt-image-1", { size: "1792x1024" }, "size", /'1536x1024'/);
    expectRejected("dall-e-3", { size: "auto" }, "size", /Invalid value: 'auto'/);
    expectAccepted("gpt-image-1", { size: "auto" });
    expectAccepted("gpt-image-1-mini", { size: "1024x1536" });
  });

  it("applies gpt-image-2's rule", () => {
    for (const size of ["1024x1024", "3840x2160", "2160x3840", "768x2304", "2304x768", "auto"]) {
      expectAccepted("gpt-image-2", { size });
    }
    expectRejected("gpt-image-2", { size: "1000x1000" }, "size", /multiples of 16/);
    expectRejected("gpt-image-2", { size: "4096x1024" }, "size", /above 3840/);
    expectRejected("gpt-image-2", { size: "3840x3840" }, "size", /pixels is above 8294400/);
    expectRejected(
      "gpt-image-2",
      { size: "512x2048" },
      "size",
      /aspect ratio 1:4 is narrower than 1:3/,
    );
    expectRejected(
      "gpt-image-2",
      { size: "2048x512" },
      "size",
      /aspect ratio 4:1 is wider than 3:1/,
    );
    const error = rejection("gpt-image-2", { size: "1000x1000" });
    expect(error.message).toContain(
      "Supported values for gpt-image-2 are: 'auto', or WIDTHxHEIGHT",
    );
  });

  it("rejects a malformed WxH", () => {
    for (const size of [
      "1024",
      "1024X1024",
      "1024x",
      "x1024",
      "0x1024",
      "1024x1024px",
      " 1024x1024",
    ]) {
      expectRejected("gpt-image-2", { size }, "size", /is not WIDTHxHEIGHT/);
    }
  });
});

describe("validateRequest: quality, style, response_format", () => {
  it("rejects a quality the model lacks", () => {
    expectRejected(
      "dall-e-3",
      { quality: "high" },
      "quality",
      "Supported values for dall-e-3 are: 'standard', 'hd', 'auto'.",
    );
    expectRejected("dall-e-2", { quality: "hd" }, "quality", /'standard', 'auto'/);
    expectRejected("gpt-image-1", { quality: "hd" }, "quality", /'low', 'medium', 'high', 'auto'/);
    expectRejected("gpt-image-2", { quality: "xhigh" }, "quality", /Invalid value: 'xhigh'/);
    expectAccepted("gpt-image-2.5-sunburst", { quality: "xhigh" });
    expectAccepted("gpt-image-2.5-flare", { quality: "max" });
  });

  it("rejects style on a model without styles", () => {
    expectRejected(
      "gpt-image-1",
      { style: "vivid" },
      "style",
      "Unsupported parameter: 'style' is not supported with gpt-image-1.",
    );
    expectRejected("dall-e-2", { style: "natural" }, "style", /not supported with dall-e-2/);
    expectRejected("dall-e-3", { style: "painterly" }, "style", /'vivid', 'natural'/);
    expectAccepted("dall-e-3", { style: "natural" });
  });

  it("accepts url and b64_json for every model: the gateway stores bytes and fetches URLs", () => {
    for (const entry of catalog.entries()) {
      if (!entry.generates) continue; // edit-only models: below
      expectAccepted(entry.model, { responseFormat: "url" }, entry);
      expectAccepted(entry.model, { responseFormat: "b64_json" }, entry);
    }
    expectRejected("dall-e-3", { responseFormat: "png" }, "response_format", /'url', 'b64_json'/);
    expectRejected(
      "gpt-image-1",
      { responseFormat: "png" },
      "response_format",
      "Supported values for gpt-image-1 are: 'url', 'b64_json'.",
    );
  });

  it("an edit-only model (generates: false) refuses a generation naming model, takes an edit", () => {
    const capability = catalog.lookup("vertex_ai", "imagen-3.0-capability-001")!;
    expect(capability.generates).toBe(false);
    expectRejected("imagen-3.0-capability-001", {}, "model", /only edits images/, capability);
    expect(() =>
      validateRequest(request({}), capability, "imagen-3.0-capability-001", "edit"),
    ).not.toThrow();
  });

  it("defaults response_format to what the upstream returns natively", () => {
    expect(resolveDefaults(request({}), spec("dall-e-3")).responseFormat).toBe("url");
    expect(resolveDefaults(request({}), spec("gpt-image-1")).responseFormat).toBe("b64_json");
    expect(
      resolveDefaults(request({ responseFormat: "url" }), spec("gpt-image-1")).responseFormat,
    ).toBe("url");
  });
});

describe("validateRequest: GPT-image fields", () => {
  it("rejects them on DALL·E", () => {
    const fields = {
      background: { background: "opaque" },
      moderation: { moderation: "low" },
      output_format: { outputFormat: "png" },
      output_compression: { outputCompression: 50 },
      partial_images: { partialImages: 1 },
    } as const;
    for (const [param, sent] of Object.entries(fields)) {
      expectRejected(
        "dall-e-3",
        sent,
        param,
        `Unsupported parameter: '${param}' is not supported with dall-e-3.`,
      );
    }
  });

  it("needs png or webp for a transparent background", () => {
    expectRejected(
      "gpt-image-1",
      { background: "transparent", outputFormat: "jpeg" },
      "background",
      "'transparent' requires 'output_format' to be 'png' or 'webp'; got 'jpeg'.",
    );
    expectAccepted("gpt-image-1", { background: "transparent" });
    expectAccepted("gpt-image-1", { background: "transparent", outputFormat: "webp" });
    expectAccepted("gpt-image-1", { background: "opaque", outputFormat: "jpeg" });
  });

  it("rejects transparent on gpt-image-2", () => {
    expectRejected(
      "gpt-image-2",
      { background: "transparent", outputFormat: "png" },
      "background",
      "Invalid value: 'transparent'. Supported values for gpt-image-2 are: 'opaque', 'auto'.",
    );
  });

  it("checks moderation and output_format values", () => {
    expectRejected("gpt-image-1", { moderation: "high" }, "moderation", /'low', 'auto'/);
    expectRejected(
      "gpt-image-1",
      { outputFormat: "gif" },
      "output_format",
      /'png', 'jpeg', 'webp'/,
    );
  });

  it("keeps output_compression in 0..100 and below 100 only for lossy formats", () => {
    expectRejected(
      "gpt-image-1",
      { outputCompression: 101, outputFormat: "jpeg" },
      "output_compression",
      /from 0 to 100/,
    );
    expectRejected(
      "gpt-image-1",
      { outputCompression: 80 },
      "output_compression",
      "Compression below 100 requires 'output_format' to be 'jpeg' or 'webp'; got 'png'.",
    );
    expectRejected(
      "gpt-image-1",
      { outputCompression: 80, outputFormat: "png" },
      "output_compression",
      /got 'png'/,
    );
    expectAccepted("gpt-image-1", { outputCompression: 100, outputFormat: "png" });
    expectAccepted("gpt-image-1", { outputCompression: 0, outputFormat: "jpeg" });
    expectAccepted("gpt-image-2", { outputCompression: 60, outputFormat: "webp" });
  });
});

describe("validateRequest: streaming", () => {
  it("accepts stream on every model: those whose provider does not stream answer completed events", () => {
    expectAccepted("gpt-image-1", { stream: true });
    expectAccepted("gpt-image-1", { stream: false });
    expectAccepted("dall-e-3", { stream: true });
    expectAccepted("dall-e-3", { stream: false });
  });

  it("rejects partial_images on a model without partial images", () => {
    expectRejected("dall-e-3", { stream: true, partialImages: 1 }, "partial_images", /dall-e-3/);
  });

  it("rejects partial_images without stream, and out of range", () => {
    expectRejected(
      "gpt-image-1",
      { partialImages: 2 },
      "partial_images",
      "requires 'stream': true",
    );
    expectRejected(
      "gpt-image-1",
      { partialImages: 2, stream: false },
      "partial_images",
      /requires 'stream'/,
    );
    expectRejected("gpt-image-1", { partialImages: 4 }, "partial_images", /from 0 to 3/);
  });
});

describe("validateRequest: provider extras", () => {
  const extras = parseCatalog(`models:
  - provider: bedrock
    model: stability.sd3-5-large-v1:0
    family: sd3
    prompt_max_chars: 10000
    n: { min: 1, max: 10 }
    upstream_max_n: 1
    size: { values: [1024x1024, auto], default: 1024x1024 }
    native_response: b64_json
    aspect_ratio: { values: ["16:9", "1:1", "9:16"], default: "1:1" }
    seed: { min: 0, max: 4294967294 }
    negative_prompt: { max_chars: 10 }
`);
  const sd3 = extras.lookup("bedrock", "stability.sd3-5-large-v1:0")!;

  it("rejects negative_prompt, seed and aspect_ratio where the entry does not list them", () => {
    expectRejected(
      "dall-e-3",
      { negativePrompt: "blur" },
      "negative_prompt",
      /Unsupported parameter: 'negative_prompt'/,
    );
    expectRejected("gpt-image-2", { seed: 7 }, "seed", /Unsupported parameter: 'seed'/);
    expectRejected(
      "dall-e-2",
      { aspectRatio: "16:9" },
      "aspect_ratio",
      /Unsupported parameter: 'aspect_ratio'/,
    );
  });

  it("accepts them where listed, within the entry's bounds", () => {
    expectAccepted("sd3", { negativePrompt: "blur", seed: 4294967294, aspectRatio: "16:9" }, sd3);
    expectRejected("sd3", { seed: 4294967295 }, "seed", /from 0 to 4294967294/, sd3);
    expectRejected("sd3", { aspectRatio: "4:3" }, "aspect_ratio", /'16:9', '1:1', '9:16'/, sd3);
    expectRejected(
      "sd3",
      { negativePrompt: "x".repeat(11) },
      "negative_prompt",
      /maximum for sd3 is 10/,
      sd3,
    );
    expectRejected(
      "sd3",
      { aspectRatio: "16:9", size: "1024x1024" },
      "aspect_ratio",
      /either 'size' or 'aspect_ratio'/,
      sd3,
    );
    expectAccepted("sd3", { aspectRatio: "16:9", size: "auto" }, sd3);
    expectRejected("sd3", { user: "u-1" }, "user", /Unsupported parameter: 'user'/, sd3);
  });
});

describe("validateRequest: valid requests", () => {
  it("accepts a bare prompt and each model's own defaults, for every OpenAI model", () => {
    for (const entry of catalog.entries().filter((e) => e.provider === "openai")) {
      expectAccepted(entry.model, {}, entry);
      expectAccepted(
        entry.model,
        {
          n: entry.n.max,
          size: entry.size.default,
          quality: entry.quality?.default,
          style: entry.style?.default,
          responseFormat: entry.native_response,
          background: entry.background?.default,
          moderation: entry.moderation?.default,
          outputFormat: entry.output_format?.default,
          outputCompression: entry.output_compression?.default,
          user: "user-1",
          safetyIdentifier: "safety-1",
        },
        entry,
      );
    }
  });

  it("accepts full requests the reference documents", () => {
    expectAccepted("dall-e-2", { n: 4, size: "512x512", responseFormat: "b64_json", user: "u" });
    expectAccepted("dall-e-3", {
      size: "1792x1024",
      quality: "hd",
      style: "natural",
      responseFormat: "url",
    });
    expectAccepted("gpt-image-1", {
      n: 3,
      size: "1536x1024",
      quality: "high",
      background: "transparent",
      moderation: "low",
      outputFormat: "webp",
      outputCompression: 80,
    });
    expectAccepted(
      "gpt-image-2-2026-04-21",
      { size: "2048x1152", quality: "medium", background: "opaque" },
      spec("gpt-image-2"),
    );
    expectAccepted("chatgpt-image-latest", {
      size: "1280x720",
      outputFormat: "jpeg",
      outputCompression: 50,
    });
  });
});

describe("resolveDefaults", () => {
  it("fills DALL·E defaults and takes auto quality as standard", () => {
    expect(resolveDefaults(request({}), spec("dall-e-3"))).toEqual({
      n: 1,
      size: "1024x1024",
      quality: "standard",
      responseFormat: "url",
      style: "vivid",
      background: undefined,
      outputFormat: undefined,
    });
    expect(resolveDefaults(request({ quality: "auto" }), spec("dall-e-3")).quality).toBe(
      "standard",
    );
    expect(
      resolveDefaults(request({ quality: "hd", size: "1024x1792" }), spec("dall-e-3")),
    ).toMatchObject({
      quality: "hd",
      size: "1024x1792",
    });
    expect(resolveDefaults(request({ n: 5 }), spec("dall-e-2"))).toMatchObject({
      n: 5,
      quality: "standard",
      style: undefined,
    });
  });

  it("keeps auto for GPT image", () => {
    expect(resolveDefaults(request({}), spec("gpt-image-1"))).toEqual({
      n: 1,
      size: "auto",
      quality: "auto",
      responseFormat: "b64_json",
      style: undefined,
      background: "auto",
      outputFormat: "png",
    });
    expect(
      resolveDefaults(
        request({ size: "2048x1152", quality: "high", outputFormat: "jpeg" }),
        spec("gpt-image-2"),
      ),
    ).toMatchObject({ size: "2048x1152", quality: "high", outputFormat: "jpeg" });
  });
});
