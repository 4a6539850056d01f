/**
 * The cost of a typical answer from every catalog model, against prices worked out by hand
 * from the sources that src/pricing/prices/*.yaml names. A model added to the catalog without
 * a row here fails, so no model ships with an unreviewed price.
 */
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { loadCatalog } from "../../src/catalog/catalog.ts";
import { UsageSchema } from "../../src/gen/imagegate/v1/images_pb.js";
import { costOf, loadPrices, maxCostOf, type Produced } from "../../src/pricing/pricing.ts";

const catalog = loadCatalog();
const prices = loadPrices(catalog);

const usage = (text: number, output: number, image = 0) =>
  create(UsageSchema, {
    inputTokens: text + image,
    outputTokens: output,
    totalTokens: text + image + output,
    inputTokensDetails: { textTokens: text, imageTokens: image },
  });
const images = (n: number, size = "1024x1024", quality?: string): Produced => ({
  images: n,
  size,
  quality,
  usage: undefined,
});
const UNPRICED = undefined;

/** provider/model → [what was produced, USD by hand]. */
const TABLE: Record<string, [Produced, number | undefined]> = {
  // OpenAI: DALL·E by quality and size; gpt-image by tokens (text in $5/M, image in $10/M, out $40/M).
  "openai/dall-e-2": [images(2, "512x512", "standard"), 2 * 0.018],
  "openai/dall-e-3": [images(1, "1792x1024", "hd"), 0.12],
  "openai/gpt-image-1": [
    { images: 1, size: "1024x1024", quality: "high", usage: usage(50, 4160) },
    0.00025 + 0.1664,
  ],
  "openai/gpt-image-1-mini": [
    { images: 1, size: "1024x1024", quality: "medium", usage: usage(100, 1056, 10) },
    (100 * 2 + 10 * 2.5 + 1056 * 8) / 1e6,
  ],
  // gpt-image-1.5: text in $5/M, image in $8/M, out $32/M; per image without usage.
  "openai/gpt-image-1.5": [
    { images: 1, size: "1536x1024", quality: "high", usage: usage(40, 6240, 20) },
    (40 * 5 + 20 * 8 + 6240 * 32) / 1e6,
  ],
  // No captured price: unpriced, never free (an operator sets output_cost_per_image).
  "openai/gpt-image-2": [images(1, "1024x1024", "high"), UNPRICED],
  "openai/gpt-image-2.5-sunburst": [images(1), UNPRICED],
  "openai/gpt-image-2.5-flare": [images(1), UNPRICED],
  "openai/gpt-image-2.6-sunburst": [images(1), UNPRICED],
  "openai/gpt-image-2.6-flare": [images(1), UNPRICED],
  "openai/chatgpt-image-latest": [images(1), UNPRICED],
  // Azure: OpenAI's list prices.
  "azure/dall-e-3": [images(1, "1024x1024", "standard"), 0.04],
  "azure/gpt-image-1": [images(1, "1536x1024", "high"), 0.25],
  "azure/gpt-image-1-mini": [
    { images: 1, size: "1024x1024", quality: "low", usage: usage(20, 272) },
    (20 * 2 + 272 * 8) / 1e6,
  ],
  "azure/gpt-image-1.5": [
    { images: 1, size: "1024x1536", quality: "medium", usage: usage(30, 1056) },
    (30 * 5 + 1056 * 32) / 1e6,
  ],
  // Google AI Studio: Imagen per image; Gemini by tokens ($0.30/M in, $30/M out; 1290 tokens an image).
  "gemini/imagen-3.0-generate-002": [images(3), 3 * 0.03],
  "gemini/imagen-4.0-generate-001": [images(2, "1408x768"), 2 * 0.04],
  "gemini/imagen-4.0-fast-generate-001": [images(4), 4 * 0.02],
  "gemini/imagen-4.0-ultra-generate-001": [images(1), 0.06],
  "gemini/gemini-2.5-flash-image": [
    { images: 1, size: "1024x1024", quality: undefined, usage: usage(20, 1290) },
    20 * 0.3e-6 + 1290 * 30e-6,
  ],
  "gemini/gemini-3-pro-image-preview": [images(2), 2 * 1120 * 120e-6],
  "gemini/gemini-3-pro-image": [images(1), 1120 * 120e-6],
  // $30/M image output, $1.50/M text input; a 2K image is 1680 tokens.
  "gemini/gemini-nano-banana-2.1": [
    { images: 1, size: "2048x2048", quality: "hd", usage: usage(40, 1680) },
    40 * 1.5e-6 + 1680 * 30e-6,
  ],
  // Vertex AI.
  "vertex_ai/imagegeneration@002": [images(1), 0.02],
  "vertex_ai/imagegeneration@005": [images(2), 0.04],
  "vertex_ai/imagegeneration@006": [images(1), 0.02],
  "vertex_ai/imagen-3.0-generate-001": [images(2), 0.08],
  "vertex_ai/imagen-3.0-generate-002": [images(1), 0.04],
  // Edits only; priced as Imagen 3 generation (no editing price found).
  "vertex_ai/imagen-3.0-capability-001": [images(2, "512x512"), 2 * 0.04],
  "vertex_ai/imagen-3.0-fast-generate-001": [images(1), 0.02],
  "vertex_ai/imagen-4.0-generate-001": [images(1), 0.04],
  "vertex_ai/imagen-4.0-fast-generate-001": [images(3), 0.06],
  "vertex_ai/imagen-4.0-ultra-generate-001": [images(1), 0.06],
  "vertex_ai/gemini-2.5-flash-image": [
    { images: 1, size: "1024x1024", quality: undefined, usage: usage(10, 1290) },
    10 * 0.3e-6 + 1290 * 30e-6,
  ],
  "vertex_ai/gemini-3-pro-image-preview": [
    { images: 1, size: "1024x1024", quality: undefined, usage: usage(100, 1120) },
    100 * 2e-6 + 1120 * 120e-6,
  ],
  "vertex_ai/gemini-3-pro-image": [images(2), 2 * 1120 * 120e-6],
  // $60/M image output ($0.067 a 1K image), $0.50/M input.
  "vertex_ai/gemini-3.1-flash-image": [
    { images: 1, size: "1024x1024", quality: undefined, usage: usage(200, 1120) },
    200 * 0.5e-6 + 1120 * 60e-6,
  ],
  // Bedrock: SDXL by steps tier (≤ 50), SD3 / Stable Image flat, Titan and Nova by size tier × quality.
  "bedrock/stability.stable-diffusion-xl-v1": [images(2, "1344x768"), 0.08],
  "bedrock/stability.stable-diffusion-xl-v0": [images(1), 0.04],
  "bedrock/stability.sd3-large-v1:0": [images(1), 0.08],
  "bedrock/stability.sd3-5-large-v1:0": [images(2), 0.16],
  "bedrock/stability.stable-image-ultra-v1:0": [images(1), 0.14],
  "bedrock/stability.stable-image-ultra-v1:1": [images(1), 0.14],
  "bedrock/stability.stable-image-core-v1:0": [images(1), 0.04],
  "bedrock/stability.stable-image-core-v1:1": [images(3), 0.12],
  "bedrock/amazon.titan-image-generator-v1": [images(2, "512x512", "standard"), 2 * 0.008],
  "bedrock/amazon.titan-image-generator-v2:0": [images(1, "1024x1024", "premium"), 0.012],
  "bedrock/amazon.nova-canvas-v1:0": [images(1, "2048x1024", "premium"), 0.08],
  // Recraft: raster vs vector (the response's credits win when present; see recraft tests).
  "recraft/recraftv2": [images(1), 0.022],
  "recraft/recraftv2_vector": [images(1), 0.044],
  "recraft/recraftv3": [images(2), 0.08],
  "recraft/recraftv3_vector": [images(1), 0.08],
  "recraft/recraftv4": [images(1), 0.04],
  "recraft/recraftv4_vector": [images(1), 0.08],
  "recraft/recraftv4_1": [images(1), 0.035],
  "recraft/recraftv4_pro": [images(1), 0.25],
  "recraft/recraftv4_pro_vector": [images(1), 0.3],
};

