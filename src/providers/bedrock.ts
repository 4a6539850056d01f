/**
 * AWS Bedrock adapter: `bedrock/<modelId>` → `POST {api_base}/model/{modelId}/invoke`
 * (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html),
 * signed with SigV4 (service `bedrock`). The body has one of four shapes, chosen by the
 * catalog entry's `family`: Stability SDXL, Stability SD3 / Stable Image, Amazon Titan Image
 * Generator, Amazon Nova Canvas. Pure mapping functions and tables, plus one signed call.
 */
import { randomInt } from "node:crypto";
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import type { Family, ModelSpec } from "../catalog/catalog.ts";
import type { DeploymentParams } from "../config/schema.ts";
import { GatewayError, invalidParam } from "../errors/errors.ts";
import { type UpstreamReason, upstreamError } from "../errors/upstream.ts";
import type { CreateImageRequest } from "../gen/imagegate/v1/images_pb.js";
import { first, sendUpstream, type UpstreamResponse } from "./http.ts";
import { type DecodedImages, imageBytes, NO_IMAGES, parseImagesJson } from "./image-json.ts";
import { fanOut, requireImages } from "./results.ts";
import { statusError } from "./status.ts";
import type { GeneratedImage, GenerationResult, ProviderAdapter, UpstreamCall } from "./types.ts";
import { malformedBody, parseJson, str } from "./json.ts";

const PROVIDER = "Bedrock";

/** Where a 200 answer holds its images: SDXL `artifacts[].base64`, SD3/Titan/Nova `images[]`. */
export const BEDROCK_IMAGE_KEYS: readonly string[] = ["base64", "images"];

/** SigV4 signs Bedrock Runtime as `bedrock`, not `bedrock-runtime`. */
export const BEDROCK_SIGNING_SERVICE = "bedrock";

// ---------------------------------------------------------------------------------------------
// Tables (providers.md §7: nearest ratio wins; the size produced is reported)
// ---------------------------------------------------------------------------------------------

/** OpenAI size → the SDXL size produced; SDXL's own sizes map to themselves. */
export const SDXL_SIZES: Readonly<Record<string, string>> = {
  auto: "1024x1024",
  "256x256": "1024x1024",
  "512x512": "1024x1024",
  "1024x1024": "1024x1024",
  "1792x1024": "1344x768",
  "1024x1792": "768x1344",
  "1536x1024": "1216x832",
  "1024x1536": "832x1216",
  "1152x896": "1152x896",
  "896x1152": "896x1152",
  "1216x832": "1216x832",
  "832x1216": "832x1216",
  "1344x768": "1344x768",
  "768x1344": "768x1344",
  "1536x640": "1536x640",
  "640x1536": "640x1536",
};

/** OpenAI size → the Stability aspect_ratio (SD3, Stable Image Ultra and Core). */
export const SD3_ASPECT_RATIOS: Readonly<Record<string, string>> = {
  auto: "1:1",
  "256x256": "1:1",
  "512x512": "1:1",
  "1024x1024": "1:1",
  "1792x1024": "16:9",
  "1024x1792": "9:16",
  "1536x1024": "3:2",
  "1024x1536": "2:3",
};

/**
 * aspect_ratio → the size Stability renders (about one megapixel, sides multiples of 64),
 * as Stability documents for SD3; assumed for Stable Image Ultra and Core too.
 */
export const SD3_OUTPUT_SIZES: Readonly<Record<string, string>> = {
  "1:1": "1024x1024",
  "16:9": "1344x768",
  "9:16": "768x1344",
  "21:9": "1536x640",
  "9:21": "640x1536",
  "3:2": "1216x832",
  "2:3": "832x1216",
  "5:4": "1088x896",
  "4:5": "896x1088",
};

