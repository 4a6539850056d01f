import { create } from "@bufbuild/protobuf";
import { afterEach, describe, expect, it, vi } from "vitest";
import { GatewayError } from "../../src/errors/errors.ts";
import {
  type CreateImageRequest,
  CreateImageRequestSchema,
} from "../../src/gen/imagegate/v1/images_pb.js";
import { retryAfterSeconds, safeUrl, type UpstreamResponse } from "../../src/providers/http.ts";
import { isRetryable } from "../../src/router/policy.ts";
import { fromOpenAIError } from "../../src/providers/openai/errors.ts";
import { fromOpenAIResponse } from "../../src/providers/openai/response.ts";
import { toOpenAIRequest } from "../../src/providers/openai/request.ts";

function request(init: Partial<Omit<CreateImageRequest, "$typeName">> = {}): CreateImageRequest {
  return create(CreateImageRequestSchema, { prompt: "a red fox", ...init });
}

function response(
  status: number,
  body: unknown,
  headers: UpstreamResponse["headers"] = {},
): UpstreamResponse {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  return {
    status,
    headers: { "content-type": "application/json", ...headers },
    body: Buffer.from(text, "utf8"),
  };
}

function openaiError(
  message: string,
  type: string | null,
  code: string | null,
  param: string | null = null,
  extra = {},
) {
  return { error: { message, type, param, code, ...extra } };
}

/** The GatewayError `fn` throws; fails the test if it returns or throws anything else. */
function thrown(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(GatewayError);
    return e as GatewayError;
  }
  throw new Error("expected a GatewayError");
}

describe("toOpenAIRequest", () => {
  it("copies only the prompt and model when nothing else is set", () => {
    expect(toOpenAIRequest(request(), "dall-e-3")).toEqual({
      prompt: "a red fox",
      model: "dall-e-3",
    });
    const body = toOpenAIRequest(request(), undefined);
    expect(body).toEqual({ prompt: "a red fox" });
    expect("model" in body).toBe(false);
  });

  it("copies every set field under OpenAI's snake_case name", () => {
    const body = toOpenAIRequest(
      request({
        n: 3,
        quality: "high",
        responseFormat: "b64_json",
        size: "1536x1024",
        style: "natural",
        user: "user-1",
        background: "transparent",
        moderation: "low",
        outputFormat: "webp",
        outputCompression: 80,
        safetyIdentifier: "sid-9",
      }),
      "gpt-image-1",
    );
    expect(body).toEqual({
      prompt: "a red fox",
      model: "gpt-image-1",
      n: 3,
      quality: "high",
      response_format: "b64_json",
      size: "1536x1024",
      style: "natural",
      user: "user-1",
      background: "transparent",
      moderation: "low",
      output_format: "webp",
      output_compression: 80,
      safety_identifier: "sid-9",
    });
  });

  it("copies a field set to its zero value (presence, not truthiness)", () => {
    const body = toOpenAIRequest(request({ outputCompression: 0, user: "" }), "gpt-image-1");
    expect(body).toEqual({
      prompt: "a red fox",
      model: "gpt-image-1",
      output_compression: 0,
      user: "",
    });
  });

  it("never sends the client's model name or fields OpenAI does not take", () => {
    const body = toOpenAIRequest(
      request({
        model: "image-hq",
        negativePrompt: "blur",
        seed: 7,
        aspectRatio: "16:9",
        stream: false,
      }),
      "dall-e-3",
    );
    expect(body).toEqual({ prompt: "a red fox", model: "dall-e-3" });
  });
});

