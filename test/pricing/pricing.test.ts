import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { loadCatalog } from "../../src/catalog/catalog.ts";
import { InputTokensDetailsSchema, UsageSchema } from "../../src/gen/imagegate/v1/images_pb.js";
import {
  costOf,
  inputImageTokens,
  loadPrices,
  maxCostOf,
  TOKEN_MARGIN,
} from "../../src/pricing/pricing.ts";

const catalog = loadCatalog();
const prices = loadPrices(catalog);
const price = (model: string) => prices.lookup("openai", model);

describe("cost of what was produced (prices from src/pricing/prices/openai.yaml)", () => {
  it("prices DALL·E by quality and size", () => {
    expect(
      costOf(
        { images: 3, size: "512x512", quality: "standard", usage: undefined },
        price("dall-e-2"),
        undefined,
      ),
    ).toBeCloseTo(0.054, 10);
    expect(
      costOf(
        { images: 1, size: "1024x1024", quality: "standard", usage: undefined },
        price("dall-e-3"),
        undefined,
      ),
    ).toBe(0.04);
    expect(
      costOf(
        { images: 1, size: "1792x1024", quality: "hd", usage: undefined },
        price("dall-e-3"),
        undefined,
      ),
    ).toBe(0.12);
  });

  it("bills gpt-image from usage: text in, image in and image out at their own rates", () => {
    const usage = create(UsageSchema, {
      inputTokens: 50,
      outputTokens: 4160,
      totalTokens: 4210,
      inputTokensDetails: { textTokens: 50, imageTokens: 0 },
    });
    // The reference's worked example: 50 × $5/M + 4160 × $40/M = $0.16665.
    expect(
      costOf(
        { images: 1, size: "1024x1024", quality: "high", usage },
        price("gpt-image-1"),
        undefined,
      ),
    ).toBeCloseTo(0.16665, 10);
    const withImageInput = create(UsageSchema, {
      ...usage,
      inputTokensDetails: create(InputTokensDetailsSchema, { textTokens: 40, imageTokens: 10 }),
    });
    expect(
      costOf(
        { images: 1, size: "1024x1024", quality: "high", usage: withImageInput },
        price("gpt-image-1"),
        undefined,
      ),
    ).toBeCloseTo((40 * 5 + 10 * 10 + 4160 * 40) / 1e6, 12);
  });

  it("falls back to the per-image list price without usage", () => {
    expect(
      costOf(
        { images: 2, size: "1536x1024", quality: "medium", usage: undefined },
        price("gpt-image-1-mini"),
        undefined,
      ),
    ).toBeCloseTo(0.03, 10);
  });

  it("charges nothing when no image was delivered, and a deployment's override wins", () => {
    expect(
      costOf(
        { images: 0, size: "1024x1024", quality: "hd", usage: undefined },
        price("dall-e-3"),
        undefined,
      ),
    ).toBe(0);
    expect(
      costOf(
        { images: 2, size: "1024x1024", quality: "hd", usage: undefined },
        price("dall-e-3"),
        0.5,
      ),
    ).toBe(1);
  });

  it("prefers the operator's per-image price, then what the provider reported, then the price list", () => {
    const produced = {
      images: 2,
      size: "1024x1024",
      quality: "hd",
      usage: undefined,
      reportedUsd: 0.05,
    };
    expect(costOf(produced, price("dall-e-3"), 0.5)).toBe(1);
    expect(costOf(produced, price("dall-e-3"), undefined)).toBe(0.05);
    expect(
      costOf({ ...produced, reportedUsd: undefined }, price("dall-e-3"), undefined),
    ).toBeCloseTo(0.16, 10);
    expect(costOf({ ...produced, images: 0 }, price("dall-e-3"), 0.5)).toBe(0);
  });

  it("reports a model without a price as unpriced, never as free", () => {
    expect(price("gpt-image-2")).toBeUndefined();
    expect(
      costOf(
        { images: 1, size: "1024x1024", quality: "high", usage: undefined },
        undefined,
        undefined,
      ),
    ).toBeUndefined();
  });

  it("prices a size or quality the list lacks at the model's highest price, never as free", () => {
    // An upstream echoing a size the table lacks: dall-e-3's highest (hd 1792x1024) per image.
    const produced = { images: 2, size: "4096x4096", quality: "standard", usage: undefined };
    expect(costOf(produced, price("dall-e-3"), undefined)).toBeCloseTo(0.24, 10);
    // An unknown quality at a listed size: the priciest quality at that size.
    expect(
      costOf({ ...produced, size: "1024x1024", quality: "ultra" }, price("dall-e-3"), undefined),
    ).toBeCloseTo(0.16, 10);
    expect(
      costOf({ ...produced, size: undefined, quality: undefined }, price("dall-e-2"), undefined),
    ).toBeCloseTo(0.04, 10);
  });
});

