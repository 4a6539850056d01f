/**
 * Successful generations through every protocol: image bytes and URLs, GPT-image echoes
 * and usage, and the call headers (model, deployment, attempts, request id).
 */
import { describe, expect, it } from "vitest";
import { pngSize } from "@imagegate/emulators/png";
import { useE2EStack } from "../support/e2e.ts";
import { ALL_PROTOCOLS, ok } from "../support/protocols.ts";
import { EMULATOR_KEY } from "../support/stack.ts";

const e2e = useE2EStack();

/** The body the emulator received for the newest upstream call. */
function lastUpstreamBody(): Record<string, unknown> {
  return e2e.stack.openai.requests.at(-1)!.body as Record<string, unknown>;
}

describe.each(ALL_PROTOCOLS)("generate over %s", (protocol) => {
  it.each(["256x256", "512x512", "1024x1024"])(
    "dall-e-2 b64_json at %s is a PNG of that size",
    async (size) => {
      const { response, headers } = ok(
        await e2e.clients.call(protocol, {
          model: "dall-e-2",
          prompt: "a red fox",
          size,
          response_format: "b64_json",
        }),
      );
      const [w, h] = size.split("x").map(Number);
      expect(response.data).toHaveLength(1);
      expect(pngSize(response.data[0]!.b64Json!)).toEqual({ width: w, height: h });
      expect(response.data[0]!.url).toBeUndefined();
      expect(response.created).toBeGreaterThan(1_700_000_000);
      // A bare OpenAI model name resolves to the OpenAI provider.
      expect(headers.get("x-imagegate-model")).toBe("openai/dall-e-2");
      expect(lastUpstreamBody()).toEqual({
        model: "dall-e-2",
        prompt: "a red fox",
        size,
        response_format: "b64_json",
      });
    },
  );

  it("dall-e-2 with n=3 returns three images", async () => {
    const { response } = ok(
      await e2e.clients.call(protocol, {
        model: "dall-e-2",
        prompt: "foxes",
        n: 3,
        size: "256x256",
        response_format: "b64_json",
      }),
    );
    expect(response.data).toHaveLength(3);
    for (const img of response.data)
      expect(pngSize(img.b64Json!)).toEqual({ width: 256, height: 256 });
  });

  it("dall-e-3 url points at the emulator, downloads a PNG, and carries revised_prompt", async () => {
    const { response } = ok(
      await e2e.clients.call(protocol, {
        model: "dall-e-3",
        prompt: "a lighthouse",
        response_format: "url",
        size: "1792x1024",
      }),
    );
    const image = response.data[0]!;
    expect(image.b64Json).toBeUndefined();
    expect(image.revisedPrompt).toContain("a lighthouse");
    expect(image.url!.startsWith(`${new URL(e2e.stack.openai.baseUrl).origin}/`)).toBe(true);
    const download = await fetch(image.url!);
    expect(download.status).toBe(200);
    expect(download.headers.get("content-type")).toBe("image/png");
    expect(pngSize(Buffer.from(await download.arrayBuffer()))).toEqual({
      width: 1792,
      height: 1024,
    });
  });

  it("gpt-image-1 returns usage and echoes size, quality, background and output_format", async () => {
    const { response, headers } = ok(
      await e2e.clients.call(protocol, {
        model: "openai/gpt-image-1",
        prompt: "a watercolour owl",
        size: "1024x1536",
        quality: "low",
        background: "opaque",
        output_format: "webp",
        output_compression: 80,
        moderation: "low",
      }),
    );
    expect(response.size).toBe("1024x1536");
    expect(response.quality).toBe("low");
    expect(response.background).toBe("opaque");
    expect(response.outputFormat).toBe("webp");
    expect(response.data).toHaveLength(1);
    // The emulator renders PNG bytes whatever the format; the echo is what clients act on.
    expect(pngSize(response.data[0]!.b64Json!)).toEqual({ width: 1024, height: 1536 });
    const usage = response.usage!;
    expect(usage.outputTokens).toBe(408); // gpt-image-1, low, 1024x1536
    expect(usage.inputTokens).toBeGreaterThan(0);
    expect(usage.totalTokens).toBe(usage.inputTokens + usage.outputTokens);
    expect(usage.inputTokensDetails?.textTokens).toBe(usage.inputTokens);
    expect(headers.get("x-imagegate-model")).toBe("openai/gpt-image-1");
    expect(headers.get("x-imagegate-deployment")).toBe("openai/gpt-image-1");
    // Every GPT-image field reached the upstream as sent.
    expect(lastUpstreamBody()).toEqual({
      model: "gpt-image-1",
      prompt: "a watercolour owl",
      size: "1024x1536",
      quality: "low",
      background: "opaque",
      output_format: "webp",
      output_compression: 80,
      moderation: "low",
    });
  });

  it("gpt-image-1 with size auto echoes the produced size", async () => {
    const { response } = ok(
      await e2e.clients.call(protocol, {
        model: "gpt-image-1",
        prompt: "an owl",
        size: "auto",
        quality: "auto",
      }),
    );
    expect(response.size).toBe("1024x1024");
    expect(response.quality).toBe("medium");
    expect(pngSize(response.data[0]!.b64Json!)).toEqual({ width: 1024, height: 1024 });
  });

  it("an omitted model means openai/dall-e-3", async () => {
    const { response, headers } = ok(
      await e2e.clients.call(protocol, { prompt: "a default", response_format: "b64_json" }),
    );
    expect(pngSize(response.data[0]!.b64Json!)).toEqual({ width: 1024, height: 1024 });
    expect(headers.get("x-imagegate-model")).toBe("openai/dall-e-3");
    expect(headers.get("x-imagegate-deployment")).toBe("openai/dall-e-3");
    expect(headers.get("x-imagegate-attempts")).toBe("1");
    expect(headers.get("x-imagegate-cost-usd")).toMatch(/^\d+(\.\d+)?$/);
    expect(lastUpstreamBody().model).toBe("dall-e-3");
  });

  it("a model_list name reports the public name and the deployment id", async () => {
    const { response, headers } = ok(
      await e2e.clients.call(protocol, {
        model: "image-hq",
        prompt: "a city at night",
        response_format: "b64_json",
      }),
    );
    expect(response.data).toHaveLength(1);
    expect(headers.get("x-imagegate-model")).toBe("image-hq");
    expect(headers.get("x-imagegate-deployment")).toBe("openai-eu-1");
    expect(headers.get("x-imagegate-attempts")).toBe("1");
    expect(headers.get("x-imagegate-cost-usd")).toMatch(/^\d+(\.\d+)?$/);
    expect(lastUpstreamBody().model).toBe("dall-e-3");
  });

  it("echoes the caller's x-request-id", async () => {
    const requestId = `e2e-${protocol}-${Date.now()}`;
    const { headers } = ok(
      await e2e.clients.call(
        protocol,
        { model: "dall-e-2", prompt: "x", size: "256x256" },
        { requestId },
      ),
    );
    expect(headers.get("x-request-id")).toBe(requestId);
  });

  it("generates a fresh x-request-id when none is sent", async () => {
    const a = ok(
      await e2e.clients.call(protocol, { model: "dall-e-2", prompt: "x", size: "256x256" }),
    );
    const b = ok(
      await e2e.clients.call(protocol, { model: "dall-e-2", prompt: "x", size: "256x256" }),
    );
    const idA = a.headers.get("x-request-id");
    const idB = b.headers.get("x-request-id");
    expect(idA).toMatch(/^\S{8,}$/);
    expect(idB).toMatch(/^\S{8,}$/);
    expect(idA).not.toBe(idB);
  });
});

