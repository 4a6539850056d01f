import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  type OpenAIEmulator,
  openaiFaults,
  startOpenAIEmulator,
} from "@imagegate/emulators/openai";
import { pngSize } from "@imagegate/emulators/png";

const API_KEY = "sk-emulator-test-key-0123456789abcdef";

let emu: OpenAIEmulator;
let clock = Date.now();

beforeAll(async () => {
  emu = await startOpenAIEmulator({ apiKey: API_KEY, now: () => clock });
});

afterAll(async () => {
  await emu.close();
});

beforeEach(() => {
  emu.faults.clear();
  clock = Date.now();
});

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

function post(
  body: unknown,
  init: { headers?: Record<string, string>; signal?: AbortSignal } = {},
) {
  return fetch(`${emu.baseUrl}/images/generations`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${API_KEY}`,
      "content-type": "application/json",
      ...init.headers,
    },
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal: init.signal,
  });
}

async function postJson(body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await post(body);
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function expectError(res: Response, status: number): Promise<ErrorBody["error"]> {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/application\/json/);
  const body = (await res.json()) as ErrorBody;
  expect(Object.keys(body)).toEqual(["error"]);
  expect(body.error).toHaveProperty("param");
  expect(body.error).toHaveProperty("code");
  return body.error;
}

function decodeSize(b64: unknown): { width: number; height: number } {
  expect(typeof b64).toBe("string");
  return pngSize(Buffer.from(b64 as string, "base64"));
}

describe("auth", () => {
  it("rejects a missing key", async () => {
    const res = await fetch(`${emu.baseUrl}/images/generations`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt: "a cat" }),
    });
    const err = await expectError(res, 401);
    expect(err.code).toBe("invalid_api_key");
    expect(err.message).toMatch(/didn't provide an API key/);
  });

  it("rejects a wrong key and masks it", async () => {
    const wrong = "sk-wrong-key-abcdefghijklmnopxyz9";
    const res = await post({ prompt: "a cat" }, { headers: { authorization: `Bearer ${wrong}` } });
    const err = await expectError(res, 401);
    expect(err).toMatchObject({
      type: "invalid_request_error",
      param: null,
      code: "invalid_api_key",
    });
    expect(err.message).toMatch(
      /^Incorrect API key provided: sk-\*+xyz9\. You can find your API key at/,
    );
    expect(err.message).not.toContain(wrong);
  });
});

describe("routing and body parsing", () => {
  it("404s unknown URLs with unknown_url", async () => {
    const res = await fetch(`${emu.baseUrl}/x`, { method: "POST" });
    const err = await expectError(res, 404);
    expect(err.code).toBe("unknown_url");
    expect(err.message).toMatch(/^Unknown request URL: POST \/v1\/x\. Please check the URL/);
  });

  it("405s the wrong method on the generations path", async () => {
    const res = await fetch(`${emu.baseUrl}/images/generations`);
    await expectError(res, 405);
  });

  it("rejects malformed JSON", async () => {
    const err = await expectError(await post("{not json"), 400);
    expect(err.message).toMatch(/could not parse the JSON body/);
    expect(err.param).toBeNull();
  });

  it("rejects a non-JSON content type", async () => {
    const res = await post("prompt=a", {
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    await expectError(res, 400);
  });

  it("rejects a JSON body that is not an object", async () => {
    await expectError(await post([1, 2]), 400);
  });

  it("rejects unknown keys with param null", async () => {
    const err = await expectError(await post({ prompt: "a", colour: "red" }), 400);
    expect(err.message).toBe("Unrecognized request argument supplied: colour");
    expect(err.param).toBeNull();
  });

  it("treats nulls as unset", async () => {
    const { status, json } = await postJson({
      prompt: "a cat",
      model: null,
      n: null,
      size: null,
      quality: null,
      response_format: null,
      style: null,
      background: null,
      output_format: null,
      user: null,
    });
    expect(status).toBe(200);
    expect(json.usage).toBeUndefined(); // defaulted to dall-e-2
  });
});

describe("validation", () => {
  const long = (n: number) => "x".repeat(n);
  const cases: Array<[string, Record<string, unknown>, string, string?]> = [
    ["missing prompt", { model: "dall-e-3" }, "prompt", "missing_required_parameter"],
    ["empty prompt", { prompt: "" }, "prompt"],
    ["prompt wrong type", { prompt: 42 }, "prompt", "invalid_type"],
    ["dall-e-2 prompt > 1000", { prompt: long(1001) }, "prompt", "string_above_max_length"],
    ["dall-e-3 prompt > 4000", { model: "dall-e-3", prompt: long(4001) }, "prompt"],
    ["gpt-image prompt > 32000", { model: "gpt-image-1", prompt: long(32001) }, "prompt"],
    ["unknown model", { model: "dall-e-9", prompt: "a" }, "model", "invalid_value"],
    ["model wrong type", { model: 3, prompt: "a" }, "model", "invalid_type"],
    ["n = 0", { prompt: "a", n: 0 }, "n", "integer_below_min_value"],
    ["n = 11", { prompt: "a", n: 11 }, "n", "integer_above_max_value"],
    ["n not integer", { prompt: "a", n: 1.5 }, "n", "invalid_type"],
    ["n as string", { prompt: "a", n: "2" }, "n", "invalid_type"],
    ["dall-e-3 n = 2", { model: "dall-e-3", prompt: "a", n: 2 }, "n"],
    ["dall-e-2 size", { prompt: "a", size: "1792x1024" }, "size", "invalid_value"],
    ["dall-e-2 size auto", { prompt: "a", size: "auto" }, "size"],
    ["dall-e-3 size", { model: "dall-e-3", prompt: "a", size: "512x512" }, "size"],
    ["gpt-image-1 size", { model: "gpt-image-1", prompt: "a", size: "1792x1024" }, "size"],
    ["gpt-image-2 not /16", { model: "gpt-image-2", prompt: "a", size: "1000x1000" }, "size"],
    ["gpt-image-2 ratio", { model: "gpt-image-2", prompt: "a", size: "3200x1024" }, "size"],
    ["gpt-image-2 too big", { model: "gpt-image-2", prompt: "a", size: "3840x2400" }, "size"],
    ["gpt-image-2 long side", { model: "gpt-image-2", prompt: "a", size: "4096x1536" }, "size"],
    ["gpt-image-2 garbage", { model: "gpt-image-2", prompt: "a", size: "big" }, "size"],
    ["dall-e-2 quality hd", { prompt: "a", quality: "hd" }, "quality", "invalid_value"],
    ["dall-e-3 quality high", { model: "dall-e-3", prompt: "a", quality: "high" }, "quality"],
    ["gpt-image quality hd", { model: "gpt-image-1", prompt: "a", quality: "hd" }, "quality"],
    [
      "gpt-image quality standard",
      { model: "gpt-image-1", prompt: "a", quality: "standard" },
      "quality",
    ],
    ["style on dall-e-2", { prompt: "a", style: "vivid" }, "style", "unknown_parameter"],
    ["style on gpt-image", { model: "gpt-image-1", prompt: "a", style: "vivid" }, "style"],
    ["bad style", { model: "dall-e-3", prompt: "a", style: "loud" }, "style", "invalid_value"],
    ["bad response_format", { prompt: "a", response_format: "jpg" }, "response_format"],
    [
      "response_format on gpt-image",
      { model: "gpt-image-1", prompt: "a", response_format: "b64_json" },
      "response_format",
      "unknown_parameter",
    ],
    [
      "background on dall-e",
      { model: "dall-e-3", prompt: "a", background: "opaque" },
      "background",
    ],
    ["moderation on dall-e", { model: "dall-e-2", prompt: "a", moderation: "low" }, "moderation"],
    [
      "output_format on dall-e",
      { model: "dall-e-3", prompt: "a", output_format: "png" },
      "output_format",
    ],
    [
      "output_compression on dall-e",
      { model: "dall-e-3", prompt: "a", output_compression: 50 },
      "output_compression",
    ],
    ["stream on dall-e", { model: "dall-e-3", prompt: "a", stream: true }, "stream"],
    [
      "partial_images on dall-e",
      { model: "dall-e-2", prompt: "a", partial_images: 1 },
      "partial_images",
    ],
    ["bad background", { model: "gpt-image-1", prompt: "a", background: "clear" }, "background"],
    ["bad moderation", { model: "gpt-image-1", prompt: "a", moderation: "high" }, "moderation"],
    [
      "bad output_format",
      { model: "gpt-image-1", prompt: "a", output_format: "bmp" },
      "output_format",
    ],
    [
      "transparent with jpeg",
      { model: "gpt-image-1", prompt: "a", background: "transparent", output_format: "jpeg" },
      "background",
    ],
    [
      "transparent on gpt-image-2",
      { model: "gpt-image-2", prompt: "a", background: "transparent" },
      "background",
    ],
    [
      "compression > 100",
      { model: "gpt-image-1", prompt: "a", output_format: "jpeg", output_compression: 101 },
      "output_compression",
    ],
    [
      "compression < 0",
      { model: "gpt-image-1", prompt: "a", output_format: "webp", output_compression: -1 },
      "output_compression",
    ],
    [
      "compression < 100 with png",
      { model: "gpt-image-1", prompt: "a", output_compression: 80 },
      "output_compression",
    ],
    [
      "partial_images > 3",
      { model: "gpt-image-1", prompt: "a", stream: true, partial_images: 4 },
      "partial_images",
    ],
    [
      "stream not boolean",
      { model: "gpt-image-1", prompt: "a", stream: "yes" },
      "stream",
      "invalid_type",
    ],
    ["newer-model field", { model: "gpt-image-2", prompt: "a", frame_count: 4 }, "frame_count"],
  ];

  it.each(cases)("%s → 400 naming the param", async (_name, body, param, code) => {
    const err = await expectError(await post(body), 400);
    expect(err.type).toBe("invalid_request_error");
    expect(err.param).toBe(param);
    if (code) expect(err.code).toBe(code);
    expect(err.message.length).toBeGreaterThan(10);
  });

  it("uses OpenAI's wording for enum and missing-prompt errors", async () => {
    let err = await expectError(
      await post({ model: "dall-e-3", prompt: "a", size: "512x512" }),
      400,
    );
    expect(err.message).toBe(
      "Invalid value: '512x512'. Supported values are: '1024x1024', '1792x1024', and '1024x1792'.",
    );
    err = await expectError(await post({ model: "gpt-image-1" }), 400);
    expect(err.message).toBe("Missing required parameter: 'prompt'.");
    err = await expectError(await post({ model: "nope", prompt: "a" }), 400);
    expect(err.message).toMatch(/^Invalid model: nope/);
  });

  it("accepts the boundaries", async () => {
    const ok = [
      { prompt: "x".repeat(1000) },
      { prompt: "a", n: 10, size: "256x256", response_format: "b64_json" },
      { prompt: "a", quality: "standard" },
      { prompt: "a", quality: "auto" },
      {
        model: "dall-e-3",
        prompt: "a",
        quality: "hd",
        style: "natural",
        response_format: "b64_json",
      },
      { model: "gpt-image-1", prompt: "a", output_format: "jpeg", output_compression: 0 },
      { model: "gpt-image-1", prompt: "a", output_compression: 100 },
      { model: "gpt-image-1", prompt: "a", background: "transparent", output_format: "webp" },
      { model: "gpt-image-1", prompt: "a", moderation: "low", user: "u1", safety_identifier: "s1" },
      { model: "gpt-image-2", prompt: "a", size: "3840x2160" },
      { model: "gpt-image-2", prompt: "a", size: "1536x512" },
      { model: "gpt-image-2", prompt: "a", size: "auto", background: "opaque" },
    ];
    for (const body of ok) {
      const res = await post(body);
      if (res.status !== 200) throw new Error(`${JSON.stringify(body)} → ${await res.text()}`);
      await res.arrayBuffer();
    }
  });
});

describe("success shapes", () => {
  it("dall-e-2 by default returns URLs that download as PNGs", async () => {
    const { status, json } = await postJson({ prompt: "a red fox", n: 2, size: "512x512" });
    expect(status).toBe(200);
    expect(Number.isInteger(json.created)).toBe(true);
    expect(Object.keys(json).sort()).toEqual(["created", "data"]);
    const data = json.data as Array<Record<string, string>>;
    expect(data).toHaveLength(2);
    for (const item of data) {
      expect(Object.keys(item)).toEqual(["url"]);
      expect(item.url).toMatch(
        /^http:\/\/127\.0\.0\.1:\d+\/v1\/files\/images\/[\w-]+\.png\?se=.+&sig=.+$/,
      );
      const img = await fetch(item.url!);
      expect(img.status).toBe(200);
      expect(img.headers.get("content-type")).toBe("image/png");
      expect(pngSize(Buffer.from(await img.arrayBuffer()))).toEqual({ width: 512, height: 512 });
    }
  });

  it("checks the URL signature, the id and the expiry", async () => {
    const { json } = await postJson({ prompt: "a red fox", size: "256x256" });
    const url = new URL((json.data as Array<{ url: string }>)[0]!.url);

    const badSig = new URL(url);
    badSig.searchParams.set("sig", "AAAA");
    expect((await fetch(badSig)).status).toBe(403);

    const longerExpiry = new URL(url);
    longerExpiry.searchParams.set("se", "2999-01-01T00:00:00.000Z");
    expect((await fetch(longerExpiry)).status).toBe(403);

    const unknown = new URL(url);
    unknown.pathname = "/v1/files/images/img-doesnotexist.png";
    expect((await fetch(unknown)).status).toBe(404);

    expect((await fetch(url)).status).toBe(200);
    clock += 61 * 60 * 1000; // URLs expire after 60 minutes
    const expired = await fetch(url);
    expect(expired.status).toBe(403);
    expect(await expired.text()).toMatch(/AuthenticationFailed/);
  });

  it("dall-e-2 b64_json returns base64 PNGs", async () => {
    const { json } = await postJson({
      prompt: "a",
      n: 3,
      size: "256x256",
      response_format: "b64_json",
    });
    const data = json.data as Array<Record<string, string>>;
    expect(data).toHaveLength(3);
    for (const item of data) {
      expect(Object.keys(item)).toEqual(["b64_json"]);
      expect(decodeSize(item.b64_json)).toEqual({ width: 256, height: 256 });
    }
  });

  it("dall-e-3 adds revised_prompt and honours size", async () => {
    const { json } = await postJson({
      model: "dall-e-3",
      prompt: "a lighthouse",
      size: "1792x1024",
      response_format: "b64_json",
    });
    const [item] = json.data as Array<Record<string, string>>;
    expect(item!.revised_prompt).toBe("A detailed rendering of: a lighthouse");
    expect(decodeSize(item!.b64_json)).toEqual({ width: 1792, height: 1024 });
    expect(json.usage).toBeUndefined();
    expect(json.size).toBeUndefined();
  });

  it("gpt-image-1 echoes resolved defaults and reports usage", async () => {
    const prompt = "a watercolor of a heron"; // 23 chars → 6 tokens
    const { json } = await postJson({ model: "gpt-image-1", prompt });
    expect(json).toMatchObject({
      background: "opaque",
      output_format: "png",
      size: "1024x1024",
      quality: "medium",
      usage: {
        input_tokens: 6,
        input_tokens_details: { text_tokens: 6, image_tokens: 0 },
        output_tokens: 1056,
        total_tokens: 1062,
      },
    });
    const data = json.data as Array<Record<string, string>>;
    expect(Object.keys(data[0]!)).toEqual(["b64_json"]);
    expect(decodeSize(data[0]!.b64_json)).toEqual({ width: 1024, height: 1024 });
  });

  it("gpt-image output tokens follow the table, times n", async () => {
    const { json } = await postJson({
      model: "gpt-image-1",
      prompt: "abcd",
      quality: "high",
      size: "1536x1024",
      n: 2,
      background: "transparent",
    });
    expect(json).toMatchObject({
      size: "1536x1024",
      quality: "high",
      background: "transparent",
      usage: { input_tokens: 1, output_tokens: 2 * 6208, total_tokens: 1 + 2 * 6208 },
    });
    const data = json.data as Array<Record<string, string>>;
    expect(data).toHaveLength(2);
    expect(decodeSize(data[1]!.b64_json)).toEqual({ width: 1536, height: 1024 });
  });

  it("echoes a non-empty safety_identifier", async () => {
    const { json } = await postJson({
      model: "gpt-image-1",
      prompt: "a",
      safety_identifier: "u-1",
    });
    expect(json.safety_identifier).toBe("u-1");
    const plain = await postJson({ model: "gpt-image-1", prompt: "a", user: "u-2" });
    expect(plain.json).not.toHaveProperty("safety_identifier");
  });

  it("omitting the model with a GPT-image-only field selects gpt-image-1", async () => {
    const { json } = await postJson({ prompt: "a", output_format: "webp", quality: "low" });
    expect(json).toMatchObject({
      output_format: "webp",
      quality: "low",
      usage: { output_tokens: 272 },
    });
  });

  it.each(["gpt-image-1-mini", "gpt-image-1.5"])("%s answers like gpt-image-1", async (model) => {
    const { status, json } = await postJson({ model, prompt: "a", size: "1024x1536" });
    expect(status).toBe(200);
    expect(json).toMatchObject({ size: "1024x1536", usage: { output_tokens: 1584 } });
    expect(decodeSize((json.data as Array<Record<string, string>>)[0]!.b64_json)).toEqual({
      width: 1024,
      height: 1536,
    });
  });

  it.each(["gpt-image-2", "gpt-image-2-2026-04-21"])(
    "%s renders arbitrary sizes",
    async (model) => {
      const { json } = await postJson({ model, prompt: "a", size: "2048x1152", quality: "low" });
      expect(json.size).toBe("2048x1152");
      // 272 tokens at 1024² scaled by area (2048*1152 / 1024² = 2.25).
      expect((json.usage as { output_tokens: number }).output_tokens).toBe(612);
      expect(decodeSize((json.data as Array<Record<string, string>>)[0]!.b64_json)).toEqual({
        width: 2048,
        height: 1152,
      });
    },
  );

  it("streams partial and completed events for stream=true", async () => {
    const res = await post({
      model: "gpt-image-1",
      prompt: "abcd",
      stream: true,
      partial_images: 2,
      size: "1024x1024",
      quality: "low",
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const events = (await res.text())
      .trim()
      .split("\n\n")
      .map((block) => {
        const [eventLine, dataLine] = block.split("\n");
        return {
          event: eventLine!.slice(7),
          data: JSON.parse(dataLine!.slice(6)) as Record<string, unknown>,
        };
      });
    expect(events.map((e) => e.event)).toEqual([
      "image_generation.partial_image",
      "image_generation.partial_image",
      "image_generation.completed",
    ]);
    expect(events[1]!.data).toMatchObject({
      type: "image_generation.partial_image",
      partial_image_index: 1,
    });
    const done = events[2]!.data;
    expect(done).toMatchObject({
      size: "1024x1024",
      quality: "low",
      usage: { output_tokens: 272 + 200 },
    });
    expect(decodeSize(done.b64_json)).toEqual({ width: 1024, height: 1024 });
  });

  it("sends OpenAI-style headers", async () => {
    const res = await post({ prompt: "a", size: "256x256" });
    await res.arrayBuffer();
    expect(res.headers.get("x-request-id")).toMatch(/^req_[0-9a-f]{32}$/);
    expect(Number(res.headers.get("x-ratelimit-limit-requests"))).toBeGreaterThan(0);
    expect(res.headers.get("x-ratelimit-remaining-requests")).toMatch(/^\d+$/);
  });

  it("records requests, newest last", async () => {
    await (await post({ prompt: "recorded one", size: "256x256" })).arrayBuffer();
    const last = emu.requests.at(-1)!;
    expect(last).toMatchObject({
      method: "POST",
      path: "/v1/images/generations",
      body: { prompt: "recorded one", size: "256x256" },
    });
    expect(last.headers.authorization).toBe(`Bearer ${API_KEY}`);
  });

  it("works with the official SDK", async () => {
    const client = new OpenAI({ apiKey: API_KEY, baseURL: emu.baseUrl, maxRetries: 0 });
    const out = await client.images.generate({
      model: "gpt-image-1",
      prompt: "a boat",
      quality: "low",
    });
    expect(out.usage?.output_tokens).toBe(272);
    expect(decodeSize(out.data?.[0]?.b64_json)).toEqual({ width: 1024, height: 1024 });
    emu.faults.push(openaiFaults.rateLimit(0));
    await expect(
      client.images.generate({ model: "gpt-image-1", prompt: "a boat" }),
    ).rejects.toBeInstanceOf(OpenAI.RateLimitError);
  });
});

describe("refusals", () => {
  it("DALL·E refuses with content_policy_violation", async () => {
    const err = await expectError(await post({ prompt: "Something FORBIDDEN here" }), 400);
    expect(err).toEqual({
      message:
        "Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.",
      type: "invalid_request_error",
      param: null,
      code: "content_policy_violation",
    });
  });

  it("GPT-image refuses with moderation_blocked naming the request id", async () => {
    const res = await post({ model: "gpt-image-1", prompt: "a forbidden thing" });
    const requestId = res.headers.get("x-request-id")!;
    const err = (await expectError(res, 400)) as ErrorBody["error"] & {
      moderation_details: unknown;
    };
    expect(err).toMatchObject({
      type: "image_generation_user_error",
      param: null,
      code: "moderation_blocked",
      moderation_details: { moderation_stage: "input", categories: ["sexual"] },
    });
    expect(err.message).toContain(`include the request ID ${requestId}`);
    expect(err.message).toContain("safety_violations=[sexual]");
  });

  it("matches the word only", async () => {
    expect((await post({ prompt: "unforbiddenness", size: "256x256" })).status).toBe(200);
  });
});

describe("faults", () => {
  it("429 rate limit with retry-after, applied once", async () => {
    emu.faults.push(openaiFaults.rateLimit(7));
    const res = await post({ prompt: "a", size: "256x256" });
    expect(res.headers.get("retry-after")).toBe("7");
    expect(res.headers.get("x-request-id")).toMatch(/^req_/);
    const err = await expectError(res, 429);
    expect(err).toMatchObject({ type: "requests", code: "rate_limit_exceeded", param: null });
    expect(err.message).toMatch(
      /^Rate limit exceeded for images per minute in organization org-emulator/,
    );
    expect((await post({ prompt: "a", size: "256x256" })).status).toBe(200);
  });

  it("429 without a retry hint", async () => {
    emu.faults.push(openaiFaults.rateLimit());
    const res = await post({ prompt: "a" });
    expect(res.headers.get("retry-after")).toBeNull();
    await expectError(res, 429);
  });

  it("429 insufficient_quota", async () => {
    emu.faults.push(openaiFaults.insufficientQuota());
    const err = await expectError(await post({ prompt: "a" }), 429);
    expect(err).toMatchObject({ type: "insufficient_quota", code: "insufficient_quota" });
  });

  it("500 server_error and 503 server_is_overloaded", async () => {
    emu.faults.push(openaiFaults.serverError());
    emu.faults.push(openaiFaults.overloaded());
    expect((await expectError(await post({ prompt: "a" }), 500)).type).toBe("server_error");
    expect((await expectError(await post({ prompt: "a" }), 503)).code).toBe("server_is_overloaded");
  });

  it("malformed JSON with status 200", async () => {
    emu.faults.push(openaiFaults.malformed());
    const res = await post({ prompt: "a" });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json");
    await expect(res.json()).rejects.toThrow();
  });

  it("latency delays the normal response", async () => {
    emu.faults.push(openaiFaults.latency(300));
    const started = performance.now();
    const res = await post({ prompt: "a", size: "256x256" });
    expect(res.status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
  });

  it("hang holds the request until the client aborts", async () => {
    emu.faults.push(openaiFaults.hang());
    const controller = new AbortController();
    let settled = false;
    const pending = post({ prompt: "a" }, { signal: controller.signal }).finally(() => {
      settled = true;
    });
    await new Promise((r) => setTimeout(r, 400));
    expect(settled).toBe(false);
    controller.abort();
    await expect(pending).rejects.toThrow(/abort/i);
    // The emulator is still healthy afterwards.
    expect((await post({ prompt: "a", size: "256x256" })).status).toBe(200);
  });

  it("reset yields a network error", async () => {
    emu.faults.push(openaiFaults.reset());
    const err = await post({ prompt: "a" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypeError); // undici: "fetch failed"
    expect((await post({ prompt: "a", size: "256x256" })).status).toBe(200);
  });

  it("reset after headers fails while reading the body", async () => {
    emu.faults.push(openaiFaults.resetMidBody());
    const res = await post({ prompt: "a" });
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
  });

  it("filters by model and honours times", async () => {
    emu.faults.push({ ...openaiFaults.serverError(), model: "gpt-image-1", times: 2 });
    expect((await post({ prompt: "a", size: "256x256" })).status).toBe(200);
    expect((await post({ model: "gpt-image-1", prompt: "a" })).status).toBe(500);
    expect((await post({ model: "gpt-image-1", prompt: "a" })).status).toBe(500);
    expect((await post({ model: "gpt-image-1", prompt: "a", quality: "low" })).status).toBe(200);
  });

  it("sticky faults last until cleared", async () => {
    emu.faults.push({ ...openaiFaults.overloaded(), times: Number.POSITIVE_INFINITY });
    for (let i = 0; i < 3; i++) expect((await post({ prompt: "a" })).status).toBe(503);
    emu.faults.clear();
    expect((await post({ prompt: "a", size: "256x256" })).status).toBe(200);
  });
});

describe("close", () => {
  it("ends hanging requests", async () => {
    const other = await startOpenAIEmulator({ apiKey: API_KEY });
    other.faults.push(openaiFaults.hang());
    const pending = fetch(`${other.baseUrl}/images/generations`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ prompt: "a" }),
    });
    await new Promise((r) => setTimeout(r, 100));
    await other.close();
    await expect(pending).rejects.toThrow();
  });
});

describe("control endpoint", () => {
  const control = () => `${emu.baseUrl.replace(/\/v1$/, "")}/__emulator/faults`;

  it("queues a fault posted as JSON, without auth", async () => {
    const res = await fetch(control(), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(openaiFaults.rateLimit(2)),
    });
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual({ pending: 1 });
    const limited = await post({ prompt: "a" });
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("2");
  });

  it("accepts sticky faults and clears with DELETE", async () => {
    await fetch(control(), {
      method: "POST",
      body: JSON.stringify({ status: 500, body: { error: { message: "x" } }, times: "Infinity" }),
    });
    expect((await post({ prompt: "a" })).status).toBe(500);
    expect((await post({ prompt: "a" })).status).toBe(500);
    expect((await fetch(control(), { method: "DELETE" })).status).toBe(204);
    expect(await (await fetch(control())).json()).toEqual({ pending: 0 });
    expect((await post({ prompt: "a", size: "256x256" })).status).toBe(200);
  });

  it("rejects an invalid fault", async () => {
    const res = await fetch(control(), { method: "POST", body: JSON.stringify({ stauts: 500 }) });
    const err = await expectError(res, 400);
    expect(err.message).toMatch(/unknown fault field: stauts/);
  });
});
