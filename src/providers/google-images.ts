/**
 * Google image generation, shared by Google AI Studio (`gemini/…`) and Vertex AI
 * (`vertex_ai/…`). Both serve Imagen through `:predict` and Gemini image models through
 * `:generateContent`, with the same bodies, responses, refusals and error shape; the two
 * adapters differ only in URL and credentials (a `GoogleEndpoint`).
 *
 * Imagen: https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/imagen-api
 * Gemini image output: https://ai.google.dev/gemini-api/docs/image-generation
 * Errors: https://cloud.google.com/apis/design/errors
 * Facts and tables: shared/reference/providers.md §3, §4 and §7.
 */
import { create } from "@bufbuild/protobuf";
import { GatewayError, invalidParam } from "../errors/errors.ts";
import {
  type CreateImageRequest,
  OutputTokensDetailsSchema,
  type Usage,
  UsageSchema,
} from "../gen/imagegate/v1/images_pb.js";
import { reasonForStatus, type UpstreamReason, upstreamError } from "../errors/upstream.ts";
import { first, sendUpstream, type UpstreamResponse } from "./http.ts";
import {
  type DecodedImages,
  imageBytes,
  NO_IMAGES,
  type ParsedImagesBody,
  parseImagesJson,
} from "./image-json.ts";
import { fanOut, requireImages } from "./results.ts";
import { statusError } from "./status.ts";
import type { GeneratedImage, GenerationResult, UpstreamCall } from "./types.ts";
import { malformedBody, parseJson, str, tokenCount as num } from "./json.ts";

/** Where each answer holds its base64 images: read as bytes straight from the body (`image-json.ts`). */
export const IMAGEN_IMAGE_KEYS: readonly string[] = ["bytesBase64Encoded"];
export const GEMINI_IMAGE_KEYS: readonly string[] = ["data"]; // `inlineData.data`

// ---------------------------------------------------------------------------------------------
// Tables (providers.md §7: the nearest ratio wins; the size reported is the one produced)
// ---------------------------------------------------------------------------------------------

export const IMAGEN_ASPECT_RATIOS = ["1:1", "3:4", "4:3", "9:16", "16:9"] as const;
export type ImagenAspectRatio = (typeof IMAGEN_ASPECT_RATIOS)[number];

export const GEMINI_ASPECT_RATIOS = [
  "1:1",
  "2:3",
  "3:2",
  "3:4",
  "4:3",
  "4:5",
  "5:4",
  "9:16",
  "16:9",
  "21:9",
] as const;
export type GeminiAspectRatio = (typeof GEMINI_ASPECT_RATIOS)[number];

/** Imagen `sampleImageSize` and Gemini `imageSize`. */
export type ImageTier = "1K" | "2K" | "4K";

/** OpenAI `size` → Imagen `aspectRatio`. */
export const IMAGEN_ASPECT_BY_SIZE: Readonly<Record<string, ImagenAspectRatio>> = {
  "256x256": "1:1",
  "512x512": "1:1",
  "1024x1024": "1:1",
  auto: "1:1",
  "1792x1024": "16:9",
  "1024x1792": "9:16",
  "1536x1024": "4:3",
  "1024x1536": "3:4",
};

/** OpenAI `size` → Gemini `imageConfig.aspectRatio`. */
export const GEMINI_ASPECT_BY_SIZE: Readonly<Record<string, GeminiAspectRatio>> = {
  "256x256": "1:1",
  "512x512": "1:1",
  "1024x1024": "1:1",
  auto: "1:1",
  "1792x1024": "16:9",
  "1024x1792": "9:16",
  "1536x1024": "3:2",
  "1024x1536": "2:3",
};

/** Pixels Imagen produces per aspect ratio: 1K from providers.md §7; 2K doubles each side. */
export const IMAGEN_PIXELS: Readonly<
  Record<ImagenAspectRatio, Readonly<Record<"1K" | "2K", string>>>
