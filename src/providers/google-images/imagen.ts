/**
 * Imagen through `:predict`: our request → the body, the answer → our result
 * (https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/imagen-api).
 */
import type { ModelSpec } from "../../catalog/catalog.ts";
import type { CreateImageRequest } from "../../gen/imagegate/v1/images_pb.js";
import { type DecodedImages, imageBytes, NO_IMAGES } from "../image-json.ts";
import type { GeneratedImage } from "../types.ts";
import { malformedBody, str } from "../json.ts";
import {
  type CallOutcome,
  type ImagenPredictRequest,
  type ImagenPrediction,
  isObject,
} from "./shapes.ts";
import { aspectRatioOf, producedSize, tierOf } from "./sizes.ts";

/**
 * Our request → an Imagen `:predict` body for `sampleCount` images. `sampleCount` is always
 * sent (AI Studio defaults to 4). A seed needs `addWatermark: false` (Vertex refuses a seed
 * while the watermark is on); `includeRaiReason` makes a filtered answer say why.
 */
export function toImagenRequest(
  req: CreateImageRequest,
  spec: ModelSpec,
  sampleCount: number,
): ImagenPredictRequest {
  const parameters: ImagenPredictRequest["parameters"] = {
    sampleCount,
    aspectRatio: aspectRatioOf(req, spec),
    includeRaiReason: true,
  };
  const tier = tierOf(req, spec);
  if (tier !== undefined) parameters.sampleImageSize = tier;
  if (req.negativePrompt !== undefined) parameters.negativePrompt = req.negativePrompt;
  if (req.seed !== undefined) {
    parameters.seed = req.seed;
    parameters.addWatermark = false;
  }
  return { instances: [{ prompt: req.prompt ?? "" }], parameters };
}

/** The size Imagen produces for a request body (the catalog's `size.produced`). */
export function imagenProducedSize(
  body: ImagenPredictRequest,
  spec: ModelSpec,
): string | undefined {
  const { aspectRatio, sampleImageSize } = body.parameters;
  return producedSize(spec, aspectRatio, sampleImageSize);
}

/**
 * Imagen's 200 body → our images. Only predictions with bytes are images: the extra
 * "Positive Prompt" prediction (safety attributes) is not one, and a `raiFilteredReason`
 * entry says why images are missing. Filtered output is a 200 in three forms (a reason
 * entry, `{}` with no predictions, or fewer images than asked); each missing image counts
 * as filtered, and is not charged. `decoded` holds images already read from the body, by the
 * string that stands in for their value.
 */
export function fromImagenResponse(
  json: unknown,
  requested: number,
  size: string | undefined,
  decoded: DecodedImages = NO_IMAGES,
): CallOutcome {
  if (!isObject(json)) throw malformedBody("the body is not a JSON object");
  const predictions = json.predictions ?? [];
  if (!Array.isArray(predictions)) throw malformedBody("`predictions` is not an array");
  const images: GeneratedImage[] = [];
  let reason: string | undefined;
  for (const [i, item] of (predictions as unknown[]).entries()) {
    if (!isObject(item)) throw malformedBody(`predictions[${i}] is not an object`);
    const p = item as ImagenPrediction;
    if (p.contentType === "Positive Prompt") continue;
    const bytes = str(p.bytesBase64Encoded);
    if (bytes !== undefined && bytes !== "") {
      const revisedPrompt = str(p.prompt);
      images.push({
        bytes: imageBytes(bytes, decoded),
        mimeType: str(p.mimeType) ?? "image/png",
        ...(revisedPrompt !== undefined ? { revisedPrompt } : {}),
      });
      continue;
    }
    reason ??= str(p.raiFilteredReason);
  }
  const filtered = Math.max(0, requested - images.length);
  const outcome: CallOutcome = { result: { images, filtered } };
  if (size !== undefined) outcome.result.size = size;
  if (filtered > 0) {
    outcome.refusal =
      reason ??
      `${filtered} of ${requested} image(s) were filtered out (the answer held ${images.length})`;
  }
  return outcome;
}
