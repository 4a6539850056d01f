/**
 * Prices as data (`prices/*.yaml`, one file per provider) and the cost of one answered request, computed from what
 * the upstream actually produced: images delivered (filtered ones cost nothing), the size
 * and quality it echoed or the request's effective ones, and token usage where reported.
 * One number per request feeds the header, logs, metrics and budgets.
 */
import { readdirSync, readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import type { Catalog } from "../catalog/catalog.ts";
import { parseSize } from "../catalog/size.ts";
import type { Usage } from "../gen/imagegate/v1/images_pb.js";

const PerImageSchema = z.record(z.string(), z.record(z.string(), z.number().nonnegative()));
const TokenRatesSchema = z.strictObject({
  text_input: z.number().nonnegative(),
  image_input: z.number().nonnegative(),
  image_output: z.number().nonnegative(),
  // Without `usage`: each image billed as this many output tokens (Gemini native image).
  output_tokens_per_image: z.number().int().positive().optional(),
});
/**
 * Prices by the produced image's pixel count (Titan, Nova Canvas): the first tier whose
 * `max_size` (WxH, compared by pixels) the image fits; a tier without `max_size` takes any.
 */
const SizeTierSchema = z.strictObject({
  max_size: z
    .string()
    .refine((s) => parseSize(s) !== undefined, "must be WIDTHxHEIGHT in pixels, e.g. 1024x1024")
    .optional(),
  per_image: z.record(z.string(), z.number().nonnegative()),
});
/**
 * Edits of token-billed models (GPT image): the input image tokens one 1024x1024 input is
 * billed as, by `input_fidelity`, and where that figure was read. Billing itself is always
 * the upstream's `usage`; these bound what a budget holds before the call, and estimate an
 * answer without `usage`.
 */
const InputImageTokensSchema = z.strictObject({
  low: z.int().positive(),
  high: z.int().positive(),
  source: z.string().min(1),
});
const PriceSchema = z
  .strictObject({
    provider: z.string(),
    model: z.string(),
    source: z.string().min(1),
    as_of: z.union([z.string(), z.date()]),
    per_image: PerImageSchema.optional(),
    tokens: TokenRatesSchema.optional(),
    size_tiers: z.array(SizeTierSchema).min(1).optional(),
    input_image_tokens: InputImageTokensSchema.optional(),
  })
  .refine(
    (p) => p.per_image !== undefined || p.tokens !== undefined || p.size_tiers !== undefined,
    {
      message: "needs per_image, tokens or size_tiers",
    },
  )
  .refine((p) => p.input_image_tokens === undefined || p.tokens !== undefined, {
    message: "input_image_tokens needs tokens (their rate is tokens.image_input)",
  });
const PriceFileSchema = z.strictObject({ prices: z.array(PriceSchema) });

export type Price = z.infer<typeof PriceSchema>;

export interface PriceList {
  lookup(provider: string, model: string): Price | undefined;
}

export const PRICES_DIR = new URL("./prices/", import.meta.url);

export function loadPrices(catalog: Catalog, dir: URL = PRICES_DIR): PriceList {
  const byKey = new Map<string, Price>();
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .sort()) {
    const parsed = PriceFileSchema.safeParse(parseYaml(readFileSync(new URL(file, dir), "utf8")));
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new Error(`prices/${file}: ${issue.path.join(".")}: ${issue.message}`);
    }
    for (const price of parsed.data.prices) {
      const spec = catalog.lookup(price.provider, price.model);
      if (spec === undefined)
        throw new Error(
          `prices/${file}: ${price.provider}/${price.model} is not in the model catalog`,
        );
      for (const name of [spec.model, ...(spec.aliases ?? [])])
        byKey.set(`${price.provider}/${name}`, price);
    }
  }
  return { lookup: (provider, model) => byKey.get(`${provider}/${model}`) };
}

/** An edit's input images, as far as their price goes (see `input_image_tokens`). */
export interface InputImages {
  images: readonly { width: number; height: number }[];
  /** `low` or `high` as sent or the model's default; undefined: the priciest. */
  fidelity: string | undefined;
}

export interface Produced {
  images: number;
  size: string | undefined;
  quality: string | undefined;
  usage: Usage | undefined;
  /** What the provider says it charged (e.g. Recraft's `credits`), in USD. */
  reportedUsd?: number;
  /** An edit's input images: priced from `usage` when it is there, else estimated. */
  inputs?: InputImages;
}

/**
 * The input image tokens `inputs` are billed as, at most: each image's 1024x1024 figure
 * scaled by its area, from 1x (smaller images are not held for less) to 4x (OpenAI scales
 * image inputs to fit a 2048x2048 square).
 */
export function inputImageTokens(price: Price, inputs: InputImages | undefined): number {
  const per = price.input_image_tokens;
  if (per === undefined || inputs === undefined) return 0;
  const each =
    inputs.fidelity === "low"
      ? per.low
      : inputs.fidelity === "high"
        ? per.high
        : Math.max(per.low, per.high);
  let tokens = 0;
  for (const { width, height } of inputs.images)
    tokens += Math.ceil(each * Math.min(4, Math.max(1, (width * height) / 1024 ** 2)));
  return tokens;
}