describe("fromOpenAIResponse", () => {
  it("maps a DALL·E URL answer with its revised prompt", () => {
    const result = fromOpenAIResponse(
      {
        created: 1,
        data: [{ url: "https://files.example.com/a.png", revised_prompt: "A red fox, detailed" }],
      },
      request(),
    );
    expect(result.images).toEqual([
      {
        mimeType: "image/png",
        url: "https://files.example.com/a.png",
        revisedPrompt: "A red fox, detailed",
      },
    ]);
    expect(result.filtered).toBe(0);
    expect(result.usage).toBeUndefined();
    expect(result.size).toBeUndefined();
    expect(result.outputFormat).toBeUndefined();
  });

  it("decodes b64_json into bytes", () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 1, 2, 255]);
    const other = Buffer.from("second image");
    const result = fromOpenAIResponse(
      {
        created: 1,
        data: [{ b64_json: png.toString("base64") }, { b64_json: other.toString("base64") }],
      },
      request(),
    );
    expect(result.images).toHaveLength(2);
    expect(Buffer.from(result.images[0]!.bytes!)).toEqual(png);
    expect(Buffer.from(result.images[1]!.bytes!)).toEqual(other);
    expect(result.images[0]!.url).toBeUndefined();
    expect(result.images[0]!.revisedPrompt).toBeUndefined();
  });

  it("keeps the GPT-image echoes and usage, details included", () => {
    const result = fromOpenAIResponse(
      {
        created: 1,
        data: [{ b64_json: Buffer.from("img").toString("base64") }],
        size: "1024x1536",
        quality: "high",
        background: "opaque",
        output_format: "jpeg",
        usage: {
          input_tokens: 50,
          output_tokens: 4160,
          total_tokens: 4210,
          input_tokens_details: { text_tokens: 40, image_tokens: 10 },
          output_tokens_details: { image_tokens: 4100, text_tokens: 60 },
        },
      },
      request({ outputFormat: "png" }),
    );
    expect(result).toMatchObject({
      size: "1024x1536",
      quality: "high",
      background: "opaque",
      outputFormat: "jpeg",
    });
    expect(result.images[0]!.mimeType).toBe("image/jpeg");
    expect(result.usage).toMatchObject({
      inputTokens: 50,
      outputTokens: 4160,
      totalTokens: 4210,
      inputTokensDetails: { textTokens: 40, imageTokens: 10 },
      outputTokensDetails: { imageTokens: 4100, textTokens: 60 },
    });
  });

  it("derives total tokens when absent, zeroes nonsense counts, and omits absent output details", () => {
    const result = fromOpenAIResponse(
      {
        data: [{ b64_json: "aW1n" }],
        usage: {
          input_tokens: 12,
          output_tokens: 30,
          input_tokens_details: { text_tokens: "12", image_tokens: -4 },
        },
      },
      request(),
    );
    expect(result.usage).toMatchObject({
      inputTokens: 12,
      outputTokens: 30,
      totalTokens: 42,
      inputTokensDetails: { textTokens: 0, imageTokens: 0 },
    });
    expect(result.usage!.outputTokensDetails).toBeUndefined();
  });

  it("ignores a usage or output details that are not objects", () => {
    const nullUsage = fromOpenAIResponse({ data: [{ b64_json: "aW1n" }], usage: null }, request());
    expect(nullUsage.usage).toBeUndefined();
    const nullDetails = fromOpenAIResponse(
      {
        data: [{ b64_json: "aW1n" }],
        usage: { input_tokens: 1, output_tokens: 2, output_tokens_details: null },
      },
      request(),
    );
    expect(nullDetails.usage).toMatchObject({ inputTokens: 1, outputTokens: 2, totalTokens: 3 });
    expect(nullDetails.usage!.outputTokensDetails).toBeUndefined();
  });

  it("takes the media type from the requested format when the upstream does not echo one", () => {
    const result = fromOpenAIResponse(
      { data: [{ b64_json: "aW1n" }] },
      request({ outputFormat: "webp" }),
    );
    expect(result.images[0]!.mimeType).toBe("image/webp");
    expect(result.outputFormat).toBeUndefined();
  });

  it.each([
    ["null", null],
    ["a string", "ok"],
    ["an array", [{ url: "https://x" }]],
    ["no data", { created: 1 }],
    ["data not an array", { data: { url: "https://x" } }],
    ["an item with neither url nor b64_json", { data: [{ revised_prompt: "x" }] }],
    ["a url that is not a string", { data: [{ url: 42 }] }],
    ["an item that is null", { data: [null] }],
    ["empty data", { created: 1, data: [] }],
  ])("rejects a body with %s as a malformed upstream answer", (_what, body) => {
    const e = thrown(() => fromOpenAIResponse(body, request()));
    expect(e.kind).toBe("upstream");
    expect(e.code).toBe("upstream_malformed_response");
    expect(e.message).toMatch(/malformed/);
  });
});

