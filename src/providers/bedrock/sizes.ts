/**
 * Sizes each Bedrock family produces: OpenAI sizes and aspect ratios → the upstream's
 * width/height or aspect ratio (the nearest ratio wins; the size produced is reported).
 */
import type { ModelSpec } from "../../catalog/catalog.ts";
import { invalidParam } from "../../errors/errors.ts";
import type { CreateImageRequest } from "../../gen/imagegate/v1/images_pb.js";

/** OpenAI size → the SDXL size produced; SDXL's own sizes map to themselves. */
export const SDXL_SIZES: Readonly<Record<string, string>> = {
  auto: "1024x1024",
  "256x256": "1024x1024",
  "512x512": "1024x1024",
  "1024x1024": "1024x1024",
  "1792x1024": "1344x768",
  "1024x1792": "768x1344",
  "1536x1024": "1216x832",
  "1024x1536": "832x1216",
  "1152x896": "1152x896",
  "896x1152": "896x1152",
  "1216x832": "1216x832",
  "832x1216": "832x1216",
  "1344x768": "1344x768",
  "768x1344": "768x1344",
  "1536x640": "1536x640",
  "640x1536": "640x1536",
};

/** OpenAI size → the Stability aspect_ratio (SD3, Stable Image Ultra and Core). */
export const SD3_ASPECT_RATIOS: Readonly<Record<string, string>> = {
  auto: "1:1",
  "256x256": "1:1",
  "512x512": "1:1",
  "1024x1024": "1:1",
  "1792x1024": "16:9",
  "1024x1792": "9:16",
  "1536x1024": "3:2",
  "1024x1536": "2:3",
};

/**
 * aspect_ratio → the size Stability renders (about one megapixel, sides multiples of 64),
 * as Stability documents for SD3; assumed for Stable Image Ultra and Core too.
 */
export const SD3_OUTPUT_SIZES: Readonly<Record<string, string>> = {
  "1:1": "1024x1024",
  "16:9": "1344x768",
  "9:16": "768x1344",
  "21:9": "1536x640",
  "9:21": "640x1536",
  "3:2": "1216x832",
  "2:3": "832x1216",
  "5:4": "1088x896",
  "4:5": "896x1088",
};

/** OpenAI size → the Titan size produced; Titan's own sizes map to themselves. */
export const TITAN_SIZES: Readonly<Record<string, string>> = {
  auto: "1024x1024",
  "256x256": "512x512",
  "512x512": "512x512",
  "1024x1024": "1024x1024",
  // 16:9 lies exactly between 1408x768 (1.83) and 1280x768 (1.67); the larger wins.
  "1792x1024": "1408x768",
  "1024x1792": "768x1408",
  "1536x1024": "1152x768",
  "1024x1536": "768x1152",
  ...Object.fromEntries(
    [
      "768x768",
      "768x1152",
      "384x576",
      "1152x768",
      "576x384",
      "768x1280",
      "384x640",
      "1280x768",
      "640x384",
      "896x1152",
      "448x576",
      "1152x896",
      "576x448",
      "768x1408",
      "384x704",
      "1408x768",
      "704x384",
      "640x1408",
      "320x704",
      "1408x640",
      "704x320",
      "1152x640",
      "1173x640",
    ].map((s) => [s, s]),
  ),
};

/** Nova takes any size within its rules as sent; only these need mapping (256 is under its 320 minimum). */
export const NOVA_SIZES: Readonly<Record<string, string>> = {
  auto: "1024x1024",
  "256x256": "320x320",
};

export function tableSize(
  table: Readonly<Record<string, string>>,
  req: CreateImageRequest,
  spec: ModelSpec,
) {
  const size = req.size ?? spec.size.default;
  const mapped = table[size];
  if (mapped === undefined) {
    throw invalidParam(
      "size",
      `Invalid value: '${size}'. Supported values for ${spec.model} are: ${Object.keys(table)
        .map((s) => `'${s}'`)
        .join(", ")}.`,
    );
  }
  return dimensions(mapped);
}

export function sd3Size(req: CreateImageRequest, spec: ModelSpec) {
  const size = req.size ?? spec.size.default;
  const aspectRatio = req.aspectRatio ?? SD3_ASPECT_RATIOS[size];
  const produced = aspectRatio === undefined ? undefined : SD3_OUTPUT_SIZES[aspectRatio];
  if (aspectRatio === undefined || produced === undefined) {
    const param = req.aspectRatio === undefined ? "size" : "aspect_ratio";
    throw invalidParam(
      param,
      `Invalid value: '${req.aspectRatio ?? size}' has no Stability aspect ratio for ${spec.model}.`,
    );
  }
  return { ...dimensions(produced), aspectRatio };
}

export function novaSize(req: CreateImageRequest, spec: ModelSpec) {
  const size = req.size ?? spec.size.default;
  return dimensions(NOVA_SIZES[size] ?? size);
}

function dimensions(size: string): { width: number; height: number } {
  const match = /^(\d+)x(\d+)$/.exec(size);
  if (!match) throw invalidParam("size", `Invalid value: '${size}' is not WIDTHxHEIGHT.`);
  return { width: Number(match[1]), height: Number(match[2]) };
}