describe("REST specifics", () => {
  it("created is a JSON number and the body has OpenAI's shape", async () => {
    const res = await fetch(`${e2e.stack.url}/v1/images/generations`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "dall-e-2",
        prompt: "raw",
        size: "256x256",
        response_format: "b64_json",
      }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const json = (await res.json()) as { created: unknown; data: { b64_json: unknown }[] };
    expect(typeof json.created).toBe("number");
    expect(Object.keys(json.data[0]!)).toEqual(["b64_json"]);
    expect(typeof json.data[0]!.b64_json).toBe("string");
    expect(pngSize(Buffer.from(json.data[0]!.b64_json as string, "base64"))).toEqual({
      width: 256,
      height: 256,
    });
  });

  it("gpt-image-1 JSON uses OpenAI's snake_case names", async () => {
    const res = await fetch(`${e2e.stack.url}/v1/images/generations`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "gpt-image-1",
        prompt: "raw owl",
        quality: "low",
        size: "1024x1024",
      }),
    });
    const json = (await res.json()) as Record<string, unknown>;
    expect(res.status).toBe(200);
    expect(json).toMatchObject({
      size: "1024x1024",
      quality: "low",
      output_format: "png",
      usage: {
        input_tokens: expect.any(Number),
        output_tokens: 272,
        total_tokens: expect.any(Number),
        input_tokens_details: { text_tokens: expect.any(Number), image_tokens: 0 },
      },
    });
    expect(json.background).toBeTypeOf("string");
  });

  it("the SDK's own headers and key stay at the gateway; the upstream gets the deployment's key", async () => {
    await e2e.clients.sdk.images.generate({
      model: "dall-e-2",
      prompt: "headers",
      size: "256x256",
    });
    const upstream = e2e.stack.openai.requests.at(-1)!;
    expect(upstream.headers.authorization).toBe(`Bearer ${EMULATOR_KEY}`);
    const forwarded = Object.keys(upstream.headers).filter(
      (h) => h.startsWith("x-stainless") || h === "openai-organization",
    );
    expect(forwarded).toEqual([]);
    expect(upstream.headers["user-agent"] ?? "").not.toMatch(/OpenAI\/JS/);
  });

  it("user is forwarded", async () => {
    await e2e.clients.sdk.images.generate({
      model: "dall-e-3",
      prompt: "ids",
      user: "user-42",
      response_format: "b64_json",
    });
    expect(e2e.stack.openai.requests.at(-1)!.body).toMatchObject({ user: "user-42" });
  });

  it("null fields count as unset", async () => {
    const res = await fetch(`${e2e.stack.url}/v1/images/generations`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "dall-e-2",
        prompt: "nulls",
        size: "256x256",
        n: null,
        style: null,
      }),
    });
    expect(res.status).toBe(200);
    expect(e2e.stack.openai.requests.at(-1)!.body).toEqual({
      model: "dall-e-2",
      prompt: "nulls",
      size: "256x256",
    });
  });
});