/** OpenAI size → the Titan size produced; Titan's own sizes map to themselves. */
export const TITAN_SIZES: Readonly<Record<string, string>> = {
  auto: "1024x1024",
  "256x256": "512x512",
  "512x512": "512x512",
  "1024x1024": "1024x1024",
  // 16:9 lies exactly between 1408x768 (1.83) and 1280x768 (1.67); the larger wins.
  "1792x1024": "1408x768",
  "1024x1792": "768x1408",
  "1536x1024": "1152x768",
  "1024x1536": "768x1152",
  ...Object.fromEntries(
    [
      "768x768",
      "768x1152",
      "384x576",
      "1152x768",
      "576x384",
      "768x1280",
      "384x640",
      "1280x768",
      "640x384",
      "896x1152",
      "448x576",
      "1152x896",
      "576x448",
      "768x1408",
      "384x704",
      "1408x768",
      "704x384",
      "640x1408",
      "320x704",
      "1408x640",
      "704x320",
      "1152x640",
      "1173x640",
    ].map((s) => [s, s]),
  ),
};

/** Nova takes any size within its rules as sent; only these need mapping (256 is under its 320 minimum). */
export const NOVA_SIZES: Readonly<Record<string, string>> = {
  auto: "1024x1024",
  "256x256": "320x320",
};

/** The catalog's "no preset" style value: nothing is sent upstream for it. */
const NO_STYLE = "none";

// ---------------------------------------------------------------------------------------------
// Upstream shapes
// ---------------------------------------------------------------------------------------------

/** https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-diffusion-1-0-text-image.html */
export interface SdxlRequest {
  text_prompts: Array<{ text: string; weight: number }>;
  width: number;
  height: number;
  samples: 1;
  seed?: number;
  style_preset?: string;
}

interface SdxlResponse {
  result?: unknown;
  artifacts?: Array<{ seed?: unknown; base64?: unknown; finishReason?: unknown }>;
}

/** https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-diffusion-3-text-image.html */
export interface Sd3Request {
  prompt: string;
  aspect_ratio: string;
  negative_prompt?: string;
  seed?: number;
  output_format?: string;
}

interface Sd3Response {
  seeds?: unknown;
  finish_reasons?: unknown;
  images?: unknown;
}

/**
 * Titan (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-image.html)
 * and Nova Canvas (https://docs.aws.amazon.com/nova/latest/userguide/image-gen-req-resp-structure.html).
 */
export interface AmazonImageRequest {
  taskType: "TEXT_IMAGE";
  textToImageParams: { text: string; negativeText?: string; style?: string };
  imageGenerationConfig: {
    numberOfImages: number;
    width: number;
    height: number;
    quality: string;
    seed?: number;
  };
}

interface AmazonImageResponse {
  images?: unknown;
  error?: unknown;
}

export type BedrockRequestBody = SdxlRequest | Sd3Request | AmazonImageRequest;

// ---------------------------------------------------------------------------------------------
// Our request → a plan for every upstream call
// ---------------------------------------------------------------------------------------------

export type BedrockFamily = Extract<Family, "sdxl" | "sd3" | "titan" | "nova">;

/** What every upstream call of one request shares; only the count and the seed vary by call. */
export interface BedrockPlan {
  family: BedrockFamily;
  prompt: string;
  negativePrompt?: string;
  width: number;
  height: number;
  /** SD3 only: what is sent; width/height are what Stability renders for it. */
  aspectRatio?: string;
  /** Titan/Nova only: standard | premium. */
  quality?: string;
  /** SDXL style_preset or Nova style. */
  style?: string;
  /** SD3 only: png | jpeg, when the client chose one. */
  outputFormat?: string;
  /** The client's seed; call i of a fan-out uses seed + i. */
  seed?: number;
  /** The model's seed maximum (catalog), so seed + i wraps within range. */
  seedMax: number;
}

/** The four families by catalog `family`: how the size is found, the body built and the answer read. */
interface FamilyRules {
  /** Resolves the size (and aspect ratio) to send; throws a 400 for a size it has no mapping for. */
  size(
    req: CreateImageRequest,
    spec: ModelSpec,
  ): { width: number; height: number; aspectRatio?: string };
  body(plan: BedrockPlan, count: number, seed: number | undefined): BedrockRequestBody;
  /** `decoded`: images `image-json.ts` already read, by the marker standing in for them in `json`. */
  parse(json: unknown, plan: BedrockPlan, count: number, decoded: DecodedImages): GenerationResult;
  /**
   * Whether an unset seed means a fixed one upstream (Titan 42, Nova 12): calls of a fan-out
   * then need seeds of their own, or every call would return the same images.
   */
  fixedDefaultSeed: boolean;
}

