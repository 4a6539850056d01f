/**
 * Our request → Recraft's body (https://www.recraft.ai/docs/api-reference/endpoints#generate-image).
 */
import type { ModelSpec } from "../../catalog/catalog.ts";
import { GatewayError } from "../../errors/errors.ts";
import type { CreateImageRequest } from "../../gen/imagegate/v1/images_pb.js";
import { own } from "../../runtime/own.ts";

/** The body Recraft documents; only what the request calls for is sent. */
export interface RecraftImagesRequest {
  prompt: string;
  model: string;
  n: number;
  size: string;
  style?: string;
  substyle?: string;
  response_format?: string;
  negative_prompt?: string;
  random_seed?: number;
}

/**
 * The WxH Recraft will produce for this request: from `aspect_ratio`, else `size`, each as the
 * catalog entry maps it for the model's generation (`upstream` in models/recraft.yaml; Recraft's
 * own sizes are sent as they are).
 */
export function recraftSize(req: CreateImageRequest, spec: ModelSpec): string {
  const size = req.size ?? "auto";
  if (req.aspectRatio !== undefined && size === "auto") {
    const mapped = own(spec.aspect_ratio?.upstream, req.aspectRatio);
    if (mapped === undefined) {
      throw new GatewayError(
        "invalid_request",
        `Invalid value: '${req.aspectRatio}' is not an aspect ratio ${spec.model} supports.`,
        { param: "aspect_ratio" },
      );
    }
    return mapped;
  }
  return own(spec.size.upstream, size) ?? size;
}

/** `_vector` models answer SVG (Recraft's naming rule). */
export function isVectorModel(model: string): boolean {
  return /_vector$/.test(model);
}

/** Our request → Recraft's body for `count` images of `size` (already mapped). */
export function toRecraftRequest(
  req: CreateImageRequest,
  model: string,
  count: number,
  size: string,
): RecraftImagesRequest {
  const body: RecraftImagesRequest = { prompt: req.prompt ?? "", model, n: count, size };
  if (req.style !== undefined) body.style = req.style;
  if (req.substyle !== undefined) body.substyle = req.substyle;
  if (req.responseFormat !== undefined) body.response_format = req.responseFormat;
  if (req.negativePrompt !== undefined) body.negative_prompt = req.negativePrompt;
  if (req.seed !== undefined) body.random_seed = req.seed;
  return body;
}
