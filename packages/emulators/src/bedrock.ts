/**
 * An in-process emulator of AWS Bedrock Runtime's InvokeModel for image models
 * (`POST /model/{modelId}/invoke`), used by the tests and by `npm run dev`.
 *
 * - Auth is checked for real: every request's SigV4 signature is recomputed (sigv4.ts, an
 *   implementation independent of the gateway's signer) against the emulator's credentials,
 *   with AWS's 403 shapes for a bad signature, an unknown key, a wrong session token and a
 *   clock skew over five minutes.
 * - Bodies are validated per family by the emulator's own rule table (written from the
 *   Bedrock docs, independent of the gateway's catalog), with Bedrock's ValidationException
 *   messages; bad JSON is "Malformed input request…".
 * - Edits: Titan / Nova `INPAINTING` (one of maskImage / maskPrompt; the mask the image's size,
 *   pure black and white) and `IMAGE_VARIATION` (1-5 images, 1 on Titan v1), SD3 / SD3.5 Large
 *   `mode: image-to-image` (image and strength, no aspect_ratio); input images are base64
 *   PNG/JPEG (SD3 also WebP), Nova's opaque and of a size it generates (input-images.ts).
 * - Images are real PNGs at the size produced (an inpainting or image-to-image: the input's).
 *
 * Test hooks:
 * - A prompt containing the word "forbidden" (any case) is refused in the family's shape:
 *   SDXL answers 200 with an artifact whose finishReason is CONTENT_FILTERED; SD3 / Stable
 *   Image answers 200 with finish_reasons ["Filter reason: prompt"]; Titan and Nova answer
 *   400 ValidationException "This request has been blocked by our content filters…".
 *   There is no partial refusal: Stability models make one image per call, and Titan/Nova
 *   have no shape for a partly filtered batch, so "partly-forbidden" is refused whole.
 * - `faults` (or `POST /__emulator/faults`, `DELETE` to clear) injects errors, latency,
 *   hangs and resets; `bedrockFaults` builds Bedrock's own (ThrottlingException etc.).
 * - `requests` records every invoke call, newest last.
 */
import { randomInt, randomUUID } from "node:crypto";
import type http from "node:http";
import {
  type ControlOptions,
  commonFaults,
  type Fault,
  FaultQueue,
  faultControl,
  playFault,
} from "./faults.ts";
import {
  type AnyRequest,
  type AnyResponse,
  guard,
  listenHttp1And2,
  parseJsonOrUndefined,
  readBody as readBounded,
  record,
  sendJson,
} from "./http-kit.ts";
import {
  decodeBase64,
  decodePng,
  hasTransparency,
  type InputFormat,
  type InputInfo,
  inspectImage,
  isBlackAndWhite,
} from "./input-images.ts";
import { renderPng } from "./png.ts";
import { type AwsCredential, verifySigV4 } from "./sigv4.ts";

// ---------------------------------------------------------------------------------------------
// Rule table
// ---------------------------------------------------------------------------------------------

type Family = "sdxl" | "sd3" | "titan" | "nova";

interface ModelRules {
  family: Family;
  /** SD3 and SD3.5 Large take `mode` (text-to-image or image-to-image). */
  takesMode?: boolean;
  /** Titan / Nova: the most images IMAGE_VARIATION takes, and whether it takes similarityStrength. */
  variation?: { maxImages: number; similarity: boolean };
}

const MODELS: Readonly<Record<string, ModelRules>> = {
  "stability.stable-diffusion-xl-v0": { family: "sdxl" },
  "stability.stable-diffusion-xl-v1": { family: "sdxl" },
  "stability.sd3-large-v1:0": { family: "sd3", takesMode: true },
  "stability.sd3-5-large-v1:0": { family: "sd3", takesMode: true },
  "stability.stable-image-ultra-v1:0": { family: "sd3" },
  "stability.stable-image-ultra-v1:1": { family: "sd3" },
  "stability.stable-image-core-v1:0": { family: "sd3" },
  "stability.stable-image-core-v1:1": { family: "sd3" },
  "amazon.titan-image-generator-v1": {
    family: "titan",
    variation: { maxImages: 1, similarity: false },
  },
  "amazon.titan-image-generator-v2:0": {
    family: "titan",
    variation: { maxImages: 5, similarity: true },
  },
  "amazon.nova-canvas-v1:0": { family: "nova", variation: { maxImages: 5, similarity: true } },
};

