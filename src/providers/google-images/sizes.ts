/**
 * Imagen's and Gemini's aspect ratios and the pixels each produces: the nearest ratio
 * wins, and the size reported is the one produced.
 */
import { invalidParam } from "../../errors/errors.ts";
import type { CreateImageRequest } from "../../gen/imagegate/v1/images_pb.js";

export const IMAGEN_ASPECT_RATIOS = ["1:1", "3:4", "4:3", "9:16", "16:9"] as const;

export type ImagenAspectRatio = (typeof IMAGEN_ASPECT_RATIOS)[number];

export const GEMINI_ASPECT_RATIOS = [
  "1:1",
  "2:3",
  "3:2",
  "3:4",
  "4:3",
  "4:5",
  "5:4",
  "9:16",
  "16:9",
  "21:9",
] as const;

export type GeminiAspectRatio = (typeof GEMINI_ASPECT_RATIOS)[number];

/** Imagen `sampleImageSize` and Gemini `imageSize`. */
export type ImageTier = "1K" | "2K" | "4K";

/** OpenAI `size` → Imagen `aspectRatio`. */
export const IMAGEN_ASPECT_BY_SIZE: Readonly<Record<string, ImagenAspectRatio>> = {
  "256x256": "1:1",
  "512x512": "1:1",
  "1024x1024": "1:1",
  auto: "1:1",
  "1792x1024": "16:9",
  "1024x1792": "9:16",
  "1536x1024": "4:3",
  "1024x1536": "3:4",
};

/** OpenAI `size` → Gemini `imageConfig.aspectRatio`. */
export const GEMINI_ASPECT_BY_SIZE: Readonly<Record<string, GeminiAspectRatio>> = {
  "256x256": "1:1",
  "512x512": "1:1",
  "1024x1024": "1:1",
  auto: "1:1",
  "1792x1024": "16:9",
  "1024x1792": "9:16",
  "1536x1024": "3:2",
  "1024x1536": "2:3",
};

/** Pixels Imagen produces per aspect ratio: 1K from providers.md §7; 2K doubles each side. */
export const IMAGEN_PIXELS: Readonly<
  Record<ImagenAspectRatio, Readonly<Record<"1K" | "2K", string>>>
> = {
  "1:1": { "1K": "1024x1024", "2K": "2048x2048" },
  "3:4": { "1K": "896x1280", "2K": "1792x2560" },
  "4:3": { "1K": "1280x896", "2K": "2560x1792" },
  "9:16": { "1K": "768x1408", "2K": "1536x2816" },
  "16:9": { "1K": "1408x768", "2K": "2816x1536" },
};

type GeminiPixels = Readonly<
  Record<GeminiAspectRatio, Readonly<Partial<Record<ImageTier, string>>>>
>;

/** gemini-2.5-flash-image: one size per ratio (Gemini API image-generation docs). */
const GEMINI_25_FLASH_PIXELS: GeminiPixels = {
  "1:1": { "1K": "1024x1024" },
  "2:3": { "1K": "832x1248" },
  "3:2": { "1K": "1248x832" },
  "3:4": { "1K": "864x1184" },
  "4:3": { "1K": "1184x864" },
  "4:5": { "1K": "896x1152" },
  "5:4": { "1K": "1152x896" },
  "9:16": { "1K": "768x1344" },
  "16:9": { "1K": "1344x768" },
  "21:9": { "1K": "1536x672" },
};

/** gemini-3-pro-image-preview: 1K, 2K and 4K per ratio (Gemini API image-generation docs). */
const GEMINI_3_PRO_PIXELS: GeminiPixels = {
  "1:1": { "1K": "1024x1024", "2K": "2048x2048", "4K": "4096x4096" },
  "2:3": { "1K": "848x1264", "2K": "1696x2528", "4K": "3392x5056" },
  "3:2": { "1K": "1264x848", "2K": "2528x1696", "4K": "5056x3392" },
  "3:4": { "1K": "896x1200", "2K": "1792x2400", "4K": "3584x4800" },
  "4:3": { "1K": "1200x896", "2K": "2400x1792", "4K": "4800x3584" },
  "4:5": { "1K": "928x1152", "2K": "1856x2304", "4K": "3712x4608" },
  "5:4": { "1K": "1152x928", "2K": "2304x1856", "4K": "4608x3712" },
  "9:16": { "1K": "768x1376", "2K": "1536x2752", "4K": "3072x5504" },
  "16:9": { "1K": "1376x768", "2K": "2752x1536", "4K": "5504x3072" },
  "21:9": { "1K": "1584x672", "2K": "3168x1344", "4K": "6336x2688" },
};

/** Pixel tables by model-id prefix; the first match wins, the last is the default. */
export const GEMINI_PIXELS: readonly { prefix: string; pixels: GeminiPixels }[] = [
  { prefix: "gemini-3-pro-image", pixels: GEMINI_3_PRO_PIXELS },
  { prefix: "", pixels: GEMINI_25_FLASH_PIXELS },
];

/**
 * OpenAI `quality` → Imagen `sampleImageSize` / Gemini `imageSize` (providers.md §7: hd/high
 * is 2K). Only sent for models whose catalog entry lists `quality` (Imagen 4 Standard and
 * Ultra, Gemini 3 Pro); the others have no size setting and reject it.
 */
export const TIER_BY_QUALITY: Readonly<Record<string, "1K" | "2K">> = {
  auto: "1K",
  low: "1K",
  medium: "1K",
  standard: "1K",
  high: "2K",
  hd: "2K",
};

/** `aspect_ratio` as sent, else the table's ratio for `size` (default 1:1). */
export function aspectRatio<R extends string>(
  req: CreateImageRequest,
  bySize: Readonly<Record<string, R>>,
  known: readonly R[],
): R {
  if (req.aspectRatio !== undefined) {
    if ((known as readonly string[]).includes(req.aspectRatio)) return req.aspectRatio as R;
    throw invalidParam(
      "aspect_ratio",
      `Invalid 'aspect_ratio': '${req.aspectRatio}' has no upstream equivalent.`,
    );
  }
  const ratio = bySize[req.size ?? "1024x1024"];
  if (ratio === undefined)
    throw invalidParam("size", `Invalid 'size': '${req.size}' has no upstream aspect ratio.`);
  return ratio;
}