describe("the cost of every catalog model", () => {
  const entries = catalog.entries();

  it("prices gpt-image-1.5 by the image without usage (its per-image table)", () => {
    const price = prices.lookup("openai", "gpt-image-1.5");
    expect(costOf(images(1, "1024x1536", "medium"), price, undefined)).toBe(0.05);
  });

  it("has a hand-computed row for every model", () => {
    const names = entries.map((e) => `${e.provider}/${e.model}`);
    expect(names.filter((n) => !(n in TABLE))).toEqual([]);
    expect(Object.keys(TABLE).filter((n) => !names.includes(n))).toEqual([]);
  });

  for (const entry of entries) {
    const name = `${entry.provider}/${entry.model}`;
    it(name, () => {
      const row = TABLE[name];
      if (row === undefined) return; // reported by the test above
      const [produced, expected] = row;
      const cost = costOf(produced, prices.lookup(entry.provider, entry.model), undefined);
      if (expected === undefined) expect(cost).toBeUndefined();
      else expect(cost).toBeCloseTo(expected, 10);
      // Filtered away: nothing delivered, nothing charged.
      expect(
        costOf({ ...produced, images: 0 }, prices.lookup(entry.provider, entry.model), undefined),
      ).toBe(0);
    });
  }

  // What a budget holds before the call must cover what the answer then costs.
  for (const entry of entries) {
    const name = `${entry.provider}/${entry.model}`;
    const row = TABLE[name];
    if (row === undefined || row[1] === undefined) continue;
    it(`${name}: the reservation covers it`, () => {
      const [produced] = row;
      const price = prices.lookup(entry.provider, entry.model);
      const promptTokens = produced.usage?.inputTokensDetails?.textTokens ?? 0;
      const asked = {
        images: produced.images,
        size: produced.size,
        quality: produced.quality,
        promptBytes: promptTokens * 4, // a token is at least one byte; typically about four
        calls: 1,
      };
      expect(maxCostOf(asked, price, undefined)).toBeGreaterThanOrEqual(
        costOf(produced, price, undefined)!,
      );
    });
  }
});