// Also in the gateway's adapter and tests, on purpose: the emulator models Bedrock independently.
const SDXL_DIMENSIONS = [
  "1024x1024",
  "1152x896",
  "896x1152",
  "1216x832",
  "832x1216",
  "1344x768",
  "768x1344",
  "1536x640",
  "640x1536",
];
const SDXL_STYLES = [
  "3d-model",
  "analog-film",
  "anime",
  "cinematic",
  "comic-book",
  "digital-art",
  "enhance",
  "fantasy-art",
  "isometric",
  "line-art",
  "low-poly",
  "modeling-compound",
  "neon-punk",
  "origami",
  "photographic",
  "pixel-art",
  "tile-texture",
];
const SDXL_SAMPLERS = [
  "DDIM",
  "DDPM",
  "K_DPMPP_2M",
  "K_DPMPP_2S_ANCESTRAL",
  "K_DPM_2",
  "K_DPM_2_ANCESTRAL",
  "K_EULER",
  "K_EULER_ANCESTRAL",
  "K_HEUN",
  "K_LMS",
];
const SDXL_CLIP_PRESETS = [
  "FAST_BLUE",
  "FAST_GREEN",
  "NONE",
  "SIMPLE",
  "SLOW",
  "SLOWER",
  "SLOWEST",
];

const SD3_ASPECT_RATIOS = ["16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21"];
/** What Stability renders for each aspect ratio (about one megapixel). */
const SD3_PIXELS: Readonly<Record<string, [number, number]>> = {
  "1:1": [1024, 1024],
  "16:9": [1344, 768],
  "9:16": [768, 1344],
  "21:9": [1536, 640],
  "9:21": [640, 1536],
  "3:2": [1216, 832],
  "2:3": [832, 1216],
  "5:4": [1088, 896],
  "4:5": [896, 1088],
};

// Also in the gateway's adapter, on purpose: the emulator models Bedrock independently.
const TITAN_DIMENSIONS = [
  "1024x1024",
  "768x768",
  "512x512",
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
];
const NOVA_STYLES = [
  "3D_ANIMATED_FAMILY_FILM",
  "DESIGN_SKETCH",
  "FLAT_VECTOR_ILLUSTRATION",
  "GRAPHIC_NOVEL_ILLUSTRATION",
  "MAXIMALISM",
  "MIDCENTURY_RETRO",
  "PHOTOREALISM",
  "SOFT_DIGITAL_PAINTING",
];
/** Nova Canvas: sides 320–4096 in steps of 16, ratio 1:4..4:1, at most 4,194,304 pixels. */
const NOVA_SIZE = { min: 320, max: 4096, step: 16, maxRatio: 4, maxPixels: 4_194_304 };

/** A small JSON-schema subset, enough for Bedrock's image bodies and its error messages. */
type Schema =
  | { type: "object"; properties: Readonly<Record<string, Schema>>; required?: readonly string[] }
  | { type: "array"; items: Schema; minItems?: number; maxItems?: number }
  | { type: "string"; minLength?: number; maxLength?: number; enum?: readonly string[] }
  | { type: "integer"; minimum?: number; maximum?: number }
  | { type: "number"; minimum?: number; maximum?: number };

const SDXL_SCHEMA: Schema = {
  type: "object",
  required: ["text_prompts"],
  properties: {
    text_prompts: {
      type: "array",
      minItems: 1,
      items: {
        type: "object",
        required: ["text"],
        properties: {
          text: { type: "string", minLength: 1, maxLength: 2000 },
          weight: { type: "number" },
        },
      },
    },
    height: { type: "integer", minimum: 128 },
    width: { type: "integer", minimum: 128 },
    cfg_scale: { type: "number", minimum: 0, maximum: 35 },
    clip_guidance_preset: { type: "string", enum: SDXL_CLIP_PRESETS },
    sampler: { type: "string", enum: SDXL_SAMPLERS },
    samples: { type: "integer", minimum: 1, maximum: 1 },
    seed: { type: "integer", minimum: 0, maximum: 4294967295 },
    steps: { type: "integer", minimum: 10, maximum: 50 },
    style_preset: { type: "string", enum: SDXL_STYLES },
    extras: { type: "object", properties: {} },
  },
};

