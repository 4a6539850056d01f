/**
 * Bedrock's 200 answer, in the family's shape → our result; content-filtered images counted.
 */
import { type DecodedImages, imageBytes } from "../image-json.ts";
import { malformedBody, str } from "../json.ts";
import type { GeneratedImage, GenerationResult } from "../types.ts";
import { isContentFilterMessage, modelFailure, PROVIDER } from "./errors.ts";
import type { AmazonImageResponse, BedrockPlan, Sd3Response, SdxlResponse } from "./shapes.ts";
import { clip } from "../../errors/redact.ts";

/**
 * SDXL artifacts: SUCCESS is an image; CONTENT_FILTERED is filtered (it may carry a blurred
 * image, which is never returned); ERROR fails the call.
 */
export function fromSdxlResponse(
  json: unknown,
  plan: BedrockPlan,
  _count: number,
  decoded: DecodedImages,
): GenerationResult {
  const { artifacts } = json as SdxlResponse;
  if (!Array.isArray(artifacts)) throw malformedBody("the body has no `artifacts` array", PROVIDER);
  const images: GeneratedImage[] = [];
  let filtered = 0;
  artifacts.forEach((artifact, i) => {
    const reason = str(artifact?.finishReason);
    if (reason === "CONTENT_FILTERED") {
      filtered += 1;
      return;
    }
    if (reason === "ERROR") throw modelFailure(`artifact ${i} finished with ERROR`);
    const b64 = str(artifact?.base64);
    if (b64 === undefined || b64 === "")
      throw malformedBody(`artifacts[${i}] has no base64 image`, PROVIDER);
    images.push({ bytes: imageBytes(b64, decoded), mimeType: "image/png" });
  });
  return { images, filtered, size: sizeOf(plan) };
}

/** SD3 / Stable Image: `finish_reasons[i]` null is success, "Filter reason: …" is filtered. */
export function fromSd3Response(
  json: unknown,
  plan: BedrockPlan,
  _count: number,
  decoded: DecodedImages,
): GenerationResult {
  const body = json as Sd3Response;
  if (!Array.isArray(body.images)) throw malformedBody("the body has no `images` array", PROVIDER);
  const images = body.images as unknown[];
  const reasons = Array.isArray(body.finish_reasons) ? (body.finish_reasons as unknown[]) : [];
  const mimeType = plan.outputFormat === "jpeg" ? "image/jpeg" : "image/png";
  const out: GeneratedImage[] = [];
  let filtered = 0;
  for (let i = 0; i < Math.max(images.length, reasons.length); i++) {
    const reason = str(reasons[i]);
    if (reason?.startsWith("Filter reason")) {
      filtered += 1; // a filtered slot may still hold a placeholder image: never returned
      continue;
    }
    if (reason !== undefined) throw modelFailure(`finish reason '${clip(reason, 100)}'`);
    const b64 = str(images[i]);
    if (b64 === undefined || b64 === "")
      throw malformedBody(`images[${i}] is not a base64 image`, PROVIDER);
    out.push({ bytes: imageBytes(b64, decoded), mimeType });
  }
  const result: GenerationResult = { images: out, filtered, size: sizeOf(plan) };
  if (plan.outputFormat !== undefined) result.outputFormat = plan.outputFormat;
  return result;
}

/**
 * Titan / Nova: `images`, and `error` when something went wrong. A content-filter `error`
 * with fewer images than asked counts the missing ones as filtered.
 */
export function fromAmazonImageResponse(
  json: unknown,
  plan: BedrockPlan,
  count: number,
  decoded: DecodedImages,
): GenerationResult {
  const body = json as AmazonImageResponse;
  const error = str(body.error);
  const list = Array.isArray(body.images) ? (body.images as unknown[]) : undefined;
  if (list === undefined && error === undefined)
    throw malformedBody("the body has no `images` array", PROVIDER);
  const images = (list ?? []).map((b64, i) => {
    if (typeof b64 !== "string" || b64 === "")
      throw malformedBody(`images[${i}] is not a base64 image`, PROVIDER);
    return { bytes: imageBytes(b64, decoded), mimeType: "image/png" };
  });
  if (error !== undefined && !isContentFilterMessage(error) && images.length === 0)
    throw modelFailure(clip(error, 200));
  const filtered =
    error !== undefined && isContentFilterMessage(error) ? Math.max(count - images.length, 0) : 0;
  return { images, filtered, size: sizeOf(plan) };
}

function sizeOf(plan: BedrockPlan): string {
  return `${plan.width}x${plan.height}`;
}
