/**
 * Gemini image models through `:generateContent`: our request → the body, the answer → our
 * result and usage (https://ai.google.dev/gemini-api/docs/image-generation).
 */
import { create } from "@bufbuild/protobuf";
import type { ModelSpec } from "../../catalog/catalog.ts";
import {
  type CreateImageRequest,
  OutputTokensDetailsSchema,
  type Usage,
  UsageSchema,
} from "../../gen/imagegate/v1/images_pb.js";
import { upstreamError } from "../../errors/upstream.ts";
import { type DecodedImages, imageBytes, NO_IMAGES } from "../image-json.ts";
import type { GeneratedImage, GenerationResult } from "../types.ts";
import { malformedBody, str, tokenCount as num } from "../json.ts";
import {
  type CallOutcome,
  type GeminiGenerateContentRequest,
  type GeminiPart,
  type GeminiResponse,
  type ModalityCount,
  isObject,
} from "./shapes.ts";
import { aspectRatioOf, producedSize, tierOf } from "./sizes.ts";
import { clip } from "../../errors/redact.ts";
import { own } from "../../runtime/own.ts";

/**
 * Gemini `finishReason` values that mean the safety system withheld the image
 * (docs/providers/gemini.md, "Refusals and errors").
 */
export const GEMINI_REFUSAL_FINISH_REASONS: ReadonlySet<string> = new Set([
  "IMAGE_SAFETY",
  "IMAGE_PROHIBITED_CONTENT",
  "IMAGE_OTHER",
  "IMAGE_RECITATION",
  "NO_IMAGE",
  "SAFETY",
  "PROHIBITED_CONTENT",
  "BLOCKLIST",
  "SPII",
  "RECITATION",
]);

/** Our request → a Gemini `:generateContent` body asking for text and image output. */
export function toGeminiRequest(
  req: CreateImageRequest,
  spec: ModelSpec,
): GeminiGenerateContentRequest {
  const imageConfig: GeminiGenerateContentRequest["generationConfig"]["imageConfig"] = {
    aspectRatio: aspectRatioOf(req, spec),
  };
  const tier = tierOf(req, spec);
  if (tier !== undefined) imageConfig.imageSize = tier;
  return {
    contents: [{ role: "user", parts: [{ text: req.prompt ?? "" }] }],
    generationConfig: { responseModalities: ["TEXT", "IMAGE"], imageConfig },
  };
}

/** The size a Gemini model produces for a request body (the catalog's `size.produced`). */
export function geminiProducedSize(
  spec: ModelSpec,
  body: GeminiGenerateContentRequest,
): string | undefined {
  const { aspectRatio, imageSize } = body.generationConfig.imageConfig;
  return producedSize(spec, aspectRatio, imageSize);
}

/**
 * Gemini's 200 body → our image. Images are `inlineData` parts, possibly among text parts.
 * No image with a safety `finishReason` or a `promptFeedback.blockReason` is a refusal;
 * tokens are kept only when an image came back (a refusal costs nothing). `decoded` as for Imagen.
 */
export function fromGeminiResponse(
  json: unknown,
  size: string | undefined,
  decoded: DecodedImages = NO_IMAGES,
): CallOutcome {
  if (!isObject(json)) throw malformedBody("the body is not a JSON object");
  const body = json as GeminiResponse;
  if (body.candidates !== undefined && !Array.isArray(body.candidates)) {
    throw malformedBody("`candidates` is not an array");
  }
  const candidate = body.candidates?.[0];
  const parts = candidate?.content?.parts ?? [];
  if (!Array.isArray(parts)) throw malformedBody("`content.parts` is not an array");
  const images: GeneratedImage[] = [];
  const texts: string[] = [];
  for (const item of parts as unknown[]) {
    if (!isObject(item)) continue;
    const part = item as GeminiPart;
    if (part.thought === true) continue;
    const data = str(part.inlineData?.data);
    const mimeType = str(part.inlineData?.mimeType) ?? "image/png";
    if (data !== undefined && mimeType.startsWith("image/")) {
      images.push({ bytes: imageBytes(data, decoded), mimeType });
    } else if (typeof part.text === "string") {
      texts.push(part.text);
    }
  }
  const base: GenerationResult = { images, filtered: 0 };
  if (size !== undefined) base.size = size;
  if (images.length > 0) {
    const usage = geminiUsage(body.usageMetadata);
    if (usage !== undefined) base.usage = usage;
    return { result: base };
  }
  const blockReason = str(body.promptFeedback?.blockReason);
  if (blockReason !== undefined) {
    const detail = str(body.promptFeedback?.blockReasonMessage);
    return {
      result: { ...base, filtered: 1 },
      refusal: `prompt blocked (${blockReason})${detail ? `: ${detail}` : ""}`,
    };
  }
  const finishReason = str(candidate?.finishReason);
  if (finishReason !== undefined && GEMINI_REFUSAL_FINISH_REASONS.has(finishReason)) {
    const detail = str(candidate?.finishMessage);
    return {
      result: { ...base, filtered: 1 },
      refusal: `no image (finishReason ${finishReason})${detail ? `: ${detail}` : ""}`,
    };
  }
  const said = clip(texts.join(" ").trim(), 200);
  throw upstreamError(
    "no_images",
    `the model answered without an image (finishReason ${finishReason ?? "none"})${said ? `: ${said}` : ""}`,
  );
}

/** `usageMetadata` → our usage: prompt tokens in, candidate tokens out (split by modality when given). */
export function geminiUsage(meta: GeminiResponse["usageMetadata"]): Usage | undefined {
  if (!isObject(meta)) return undefined;
  const input = num(meta.promptTokenCount);
  const output = num(meta.candidatesTokenCount);
  if (input === 0 && output === 0) return undefined;
  const inBy = byModality(meta.promptTokensDetails);
  const outBy = byModality(meta.candidatesTokensDetails);
  const usage = create(UsageSchema, {
    inputTokens: input,
    outputTokens: output,
    totalTokens: input + output,
    inputTokensDetails: {
      textTokens: inBy === undefined ? input : (inBy.TEXT ?? 0),
      imageTokens: inBy?.IMAGE ?? 0,
    },
  });
  if (outBy !== undefined) {
    usage.outputTokensDetails = create(OutputTokensDetailsSchema, {
      imageTokens: outBy.IMAGE ?? 0,
      textTokens: outBy.TEXT ?? 0,
    });
  }
  return usage;
}

function byModality(details: unknown): Record<string, number> | undefined {
  if (!Array.isArray(details)) return undefined;
  const out: Record<string, number> = {};
  for (const d of details as ModalityCount[]) {
    const modality = str(d?.modality);
    if (modality !== undefined && modality !== "__proto__")
      out[modality] = (own(out, modality) ?? 0) + num(d.tokenCount);
  }
  return out;
}
