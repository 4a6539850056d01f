/**
 * A provider's result → our ImagesResponse, in the response format the client asked for.
 */
import { create } from "@bufbuild/protobuf";
import { imageSize } from "image-size";
import { GatewayError } from "../errors/errors.ts";
import {
  type Image,
  ImageSchema,
  type ImagesResponse,
  ImagesResponseSchema,
} from "../gen/imagegate/v1/images_pb.js";
import type { GeneratedImage, GenerationResult } from "../providers/types.ts";

export interface Effective {
  responseFormat: string;
  /** The size produced, as the service established it; undefined when unknown. */
  size: string | undefined;
}

export function toImagesResponse(
  result: GenerationResult,
  effective: Effective,
  now = Date.now(),
): ImagesResponse {
  const response = create(ImagesResponseSchema, {
    created: Math.floor(now / 1000),
    data: result.images.map((img) => toImage(img, effective.responseFormat)),
  });
  if (effective.size !== undefined) response.size = effective.size;
  if (result.quality !== undefined) response.quality = result.quality;
  if (result.background !== undefined) response.background = result.background;
  if (result.outputFormat !== undefined) response.outputFormat = result.outputFormat;
  if (result.usage !== undefined) response.usage = result.usage;
  return response;
}

function toImage(img: GeneratedImage, format: string): Image {
  const image = create(ImageSchema);
  if (format === "url") {
    if (img.url === undefined) throw unavailable(format);
    image.url = img.url;
  } else {
    if (img.bytes === undefined) throw unavailable(format);
    image.b64Json = img.bytes;
  }
  if (img.revisedPrompt !== undefined) image.revisedPrompt = img.revisedPrompt;
  return image;
}

function unavailable(format: string): GatewayError {
  return new GatewayError(
    "invalid_request",
    `response_format '${format}' is not available for this model.`,
    {
      param: "response_format",
    },
  );
}

/** `WxH` read from the first image's own header (PNG, JPEG, WebP, SVG…), when it has bytes. */
export function measuredSize(images: readonly GeneratedImage[]): string | undefined {
  const bytes = images[0]?.bytes;
  if (bytes === undefined) return undefined;
  try {
    const { width, height } = imageSize(bytes);
    return width > 0 && height > 0 ? `${width}x${height}` : undefined;
  } catch {
    return undefined; // not an image format the reader knows: no echo rather than a guess
  }
}