describe("fromOpenAIError", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("maps a DALL·E content_policy_violation to a refusal", () => {
    const message =
      "Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.";
    const e = fromOpenAIError(
      response(400, openaiError(message, "invalid_request_error", "content_policy_violation")),
    );
    expect(e.kind).toBe("content_policy");
    expect(e.message).toBe(`OpenAI: ${message}`);
    expect(isRetryable(e)).toBe(false);
    expect(e.details).toEqual({ provider_code: "content_policy_violation" });
  });

  it("maps a GPT-image moderation_blocked to a refusal, keeping moderation_details", () => {
    const moderation = { moderation_stage: "output", categories: ["sexual"] };
    const e = fromOpenAIError(
      response(
        400,
        openaiError(
          "Your request was rejected by the safety system. request ID req_123. safety_violations=[sexual].",
          "image_generation_user_error",
          "moderation_blocked",
          null,
          { moderation_details: moderation },
        ),
      ),
    );
    expect(e.kind).toBe("content_policy");
    expect(isRetryable(e)).toBe(false);
    expect(e.message).toContain("safety_violations=[sexual]");
    expect(e.details).toEqual({
      provider_code: "moderation_blocked",
      moderation_details: moderation,
    });
  });

  it("uses the provider name it is given", () => {
    const e = fromOpenAIError(
      response(400, openaiError("nope", "invalid_request_error", "content_policy_violation")),
      "Azure",
    );
    expect(e.message).toBe("Azure: nope");
  });

  it("reads a 429's Retry-After in seconds", () => {
    const e = fromOpenAIError(
      response(
        429,
        openaiError("Rate limit exceeded for images per minute", "requests", "rate_limit_exceeded"),
        {
          "retry-after": "20",
        },
      ),
    );
    expect(e.kind).toBe("rate_limit");
    expect(e.code).toBe("rate_limit_exceeded");
    expect(e.retryAfterSeconds).toBe(20);
    expect(isRetryable(e)).toBe(true);
    expect(e.message).toContain("Rate limit exceeded");
  });

  it("reads a 429's Retry-After as an HTTP date", () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(new Date("2026-11-25T12:00:00Z"));
    const e = fromOpenAIError(
      response(429, openaiError("slow down", null, "rate_limit_exceeded"), {
        "retry-after": "Wed, 25 Nov 2026 12:00:45 GMT",
      }),
    );
    expect(e.retryAfterSeconds).toBe(45);
  });

  it("prefers retry-after-ms", () => {
    const e = fromOpenAIError(
      response(429, openaiError("slow down", null, "rate_limit_exceeded"), {
        "retry-after-ms": "1500",
        "retry-after": "9",
      }),
    );
    expect(e.retryAfterSeconds).toBe(1.5);
  });

  it("leaves the hint out when a 429 has none", () => {
    const e = fromOpenAIError(response(429, openaiError("slow down", null, "rate_limit_exceeded")));
    expect(e.kind).toBe("rate_limit");
    expect(e.retryAfterSeconds).toBeUndefined();
  });

  it("maps insufficient_quota (by code or by type) without a retry hint", () => {
    const bodies = [
      openaiError("You exceeded your current quota", "insufficient_quota", "insufficient_quota"),
      openaiError("You exceeded your current quota", "insufficient_quota", null),
    ];
    for (const body of bodies) {
      const e = fromOpenAIError(
        response(429, body, { "retry-after": "20", "retry-after-ms": "20000" }),
      );
      expect(e.kind).toBe("rate_limit");
      expect(e.code).toBe("insufficient_quota");
      expect(e.retryAfterSeconds).toBeUndefined();
    }
  });

  it("keeps a 400's param and code", () => {
    const e = fromOpenAIError(
      response(
        400,
        openaiError("Invalid size '999x999'.", "invalid_request_error", "invalid_value", "size"),
      ),
    );
    expect(e.kind).toBe("invalid_request");
    expect(e.param).toBe("size");
    expect(e.code).toBe("invalid_value");
    expect(isRetryable(e)).toBe(false);
    expect(e.message).toBe("OpenAI: Invalid size '999x999'.");

    const noCode = fromOpenAIError(
      response(400, openaiError("bad n", "invalid_request_error", null, "n")),
    );
    expect(noCode.param).toBe("n");
    expect(noCode.code).toBeUndefined();
  });

  it.each([401, 403])("maps %i to an upstream credentials failure, not the client's", (status) => {
    const e = fromOpenAIError(
      response(status, openaiError("Incorrect API key provided.", null, "invalid_api_key")),
    );
    expect(e.kind).toBe("upstream");
    expect(e.code).toBe("upstream_auth_failed");
    expect(e.httpStatus).toBe(502);
    expect(e.message).toContain(String(status));
  });

  it("maps 500 to a 502 upstream failure", () => {
    const e = fromOpenAIError(
      response(500, openaiError("The server had an error", "server_error", null)),
    );
    expect(e.kind).toBe("upstream");
    expect(e.httpStatus).toBe(502);
    expect(e.code).toBe("upstream_error");
    expect(isRetryable(e)).toBe(true);
    expect(e.message).toContain("500");
    expect(e.message).toContain("The server had an error");
  });

  it("maps 503 to a 503 upstream failure keeping OpenAI's code and hint", () => {
    const e = fromOpenAIError(
      response(
        503,
        openaiError("The engine is currently overloaded", null, "server_is_overloaded"),
        { "retry-after": "3" },
      ),
    );
    expect(e.kind).toBe("upstream");
    expect(e.httpStatus).toBe(503);
    expect(e.code).toBe("server_is_overloaded");
    expect(e.retryAfterSeconds).toBe(3);
  });

  it("maps 408 to a timeout", () => {
    expect(fromOpenAIError(response(408, "")).kind).toBe("timeout");
  });

  it("handles a body that is not JSON", () => {
    const html = fromOpenAIError({
      status: 502,
      headers: { "content-type": "text/html" },
      body: Buffer.from("<html>Bad Gateway</html>"),
    });
    expect(html.kind).toBe("upstream");
    expect(html.httpStatus).toBe(502);
    expect(html.code).toBe("upstream_error");
    expect(html.message).toContain("Bad Gateway");

    const empty = fromOpenAIError({ status: 500, headers: {}, body: Buffer.alloc(0) });
    expect(empty.kind).toBe("upstream");
    expect(empty.message).toContain("no body");

    const long = fromOpenAIError({ status: 500, headers: {}, body: Buffer.from("x".repeat(5000)) });
    expect(long.message.length).toBeLessThan(400);

    const bad = fromOpenAIError({ status: 400, headers: {}, body: Buffer.from("not json") });
    expect(bad.kind).toBe("invalid_request");
    expect(bad.message).toBe("OpenAI: not json");
  });
});

