/**
 * Strings from clients and upstreams used as table keys: `constructor`, `__proto__`,
 * `toString` and their kind are ordinary unknown values, never what `Object.prototype`
 * holds (an upstream `output_format: "constructor"` once turned a good answer into a 500).
 */
import { PNG } from "pngjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCatalog } from "../../src/catalog/catalog.ts";
import { parseConfig } from "../../src/config/load.ts";
import { silentLogger } from "../../src/log/logger.ts";
import { costOf, type Price } from "../../src/pricing/pricing.ts";
import { type Gateway, startGateway } from "../../src/server/gateway.ts";
import { extensionFor, mediaTypeFor, normalizeMediaType } from "../../src/store/store.ts";
import { type FakeUpstream, startFakeUpstream } from "../support/fake-upstream.ts";

const PROTO_KEYS = ["constructor", "__proto__", "toString", "hasOwnProperty", "valueOf"];
const IMAGE = PNG.sync.write(new PNG({ width: 16, height: 16 })).toString("base64");

let upstream: FakeUpstream;
let gateway: Gateway;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  const up = upstream.url;
  const yaml = `
model_list:
  - model_name: oa
    params: { model: openai/gpt-image-1, api_key: sk-test-0123456789, api_base: "${up}/v1" }
  - model_name: br
    params:
      model: bedrock/amazon.titan-image-generator-v2:0
      aws_region_name: us-west-2
      aws_access_key_id: AKIDEXAMPLEID
      aws_secret_access_key: secret-0123456789
      api_base: "${up}"
  - model_name: gm
    params: { model: gemini/imagen-4.0-generate-001, api_key: gm-0123456789, api_base: "${up}/v1beta" }
router_settings: { num_retries: 0, allowed_fails: 1000000, cooldown_time: 0 }
server: { host: 127.0.0.1, port: 0 }
`;
  const catalog = loadCatalog();
  const config = parseConfig(yaml, {}, catalog, "prototype-keys-test");
  gateway = await startGateway({ config, catalog, logger: silentLogger });
});

afterAll(async () => {
  await gateway?.shutdown(1000);
  await upstream?.close();
});

async function generate(model: string) {
  const res = await fetch(`${gateway.url}/v1/images/generations`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, prompt: "a lighthouse", response_format: "b64_json" }),
  });
  return {
    status: res.status,
    headers: res.headers,
    body: (await res.json()) as {
      data: { b64_json: string }[];
      error: { type: string; param: string | null };
    },
  };
}

describe("upstream strings used as keys", () => {
  it.each(PROTO_KEYS)(
    "an OpenAI answer echoing '%s' as output_format, size and quality is served",
    async (key) => {
      upstream.answer({
        status: 200,
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          created: 1,
          data: [{ b64_json: IMAGE }],
          output_format: key,
          size: key,
          quality: key,
          background: key,
        }),
      });
      const { status, headers, body } = await generate("oa");
      expect(status, JSON.stringify(body)).toBe(200);
      expect(body.data[0]?.b64_json).toBe(IMAGE);
      // Whatever the price of an unknown size, it is a number or absent, never NaN.
      expect(headers.get("x-imagegate-cost-usd") ?? "0").toMatch(/^\d+(\.\d+)?$/);
    },
  );

  it.each(PROTO_KEYS)(
    "a Bedrock 429 whose error type is '%s' is still a rate limit",
    async (key) => {
      upstream.answer({
        status: 429,
        headers: { "content-type": "application/json", "x-amzn-errortype": key },
        body: JSON.stringify({ message: "slow down" }),
      });
      const { status, body } = await generate("br");
      expect(status, JSON.stringify(body)).toBe(429);
      expect(body.error.type).toBe("rate_limit_error");
    },
  );

  it.each(PROTO_KEYS)(
    "a Google 400 naming the field '%s' is a 400 without a param",
    async (key) => {
      upstream.answer({
        status: 400,
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          error: {
            code: 400,
            status: "INVALID_ARGUMENT",
            message: "bad request",
            details: [
              {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                fieldViolations: [{ field: `instances[0].${key}`, description: "bad" }],
              },
            ],
          },
        }),
      });
      const { status, body } = await generate("gm");
      expect(status, JSON.stringify(body)).toBe(400);
      expect(body.error.param).toBeNull();
    },
  );
});

describe("table lookups keyed by such strings", () => {
  const price: Price = {
    provider: "openai",
    model: "dall-e-3",
    source: "test",
    as_of: "2026-12-01",
    per_image: { standard: { "1024x1024": 0.04 } },
  };
  it.each(PROTO_KEYS)(
    "prices a produced size or quality '%s' as an unknown one, never NaN",
    (key) => {
      // An unknown size or quality costs the model's highest price.
      expect(
        costOf({ images: 1, size: key, quality: "standard", usage: undefined }, price, undefined),
      ).toBe(0.04);
      expect(
        costOf({ images: 1, size: "1024x1024", quality: key, usage: undefined }, price, undefined),
      ).toBe(0.04);
    },
  );

  it.each(PROTO_KEYS)("stores a media type or extension '%s' as opaque bytes", (key) => {
    expect(normalizeMediaType(key)).toBe("application/octet-stream");
    expect(typeof extensionFor(key)).toBe("string");
    expect(mediaTypeFor(key)).toBeUndefined();
  });
});
