/**
 * Google prices (src/pricing/prices/gemini.yaml and vertex_ai.yaml): Imagen flat per delivered
 * image, Gemini native image by tokens from usageMetadata, or fixed tokens per image without
 * usage.
 */
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { loadCatalog } from "../../src/catalog/catalog.ts";
import { UsageSchema } from "../../src/gen/imagegate/v1/images_pb.js";
import { costOf, loadPrices } from "../../src/pricing/pricing.ts";

const catalog = loadCatalog();
const prices = loadPrices(catalog);

describe("Google prices", () => {
  it("every gemini/ and vertex_ai/ catalog model has a price", () => {
    const google = catalog
      .entries()
      .filter((e) => e.provider === "gemini" || e.provider === "vertex_ai");
    expect(google.length).toBeGreaterThan(0);
    for (const e of google) {
      const cost = costOf(
        { images: 1, size: "1024x1024", quality: "standard", usage: undefined },
        prices.lookup(e.provider, e.model),
        undefined,
      );
      expect(cost, `${e.provider}/${e.model}`).toBeGreaterThan(0);
    }
  });

  it("Imagen: flat per delivered image, whatever the size or quality", () => {
    const price = prices.lookup("vertex_ai", "imagen-4.0-generate-001");
    expect(
      costOf({ images: 3, size: "2048x2048", quality: "hd", usage: undefined }, price, undefined),
    ).toBeCloseTo(0.12, 10);
    expect(
      costOf(
        { images: 2, size: "1408x768", quality: undefined, usage: undefined },
        prices.lookup("gemini", "imagen-4.0-ultra-generate-001"),
        undefined,
      ),
    ).toBeCloseTo(0.12, 10);
    expect(
      costOf(
        { images: 0, size: "1024x1024", quality: undefined, usage: undefined },
        price,
        undefined,
      ),
    ).toBe(0);
  });

  it("Gemini from usage: the reference's worked example (20 prompt tokens, one 1:1 image) ≈ $0.0387", () => {
    const usage = create(UsageSchema, {
      inputTokens: 20,
      outputTokens: 1290,
      totalTokens: 1310,
      inputTokensDetails: { textTokens: 20, imageTokens: 0 },
    });
    const cost = costOf(
      { images: 1, size: "1024x1024", quality: undefined, usage },
      prices.lookup("gemini", "gemini-2.5-flash-image"),
      undefined,
    );
    expect(cost).toBeCloseTo((20 * 0.3 + 1290 * 30) / 1e6, 12);
    expect(cost).toBeCloseTo(0.0387, 4);
  });

  it("Gemini without usage: images × fixed output tokens × the output rate", () => {
    const flash = costOf(
      { images: 2, size: "1024x1024", quality: undefined, usage: undefined },
      prices.lookup("vertex_ai", "gemini-2.5-flash-image"),
      undefined,
    );
    expect(flash).toBeCloseTo((2 * 1290 * 30) / 1e6, 12);
    const pro = costOf(
      { images: 1, size: "2048x2048", quality: "hd", usage: undefined },
      prices.lookup("gemini", "gemini-3-pro-image-preview"),
      undefined,
    );
    expect(pro).toBeCloseTo(0.1344, 10);
  });

  it("a deployment's per-image override still wins", () => {
    expect(
      costOf(
        { images: 2, size: "1024x1024", quality: undefined, usage: undefined },
        prices.lookup("gemini", "gemini-2.5-flash-image"),
        0.05,
      ),
    ).toBe(0.1);
  });
});
