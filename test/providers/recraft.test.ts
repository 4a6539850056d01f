/**
 * The Recraft adapter's pure parts: the size tables (OpenAI sizes and aspect ratios → the
 * size each model generation produces), the body, the answer (URL or bytes, SVG for vector
 * models, `credits` as the charge), Recraft's errors, and the catalog and prices it relies on.
 */
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { CatalogError, loadCatalog, parseCatalog } from "../../src/catalog/catalog.ts";
import { validateRequest } from "../../src/catalog/validate.ts";
import { renderPng } from "@imagegate/emulators/png";
import { renderSvg } from "@imagegate/emulators/svg";
import { GatewayError } from "../../src/errors/errors.ts";
import {
  type CreateImageRequest,
  CreateImageRequestSchema,
} from "../../src/gen/imagegate/v1/images_pb.js";
import { costOf, loadPrices } from "../../src/pricing/pricing.ts";
import type { UpstreamResponse } from "../../src/providers/http.ts";
import { fromRecraftError } from "../../src/providers/recraft/errors.ts";
import { fromRecraftResponse } from "../../src/providers/recraft/response.ts";
import {
  isVectorModel,
  recraftSize,
  toRecraftRequest,
} from "../../src/providers/recraft/request.ts";
import { mergeResults } from "../../src/providers/results.ts";

const catalog = loadCatalog();
const recraftModels = catalog.entries().filter((e) => e.provider === "recraft");
const model = (name: string) => catalog.lookup("recraft", name)!;

function request(init: Partial<Omit<CreateImageRequest, "$typeName">> = {}): CreateImageRequest {
  return create(CreateImageRequestSchema, { prompt: "a lighthouse", ...init });
}

function response(
  status: number,
  body: unknown,
  contentType = "application/json",
  headers: UpstreamResponse["headers"] = {},
): UpstreamResponse {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  return {
    status,
    headers: { "content-type": contentType, ...headers },
    body: Buffer.from(text, "utf8"),
  };
}

function thrown(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(GatewayError);
    return e as GatewayError;
  }
  throw new Error("expected a GatewayError");
}

describe("size tables (catalog size.upstream / aspect_ratio.upstream)", () => {
  it("maps OpenAI sizes to the nearest Recraft size of the model's generation", () => {
    const v3 = model("recraftv3");
    expect(
      Object.fromEntries(
        v3.size.values.slice(0, 8).map((v) => [v, recraftSize(request({ size: v }), v3)]),
      ),
    ).toEqual({
      auto: "1024x1024",
      "256x256": "1024x1024",
      "512x512": "1024x1024",
      "1024x1024": "1024x1024",
      "1792x1024": "1820x1024",
      "1024x1792": "1024x1820",
      "1536x1024": "1536x1024",
      "1024x1536": "1024x1536",
    });
    expect(recraftSize(request({ size: "1792x1024" }), model("recraftv4"))).toBe("1344x768");
    expect(recraftSize(request({ size: "1536x1024" }), model("recraftv4_1"))).toBe("1280x832");
    expect(recraftSize(request({}), model("recraftv4_pro"))).toBe("2048x2048");
    expect(recraftSize(request({ size: "1024x1792" }), model("recraftv4_pro_vector"))).toBe(
      "1536x2688",
    );
  });

  it("keeps each mapped size's ratio close to the OpenAI size's", () => {
    for (const spec of recraftModels) {
      for (const [from, to] of Object.entries(spec.size.upstream ?? {})) {
        if (from === "auto") continue;
        const [fw, fh] = from.split("x").map(Number);
        const [tw, th] = to.split("x").map(Number);
        expect(Math.abs(Math.log(fw! / fh! / (tw! / th!))), `${spec.model} ${from}`).toBeLessThan(
          0.1,
        );
      }
    }
  });

  it("sends Recraft's own sizes as they are, and aspect ratios as the size they produce", () => {
    expect(recraftSize(request({ size: "1365x1024" }), model("recraftv3"))).toBe("1365x1024");
    expect(recraftSize(request({ aspectRatio: "16:9" }), model("recraftv3"))).toBe("1820x1024");
    expect(recraftSize(request({ aspectRatio: "16:9", size: "auto" }), model("recraftv4"))).toBe(
      "1344x768",
    );
    expect(recraftSize(request({ aspectRatio: "2:3" }), model("recraftv4_pro"))).toBe("1664x2560");
  });

  it("covers every size and aspect ratio the catalog admits, landing on a size the catalog lists", () => {
    for (const spec of recraftModels) {
      // Recraft's own sizes: every listed size that the mapping does not turn into another one.
      const native = spec.size.values.filter((v) => (spec.size.upstream?.[v] ?? v) === v);
      for (const size of spec.size.values) {
        const produced = recraftSize(request({ size }), spec);
        expect(native, `${spec.model} ${size} → ${produced}`).toContain(produced);
      }
      for (const ratio of spec.aspect_ratio!.values) {
        expect(native, `${spec.model} ${ratio}`).toContain(
          recraftSize(request({ aspectRatio: ratio }), spec),
        );
      }
      expect(native).toContain(recraftSize(request({}), spec));
    }
  });
});