/**
 * USD for what was produced, or undefined when the model has no price. In order: nothing
 * delivered costs nothing; the operator's per-image price; what the provider reported; the
 * price list. A size or quality the list lacks (an upstream echoing something unexpected)
 * costs the model's highest listed price, never nothing.
 */
export function costOf(
  produced: Produced,
  price: Price | undefined,
  overridePerImage: number | undefined,
): number | undefined {
  if (produced.images === 0) return 0;
  if (overridePerImage !== undefined) return produced.images * overridePerImage;
  if (produced.reportedUsd !== undefined) return produced.reportedUsd;
  if (price === undefined) return undefined;
  if (
    price.tokens !== undefined &&
    produced.usage !== undefined &&
    produced.usage.totalTokens > 0
  ) {
    const u = produced.usage;
    const text = u.inputTokensDetails?.textTokens ?? u.inputTokens;
    const image = u.inputTokensDetails?.imageTokens ?? 0;
    return (
      (text * price.tokens.text_input +
        image * price.tokens.image_input +
        u.outputTokens * price.tokens.image_output) /
      1e6
    );
  }
  const each = perImagePrice(price, produced.size, produced.quality);
  if (each === undefined) return undefined;
  // No usage to bill the input images from: their estimate at the image-input rate.
  const inputs =
    price.tokens === undefined
      ? 0
      : (inputImageTokens(price, produced.inputs) * price.tokens.image_input) / 1e6;
  return produced.images * each + inputs;
}

/** What a request may cost, before it runs: what budgets hold (see auth/ledger.ts). */
export interface Asked {
  images: number;
  /** The effective size and quality (`auto` or unknown: the priciest the model lists). */
  size: string | undefined;
  quality: string | undefined;
  /** The prompt's UTF-8 length: no tokenizer makes more tokens than bytes. */
  promptBytes: number;
  /** Upstream calls the request fans out to (each one bills the prompt and input images). */
  calls: number;
  /** An edit's input images (billed as input image tokens by token-priced models). */
  inputs?: InputImages;
}

/**
 * Token-billed answers may cost a little more than the per-image list price they round
 * (gpt-image-1 low 1024x1536: 408 output tokens, $0.01632 against $0.016 listed).
 */
export const TOKEN_MARGIN = 1.1;

/** The most a request may cost on a deployment with this price, or undefined when unpriced. */
export function maxCostOf(
  asked: Asked,
  price: Price | undefined,
  overridePerImage: number | undefined,
): number | undefined {
  if (overridePerImage !== undefined) return asked.images * overridePerImage;
  if (price === undefined) return undefined;
  const each = perImagePrice(price, asked.size, asked.quality);
  if (each === undefined) return undefined;
  if (price.tokens === undefined) return asked.images * each;
  const prompt = (asked.calls * asked.promptBytes * price.tokens.text_input) / 1e6;
  const inputs =
    (asked.calls * inputImageTokens(price, asked.inputs) * price.tokens.image_input) / 1e6;
  return asked.images * each * TOKEN_MARGIN + prompt + inputs;
}

/**
 * The per-image price for a size and quality. A quality the list lacks: the priciest
 * quality at that size; a size it lacks: the model's highest price.
 */
function perImagePrice(
  price: Price,
  size: string | undefined,
  quality: string | undefined,
): number | undefined {
  if (price.tokens?.output_tokens_per_image !== undefined)
    return (price.tokens.output_tokens_per_image * price.tokens.image_output) / 1e6;
  if (price.size_tiers !== undefined) return tierPrice(price.size_tiers, size, quality);
  const tables = price.per_image;
  if (tables === undefined) return undefined;
  const candidates =
    quality !== undefined && Object.hasOwn(tables, quality)
      ? [tables[quality]!]
      : Object.values(tables);
  const atSize = candidates
    .map((t) => (size !== undefined && Object.hasOwn(t, size) ? t[size] : t["*"]))
    .filter((p): p is number => p !== undefined);
  if (atSize.length > 0) return Math.max(...atSize);
  return highest(Object.values(tables).flatMap((t) => Object.values(t)));
}

/**
 * The per-image price of the first tier `size` fits, for its quality (unknown: the tier's
 * priciest); a size no tier fits: the model's highest price.
 */
function tierPrice(
  tiers: readonly z.infer<typeof SizeTierSchema>[],
  size: string | undefined,
  quality: string | undefined,
): number | undefined {
  const pixels = pixelCount(size);
  const tier =
    pixels === undefined
      ? undefined
      : tiers.find((t) => t.max_size === undefined || pixels <= (pixelCount(t.max_size) ?? 0));
  if (tier === undefined) return highest(tiers.flatMap((t) => Object.values(t.per_image)));
  if (quality !== undefined && Object.hasOwn(tier.per_image, quality))
    return tier.per_image[quality];
  return highest(Object.values(tier.per_image));
}

function highest(prices: readonly number[]): number | undefined {
  return prices.length === 0 ? undefined : Math.max(...prices);
}

function pixelCount(size: string | undefined): number | undefined {
  const dims = size === undefined ? undefined : parseSize(size);
  return dims && dims.width * dims.height;
}