> = {
  "1:1": { "1K": "1024x1024", "2K": "2048x2048" },
  "3:4": { "1K": "896x1280", "2K": "1792x2560" },
  "4:3": { "1K": "1280x896", "2K": "2560x1792" },
  "9:16": { "1K": "768x1408", "2K": "1536x2816" },
  "16:9": { "1K": "1408x768", "2K": "2816x1536" },
};

type GeminiPixels = Readonly<
  Record<GeminiAspectRatio, Readonly<Partial<Record<ImageTier, string>>>>
>;

/** gemini-2.5-flash-image: one size per ratio (Gemini API image-generation docs). */
const GEMINI_25_FLASH_PIXELS: GeminiPixels = {
  "1:1": { "1K": "1024x1024" },
  "2:3": { "1K": "832x1248" },
  "3:2": { "1K": "1248x832" },
  "3:4": { "1K": "864x1184" },
  "4:3": { "1K": "1184x864" },
  "4:5": { "1K": "896x1152" },
  "5:4": { "1K": "1152x896" },
  "9:16": { "1K": "768x1344" },
  "16:9": { "1K": "1344x768" },
  "21:9": { "1K": "1536x672" },
};

/** gemini-3-pro-image-preview: 1K, 2K and 4K per ratio (Gemini API image-generation docs). */
const GEMINI_3_PRO_PIXELS: GeminiPixels = {
  "1:1": { "1K": "1024x1024", "2K": "2048x2048", "4K": "4096x4096" },
  "2:3": { "1K": "848x1264", "2K": "1696x2528", "4K": "3392x5056" },
  "3:2": { "1K": "1264x848", "2K": "2528x1696", "4K": "5056x3392" },
  "3:4": { "1K": "896x1200", "2K": "1792x2400", "4K": "3584x4800" },
  "4:3": { "1K": "1200x896", "2K": "2400x1792", "4K": "4800x3584" },
  "4:5": { "1K": "928x1152", "2K": "1856x2304", "4K": "3712x4608" },
  "5:4": { "1K": "1152x928", "2K": "2304x1856", "4K": "4608x3712" },
  "9:16": { "1K": "768x1376", "2K": "1536x2752", "4K": "3072x5504" },
  "16:9": { "1K": "1376x768", "2K": "2752x1536", "4K": "5504x3072" },
  "21:9": { "1K": "1584x672", "2K": "3168x1344", "4K": "6336x2688" },
};

/** Pixel tables by model-id prefix; the first match wins, the last is the default. */
export const GEMINI_PIXELS: readonly { prefix: string; pixels: GeminiPixels }[] = [
  { prefix: "gemini-3-pro-image", pixels: GEMINI_3_PRO_PIXELS },
  { prefix: "", pixels: GEMINI_25_FLASH_PIXELS },
];

/**
 * OpenAI `quality` → Imagen `sampleImageSize` / Gemini `imageSize` (providers.md §7: hd/high
 * is 2K). Only sent for models whose catalog entry lists `quality` (Imagen 4 Standard and
 * Ultra, Gemini 3 Pro); the others have no size setting and reject it.
 */
export const TIER_BY_QUALITY: Readonly<Record<string, "1K" | "2K">> = {
  auto: "1K",
  low: "1K",
  medium: "1K",
  standard: "1K",
  high: "2K",
  hd: "2K",
};

/** Gemini `finishReason` values that mean the safety system withheld the image (providers.md §3). */
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

/** A blocked prompt comes back as a 400 INVALID_ARGUMENT whose message says so (providers.md §4). */
const BLOCKED_PROMPT_MESSAGES: readonly RegExp[] = [
  /sensitive words/i,
  /prompt could not be submitted/i,
  /responsible ai practices/i,
  /usage guidelines/i,
  /Error Code: 58061214/i,
];