describe("the most a request may cost (what a budget holds)", () => {
  const asked = { images: 1, size: "1024x1024", quality: "standard", promptBytes: 0, calls: 1 };

  it("is the per-image price times n, for the size and quality asked", () => {
    expect(
      maxCostOf({ ...asked, images: 10, size: "256x256" }, price("dall-e-2"), undefined),
    ).toBeCloseTo(0.16, 10);
    expect(
      maxCostOf({ ...asked, quality: "hd", size: "1792x1024" }, price("dall-e-3"), undefined),
    ).toBe(0.12);
  });

  it("takes the priciest size and quality for `auto` or anything the list lacks", () => {
    const auto = { ...asked, size: "auto", quality: "auto" };
    expect(maxCostOf(auto, price("gpt-image-1"), undefined)).toBeCloseTo(0.25 * TOKEN_MARGIN, 10);
    expect(maxCostOf({ ...asked, quality: "auto" }, price("gpt-image-1"), undefined)).toBeCloseTo(
      0.167 * TOKEN_MARGIN,
      10,
    );
    expect(maxCostOf({ ...asked, size: "640x480" }, price("dall-e-3"), undefined)).toBe(0.12);
  });

  it("adds the prompt's tokens, at most one per byte, once per upstream call, for token-billed models", () => {
    const long = { ...asked, quality: "low", promptBytes: 1000, calls: 2 };
    expect(maxCostOf(long, price("gpt-image-1"), undefined)).toBeCloseTo(
      0.011 * TOKEN_MARGIN + (2 * 1000 * 5) / 1e6,
      10,
    );
  });

  it("uses the operator's price, and is undefined for a model without any", () => {
    expect(maxCostOf({ ...asked, images: 3 }, undefined, 0.5)).toBe(1.5);
    expect(maxCostOf(asked, price("gpt-image-2"), undefined)).toBeUndefined();
  });
});

describe("an edit's input images (GPT image: input image tokens at their own rate)", () => {
  const square = { width: 1024, height: 1024 };
  const asked = { images: 1, size: "1024x1024", quality: "low", promptBytes: 0, calls: 1 };

  it("holds each input's 1024x1024 token figure for its fidelity, at the image-input rate, per call", () => {
    // gpt-image-1: 135 tokens low, 3,050 high per 1024x1024 input; image input $10/M.
    const low = { images: [square, square], fidelity: "low" };
    expect(maxCostOf({ ...asked, inputs: low }, price("gpt-image-1"), undefined)).toBeCloseTo(
      0.011 * TOKEN_MARGIN + (2 * 135 * 10) / 1e6,
      10,
    );
    const high = { images: [square], fidelity: "high" };
    expect(
      maxCostOf({ ...asked, images: 2, calls: 2, inputs: high }, price("gpt-image-1"), undefined),
    ).toBeCloseTo(2 * 0.011 * TOKEN_MARGIN + (2 * 3050 * 10) / 1e6, 10);
    // gpt-image-1-mini's image input is $2.50/M.
    expect(maxCostOf({ ...asked, inputs: high }, price("gpt-image-1-mini"), undefined)).toBeCloseTo(
      0.005 * TOKEN_MARGIN + (3050 * 2.5) / 1e6,
      10,
    );
  });

  it("scales an input by its area from 1x to 4x, and assumes the priciest fidelity when none is known", () => {
    const p = price("gpt-image-1")!;
    const of = (width: number, height: number, fidelity?: string) =>
      inputImageTokens(p, { images: [{ width, height }], fidelity });
    expect(of(256, 256, "low")).toBe(135);
    expect(of(1536, 1024, "low")).toBe(Math.ceil(135 * 1.5));
    expect(of(4096, 4096, "high")).toBe(4 * 3050);
    expect(of(1024, 1024)).toBe(3050);
    // A model without the figure (dall-e-2 bills per image) holds nothing for its inputs.
    expect(inputImageTokens(price("dall-e-2")!, { images: [square], fidelity: "low" })).toBe(0);
  });

  it("bills from usage when the upstream reports it, and estimates the inputs only without it", () => {
    const inputs = { images: [square], fidelity: "high" };
    const usage = create(UsageSchema, {
      inputTokens: 3060,
      outputTokens: 272,
      totalTokens: 3332,
      inputTokensDetails: create(InputTokensDetailsSchema, { textTokens: 10, imageTokens: 3050 }),
    });
    const produced = { images: 1, size: "1024x1024", quality: "low", usage, inputs };
    expect(costOf(produced, price("gpt-image-1"), undefined)).toBeCloseTo(
      (10 * 5 + 3050 * 10 + 272 * 40) / 1e6,
      10,
    );
    expect(costOf({ ...produced, usage: undefined }, price("gpt-image-1"), undefined)).toBeCloseTo(
      0.011 + (3050 * 10) / 1e6,
      10,
    );
  });

  it("every priced GPT-image model that edits has the figure, with its source", () => {
    let checked = 0;
    for (const spec of catalog.entries()) {
      if (spec.edits === undefined || spec.family !== "gpt-image") continue;
      const p = prices.lookup(spec.provider, spec.model);
      if (p?.tokens === undefined) continue;
      expect(p.input_image_tokens, `${spec.provider}/${spec.model}`).toMatchObject({
        low: expect.any(Number),
        high: expect.any(Number),
        source: expect.stringContaining("http"),
      });
      checked += 1;
    }
    // gpt-image-1, -1-mini and -1.5 at OpenAI and at Azure.
    expect(checked).toBe(6);
  });
});
