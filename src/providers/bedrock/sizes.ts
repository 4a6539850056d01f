/**
 * The size each Bedrock family is sent and produces, read from the catalog entry
 * (`size.upstream`, `size.produced` in models/bedrock.yaml): SDXL and Titan snap OpenAI
 * sizes to their own, Nova takes any size within its rule, and SD3 is sent an aspect ratio
 * that renders a known size. The size produced is reported.
 */
import type { ModelSpec } from "../../catalog/catalog.ts";
import { type PixelSize, parseSize } from "../../catalog/size.ts";
import { invalidParam } from "../../errors/errors.ts";
import type { CreateImageRequest } from "../../gen/imagegate/v1/images_pb.js";
import { own } from "../../runtime/own.ts";

/** SDXL, Titan, Nova: the width and height sent (a listed size without a mapping as it is). */
export function catalogSize(req: CreateImageRequest, spec: ModelSpec) {
  const size = req.size ?? spec.size.default;
  return dimensions(own(spec.size.upstream, size) ?? size);
}

/** SD3 / Stable Image: the aspect ratio sent (as asked, else mapped from `size`) and the size it renders. */
export function sd3Size(req: CreateImageRequest, spec: ModelSpec) {
  const size = req.size ?? spec.size.default;
  const aspectRatio = req.aspectRatio ?? own(spec.size.upstream, size);
  const produced = own(spec.size.produced, aspectRatio);
  if (aspectRatio === undefined || typeof produced !== "string") {
    const param = req.aspectRatio === undefined ? "size" : "aspect_ratio";
    throw invalidParam(
      param,
      `Invalid value: '${req.aspectRatio ?? size}' has no Stability aspect ratio for ${spec.model}.`,
    );
  }
  return { ...dimensions(produced), aspectRatio };
}

function dimensions(size: string): PixelSize {
  const dims = parseSize(size);
  if (dims === undefined)
    throw invalidParam("size", `Invalid value: '${size}' is not WIDTHxHEIGHT.`);
  return dims;
}