/** `google.rpc.ErrorInfo` reasons that mean the gateway's own credential was refused. */
const AUTH_REASONS: ReadonlySet<string> = new Set([
  "API_KEY_INVALID",
  "API_KEY_EXPIRED",
  "API_KEY_SERVICE_BLOCKED",
  "ACCESS_TOKEN_EXPIRED",
  "ACCESS_TOKEN_TYPE_UNSUPPORTED",
  "CREDENTIALS_MISSING",
  "SERVICE_DISABLED",
  "IAM_PERMISSION_DENIED",
]);

/** Google request field names → the request field a client sent (the 400's `param`). */
const PARAM_BY_UPSTREAM_FIELD: Readonly<Record<string, string>> = {
  prompt: "prompt",
  text: "prompt",
  sampleCount: "n",
  negativePrompt: "negative_prompt",
  seed: "seed",
  aspectRatio: "size",
  sampleImageSize: "quality",
  imageSize: "quality",
};

// ---------------------------------------------------------------------------------------------
// Upstream shapes
// ---------------------------------------------------------------------------------------------

/** Imagen `:predict` body. */
export interface ImagenPredictRequest {
  instances: [{ prompt: string }];
  parameters: {
    sampleCount: number;
    aspectRatio: ImagenAspectRatio;
    sampleImageSize?: "1K" | "2K";
    negativePrompt?: string;
    seed?: number;
    addWatermark?: boolean;
    includeRaiReason: boolean;
  };
}

interface ImagenPrediction {
  bytesBase64Encoded?: unknown;
  mimeType?: unknown;
  prompt?: unknown;
  raiFilteredReason?: unknown;
  contentType?: unknown;
}

/** Gemini `:generateContent` body asking for an image. */
export interface GeminiGenerateContentRequest {
  contents: [{ role: "user"; parts: [{ text: string }] }];
  generationConfig: {
    responseModalities: ["TEXT", "IMAGE"];
    imageConfig: { aspectRatio: GeminiAspectRatio; imageSize?: "1K" | "2K" };
  };
}

interface GeminiPart {
  text?: unknown;
  inlineData?: { mimeType?: unknown; data?: unknown };
  thought?: unknown;
}

interface ModalityCount {
  modality?: unknown;
  tokenCount?: unknown;
}

interface GeminiResponse {
  candidates?: Array<{
    content?: { parts?: unknown };
    finishReason?: unknown;
    finishMessage?: unknown;
  }>;
  promptFeedback?: { blockReason?: unknown; blockReasonMessage?: unknown };
  usageMetadata?: {
    promptTokenCount?: unknown;
    candidatesTokenCount?: unknown;
    promptTokensDetails?: unknown;
    candidatesTokensDetails?: unknown;
  };
}

interface GoogleErrorBody {
  error?: { code?: unknown; message?: unknown; status?: unknown; details?: unknown };
}