const FAMILIES: Readonly<Record<BedrockFamily, FamilyRules>> = {
  sdxl: {
    size: (req, spec) => tableSize(SDXL_SIZES, req, spec),
    body: toSdxlRequest,
    parse: fromSdxlResponse,
    fixedDefaultSeed: false,
  },
  sd3: { size: sd3Size, body: toSd3Request, parse: fromSd3Response, fixedDefaultSeed: false },
  titan: {
    size: (req, spec) => tableSize(TITAN_SIZES, req, spec),
    body: toAmazonImageRequest,
    parse: fromAmazonImageResponse,
    fixedDefaultSeed: true,
  },
  nova: {
    size: novaSize,
    body: toAmazonImageRequest,
    parse: fromAmazonImageResponse,
    fixedDefaultSeed: true,
  },
};

export function isBedrockFamily(family: Family): family is BedrockFamily {
  return Object.hasOwn(FAMILIES, family);
}

/** Our request → what every call shares. Validation against the catalog already ran. */
export function planBedrockRequest(req: CreateImageRequest, spec: ModelSpec): BedrockPlan {
  const family = spec.family;
  if (!isBedrockFamily(family)) {
    throw new GatewayError("internal", `catalog family '${family}' has no Bedrock request shape`);
  }
  const { width, height, aspectRatio } = FAMILIES[family].size(req, spec);
  const plan: BedrockPlan = {
    family,
    prompt: req.prompt ?? "",
    width,
    height,
    seedMax: spec.seed?.max ?? 0,
  };
  if (aspectRatio !== undefined) plan.aspectRatio = aspectRatio;
  if (req.negativePrompt !== undefined && req.negativePrompt !== "")
    plan.negativePrompt = req.negativePrompt;
  if (req.seed !== undefined) plan.seed = req.seed;
  if (req.style !== undefined && req.style !== NO_STYLE) plan.style = req.style;
  if (req.outputFormat !== undefined) plan.outputFormat = req.outputFormat;
  if (family === "titan" || family === "nova") plan.quality = bedrockQuality(req.quality, spec);
  return plan;
}

/**
 * The quality table lives in the catalog: `same_as` maps OpenAI's qualities onto Bedrock's
 * standard | premium (hd/high → premium), so pricing and the upstream agree.
 */
export function bedrockQuality(quality: string | undefined, spec: ModelSpec): string {
  const chosen = quality ?? spec.quality?.default ?? "standard";
  const mapped = spec.quality?.same_as?.[chosen] ?? chosen;
  if (mapped !== "standard" && mapped !== "premium") {
    throw invalidParam(
      "quality",
      `Invalid value: '${chosen}'. ${spec.model} takes standard or premium (hd and high mean premium).`,
    );
  }
  return mapped;
}

function tableSize(
  table: Readonly<Record<string, string>>,
  req: CreateImageRequest,
  spec: ModelSpec,
) {
  const size = req.size ?? spec.size.default;
  const mapped = table[size];
  if (mapped === undefined) {
    throw invalidParam(
      "size",
      `Invalid value: '${size}'. Supported values for ${spec.model} are: ${Object.keys(table)
        .map((s) => `'${s}'`)
        .join(", ")}.`,
    );
  }
  return dimensions(mapped);
}

function sd3Size(req: CreateImageRequest, spec: ModelSpec) {
  const size = req.size ?? spec.size.default;
  const aspectRatio = req.aspectRatio ?? SD3_ASPECT_RATIOS[size];
  const produced = aspectRatio === undefined ? undefined : SD3_OUTPUT_SIZES[aspectRatio];
  if (aspectRatio === undefined || produced === undefined) {
    const param = req.aspectRatio === undefined ? "size" : "aspect_ratio";
    throw invalidParam(
      param,
      `Invalid value: '${req.aspectRatio ?? size}' has no Stability aspect ratio for ${spec.model}.`,
    );
  }
  return { ...dimensions(produced), aspectRatio };
}

function novaSize(req: CreateImageRequest, spec: ModelSpec) {
  const size = req.size ?? spec.size.default;
  return dimensions(NOVA_SIZES[size] ?? size);
}