describe("toRecraftRequest", () => {
  it("sends the model, the chunk's n and the mapped size, plus what the client set", () => {
    expect(toRecraftRequest(request(), "recraftv4", 2, "1024x1024")).toEqual({
      prompt: "a lighthouse",
      model: "recraftv4",
      n: 2,
      size: "1024x1024",
    });
    expect(
      toRecraftRequest(
        request({
          style: "digital_illustration",
          substyle: "pixel_art",
          responseFormat: "b64_json",
          negativePrompt: "text",
          seed: 7,
        }),
        "recraftv3",
        6,
        "1820x1024",
      ),
    ).toEqual({
      prompt: "a lighthouse",
      model: "recraftv3",
      n: 6,
      size: "1820x1024",
      style: "digital_illustration",
      substyle: "pixel_art",
      response_format: "b64_json",
      negative_prompt: "text",
      random_seed: 7,
    });
  });
});

describe("fromRecraftResponse", () => {
  it("passes URLs through, with the media type their path names (SVG for vector models)", () => {
    const r = fromRecraftResponse(
      {
        created: 1,
        credits: 80,
        data: [
          { image_id: "a", url: "https://img.recraft.ai/x/abc.png" },
          { image_id: "b", url: "https://img.recraft.ai/x/def" },
        ],
      },
      "recraftv3",
      "1820x1024",
    );
    expect(r.images).toEqual([
      { url: "https://img.recraft.ai/x/abc.png", mimeType: "image/png" },
      { url: "https://img.recraft.ai/x/def", mimeType: "image/png" },
    ]);
    expect(r).toMatchObject({ size: "1820x1024", filtered: 0, costUsd: 0.08 });
    const v = fromRecraftResponse(
      { credits: 80, data: [{ url: "https://img.recraft.ai/x/def" }] },
      "recraftv3_vector",
      "1024x1024",
    );
    expect(v.images[0]!.mimeType).toBe("image/svg+xml");
  });

  it("decodes base64 and names its type from the bytes", () => {
    const png = renderPng(8, 8, "s");
    const svg = Buffer.from(renderSvg(8, 8, "s"));
    const r = fromRecraftResponse(
      { data: [{ b64_json: png.toString("base64") }, { b64_json: svg.toString("base64") }] },
      "recraftv3",
      "1024x1024",
    );
    expect(r.images.map((i) => i.mimeType)).toEqual(["image/png", "image/svg+xml"]);
    expect(Buffer.from(r.images[1]!.bytes!).equals(svg)).toBe(true);
    expect(r.costUsd).toBeUndefined();
  });

  it("rejects bodies without images", () => {
    for (const body of [{}, { data: [] }, { data: [{ image_id: "x" }] }, { data: "nope" }]) {
      expect(thrown(() => fromRecraftResponse(body, "recraftv3", "1024x1024")).code).toBe(
        "upstream_malformed_response",
      );
    }
  });

  it("adds up credits across fanned-out calls, and drops them when a part has none", () => {
    const part = (credits?: number) => ({
      images: [{ url: "u", mimeType: "image/png" }],
      filtered: 0,
      ...(credits === undefined ? {} : { costUsd: credits / 1000 }),
    });
    expect(mergeResults([part(240), part(80)]).costUsd).toBeCloseTo(0.32, 10);
    expect(mergeResults([part(240), part()]).costUsd).toBeUndefined();
  });
});

describe("fromRecraftError", () => {
  it("maps plain-text 401 to upstream_auth_failed and plain-text 404 to a configuration error", () => {
    expect(fromRecraftError(response(401, "Unauthorized", "text/plain"))).toMatchObject({
      kind: "upstream",
      code: "upstream_auth_failed",
    });
    const notFound = fromRecraftError(response(404, "Not Found", "text/plain"));
    expect(notFound).toMatchObject({ kind: "upstream", code: "upstream_not_found" });
    expect(notFound.message).toContain("api_base");
  });

  it("maps 429 to rate_limit with no hint unless a header gives one", () => {
    const e = fromRecraftError(
      response(429, { code: "rate_limit_exceeded", message: "Too many requests" }),
    );
    expect(e).toMatchObject({
      kind: "rate_limit",
      code: "rate_limit_exceeded",
      retryAfterSeconds: undefined,
    });
    expect(
      fromRecraftError(
        response(429, { code: "rate_limit_exceeded", message: "x" }, "application/json", {
          "retry-after": "3",
        }),
      ).retryAfterSeconds,
    ).toBe(3);
  });

  it("treats a moderation 400 as a refusal and other 400s as invalid requests", () => {
    const refusal = fromRecraftError(
      response(400, {
        code: "content_moderation",
        message: "The prompt was rejected by content moderation.",
      }),
    );
    expect(refusal).toMatchObject({
      kind: "content_policy",
      details: { provider_code: "content_moderation" },
    });
    const invalid = fromRecraftError(
      response(400, { code: "invalid_size", message: "Size '1x1' is not supported" }),
    );
    expect(invalid).toMatchObject({ kind: "invalid_request", code: "invalid_size" });
    expect(invalid.message).toBe("Recraft: Size '1x1' is not supported");
  });

  it("maps 5xx to upstream, 503 kept as 503", () => {
    expect(
      fromRecraftError(response(500, { code: "internal_error", message: "boom" })),
    ).toMatchObject({ kind: "upstream", httpStatus: 502, code: "internal_error" });
    expect(fromRecraftError(response(503, "Service Unavailable", "text/plain"))).toMatchObject({
      kind: "upstream",
      httpStatus: 503,
    });
  });
});

