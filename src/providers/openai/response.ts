/**
 * OpenAI's 200 answer → our result (Azure OpenAI answers the same shape).
 */
import { create } from "@bufbuild/protobuf";
import { type CreateImageRequest, UsageSchema } from "../../gen/imagegate/v1/images_pb.js";
import { type DecodedImages, imageBytes, NO_IMAGES } from "../image-json.ts";
import type { GenerationResult } from "../types.ts";
import { malformedBody, str, tokenCount as num } from "../json.ts";
import { own } from "../../runtime/own.ts";

interface OpenAIImagesResponse {
  created?: number;
  data?: Array<{ url?: unknown; b64_json?: unknown; revised_prompt?: unknown }>;
  size?: unknown;
  quality?: unknown;
  background?: unknown;
  output_format?: unknown;
  usage?: {
    input_tokens?: unknown;
    output_tokens?: unknown;
    total_tokens?: unknown;
    input_tokens_details?: { text_tokens?: unknown; image_tokens?: unknown };
    output_tokens_details?: { text_tokens?: unknown; image_tokens?: unknown };
  };
}

const MIME_BY_FORMAT: Record<string, string> = {
  png: "image/png",
  jpeg: "image/jpeg",
  webp: "image/webp",
};

/**
 * OpenAI's 200 body → our result. Anything without images is a malformed answer, never a success.
 * `decoded` holds images already read from the body (`image-json.ts`), by the string that
 * stands in for their `b64_json` value.
 */
export function fromOpenAIResponse(
  json: unknown,
  requested: CreateImageRequest,
  decoded: DecodedImages = NO_IMAGES,
): GenerationResult {
  if (
    json === null ||
    typeof json !== "object" ||
    !Array.isArray((json as OpenAIImagesResponse).data)
  ) {
    throw malformedBody("the body has no `data` array");
  }
  const body = json as OpenAIImagesResponse;
  const outputFormat = str(body.output_format) ?? requested.outputFormat ?? "png";
  const mimeType = own(MIME_BY_FORMAT, outputFormat) ?? "image/png";
  const images = (body.data ?? []).map((item, i) => {
    if (item === null || typeof item !== "object")
      throw malformedBody(`data[${i}] is not an object`);
    const url = str(item.url);
    const b64 = str(item.b64_json);
    if (url === undefined && b64 === undefined)
      throw malformedBody(`data[${i}] has neither url nor b64_json`);
    const revisedPrompt = str(item.revised_prompt);
    const bytes = b64 === undefined ? undefined : imageBytes(b64, decoded);
    // Buffer.from skips what is not base64: "" or "!!!!" would become an empty image.
    if (bytes !== undefined && bytes.length === 0)
      throw malformedBody(`data[${i}].b64_json holds no base64 data`);
    return {
      mimeType,
      ...(bytes !== undefined ? { bytes } : { url }),
      ...(revisedPrompt !== undefined ? { revisedPrompt } : {}),
    };
  });
  if (images.length === 0) throw malformedBody("the body has no images");
  const result: GenerationResult = { images, filtered: 0 };
  const size = str(body.size);
  if (size !== undefined) result.size = size;
  const quality = str(body.quality);
  if (quality !== undefined) result.quality = quality;
  const background = str(body.background);
  if (background !== undefined) result.background = background;
  if (body.output_format !== undefined) result.outputFormat = outputFormat;
  if (body.usage !== null && typeof body.usage === "object") {
    const u = body.usage;
    result.usage = create(UsageSchema, {
      inputTokens: num(u.input_tokens),
      outputTokens: num(u.output_tokens),
      totalTokens: num(u.total_tokens) || num(num(u.input_tokens) + num(u.output_tokens)),
      inputTokensDetails: {
        textTokens: num(u.input_tokens_details?.text_tokens),
        imageTokens: num(u.input_tokens_details?.image_tokens),
      },
      ...(u.output_tokens_details !== null && typeof u.output_tokens_details === "object"
        ? {
            outputTokensDetails: {
              imageTokens: num(u.output_tokens_details.image_tokens),
              textTokens: num(u.output_tokens_details.text_tokens),
            },
          }
        : {}),
    });
  }
  return result;
}