function dimensions(size: string): { width: number; height: number } {
  const match = /^(\d+)x(\d+)$/.exec(size);
  if (!match) throw invalidParam("size", `Invalid value: '${size}' is not WIDTHxHEIGHT.`);
  return { width: Number(match[1]), height: Number(match[2]) };
}

/**
 * The seed of call `index` of a fan-out: the client's seed plus the index (wrapping within
 * the model's range) so calls differ; without one, a random seed only where the upstream's
 * default is fixed and there is more than one call.
 */
export function seedForCall(
  plan: BedrockPlan,
  index: number,
  calls: number,
  random = randomSeed,
): number | undefined {
  if (plan.seed !== undefined) return (plan.seed + index) % (plan.seedMax + 1);
  if (calls > 1 && FAMILIES[plan.family].fixedDefaultSeed) return random(plan.seedMax);
  return undefined;
}

function randomSeed(max: number): number {
  return randomInt(0, max + 1);
}

/** The body of one upstream call producing `count` images. */
export function toBedrockRequest(
  plan: BedrockPlan,
  count: number,
  seed: number | undefined = plan.seed,
): BedrockRequestBody {
  return FAMILIES[plan.family].body(plan, count, seed);
}

/** SDXL: the negative prompt is a second text prompt with a negative weight. */
function toSdxlRequest(plan: BedrockPlan, _count: number, seed: number | undefined): SdxlRequest {
  const body: SdxlRequest = {
    text_prompts: [{ text: plan.prompt, weight: 1 }],
    width: plan.width,
    height: plan.height,
    samples: 1,
  };
  if (plan.negativePrompt !== undefined)
    body.text_prompts.push({ text: plan.negativePrompt, weight: -1 });
  if (seed !== undefined) body.seed = seed;
  if (plan.style !== undefined) body.style_preset = plan.style;
  return body;
}

function toSd3Request(plan: BedrockPlan, _count: number, seed: number | undefined): Sd3Request {
  const body: Sd3Request = { prompt: plan.prompt, aspect_ratio: plan.aspectRatio ?? "1:1" };
  if (plan.negativePrompt !== undefined) body.negative_prompt = plan.negativePrompt;
  if (seed !== undefined) body.seed = seed;
  if (plan.outputFormat !== undefined) body.output_format = plan.outputFormat;
  return body;
}

/** Titan and Nova share the TEXT_IMAGE shape; only Nova has `style` (the catalog admits it only there). */
function toAmazonImageRequest(
  plan: BedrockPlan,
  count: number,
  seed: number | undefined,
): AmazonImageRequest {
  const body: AmazonImageRequest = {
    taskType: "TEXT_IMAGE",
    textToImageParams: { text: plan.prompt },
    imageGenerationConfig: {
      numberOfImages: count,
      width: plan.width,
      height: plan.height,
      quality: plan.quality ?? "standard",
    },
  };
  if (plan.negativePrompt !== undefined) body.textToImageParams.negativeText = plan.negativePrompt;
  if (plan.style !== undefined) body.textToImageParams.style = plan.style;
  if (seed !== undefined) body.imageGenerationConfig.seed = seed;
  return body;
}

// ---------------------------------------------------------------------------------------------
// Upstream answer → our result
// ---------------------------------------------------------------------------------------------

/** The 200 body of one call → images and the count of filtered ones (never a refusal by itself). */
export function fromBedrockResponse(
  json: unknown,
  plan: BedrockPlan,
  count: number,
  decoded: DecodedImages = NO_IMAGES,
): GenerationResult {
  if (json === null || typeof json !== "object" || Array.isArray(json))
    throw malformedBody("the body is not a JSON object", PROVIDER);
  return FAMILIES[plan.family].parse(json, plan, count, decoded);
}

/**
 * SDXL artifacts: SUCCESS is an image; CONTENT_FILTERED is filtered (it may carry a blurred
 * image, which is never returned); ERROR fails the call.
 */