describe("catalog and prices", () => {
  const spec = (model: string) => catalog.lookup("recraft", model)!;

  it("lists Recraft's styles and substyles, raster for raster models and vector for vector ones", () => {
    expect(spec("recraftv3").style?.values).toEqual([
      "any",
      "realistic_image",
      "digital_illustration",
      "logo_raster",
    ]);
    expect(spec("recraftv3_vector").style).toMatchObject({
      values: ["vector_illustration", "icon"],
      default: "vector_illustration",
    });
    expect(spec("recraftv4").style).toBeUndefined();
    expect(spec("recraftv4").substyle).toBeUndefined();
    for (const s of recraftModels) expect(isVectorModel(s.model)).toBe(s.model.endsWith("_vector"));
  });

  it("validates substyles against the style sent, or the model's default style", () => {
    const v3 = spec("recraftv3");
    expect(() =>
      validateRequest(
        request({ style: "realistic_image", substyle: "hdr" }),
        v3,
        "recraft/recraftv3",
      ),
    ).not.toThrow();
    const wrongStyle = thrown(() =>
      validateRequest(
        request({ style: "digital_illustration", substyle: "hdr" }),
        v3,
        "recraft/recraftv3",
      ),
    );
    expect(wrongStyle).toMatchObject({ param: "substyle" });
    expect(wrongStyle.message).toContain("Supported substyles of style 'digital_illustration'");
    expect(
      thrown(() => validateRequest(request({ substyle: "hdr" }), v3, "recraft/recraftv3")).message,
    ).toMatch(/Style 'any' .* takes no substyle/);
    expect(() =>
      validateRequest(request({ substyle: "line_art" }), spec("recraftv3_vector"), "m"),
    ).not.toThrow();
    expect(
      thrown(() => validateRequest(request({ substyle: "hdr" }), spec("recraftv4"), "m")).message,
    ).toMatch(/Unsupported parameter: 'substyle'/);
    expect(
      thrown(() =>
        validateRequest(request({ substyle: "hdr" }), catalog.lookup("openai", "dall-e-3")!, "m"),
      ).param,
    ).toBe("substyle");
  });

  it("checks at load that substyles hang off styles the entry lists", () => {
    const entry = (byStyle: string) => `models:
  - provider: recraft
    model: m
    family: recraft
    n: { min: 1, max: 6 }
    upstream_max_n: 6
    size: { values: [1024x1024], default: 1024x1024 }
    native_response: url
    style: { values: [any, realistic_image], default: any }
    substyle: { by_style: { ${byStyle}: [hdr] } }
`;
    expect(
      parseCatalog(entry("realistic_image")).lookup("recraft", "m")!.substyle!.by_style
        .realistic_image,
    ).toEqual(["hdr"]);
    expect(() => parseCatalog(entry("photo"))).toThrow(CatalogError);
    expect(() => parseCatalog(entry("photo"))).toThrow(
      /key 'substyle\.by_style\.photo': 'photo' is not a style value/,
    );
  });

  it("accepts every model's own defaults", () => {
    for (const s of recraftModels) {
      expect(() =>
        validateRequest(
          request({
            n: s.n.max,
            size: s.size.default,
            style: s.style?.default,
            aspectRatio: undefined,
            responseFormat: s.native_response,
          }),
          s,
          s.model,
        ),
      ).not.toThrow();
      expect(() =>
        validateRequest(request({ aspectRatio: s.aspect_ratio!.default }), s, s.model),
      ).not.toThrow();
    }
  });

  it("prices every model from the table when the answer carries no credits", () => {
    const prices = loadPrices(catalog);
    const expected: Record<string, number> = {
      recraftv2: 0.022,
      recraftv2_vector: 0.044,
      recraftv3: 0.04,
      recraftv3_vector: 0.08,
      recraftv4: 0.04,
      recraftv4_vector: 0.08,
      recraftv4_1: 0.035,
      recraftv4_pro: 0.25,
      recraftv4_pro_vector: 0.3,
    };
    expect(recraftModels.map((s) => s.model).sort()).toEqual(Object.keys(expected).sort());
    for (const [model, each] of Object.entries(expected)) {
      expect(
        costOf(
          { images: 3, size: "1820x1024", quality: undefined, usage: undefined },
          prices.lookup("recraft", model),
          undefined,
        ),
      ).toBeCloseTo(3 * each, 10);
    }
  });
});
