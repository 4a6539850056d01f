/**
 * Edit inputs converted to what a provider takes, with `sharp` (libvips) rather than pixel
 * code of our own:
 * - OpenAI's mask marks the area to change with transparent pixels (alpha 0); Titan and Nova
 *   Canvas want an opaque black-and-white image, black where to change
 *   (https://docs.aws.amazon.com/nova/latest/userguide/image-gen-access.html, "Input images
 *   for image generation"; the Titan page says the same); Vertex Imagen and Recraft want white
 *   where to change (Vertex: "non-zero values indicate where to edit",
 *   https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/imagen-api-edit;
 *   Recraft: https://www.recraft.ai/docs/api-reference/tools/inpainting).
 * - Nova Canvas refuses input PNGs with transparent or semi-transparent pixels: those are
 *   flattened onto white.
 * Each step is its own sharp pipeline: sharp orders the operations of one pipeline itself,
 * not in the order they are called.
 *
 * sharp (libvips and its threads, about 20 MB of resident memory) loads with the first
 * edit that needs it, not with the gateway: most gateways never convert a mask.
 */
import type SharpModule from "sharp";
import type { InputImageData } from "../catalog/edit-rules.ts";
import { invalidParam } from "../errors/errors.ts";

let loaded: Promise<typeof SharpModule> | undefined;
function loadSharp(): Promise<typeof SharpModule> {
  loaded ??= import("sharp").then((m) => m.default);
  return loaded;
}

/** Which pixels of a converted mask mark the area to change. */
export type MaskEditColour = "black" | "white";

/** What a converted mask is: opaque RGB (Titan, Nova: 8 bits per channel) or one grey channel. */
export type MaskChannels = "rgb" | "grey";

/**
 * OpenAI's mask (transparent where to change) → an opaque PNG of pure black and pure white
 * pixels, `edit` where the mask was fully transparent. A mask without an alpha channel marks
 * nothing: a 400 naming `mask`.
 */
export async function maskFromAlpha(
  mask: InputImageData,
  edit: MaskEditColour,
  channels: MaskChannels = "rgb",
): Promise<Uint8Array> {
  const sharp = await loadSharp();
  const { hasAlpha } = await sharp(mask.bytes).metadata();
  if (!hasAlpha) {
    throw invalidParam(
      "mask",
      "Invalid 'mask': it has no alpha channel. The mask marks the area to edit with fully transparent pixels.",
      "invalid_mask",
    );
  }
  // Every step keeps one grey channel (sharp would otherwise widen its output to sRGB).
  const alpha = await sharp(mask.bytes)
    .extractChannel("alpha")
    .toColourspace("b-w")
    .raw()
    .toBuffer({ resolveWithObject: true });
  const raw = { width: alpha.info.width, height: alpha.info.height, channels: 1 as const };
  const grey = (bytes: Buffer) => sharp(bytes, { raw }).toColourspace("b-w");
  // alpha 0 → 0, any other alpha → 255: black marks the fully transparent area.
  let binary = await grey(alpha.data).threshold(1, { grayscale: false }).raw().toBuffer();
  if (edit === "white") binary = await grey(binary).negate().raw().toBuffer();
  return channels === "rgb"
    ? sharp(binary, { raw }).toColourspace("srgb").png().toBuffer()
    : grey(binary).png().toBuffer();
}

/**
 * The image with any transparency flattened onto white, as a PNG (unchanged when it has no
 * alpha channel, or is a JPEG).
 */
export async function flattenTransparency(image: InputImageData): Promise<InputImageData> {
  if (image.format === "jpeg") return image;
  const sharp = await loadSharp();
  const { hasAlpha } = await sharp(image.bytes).metadata();
  if (!hasAlpha) return image;
  const bytes = await sharp(image.bytes).flatten({ background: "#ffffff" }).png().toBuffer();
  return { ...image, bytes, format: "png", mimeType: "image/png" };
}
