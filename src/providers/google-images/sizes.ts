/**
 * What Imagen and Gemini are sent for a request's size and quality, and the pixels they
 * produce: read from the catalog entry (`size.upstream`, `size.produced`, `quality.upstream`
 * in models/gemini.yaml and vertex_ai.yaml). The nearest ratio wins; the size reported is
 * the one produced.
 */
import { IMAGE_TIERS, type ImageTier, type ModelSpec } from "../../catalog/catalog.ts";
import { invalidParam } from "../../errors/errors.ts";
import type { CreateImageRequest } from "../../gen/imagegate/v1/images_pb.js";
import { own } from "../../runtime/own.ts";

export type { ImageTier };

/** `aspect_ratio` as sent, else the ratio the catalog maps `size` to. */
export function aspectRatioOf(req: CreateImageRequest, spec: ModelSpec): string {
  if (req.aspectRatio !== undefined) {
    if (spec.aspect_ratio?.values.includes(req.aspectRatio)) return req.aspectRatio;
    throw invalidParam(
      "aspect_ratio",
      `Invalid 'aspect_ratio': '${req.aspectRatio}' has no upstream equivalent.`,
    );
  }
  const size = req.size ?? spec.size.default;
  const ratio = own(spec.size.upstream, size);
  if (ratio === undefined)
    throw invalidParam("size", `Invalid 'size': '${size}' has no upstream aspect ratio.`);
  return ratio;
}

/** Imagen `sampleImageSize` / Gemini `imageSize` for the request's quality; undefined when not sent. */
export function tierOf(req: CreateImageRequest, spec: ModelSpec): ImageTier | undefined {
  if (req.quality === undefined) return undefined;
  const tier = own(spec.quality?.upstream, req.quality);
  return (IMAGE_TIERS as readonly string[]).includes(tier ?? "") ? (tier as ImageTier) : undefined;
}

/** The pixels the model produces for an aspect ratio at a tier (1K when none is sent). */
export function producedSize(
  spec: ModelSpec,
  ratio: string,
  tier: ImageTier | undefined,
): string | undefined {
  const produced = own(spec.size.produced, ratio);
  return typeof produced === "string" ? produced : own(produced, tier ?? "1K");
}