describe("retryAfterSeconds", () => {
  const now = Date.parse("2026-11-25T12:00:00Z");

  it("reads seconds, decimals and HTTP dates", () => {
    expect(retryAfterSeconds({ "retry-after": "7" }, now)).toBe(7);
    expect(retryAfterSeconds({ "retry-after": " 7 " }, now)).toBe(7);
    expect(retryAfterSeconds({ "retry-after": "0.5" }, now)).toBe(0.5);
    expect(retryAfterSeconds({ "retry-after": "Wed, 25 Nov 2026 12:01:00 GMT" }, now)).toBe(60);
  });

  it("clamps a date in the past to 0", () => {
    expect(retryAfterSeconds({ "retry-after": "Wed, 25 Nov 2026 11:00:00 GMT" }, now)).toBe(0);
  });

  it("prefers retry-after-ms, and falls back when it is unusable", () => {
    expect(retryAfterSeconds({ "retry-after-ms": "250", "retry-after": "9" }, now)).toBe(0.25);
    expect(retryAfterSeconds({ "retry-after-ms": "soon", "retry-after": "9" }, now)).toBe(9);
    expect(retryAfterSeconds({ "retry-after-ms": "-100", "retry-after": "9" }, now)).toBe(9);
  });

  it("takes the first of repeated headers", () => {
    expect(retryAfterSeconds({ "retry-after": ["4", "8"] }, now)).toBe(4);
  });

  it("gives undefined without a usable hint", () => {
    expect(retryAfterSeconds({}, now)).toBeUndefined();
    expect(retryAfterSeconds({ "retry-after": "whenever" }, now)).toBeUndefined();
    expect(retryAfterSeconds({ "retry-after": undefined }, now)).toBeUndefined();
  });
});

describe("safeUrl", () => {
  it("keeps origin and path, and drops query, fragment and user info", () => {
    expect(safeUrl("https://api.openai.com/v1/images/generations")).toBe(
      "https://api.openai.com/v1/images/generations",
    );
    expect(
      safeUrl("https://gen.example.com/v1beta/models/x:predict?key=AIzaSECRET&alt=json#frag"),
    ).toBe("https://gen.example.com/v1beta/models/x:predict");
    expect(safeUrl("http://user:p4ss@127.0.0.1:8080/v1?api-version=2024-10-21")).toBe(
      "http://127.0.0.1:8080/v1",
    );
  });

  it("does not echo an unparseable URL", () => {
    expect(safeUrl("not a url ?key=SECRET")).toBe("(invalid url)");
  });
});