function fromSdxlResponse(
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
function fromSd3Response(
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
    if (reason !== undefined) throw modelFailure(`finish reason '${reason.slice(0, 100)}'`);
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
function fromAmazonImageResponse(
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
    throw modelFailure(error.slice(0, 200));
  const filtered =
    error !== undefined && isContentFilterMessage(error) ? Math.max(count - images.length, 0) : 0;
  return { images, filtered, size: sizeOf(plan) };
}

function sizeOf(plan: BedrockPlan): string {
  return `${plan.width}x${plan.height}`;
}

// ---------------------------------------------------------------------------------------------
// Upstream error → GatewayError
// ---------------------------------------------------------------------------------------------

/** Bedrock's error classes (`x-amzn-ErrorType`, the text before `:`) → our reasons; without one, the HTTP status decides. */
export const BEDROCK_ERRORS: Readonly<Record<string, UpstreamReason>> = {
  ThrottlingException: "throttled",
  ModelNotReadyException: "throttled",
  ServiceQuotaExceededException: "quota_exhausted",
  ValidationException: "bad_request",
  AccessDeniedException: "auth_failed",
  UnrecognizedClientException: "auth_failed",
  InvalidSignatureException: "auth_failed",
  IncompleteSignatureException: "auth_failed",
  MissingAuthenticationTokenException: "auth_failed",
  ExpiredTokenException: "auth_failed",
  ResourceNotFoundException: "not_found",
  ModelTimeoutException: "timeout",
  ServiceUnavailableException: "unavailable",
  InternalServerException: "server_error",
  ModelErrorException: "model_error",
};

/** Bedrock's JSON-schema paths (`#/imageGenerationConfig/width`) → the OpenAI field at fault. */
const PARAM_BY_FIELD: Readonly<Record<string, string>> = {
  text_prompts: "prompt",
  text: "prompt",
  prompt: "prompt",
  negative_prompt: "negative_prompt",
  negativeText: "negative_prompt",
  width: "size",
  height: "size",
  aspect_ratio: "aspect_ratio",
  seed: "seed",
  style_preset: "style",
  style: "style",
  quality: "quality",
  numberOfImages: "n",
  samples: "n",
  output_format: "output_format",
};

/** Titan/Nova refuse with a ValidationException whose message says so. */
export function isContentFilterMessage(message: string): boolean {
  return /blocked by our content filters/i.test(message);
}

/** Bedrock's error answer → the contract's error table. Messages carry Bedrock's text, never credentials. */
export function fromBedrockError(res: UpstreamResponse): GatewayError {
  const errorType = (first(res.headers["x-amzn-errortype"]) ?? "").split(":")[0]!.trim();
  const parsed = parseJson(res.body) as { message?: unknown; Message?: unknown } | undefined;
  const upstreamMessage = (
    str(parsed?.message) ??
    str(parsed?.Message) ??
    (res.body.toString("utf8").slice(0, 200) || "no body")
  ).slice(0, 500);
  const label = errorType === "" ? `${res.status}` : errorType;
  const message = `${PROVIDER}: ${label}: ${upstreamMessage}`;
  if (
    isContentFilterMessage(upstreamMessage) &&
    (errorType === "ValidationException" || res.status === 400)
  ) {
    return upstreamError("refused", message, {
      details: { provider_code: errorType || "ValidationException" },
    });
  }
  // Bedrock sends no Retry-After: the client (or the router) backs off itself.
  return statusError(
    {
      provider: PROVIDER,
      status: res.status,
      upstreamMessage: errorType === "" ? upstreamMessage : `${errorType}: ${upstreamMessage}`,
      credentialMessageIsSafe: true,
      param: paramOf(upstreamMessage),
    },
    Object.hasOwn(BEDROCK_ERRORS, errorType) ? BEDROCK_ERRORS[errorType] : undefined,
  );
}

function paramOf(message: string): string | undefined {
  const path = /#\/([\w/]+)/.exec(message)?.[1];
  if (path === undefined) return undefined;
  const field = path
    .split("/")
    .reverse()
    .find((segment) => !/^\d+$/.test(segment) && Object.hasOwn(PARAM_BY_FIELD, segment));
  return field === undefined ? undefined : PARAM_BY_FIELD[field];
}

function modelFailure(why: string): GatewayError {
  return upstreamError("model_error", `${PROVIDER}: the model failed: ${why}`);
}

// ---------------------------------------------------------------------------------------------
// The signed call
// ---------------------------------------------------------------------------------------------

/** `api_base` (env already applied), else the region's public endpoint. */
export function bedrockBaseUrl(params: DeploymentParams): string {
  const base =
    params.api_base ??
    `https://bedrock-runtime.${params.aws_region_name ?? "us-east-1"}.amazonaws.com`;
  return base.replace(/\/+$/, "");
}

/**
 * The invoke URL. The model id is one path segment, percent-encoded as AWS's SDK does
 * (`:` → `%3A`); SigV4 then encodes that path again for the canonical URI (`%253A`).
 */
export function bedrockInvokeUrl(base: string, modelId: string): string {
  return `${base}/model/${encodeSegment(modelId)}/invoke`;
}

function encodeSegment(segment: string): string {
  return encodeURIComponent(segment).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/**
 * Signs a POST of `body` to `url` with SigV4 (@smithy/signature-v4, AWS's own signer) and
 * returns every header to send: host, content-type, accept, x-amz-date, the session token
 * when there is one, and authorization.
 */
export async function signBedrockRequest(input: {
  url: string;
  body: string;
  credentials: AwsCredentials;
  region: string;
  date?: Date;
}): Promise<Record<string, string>> {
  const url = new URL(input.url);
  const signer = new SignatureV4({
    service: BEDROCK_SIGNING_SERVICE,
    region: input.region,
    credentials: input.credentials,
    sha256: Hash.bind(null, "sha256"),
    applyChecksum: false,
  });
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = v;
  const signed = await signer.sign(
    {
      method: "POST",
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port === "" ? {} : { port: Number(url.port) }),
      path: url.pathname,
      query,
      headers: { host: url.host, "content-type": "application/json", accept: "application/json" },
      body: input.body,
    },
    input.date === undefined ? {} : { signingDate: input.date },
  );
  return signed.headers;
}

function credentialsOf(params: DeploymentParams): AwsCredentials {
  const {
    aws_access_key_id: accessKeyId,
    aws_secret_access_key: secretAccessKey,
    aws_session_token: sessionToken,
  } = params;
  if (accessKeyId === undefined || secretAccessKey === undefined) {
    throw upstreamError(
      "auth_failed",
      `${PROVIDER}: no AWS credentials (aws_access_key_id / aws_secret_access_key)`,
    );
  }
  return sessionToken === undefined
    ? { accessKeyId, secretAccessKey }
    : { accessKeyId, secretAccessKey, sessionToken };
}

async function invoke(
  call: UpstreamCall,
  plan: BedrockPlan,
  count: number,
  seed: number | undefined,
): Promise<GenerationResult> {
  const { deployment, signal } = call;
  const { params } = deployment;
  const url = bedrockInvokeUrl(bedrockBaseUrl(params), deployment.model);
  const body = JSON.stringify(toBedrockRequest(plan, count, seed));
  const headers = await signBedrockRequest({
    url,
    body,
    credentials: credentialsOf(params),
    region: params.aws_region_name ?? "us-east-1",
  });
  const res = await sendUpstream(url, {
    method: "POST",
    headers,
    body,
    signal,
    timeoutMs: deployment.timeoutMs,
  });
  if (res.status !== 200) throw fromBedrockError(res);
  const parsed = parseImagesJson(res.chunks, BEDROCK_IMAGE_KEYS, call.allocate);
  if (parsed === undefined) throw malformedBody("the body is not JSON", PROVIDER);
  return fromBedrockResponse(parsed.json, plan, count, parsed.images);
}

export const bedrockAdapter: ProviderAdapter = {
  provider: "bedrock",
  async generate(call: UpstreamCall): Promise<GenerationResult> {
    const { deployment, request } = call;
    const plan = planBedrockRequest(request, deployment.spec);
    const n = request.n ?? deployment.spec.n.default ?? 1;
    const perCall = deployment.spec.upstream_max_n;
    const calls = Math.ceil(n / perCall);
    let index = 0; // fanOut starts the calls in order, so this numbers them
    const result = await fanOut(n, perCall, (count) =>
      invoke(call, plan, count, seedForCall(plan, index++, calls)),
    );
    return requireImages(result, PROVIDER);
  },
};