const SD3_PROPERTIES: Readonly<Record<string, Schema>> = {
  prompt: { type: "string", minLength: 1, maxLength: 10000 },
  negative_prompt: { type: "string", maxLength: 10000 },
  aspect_ratio: { type: "string", enum: SD3_ASPECT_RATIOS },
  seed: { type: "integer", minimum: 0, maximum: 4294967294 },
  output_format: { type: "string", enum: ["png", "jpeg"] },
};
const SD3_SCHEMA: Schema = { type: "object", required: ["prompt"], properties: SD3_PROPERTIES };
/** SD3 / SD3.5 Large: also image-to-image, with `image` (base64) and `strength` 0-1. */
const SD3_LARGE_SCHEMA: Schema = {
  type: "object",
  required: ["prompt"],
  properties: {
    ...SD3_PROPERTIES,
    mode: { type: "string", enum: ["text-to-image", "image-to-image"] },
    image: { type: "string", minLength: 1 },
    strength: { type: "number", minimum: 0, maximum: 1 },
  },
};

function amazonSchema(
  textMax: number,
  seedMax: number,
  styles: readonly string[] | undefined,
  variation: { maxImages: number; similarity: boolean },
): Schema {
  const text: Schema = { type: "string", minLength: 1, maxLength: textMax };
  const textParams: Record<string, Schema> = { text, negativeText: text };
  if (styles) textParams.style = { type: "string", enum: styles };
  const variationParams: Record<string, Schema> = {
    images: {
      type: "array",
      minItems: 1,
      maxItems: variation.maxImages,
      items: { type: "string", minLength: 1 },
    },
    text,
    negativeText: text,
  };
  if (variation.similarity)
    variationParams.similarityStrength = { type: "number", minimum: 0.2, maximum: 1 };
  return {
    type: "object",
    required: ["taskType"],
    properties: {
      taskType: { type: "string", enum: ["TEXT_IMAGE", "INPAINTING", "IMAGE_VARIATION"] },
      textToImageParams: { type: "object", required: ["text"], properties: textParams },
      inPaintingParams: {
        type: "object",
        required: ["image"],
        properties: {
          image: { type: "string", minLength: 1 },
          text,
          negativeText: text,
          maskPrompt: text,
          maskImage: { type: "string", minLength: 1 },
        },
      },
      imageVariationParams: { type: "object", required: ["images"], properties: variationParams },
      imageGenerationConfig: {
        type: "object",
        properties: {
          numberOfImages: { type: "integer", minimum: 1, maximum: 5 },
          width: { type: "integer" },
          height: { type: "integer" },
          quality: { type: "string", enum: ["standard", "premium"] },
          cfgScale: { type: "number", minimum: 1.1, maximum: 10 },
          seed: { type: "integer", minimum: 0, maximum: seedMax },
        },
      },
    },
  };
}
const TITAN_V1_SCHEMA = amazonSchema(512, 2147483646, undefined, {
  maxImages: 1,
  similarity: false,
});
const TITAN_SCHEMA = amazonSchema(512, 2147483646, undefined, { maxImages: 5, similarity: true });
const NOVA_SCHEMA = amazonSchema(1024, 858993459, NOVA_STYLES, { maxImages: 5, similarity: true });

const MAX_BODY_BYTES = 25_000_000;
const REFUSAL_WORD = /\bforbidden\b/i;
const CORAL = "http://internal.amazon.com/coral/com.amazon.bedrock/";

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

export interface BedrockEmulatorOptions {
  /** Accepted credentials; a session token makes them temporary (the request must carry it). */
  credentials: readonly AwsCredential[];
  /** The region requests must be scoped to; default us-east-1. */
  region?: string;
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Clock in ms, for tests of signature expiry; defaults to Date.now. */
  now?: () => number;
}

export interface RecordedInvoke {
  method: string;
  /** As received: `/model/stability.sd3-large-v1%3A0/invoke`. */
  path: string;
  /** The model id, decoded. */
  modelId: string | undefined;
  headers: http.IncomingHttpHeaders;
  /** Parsed JSON, or undefined when the body was absent or not JSON. */
  body: unknown;
}

