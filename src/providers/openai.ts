/**
 * OpenAI Images API adapter (https://platform.openai.com/docs/api-reference/images/create).
 * Pure mapping functions plus one upstream call. Azure OpenAI reuses the mappings.
 */
import { create } from "@bufbuild/protobuf";
import type { GatewayError } from "../errors/errors.ts";
import { upstreamError } from "../errors/upstream.ts";
import { type CreateImageRequest, UsageSchema } from "../gen/imagegate/v1/images_pb.js";
import { first, retryAfterSeconds, sendUpstream, type UpstreamResponse } from "./http.ts";
import {
  type DecodedImages,
  imageBytes,
  NO_IMAGES,
  OPENAI_IMAGE_KEYS,
  parseImagesJson,
} from "./image-json.ts";
import { statusError } from "./status.ts";
import type { GenerationResult, ProviderAdapter, UpstreamCall } from "./types.ts";
import { malformedBody, parseJson, str, tokenCount as num } from "./json.ts";

export const OPENAI_DEFAULT_BASE = "https://api.openai.com/v1";

/** The request body OpenAI documents; only fields the client set are sent. */
export interface OpenAIImagesRequest {
  prompt: string;
  model?: string;
  n?: number;
  quality?: string;
  response_format?: string;
  size?: string;
  style?: string;
  user?: string;
  background?: string;
  moderation?: string;
  output_format?: string;
  output_compression?: number;
  safety_identifier?: string;
}

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

interface OpenAIErrorBody {
  error?: {
    message?: unknown;
    type?: unknown;
    param?: unknown;
    code?: unknown;
    [k: string]: unknown;
  };
}

/**
 * Our request → OpenAI's body. Validation already ran; this only copies what was set.
 * `response_format` goes only to models that take it (DALL·E); GPT-image models reject it
 * and always answer base64, which is what a client asking `b64_json` wants anyway.
 */
export function toOpenAIRequest(
  req: CreateImageRequest,
  model: string | undefined,
  takesResponseFormat = true,
): OpenAIImagesRequest {
  const body: OpenAIImagesRequest = { prompt: req.prompt ?? "" };
  if (model !== undefined) body.model = model;
  if (req.n !== undefined) body.n = req.n;
  if (req.quality !== undefined) body.quality = req.quality;
  if (req.responseFormat !== undefined && takesResponseFormat)
    body.response_format = req.responseFormat;
  if (req.size !== undefined) body.size = req.size;
  if (req.style !== undefined) body.style = req.style;
  if (req.user !== undefined) body.user = req.user;
  if (req.background !== undefined) body.background = req.background;
  if (req.moderation !== undefined) body.moderation = req.moderation;
  if (req.outputFormat !== undefined) body.output_format = req.outputFormat;
  if (req.outputCompression !== undefined) body.output_compression = req.outputCompression;
  if (req.safetyIdentifier !== undefined) body.safety_identifier = req.safetyIdentifier;
  return body;
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
  const mimeType = MIME_BY_FORMAT[outputFormat] ?? "image/png";
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

/** OpenAI's error answer → the contract's error table. `provider` prefixes the message. */
export function fromOpenAIError(res: UpstreamResponse, provider = "OpenAI"): GatewayError {
  const parsed = parseJson(res.body) as OpenAIErrorBody | undefined;
  const err = parsed?.error;
  const upstreamMessage =
    str(err?.message) ?? (res.body.toString("utf8").slice(0, 200) || "no body");
  const code = str(err?.code);
  const type = str(err?.type);
  const message = `${provider}: ${upstreamMessage}`;
  if (code === "content_policy_violation" || code === "moderation_blocked") {
    const details: Record<string, unknown> = { provider_code: code };
    if (err?.moderation_details !== undefined) details.moderation_details = err.moderation_details;
    // Azure OpenAI adds its content filter's verdict (`inner_error`, `innererror` in older versions).
    const inner = err?.inner_error ?? err?.innererror;
    if (inner !== null && typeof inner === "object") {
      const {
        code: innerCode,
        content_filter_results,
        revised_prompt,
      } = inner as Record<string, unknown>;
      if (typeof innerCode === "string") details.provider_inner_code = innerCode;
      if (content_filter_results !== undefined)
        details.content_filter_results = content_filter_results;
      if (typeof revised_prompt === "string") details.revised_prompt = revised_prompt;
    }
    return upstreamError("refused", message, { details });
  }
  const quota = code === "insufficient_quota" || type === "insufficient_quota";
  return statusError(
    {
      provider,
      status: res.status,
      upstreamMessage,
      upstreamCode: code,
      clientCode: code,
      param: str(err?.param),
      retryAfterSeconds: quota ? undefined : retryAfterSeconds(res.headers),
    },
    res.status === 429 && quota ? "quota_exhausted" : undefined,
  );
}

export const openaiAdapter: ProviderAdapter = {
  provider: "openai",
  async generate({
    deployment,
    request,
    signal,
    allocate,
  }: UpstreamCall): Promise<GenerationResult> {
    const { params } = deployment;
    const base = (params.api_base ?? OPENAI_DEFAULT_BASE).replace(/\/+$/, "");
    const headers: Record<string, string> = {
      authorization: `Bearer ${params.api_key ?? ""}`,
      "content-type": "application/json",
    };
    if (params.organization !== undefined) headers["openai-organization"] = params.organization;
    const res = await sendUpstream(`${base}/images/generations`, {
      method: "POST",
      headers,
      body: JSON.stringify(
        toOpenAIRequest(request, deployment.model, deployment.spec.family === "dalle"),
      ),
      signal,
      timeoutMs: deployment.timeoutMs,
    });
    if (res.status !== 200) throw fromOpenAIError(res);
    const contentType = first(res.headers["content-type"]) ?? "";
    const parsed = contentType.includes("json")
      ? parseImagesJson(res.chunks, OPENAI_IMAGE_KEYS, allocate)
      : undefined;
    if (parsed === undefined) throw malformedBody("the body is not JSON");
    return fromOpenAIResponse(parsed.json, request, parsed.images);
  },
};
