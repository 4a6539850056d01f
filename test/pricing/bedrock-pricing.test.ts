/**
 * Bedrock prices (src/pricing/prices/bedrock.yaml, each with its source): SDXL's ≤50-steps tier, SD3 / Stable Image
 * flat, and Titan / Nova by size tier × standard|premium through `size_tiers`.
 */
import { describe, expect, it } from "vitest";
import { loadCatalog } from "../../src/catalog/catalog.ts";
import { costOf, loadPrices, type Price } from "../../src/pricing/pricing.ts";

const catalog = loadCatalog();
const prices = loadPrices(catalog);
const price = (model: string) => prices.lookup("bedrock", model);
const cost = (model: string, images: number, size: string, quality?: string) =>
  costOf({ images, size, quality, usage: undefined }, price(model), undefined);

describe("Bedrock prices", () => {
  it("prices every Bedrock model in the catalog", () => {
    for (const entry of catalog.entries().filter((e) => e.provider === "bedrock")) {
      expect(price(entry.model), entry.model).toBeDefined();
      expect(
        cost(
          entry.model,
          1,
          entry.size.default === "auto" ? "1024x1024" : entry.size.default,
          entry.quality?.default,
        ),
      ).toBeGreaterThan(0);
    }
  });

  it("SDXL: the ≤50-steps tier at any size (steps stay at the default 30)", () => {
    expect(cost("stability.stable-diffusion-xl-v1", 1, "1344x768")).toBe(0.04);
    expect(cost("stability.stable-diffusion-xl-v0", 3, "1024x1024")).toBeCloseTo(0.12, 10);
  });

  it("SD3 / Stable Image: flat per image", () => {
    expect(cost("stability.sd3-large-v1:0", 2, "1536x640")).toBeCloseTo(0.16, 10);
    expect(cost("stability.sd3-5-large-v1:0", 1, "1024x1024")).toBe(0.08);
    expect(cost("stability.stable-image-ultra-v1:1", 1, "1024x1024")).toBe(0.14);
    expect(cost("stability.stable-image-core-v1:0", 1, "832x1216")).toBe(0.04);
  });

  it("Titan: ≤512² tier, anything larger the 1024² tier; standard or premium", () => {
    const titan = "amazon.titan-image-generator-v2:0";
    expect(cost(titan, 1, "512x512", "standard")).toBe(0.008);
    expect(cost(titan, 1, "384x576", "premium")).toBe(0.01);
    expect(cost(titan, 1, "1024x1024", "standard")).toBe(0.01);
    expect(cost(titan, 2, "1408x768", "premium")).toBeCloseTo(0.024, 10);
    expect(cost("amazon.titan-image-generator-v1", 1, "768x768", "premium")).toBe(0.012);
  });

  it("Nova Canvas: ≤1024² and ≤2048² tiers; standard or premium", () => {
    const nova = "amazon.nova-canvas-v1:0";
    expect(cost(nova, 1, "320x320", "standard")).toBe(0.04);
    expect(cost(nova, 1, "1024x1024", "premium")).toBe(0.06);
    expect(cost(nova, 1, "1792x1024", "standard")).toBe(0.06);
    expect(cost(nova, 1, "2048x2048", "premium")).toBe(0.08);
    expect(cost(nova, 1, "4096x1024", "premium")).toBe(0.08);
  });

  it("filtered images cost nothing; an override wins", () => {
    expect(cost("amazon.nova-canvas-v1:0", 0, "1024x1024", "premium")).toBe(0);
    expect(
      costOf(
        { images: 2, size: "1024x1024", quality: "premium", usage: undefined },
        price("amazon.nova-canvas-v1:0"),
        0.5,
      ),
    ).toBe(1);
  });
});

describe("size_tiers", () => {
  const tiered: Price = {
    provider: "bedrock",
    model: "x",
    source: "test",
    as_of: "2026-11-25",
    size_tiers: [
      { max_size: "512x512", per_image: { standard: 1, premium: 2 } },
      { max_size: "1024x1024", per_image: { standard: 3, premium: 4 } },
    ],
  };
  const at = (size: string | undefined, quality: string | undefined, p: Price = tiered) =>
    costOf({ images: 1, size, quality, usage: undefined }, p, undefined);

  it("picks the first tier the pixel count fits", () => {
    expect(at("512x512", "standard")).toBe(1);
    expect(at("256x1024", "premium")).toBe(2); // 262,144 pixels = 512²
    expect(at("513x512", "standard")).toBe(3);
    expect(at("1024x1024", "premium")).toBe(4);
  });

  it("prices a size beyond the last bounded tier, or no size, at the highest price, and an unknown quality at the tier's highest", () => {
    expect(at("1025x1024", "standard")).toBe(4);
    expect(at(undefined, "standard")).toBe(4);
    expect(at("512x512", "ultra")).toBe(2);
  });

  it("a tier with one price serves any quality; a tier without max_size takes any size", () => {
    const flat: Price = {
      ...tiered,
      size_tiers: [{ max_size: "512x512", per_image: { any: 5 } }, { per_image: { any: 7 } }],
    };
    expect(at("512x512", undefined, flat)).toBe(5);
    expect(at("8192x8192", "premium", flat)).toBe(7);
  });
});