/** One upstream call's answer, with the safety system's reason when it withheld images. */
export interface CallOutcome {
  result: GenerationResult;
  refusal?: string;
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/**
 * Our request → an Imagen `:predict` body for `sampleCount` images. `sampleCount` is always
 * sent (AI Studio defaults to 4). A seed needs `addWatermark: false` (Vertex refuses a seed
 * while the watermark is on); `includeRaiReason` makes a filtered answer say why.
 */
export function toImagenRequest(
  req: CreateImageRequest,
  sampleCount: number,
): ImagenPredictRequest {
  const parameters: ImagenPredictRequest["parameters"] = {
    sampleCount,
    aspectRatio: imagenAspectRatio(req),
    includeRaiReason: true,
  };
  const tier = req.quality === undefined ? undefined : TIER_BY_QUALITY[req.quality];
  if (tier !== undefined) parameters.sampleImageSize = tier;
  if (req.negativePrompt !== undefined) parameters.negativePrompt = req.negativePrompt;
  if (req.seed !== undefined) {
    parameters.seed = req.seed;
    parameters.addWatermark = false;
  }
  return { instances: [{ prompt: req.prompt ?? "" }], parameters };
}

/** Our request → a Gemini `:generateContent` body asking for text and image output. */
export function toGeminiRequest(req: CreateImageRequest): GeminiGenerateContentRequest {
  const imageConfig: GeminiGenerateContentRequest["generationConfig"]["imageConfig"] = {
    aspectRatio: geminiAspectRatio(req),
  };
  const tier = req.quality === undefined ? undefined : TIER_BY_QUALITY[req.quality];
  if (tier !== undefined) imageConfig.imageSize = tier;
  return {
    contents: [{ role: "user", parts: [{ text: req.prompt ?? "" }] }],
    generationConfig: { responseModalities: ["TEXT", "IMAGE"], imageConfig },
  };
}

export function imagenAspectRatio(req: CreateImageRequest): ImagenAspectRatio {
  return aspectRatio(req, IMAGEN_ASPECT_BY_SIZE, IMAGEN_ASPECT_RATIOS);
}

export function geminiAspectRatio(req: CreateImageRequest): GeminiAspectRatio {
  return aspectRatio(req, GEMINI_ASPECT_BY_SIZE, GEMINI_ASPECT_RATIOS);
}

/** `aspect_ratio` as sent, else the table's ratio for `size` (default 1:1). */
function aspectRatio<R extends string>(
  req: CreateImageRequest,
  bySize: Readonly<Record<string, R>>,
  known: readonly R[],
): R {
  if (req.aspectRatio !== undefined) {
    if ((known as readonly string[]).includes(req.aspectRatio)) return req.aspectRatio as R;
    throw invalidParam(
      "aspect_ratio",
      `Invalid 'aspect_ratio': '${req.aspectRatio}' has no upstream equivalent.`,
    );
  }
  const ratio = bySize[req.size ?? "1024x1024"];
  if (ratio === undefined)
    throw invalidParam("size", `Invalid 'size': '${req.size}' has no upstream aspect ratio.`);
  return ratio;
}

/** The size Imagen produces for a request body. */
export function imagenProducedSize(body: ImagenPredictRequest): string {
  return IMAGEN_PIXELS[body.parameters.aspectRatio][body.parameters.sampleImageSize ?? "1K"];
}

/** The size a Gemini model produces for a request body. */
export function geminiProducedSize(
  model: string,
  body: GeminiGenerateContentRequest,
): string | undefined {
  const { aspectRatio: ratio, imageSize } = body.generationConfig.imageConfig;
  const table = GEMINI_PIXELS.find((t) => model.startsWith(t.prefix))?.pixels;
  return table?.[ratio][imageSize ?? "1K"];
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

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
  size: string,
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
  const outcome: CallOutcome = { result: { images, filtered, size } };
  if (filtered > 0) {
    outcome.refusal =
      reason ??
      `${filtered} of ${requested} image(s) were filtered out (the answer held ${images.length})`;
  }
  return outcome;
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
  const said = texts.join(" ").trim().slice(0, 200);
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
    if (modality !== undefined) out[modality] = (out[modality] ?? 0) + num(d.tokenCount);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/**
 * Google's error answer (`{"error":{code, message, status, details}}`) → the contract's
 * error table. The retry hint is only `google.rpc.RetryInfo.retryDelay` (no header).
 */
export function fromGoogleError(res: UpstreamResponse, label: string): GatewayError {
  const err = (parseJson(res.body) as GoogleErrorBody | undefined)?.error;
  const upstreamMessage =
    str(err?.message) ?? (res.body.toString("utf8").slice(0, 200) || "no body");
  const status = str(err?.status) ?? "";
  const details = Array.isArray(err?.details) ? (err.details as unknown[]).filter(isObject) : [];
  const message = `${label}: ${upstreamMessage}`;
  const http = res.status;

  if (
    (http === 400 || status === "INVALID_ARGUMENT") &&
    BLOCKED_PROMPT_MESSAGES.some((re) => re.test(upstreamMessage))
  ) {
    return upstreamError("refused", message, {
      details: { provider_status: status || String(http) },
    });
  }
  const info = errorInfoReason(details);
  const reason =
    info !== undefined && AUTH_REASONS.has(info)
      ? "auth_failed"
      : http === 401 || http === 403 || http === 429
        ? reasonForStatus(http)
        : (REASON_BY_GOOGLE_STATUS[status] ?? googleHttpReason(http, status));
  return statusError(
    {
      provider: label,
      status: http,
      upstreamMessage,
      upstreamCode: status || (reason === "auth_failed" ? "error" : undefined),
      credentialMessageIsSafe: true,
      clientCode: reason === "bad_request" ? "upstream_invalid_argument" : undefined,
      param: reason === "bad_request" ? paramOf(details, upstreamMessage) : undefined,
      retryAfterSeconds: retryDelaySeconds(details),
    },
    reason,
  );
}

/** Google's canonical status names (`error.status`) that say the reason themselves. */
const REASON_BY_GOOGLE_STATUS: Readonly<Record<string, UpstreamReason>> = {
  UNAUTHENTICATED: "auth_failed",
  PERMISSION_DENIED: "auth_failed",
  RESOURCE_EXHAUSTED: "throttled",
  DEADLINE_EXCEEDED: "timeout",
  INVALID_ARGUMENT: "bad_request",
  OUT_OF_RANGE: "bad_request",
  NOT_FOUND: "not_found",
};

/** Without a telling status name: Google's 504 is its deadline; another named 400 is not the request's fault. */
function googleHttpReason(http: number, status: string): UpstreamReason {
  if (http === 504) return "timeout";
  if (http === 400 && status !== "") return "server_error";
  return reasonForStatus(http);
}

function errorInfoReason(details: readonly Record<string, unknown>[]): string | undefined {
  const info = details.find((d) => str(d["@type"])?.endsWith("google.rpc.ErrorInfo"));
  return str(info?.reason);
}

/** `RetryInfo.retryDelay`, a protobuf Duration: "53s", "1.5s" in JSON, or `{seconds, nanos}`. */
export function retryDelaySeconds(details: readonly Record<string, unknown>[]): number | undefined {
  const info = details.find((d) => str(d["@type"])?.endsWith("google.rpc.RetryInfo"));
  const delay = info?.retryDelay;
  if (typeof delay === "string") {
    const m = /^(\d+(?:\.\d+)?)s$/.exec(delay.trim());
    return m ? Number(m[1]) : undefined;
  }
  if (isObject(delay)) {
    const seconds = Number(delay.seconds ?? 0);
    const nanos = Number(delay.nanos ?? 0);
    return Number.isFinite(seconds) && Number.isFinite(nanos) ? seconds + nanos / 1e9 : undefined;
  }
  return undefined;
}

/** The request field an INVALID_ARGUMENT is about: from `BadRequest.fieldViolations`, else the message. */
function paramOf(details: readonly Record<string, unknown>[], message: string): string | undefined {
  const bad = details.find((d) => str(d["@type"])?.endsWith("google.rpc.BadRequest"));
  const fields = Array.isArray(bad?.fieldViolations)
    ? (bad.fieldViolations as unknown[]).map((v) => (isObject(v) ? str(v.field) : undefined))
    : [];
  for (const field of fields) {
    const last = field
      ?.split(/[.[\]]/)
      .filter(Boolean)
      .at(-1);
    if (last !== undefined && PARAM_BY_UPSTREAM_FIELD[last] !== undefined)
      return PARAM_BY_UPSTREAM_FIELD[last];
  }
  for (const [name, param] of Object.entries(PARAM_BY_UPSTREAM_FIELD)) {
    if (new RegExp(`\\b${name}\\b`).test(message)) return param;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The call
// ---------------------------------------------------------------------------------------------

/** Where and how one Google API is called; the rest is shared. */
export interface GoogleEndpoint {
  /** Names the upstream in messages: "Google AI Studio", "Vertex AI". */
  label: string;
  /** The URL of `method` for the deployment's model. */
  url(method: "predict" | "generateContent"): string;
  /** Credential headers for one call (Vertex may have to fetch a token first). */
  headers(signal: AbortSignal): Promise<Record<string, string>>;
  /** Told when the upstream refused the credential, so a cached one is dropped. */
  onAuthRejected?(): void;
}

/** Images per upstream call by family: Imagen's sampleCount tops out at 4, Gemini makes one. */
const FAMILY_MAX_PER_CALL: Readonly<Record<string, number>> = { imagen: 4, "gemini-image": 1 };

/**
 * Runs a request on a Google API: fans out past the per-call maximum, merges the answers,
 * and turns "nothing survived the safety filter" into a refusal. A chunk whose images were
 * all filtered does not fail the others: survivors are returned and only they are charged.
 */
export async function generateGoogleImages(
  call: UpstreamCall,
  endpoint: GoogleEndpoint,
): Promise<GenerationResult> {
  const { deployment, request } = call;
  const family = deployment.spec.family;
  const familyMax = FAMILY_MAX_PER_CALL[family];
  if (familyMax === undefined) {
    throw new GatewayError(
      "internal",
      `${endpoint.label} cannot serve the '${family}' family (${deployment.model})`,
    );
  }
  const perCall = Math.min(deployment.spec.upstream_max_n, familyMax);
  const refusals: string[] = [];
  const once = async (count: number): Promise<GenerationResult> => {
    const outcome =
      family === "imagen"
        ? await imagenCall(call, endpoint, count)
        : await geminiCall(call, endpoint);
    if (outcome.refusal !== undefined) refusals.push(outcome.refusal);
    return outcome.result;
  };
  const merged = await fanOut(request.n ?? 1, perCall, once);
  return requireImages(merged, endpoint.label, refusals[0]);
}

async function imagenCall(
  call: UpstreamCall,
  endpoint: GoogleEndpoint,
  count: number,
): Promise<CallOutcome> {
  const body = toImagenRequest(call.request, count);
  const { json, images } = await postJson(call, endpoint, "predict", body, IMAGEN_IMAGE_KEYS);
  return fromImagenResponse(json, count, imagenProducedSize(body), images);
}

async function geminiCall(call: UpstreamCall, endpoint: GoogleEndpoint): Promise<CallOutcome> {
  const body = toGeminiRequest(call.request);
  const { json, images } = await postJson(
    call,
    endpoint,
    "generateContent",
    body,
    GEMINI_IMAGE_KEYS,
  );
  return fromGeminiResponse(json, geminiProducedSize(call.deployment.model, body), images);
}

async function postJson(
  { deployment, signal, allocate }: UpstreamCall,
  endpoint: GoogleEndpoint,
  method: "predict" | "generateContent",
  body: object,
  imageKeys: readonly string[],
): Promise<ParsedImagesBody> {
  const headers = { ...(await endpoint.headers(signal)), "content-type": "application/json" };
  const res = await sendUpstream(endpoint.url(method), {
    method: "POST",
    headers,
    body: JSON.stringify(body),
    signal,
    timeoutMs: deployment.timeoutMs,
  });
  if (res.status !== 200) {
    const error = fromGoogleError(res, endpoint.label);
    if (error.reason === "auth_failed") endpoint.onAuthRejected?.();
    throw error;
  }
  const contentType = first(res.headers["content-type"]) ?? "";
  const parsed = contentType.includes("json")
    ? parseImagesJson(res.chunks, imageKeys, allocate)
    : undefined;
  if (parsed === undefined) throw malformedBody("the body is not JSON");
  return parsed;
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