export interface BedrockEmulator {
  /** e.g. http://127.0.0.1:PORT — what AWS_ENDPOINT_URL_BEDROCK_RUNTIME (or api_base) takes. */
  endpoint: string;
  port: number;
  region: string;
  faults: FaultQueue;
  requests: RecordedInvoke[];
  close(): Promise<void>;
}

function errorFault(
  status: number,
  errorType: string,
  message: string,
  extra: Record<string, unknown> = {},
): Fault {
  return {
    status,
    headers: { "x-amzn-errortype": `${errorType}:${CORAL}` },
    body: { message, ...extra },
  };
}

/** Builders for the faults Bedrock is known to produce. Spread to add `times` or `model`. */
export const bedrockFaults = {
  ...commonFaults,
  /** 429 ThrottlingException; Bedrock sends no Retry-After. */
  throttling(): Fault {
    return errorFault(
      429,
      "ThrottlingException",
      "Too many requests, please wait before trying again.",
    );
  },
  modelNotReady(): Fault {
    return errorFault(
      429,
      "ModelNotReadyException",
      "Model is not ready to serve inference requests. The AWS SDK will automatically retry the operation.",
    );
  },
  serviceQuotaExceeded(): Fault {
    return errorFault(
      400,
      "ServiceQuotaExceededException",
      "Your request exceeds the service quota for your account.",
    );
  },
  accessDenied(): Fault {
    return errorFault(
      403,
      "AccessDeniedException",
      "You don't have access to the model with the specified model ID.",
    );
  },
  /** A model past its end of life (Bedrock's words, seen on InvokeModel and Converse). */
  resourceNotFound(): Fault {
    return errorFault(
      404,
      "ResourceNotFoundException",
      "This model version has reached the end of its life. Please refer to the AWS documentation for more details.",
    );
  },
  /** A model id this region does not know. */
  modelNotFound(): Fault {
    return errorFault(
      404,
      "ResourceNotFoundException",
      "Could not resolve the foundation model from the provided model identifier.",
    );
  },
  /** A Legacy model the account has not used lately (Bedrock's words, seen on InvokeModel). */
  legacyModel(): Fault {
    return errorFault(
      404,
      "ResourceNotFoundException",
      "Access denied. This Model is marked by provider as Legacy and you have not been actively using the model in the last 30 days. Please upgrade to an active model on Amazon Bedrock",
    );
  },
  modelTimeout(): Fault {
    return errorFault(
      408,
      "ModelTimeoutException",
      "Model has timed out in processing the request. Try your request again.",
    );
  },
  modelError(): Fault {
    return errorFault(424, "ModelErrorException", "The model returned an error.", {
      originalStatusCode: 500,
      resourceName: "model",
    });
  },
  internalServer(): Fault {
    return errorFault(
      500,
      "InternalServerException",
      "The server encountered an internal error while processing the request.",
    );
  },
  serviceUnavailable(): Fault {
    return errorFault(
      503,
      "ServiceUnavailableException",
      "The service is temporarily unavailable. Please try again later.",
    );
  },
  /** 200 with a truncated JSON body. */
  malformed(): Fault {
    return commonFaults.malformed('{"images": ["iVBORw0KGgo');
  },
};

export async function startBedrockEmulator(opts: BedrockEmulatorOptions): Promise<BedrockEmulator> {
  const emulator = new Emulator(opts);
  const handler = guard(
    (req: AnyRequest, res: AnyResponse) => emulator.handle(req, res),
    (res, err) => sendError(res, 500, "InternalServerException", `Emulator bug: ${String(err)}`),
  );
  // Bedrock Runtime speaks HTTP/1.1 and HTTP/2 (the official SDK uses HTTP/2; the gateway
  // HTTP/1.1), on one port.
  const listening = await listenHttp1And2(handler, opts);
  return {
    endpoint: listening.origin,
    port: listening.port,
    region: emulator.region,
    faults: emulator.faults,
    requests: emulator.requests,
    close: listening.close,
  };
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

class ApiError extends Error {
  readonly status: number;
  readonly errorType: string;
  constructor(status: number, errorType: string, message: string) {
    super(message);
    this.status = status;
    this.errorType = errorType;
  }
}

function validation(message: string): ApiError {
  return new ApiError(400, "ValidationException", message);
}

/** Bedrock's wording for a body that breaks the model's JSON schema. */
function malformedInput(violation: string): ApiError {
  return validation(
    `Malformed input request: ${violation}, please reformat your input and try again.`,
  );
}

const CONTENT_FILTERED =
  "This request has been blocked by our content filters. Please adjust your text prompt to submit a new request.";

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

function checkSchema(value: unknown, schema: Schema, path: string): void {
  const found = jsonType(value);
  switch (schema.type) {
    case "object": {
      if (found !== "JSONObject")
        throw malformedInput(`${path}: expected type: JSONObject, found: ${found}`);
      const obj = value as Record<string, unknown>;
      for (const key of schema.required ?? []) {
        if (!(key in obj)) throw malformedInput(`${path}: required key [${key}] not found`);
      }
      for (const [key, child] of Object.entries(obj)) {
        const childSchema = schema.properties[key];
        if (childSchema === undefined)
          throw malformedInput(`${path}: extraneous key [${key}] is not permitted`);
        checkSchema(child, childSchema, `${path}/${key}`);
      }
      return;
    }
    case "array": {
      if (found !== "JSONArray")
        throw malformedInput(`${path}: expected type: JSONArray, found: ${found}`);
      const arr = value as unknown[];
      if (schema.minItems !== undefined && arr.length < schema.minItems) {
        throw malformedInput(
          `${path}: expected minimum item count: ${schema.minItems}, found: ${arr.length}`,
        );
      }
      if (schema.maxItems !== undefined && arr.length > schema.maxItems) {
        throw malformedInput(
          `${path}: expected maximum item count: ${schema.maxItems}, found: ${arr.length}`,
        );
      }
      for (const [i, item] of arr.entries()) checkSchema(item, schema.items, `${path}/${i}`);
      return;
    }
    case "string": {
      if (found !== "String")
        throw malformedInput(`${path}: expected type: String, found: ${found}`);
      const s = value as string;
      if (schema.minLength !== undefined && s.length < schema.minLength) {
        throw malformedInput(
          `${path}: expected minLength: ${schema.minLength}, actual: ${s.length}`,
        );
      }
      if (schema.maxLength !== undefined && s.length > schema.maxLength) {
        throw malformedInput(
          `${path}: expected maxLength: ${schema.maxLength}, actual: ${s.length}`,
        );
      }
      if (schema.enum !== undefined && !schema.enum.includes(s))
        throw malformedInput(`${path}: ${s} is not a valid enum value`);
      return;
    }
    case "integer":
    case "number": {
      const ok =
        schema.type === "integer"
          ? found === "Integer"
          : found === "Integer" || found === "BigDecimal";
      if (!ok)
        throw malformedInput(
          `${path}: expected type: ${schema.type === "integer" ? "Integer" : "Number"}, found: ${found}`,
        );
      const n = value as number;
      if (schema.minimum !== undefined && n < schema.minimum)
        throw malformedInput(`${path}: ${n} is not greater or equal to ${schema.minimum}`);
      if (schema.maximum !== undefined && n > schema.maximum)
        throw malformedInput(`${path}: ${n} is not less or equal to ${schema.maximum}`);
      return;
    }
  }
}

function jsonType(v: unknown): string {
  if (v === null) return "Null";
  if (Array.isArray(v)) return "JSONArray";
  if (typeof v === "object") return "JSONObject";
  if (typeof v === "string") return "String";
  if (typeof v === "boolean") return "Boolean";
  if (typeof v === "number") return Number.isInteger(v) ? "Integer" : "BigDecimal";
  return "Unknown";
}

/** What one validated invoke asks for, in the emulator's terms. */
interface Job {
  modelId: string;
  family: Family;
  /** The text the safety check reads (positive prompts only). */
  prompt: string;
  count: number;
  width: number;
  height: number;
  seed: number;
}

function validate(modelId: string, rules: ModelRules, body: unknown): Job {
  switch (rules.family) {
    case "sdxl":
      return validateSdxl(modelId, body);
    case "sd3":
      return validateSd3(modelId, rules, body);
    case "titan":
    case "nova":
      return validateAmazon(modelId, rules, body);
  }
}

function validateSdxl(modelId: string, body: unknown): Job {
  checkSchema(body, SDXL_SCHEMA, "#");
  const b = body as {
    text_prompts: Array<{ text: string; weight?: number }>;
    width?: number;
    height?: number;
    seed?: number;
  };
  const width = b.width ?? 1024;
  const height = b.height ?? 1024;
  if (!SDXL_DIMENSIONS.includes(`${width}x${height}`)) {
    throw validation(
      `Invalid dimensions: ${width}x${height}. For ${modelId} the width and height must be one of ${SDXL_DIMENSIONS.join(", ")}.`,
    );
  }
  const positive = b.text_prompts.filter((p) => (p.weight ?? 1) >= 0);
  if (positive.length === 0)
    throw validation("At least one text prompt must have a positive weight.");
  return {
    modelId,
    family: "sdxl",
    prompt: positive.map((p) => p.text).join(" "),
    count: 1,
    width,
    height,
    seed: b.seed && b.seed > 0 ? b.seed : randomInt(1, 4294967295),
  };
}

function validateSd3(modelId: string, rules: ModelRules, body: unknown): Job {
  checkSchema(body, rules.takesMode ? SD3_LARGE_SCHEMA : SD3_SCHEMA, "#");
  const b = body as {
    prompt: string;
    aspect_ratio?: string;
    seed?: number;
    mode?: string;
    image?: string;
    strength?: number;
  };
  let [width, height] = SD3_PIXELS[b.aspect_ratio ?? "1:1"]!;
  if (b.mode === "image-to-image") {
    // https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-diffusion-3-5-large.html
    if (b.image === undefined) throw malformedInput("#: required key [image] not found");
    if (b.strength === undefined) throw malformedInput("#: required key [strength] not found");
    if (b.aspect_ratio !== undefined)
      throw validation("aspect_ratio is not supported with mode image-to-image.");
    const info = inputImage(b.image, "image", ["png", "jpeg", "webp"]);
    ({ width, height } = info);
  } else if (b.image !== undefined || b.strength !== undefined) {
    throw validation("image and strength are only supported with mode image-to-image.");
  }
  return {
    modelId,
    family: "sd3",
    prompt: b.prompt,
    count: 1,
    width: width!,
    height: height!,
    seed: b.seed && b.seed > 0 ? b.seed : randomInt(1, 4294967294),
  };
}

type AmazonConfig = {
  numberOfImages?: number;
  width?: number;
  height?: number;
  seed?: number;
};

type AmazonBody = {
  taskType: "TEXT_IMAGE" | "INPAINTING" | "IMAGE_VARIATION";
  textToImageParams?: { text: string };
  inPaintingParams?: { image: string; text?: string; maskPrompt?: string; maskImage?: string };
  imageVariationParams?: { images: string[]; text?: string };
  imageGenerationConfig?: AmazonConfig;
};

/** Each task takes its own parameters object and no other's. */
const TASK_PARAMS = {
  TEXT_IMAGE: "textToImageParams",
  INPAINTING: "inPaintingParams",
  IMAGE_VARIATION: "imageVariationParams",
} as const;

function validateAmazon(modelId: string, rules: ModelRules, body: unknown): Job {
  const family = rules.family as "titan" | "nova";
  const schema =
    family === "nova"
      ? NOVA_SCHEMA
      : rules.variation?.maxImages === 1
        ? TITAN_V1_SCHEMA
        : TITAN_SCHEMA;
  checkSchema(body, schema, "#");
  const b = body as AmazonBody;
  const wanted = TASK_PARAMS[b.taskType];
  for (const key of Object.values(TASK_PARAMS)) {
    if (key !== wanted && key in b)
      throw validation(`${key} is not supported for taskType ${b.taskType}.`);
  }
  if (b[wanted] === undefined) throw malformedInput(`#: required key [${wanted}] not found`);
  const config = b.imageGenerationConfig ?? {};
  const job = (prompt: string, width: number, height: number): Job => ({
    modelId,
    family,
    prompt,
    count: config.numberOfImages ?? 1,
    width,
    height,
    seed: config.seed ?? (family === "titan" ? 42 : 12),
  });
  if (b.taskType === "INPAINTING") {
    const p = b.inPaintingParams!;
    const image = amazonInput(p.image, "inPaintingParams.image", family);
    if ((p.maskImage === undefined) === (p.maskPrompt === undefined))
      throw validation("Exactly one of maskImage or maskPrompt must be provided for INPAINTING.");
    if (p.maskImage !== undefined) checkMask(p.maskImage, image);
    // The inpainted image keeps the input's size.
    return job(`${p.text ?? ""} ${p.maskPrompt ?? ""}`, image.width, image.height);
  }
  const width = config.width ?? 1024;
  const height = config.height ?? 1024;
  if (family === "titan" && !TITAN_DIMENSIONS.includes(`${width}x${height}`)) {
    throw validation(
      `The provided image size ${width}x${height} is not supported. Supported sizes are ${TITAN_DIMENSIONS.join(", ")}.`,
    );
  }
  if (family === "nova") checkNovaSize(width, height);
  if (b.taskType === "IMAGE_VARIATION") {
    const p = b.imageVariationParams!;
    p.images.forEach((image, i) => {
      amazonInput(image, `imageVariationParams.images[${i}]`, family);
    });
    return job(p.text ?? "", width, height);
  }
  return job(b.textToImageParams!.text, width, height);
}

/**
 * A Titan / Nova input image: base64 of a PNG or JPEG; for Nova without transparent pixels
 * and of a size Nova generates (https://docs.aws.amazon.com/nova/latest/userguide/image-gen-access.html).
 */
function amazonInput(b64: string, field: string, family: "titan" | "nova"): InputInfo {
  const info = inputImage(b64, field, ["png", "jpeg"]);
  if (family === "nova") {
    checkNovaSize(info.width, info.height);
    if (info.format === "png") {
      const png = decodePng(decodeBase64(b64)!);
      if (png === undefined) throw validation(`${field}: the PNG image cannot be decoded.`);
      if (hasTransparency(png))
        throw validation(
          `${field}: the image contains transparent or semi-transparent pixels, which are not supported.`,
        );
    }
  }
  return info;
}

/** A mask: PNG or JPEG of the image's size, only pure black and pure white pixels. */
function checkMask(b64: string, image: InputInfo): void {
  const mask = inputImage(b64, "inPaintingParams.maskImage", ["png", "jpeg"]);
  if (mask.width !== image.width || mask.height !== image.height) {
    throw validation(
      `The mask image size ${mask.width}x${mask.height} must match the input image size ${image.width}x${image.height}.`,
    );
  }
  if (mask.format !== "png") return; // a JPEG's pixels are not decoded here
  const png = decodePng(decodeBase64(b64)!);
  if (png === undefined || !isBlackAndWhite(png))
    throw validation("The mask image must contain only pure black and pure white pixels.");
}

/** A base64 input image of one of `formats`, else Bedrock's ValidationException. */
function inputImage(b64: string, field: string, formats: readonly InputFormat[]): InputInfo {
  const bytes = decodeBase64(b64);
  if (bytes === undefined) throw validation(`${field}: the image is not valid base64.`);
  const info = inspectImage(bytes);
  if (info === undefined || !formats.includes(info.format))
    throw validation(
      `${field}: unsupported image format; supported formats are ${formats.join(", ")}.`,
    );
  return info;
}

function checkNovaSize(width: number, height: number): void {
  const r = NOVA_SIZE;
  const problem =
    width < r.min || height < r.min || width > r.max || height > r.max
      ? `width and height must be between ${r.min} and ${r.max} pixels`
      : width % r.step !== 0 || height % r.step !== 0
        ? `width and height must be divisible by ${r.step}`
        : Math.max(width, height) / Math.min(width, height) > r.maxRatio
          ? `the aspect ratio must be between 1:${r.maxRatio} and ${r.maxRatio}:1`
          : width * height > r.maxPixels
            ? `the image must have at most ${r.maxPixels} pixels`
            : undefined;
  if (problem) throw validation(`Invalid image dimensions ${width}x${height}: ${problem}.`);
}

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

class Emulator {
  readonly faults = new FaultQueue();
  readonly requests: RecordedInvoke[] = [];
  readonly region: string;
  readonly #credentials: ReadonlyMap<string, AwsCredential>;
  readonly #now: () => number;

  constructor(opts: BedrockEmulatorOptions) {
    this.region = opts.region ?? "us-east-1";
    this.#credentials = new Map(opts.credentials.map((c) => [c.accessKeyId, c]));
    this.#now = opts.now ?? Date.now;
  }

  async handle(req: AnyRequest, res: AnyResponse): Promise<void> {
    const started = performance.now();
    res.setHeader("x-amzn-requestid", randomUUID());
    const method = req.method ?? "GET";
    const target = req.url ?? "/";
    const path = target.split("?")[0]!;
    try {
      if (path === "/__emulator/faults") return await faultControl(this.faults, req, res, CONTROL);
      const body = await readBody(req);
      const match = /^\/model\/([^/]+)\/invoke$/.exec(path);
      const modelId = match ? safeDecode(match[1]!) : undefined;
      const json = parseJsonOrUndefined(body);
      if (match) record(this.requests, { method, path, modelId, headers: req.headers, body: json });

      // Faults come first: they stand for upstream trouble of any kind.
      if (match && (await playFault(this.faults, modelId, req, res))) return;

      const verdict = verifySigV4(
        { method, target, headers: req.headers, body },
        {
          service: "bedrock",
          region: this.region,
          now: this.#now(),
          credential: (id) => this.#credentials.get(id),
        },
      );
      if (!verdict.ok) throw new ApiError(verdict.status, verdict.errorType, verdict.message);
      if (!match || modelId === undefined)
        throw new ApiError(404, "UnknownOperationException", `Unknown operation ${method} ${path}`);
      if (method !== "POST")
        throw new ApiError(405, "UnknownOperationException", `Unknown operation ${method} ${path}`);

      const rules = MODELS[modelId];
      if (rules === undefined) throw validation("The provided model identifier is invalid.");
      const contentType = req.headers["content-type"];
      if (contentType !== undefined && !/^application\/json\b/i.test(contentType)) {
        throw validation(`The provided content type ${contentType.slice(0, 60)} is not supported.`);
      }
      if (json === undefined)
        throw validation("Malformed input request, please reformat your input and try again.");
      const job = validate(modelId, rules, json);
      const answer = this.#generate(job);
      res.setHeader(
        "x-amzn-bedrock-invocation-latency",
        String(Math.round(performance.now() - started)),
      );
      sendJson(res, 200, answer);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      sendError(res, err.status, err.errorType, err.message);
    }
  }

  /** The family's success body, or its refusal shape when the prompt says "forbidden". */
  #generate(job: Job): object {
    const refused = REFUSAL_WORD.test(job.prompt);
    const png = (i: number) =>
      renderPng(job.width, job.height, `${job.modelId}|${job.prompt}|${job.seed}|${i}`).toString(
        "base64",
      );
    switch (job.family) {
      case "sdxl":
        return {
          result: "success",
          artifacts: [
            {
              seed: job.seed,
              base64: png(0),
              finishReason: refused ? "CONTENT_FILTERED" : "SUCCESS",
            },
          ],
        };
      case "sd3":
        // A filtered answer still carries an image slot (a placeholder), as Stability's API does.
        return {
          seeds: [job.seed],
          finish_reasons: [refused ? "Filter reason: prompt" : null],
          images: [png(0)],
        };
      case "titan":
      case "nova":
        if (refused) throw validation(CONTENT_FILTERED);
        return { images: Array.from({ length: job.count }, (_, i) => png(i)), error: null };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

function readBody(req: AnyRequest): Promise<Buffer> {
  return readBounded(req, MAX_BODY_BYTES, (limit) =>
    validation(`The request body exceeds the maximum size of ${limit} bytes.`),
  );
}

/** The control endpoint answers in Bedrock's error shape. */
const CONTROL: ControlOptions = {
  readBody,
  invalid: (message) => validation(message),
  badMethod: (method) =>
    new ApiError(
      405,
      "UnknownOperationException",
      `Unknown operation ${method} /__emulator/faults`,
    ),
};

function safeDecode(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

/** Bedrock's error shape: the class in `x-amzn-ErrorType`, `{"message"}` in the body. */
function sendError(res: AnyResponse, status: number, errorType: string, message: string): void {
  res.setHeader("x-amzn-errortype", `${errorType}:${CORAL}`);
  sendJson(res, status, { message });
}
