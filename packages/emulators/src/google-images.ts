/**
 * What the Google AI Studio and Vertex AI emulators share: the Imagen `:predict` and Gemini
 * `:generateContent` rules, answers and refusals, Google's error shape, the faults both APIs
 * produce, and the HTTP plumbing. Each API's emulator (gemini.ts, vertex.ts) adds its URL
 * layout, its model list and its authentication.
 *
 * The rules are written from Google's documentation (summarised in docs/providers/gemini.md
 * and docs/providers/vertex_ai.md), deliberately
 * independent of the gateway's catalog and adapter tables, so a gateway bug cannot be
 * mirrored here and go unnoticed.
 *
 * Safety test hooks (any case, as whole words):
 * - "partly-forbidden": Imagen filters half the images (rounded down) of the call; Gemini
 *   withholds the image of every second call with that prompt (IMAGE_SAFETY).
 * - "forbidden-image": every output image is filtered: Imagen answers 200 with a
 *   `raiFilteredReason` entry (with `includeRaiReason`) or `{}` (without); Gemini answers
 *   finishReason IMAGE_SAFETY.
 * - "forbidden" otherwise: the prompt is blocked: Imagen 400 INVALID_ARGUMENT (sensitive
 *   words); Gemini `promptFeedback.blockReason` PROHIBITED_CONTENT.
 */
import { randomBytes } from "node:crypto";
import type http from "node:http";
import {
  type ControlOptions,
  commonFaults,
  type Fault,
  type FaultQueue,
  faultControl,
  playFault,
} from "./faults.ts";
import {
  type AnyResponse,
  type Endpoint,
  type Listening,
  listen,
  parseJsonOrUndefined,
  readBody as readBounded,
  record,
  sendJson,
} from "./http-kit.ts";
import { predictEdit } from "./imagen-edit.ts";
import { renderPng } from "./png.ts";

export type GoogleApi = "ai-studio" | "vertex";

// ---------------------------------------------------------------------------------------------
// Model rules
// ---------------------------------------------------------------------------------------------

export interface ImagenRules {
  kind: "imagen";
  maxSampleCount: number;
  aspectRatios: readonly string[];
  /** Accepted `sampleImageSize` values; `2K` doubles each side of the 1K size. */
  sampleImageSizes: readonly string[];
  /** Vertex only: whether `negativePrompt` is taken (not on imagen-3.0-generate-002 and later). */
  negativePrompt: boolean;
  /** Vertex only: `addWatermark`'s default (false on @002 and @005); a seed needs it off. */
  watermarkByDefault: boolean;
  /** Vertex only: whether `enhancePrompt` is taken. */
  enhancePrompt: boolean;
  /** The editing model (imagen-3.0-capability-001): `:predict` takes reference images (imagen-edit.ts). */
  editing?: boolean;
}

export interface GeminiRules {
  kind: "gemini";
  /** Width x height per aspect ratio at 1K; 2K and 4K scale each side by 2 and 4. */
  pixels1K: Readonly<Record<string, readonly [number, number]>>;
  imageSizes: readonly string[];
  /** Output tokens one image costs, per imageSize. */
  tokensPerImage: Readonly<Record<string, number>>;
  maxPromptTokens: number;
  /** Input images per prompt (Google's image-understanding table: 3 for 2.5 Flash Image, 14 for 3 Pro). */
  maxInputImages: number;
  /** Input tokens one input image counts for. */
  inputImageTokens: number;
  /** Input image media types taken. */
  inputMimeTypes: readonly string[];
}

/** Each inline input image at most 7 MB (Google's image-understanding table). */
const MAX_INLINE_IMAGE_BYTES = 7 * 1024 * 1024;

export type ModelRules = ImagenRules | GeminiRules;

const IMAGEN_1K: Readonly<Record<string, readonly [number, number]>> = {
  "1:1": [1024, 1024],
  "3:4": [896, 1280],
  "4:3": [1280, 896],
  "9:16": [768, 1408],
  "16:9": [1408, 768],
};
const IMAGEN_RATIOS = Object.keys(IMAGEN_1K);
/** Imagen 2 and 3 on Vertex take pixel sizes; upscaling is not emulated (the 1K size is produced). */
const IMAGEN_LEGACY_SIZES = ["64", "256", "512", "1024", "2048", "4096"];
const IMAGEN_PROMPT_TOKENS = 480;

const imagen = (overrides: Partial<ImagenRules>): ImagenRules => ({
  kind: "imagen",
  maxSampleCount: 4,
  aspectRatios: IMAGEN_RATIOS,
  sampleImageSizes: [],
  negativePrompt: false,
  watermarkByDefault: true,
  enhancePrompt: false,
  ...overrides,
});

const GEMINI_25_FLASH: GeminiRules = {
  kind: "gemini",
  pixels1K: {
    "1:1": [1024, 1024],
    "2:3": [832, 1248],
    "3:2": [1248, 832],
    "3:4": [864, 1184],
    "4:3": [1184, 864],
    "4:5": [896, 1152],
    "5:4": [1152, 896],
    "9:16": [768, 1344],
    "16:9": [1344, 768],
    "21:9": [1536, 672],
  },
  imageSizes: ["1K"],
  tokensPerImage: { "1K": 1290 },
  maxPromptTokens: 32_768,
  maxInputImages: 3,
  inputImageTokens: 258,
  inputMimeTypes: ["image/png", "image/jpeg", "image/webp"],
};

const GEMINI_3_PRO: GeminiRules = {
  kind: "gemini",
  pixels1K: {
    "1:1": [1024, 1024],
    "2:3": [848, 1264],
    "3:2": [1264, 848],
    "3:4": [896, 1200],
    "4:3": [1200, 896],
    "4:5": [928, 1152],
    "5:4": [1152, 928],
    "9:16": [768, 1376],
    "16:9": [1376, 768],
    "21:9": [1584, 672],
  },
  imageSizes: ["1K", "2K", "4K"],
  tokensPerImage: { "1K": 1120, "2K": 1120, "4K": 2000 },
  maxPromptTokens: 65_536,
  maxInputImages: 14,
  inputImageTokens: 1120,
  inputMimeTypes: ["image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"],
};

/**
 * Gemini 3.1 Flash Image (Vertex model page: tokens per image 1120 at 1K, 1680 at 2K, 2520 at
 * 4K) and Nano Banana 2.1 (third-party tables: the same tiers); Gemini 3 Pro Image's sizes per
 * ratio (the 3.1 page's extra ratios and its 512 tier are not emulated).
 */
const GEMINI_31_FLASH: GeminiRules = {
  ...GEMINI_3_PRO,
  tokensPerImage: { "1K": 1120, "2K": 1680, "4K": 2520 },
};

const SCALE_BY_TIER: Readonly<Record<string, number>> = { "1K": 1, "2K": 2, "4K": 4 };

export const AI_STUDIO_MODELS: Readonly<Record<string, ModelRules>> = {
  "imagen-3.0-generate-002": imagen({}),
  "imagen-4.0-generate-001": imagen({ sampleImageSizes: ["1K", "2K"] }),
  "imagen-4.0-fast-generate-001": imagen({}),
  "imagen-4.0-ultra-generate-001": imagen({ maxSampleCount: 1, sampleImageSizes: ["1K", "2K"] }),
  "gemini-2.5-flash-image": GEMINI_25_FLASH,
  "gemini-3-pro-image-preview": GEMINI_3_PRO,
  "gemini-3-pro-image": GEMINI_3_PRO,
  "gemini-nano-banana-2.1": GEMINI_31_FLASH,
};

export const VERTEX_MODELS: Readonly<Record<string, ModelRules>> = {
  // Imagen 1 generates squares only (unverified: not in the reference).
  "imagegeneration@002": imagen({
    aspectRatios: ["1:1"],
    sampleImageSizes: IMAGEN_LEGACY_SIZES,
    negativePrompt: true,
    watermarkByDefault: false,
  }),
  "imagegeneration@005": imagen({
    sampleImageSizes: IMAGEN_LEGACY_SIZES,
    negativePrompt: true,
    watermarkByDefault: false,
  }),
  "imagegeneration@006": imagen({ sampleImageSizes: IMAGEN_LEGACY_SIZES, negativePrompt: true }),
  "imagen-3.0-generate-001": imagen({
    sampleImageSizes: IMAGEN_LEGACY_SIZES,
    negativePrompt: true,
  }),
  "imagen-3.0-fast-generate-001": imagen({
    sampleImageSizes: IMAGEN_LEGACY_SIZES,
    negativePrompt: true,
  }),
  "imagen-3.0-generate-002": imagen({ sampleImageSizes: IMAGEN_LEGACY_SIZES, enhancePrompt: true }),
  "imagen-3.0-capability-001": imagen({ editing: true, negativePrompt: true }),
  "imagen-4.0-generate-001": imagen({ sampleImageSizes: ["1K", "2K"], enhancePrompt: true }),
  "imagen-4.0-fast-generate-001": imagen({ enhancePrompt: true }),
  "imagen-4.0-ultra-generate-001": imagen({
    maxSampleCount: 1,
    sampleImageSizes: ["1K", "2K"],
    enhancePrompt: true,
  }),
  "gemini-2.5-flash-image": GEMINI_25_FLASH,
  "gemini-3-pro-image-preview": GEMINI_3_PRO,
  "gemini-3-pro-image": GEMINI_3_PRO,
  "gemini-3.1-flash-image": GEMINI_31_FLASH,
};

/** Imagen `parameters` each API knows. AI Studio rejects the Vertex-only ones by name. */
const IMAGEN_COMMON_PARAMS = [
  "sampleCount",
  "aspectRatio",
  "personGeneration",
  "safetySetting",
  "guidanceScale",
  "includeSafetyAttributes",
  "includeRaiReason",
  "language",
  "outputOptions",
  "sampleImageSize",
];
const IMAGEN_VERTEX_ONLY_PARAMS = [
  "seed",
  "negativePrompt",
  "addWatermark",
  "enhancePrompt",
  "storageUri",
];

const PERSON_GENERATION: Readonly<Record<GoogleApi, readonly string[]>> = {
  "ai-studio": ["dont_allow", "allow_adult"],
  vertex: ["dont_allow", "allow_adult", "allow_all"],
};
const SAFETY_SETTINGS: Readonly<Record<GoogleApi, readonly string[]>> = {
  "ai-studio": ["block_low_and_above", "block_medium_and_above", "block_only_high"],
  vertex: [
    "block_low_and_above",
    "block_medium_and_above",
    "block_only_high",
    "block_none",
    "block_most",
    "block_some",
    "block_few",
    "block_fewest",
  ],
};
const LANGUAGES = ["auto", "en", "ja", "ko", "hi", "zh", "pt", "es"];
const OUTPUT_MIME_TYPES = ["image/png", "image/jpeg"];

const GEMINI_TOP_LEVEL: Readonly<Record<GoogleApi, readonly string[]>> = {
  "ai-studio": [
    "contents",
    "generationConfig",
    "safetySettings",
    "systemInstruction",
    "tools",
    "toolConfig",
    "cachedContent",
  ],
  vertex: [
    "contents",
    "generationConfig",
    "safetySettings",
    "systemInstruction",
    "tools",
    "toolConfig",
    "cachedContent",
    "labels",
  ],
};
const GENERATION_CONFIG_FIELDS = [
  "responseModalities",
  "imageConfig",
  "temperature",
  "topP",
  "topK",
  "candidateCount",
  "maxOutputTokens",
  "stopSequences",
  "seed",
  "presencePenalty",
  "frequencyPenalty",
  "responseMimeType",
  "thinkingConfig",
];
/** Output MIME type and compression exist only on Vertex, not on AI Studio. */
const IMAGE_CONFIG_FIELDS: Readonly<Record<GoogleApi, readonly string[]>> = {
  "ai-studio": ["aspectRatio", "imageSize"],
  vertex: ["aspectRatio", "imageSize", "imageOutputOptions", "personGeneration"],
};
const MODALITIES = ["TEXT", "IMAGE"];

const PARTLY_FORBIDDEN = /\bpartly-forbidden\b/i;
const FORBIDDEN_IMAGE = /\bforbidden-image\b/i;
const FORBIDDEN = /\bforbidden\b/i;

const ALL_FILTERED_REASON =
  "Unable to show generated images. All images were filtered out because they violated Vertex AI's usage guidelines. " +
  "You will not be charged for blocked images. Try rephrasing the prompt. If you think this was an error, send feedback. " +
  "Support codes: 29310472";
const SENSITIVE_PROMPT =
  "Image generation failed with the following error: The prompt could not be submitted. This prompt contains sensitive words " +
  "that violate Google's Responsible AI practices. Try rephrasing the prompt. If you think this was an error, send feedback. " +
  "Support codes: 42876398";

// ---------------------------------------------------------------------------------------------
// Errors (https://cloud.google.com/apis/design/errors)
// ---------------------------------------------------------------------------------------------

export interface GoogleErrorBody {
  error: { code: number; message: string; status: string; details?: object[] };
}

export function googleError(
  code: number,
  status: string,
  message: string,
  details: object[] = [],
): GoogleErrorBody {
  return { error: { code, message, status, ...(details.length > 0 ? { details } : {}) } };
}

/** Thrown by validation and routing; rendered as Google's error body. */
export class GoogleApiError extends Error {
  readonly status: number;
  readonly body: GoogleErrorBody;
  constructor(status: number, grpcStatus: string, message: string, details: object[] = []) {
    super(message);
    this.status = status;
    this.body = googleError(status, grpcStatus, message, details);
  }
}

export function invalidArgument(message: string, field?: string): GoogleApiError {
  const details =
    field === undefined
      ? []
      : [
          {
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            fieldViolations: [{ field, description: message }],
          },
        ];
  return new GoogleApiError(400, "INVALID_ARGUMENT", message, details);
}

export function unknownName(name: string, at?: string): GoogleApiError {
  const message = `Invalid JSON payload received. Unknown name "${name}"${at ? ` at '${at}'` : ""}: Cannot find field.`;
  return invalidArgument(message, at ?? name);
}

export function errorInfo(
  reason: string,
  domain: string,
  metadata: Record<string, string> = {},
): object {
  return { "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason, domain, metadata };
}

/** Builders for the faults Google's APIs are known to produce. Spread to add `times` or `model`. */
export const googleFaults = {
  ...commonFaults,
  /** 429 RESOURCE_EXHAUSTED with QuotaFailure and `RetryInfo.retryDelay` (the only retry hint; no header). */
  rateLimit(retryDelaySeconds = 53, api: GoogleApi = "ai-studio"): Fault {
    const message =
      api === "vertex"
        ? "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model with base model: imagegeneration. Please submit a quota increase request. https://cloud.google.com/vertex-ai/docs/generative-ai/quotas-genai."
        : "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.";
    return {
      status: 429,
      body: googleError(429, "RESOURCE_EXHAUSTED", message, [
        {
          "@type": "type.googleapis.com/google.rpc.QuotaFailure",
          violations: [
            {
              quotaMetric: "generativelanguage.googleapis.com/generate_requests_per_model",
              quotaId: "GenerateRequestsPerMinutePerProjectPerModel",
            },
          ],
        },
        {
          "@type": "type.googleapis.com/google.rpc.RetryInfo",
          retryDelay: `${retryDelaySeconds}s`,
        },
      ]),
    };
  },
  internal(): Fault {
    return {
      status: 500,
      body: googleError(
        500,
        "INTERNAL",
        "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
      ),
    };
  },
  unavailable(): Fault {
    return {
      status: 503,
      body: googleError(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
    };
  },
  deadlineExceeded(): Fault {
    return {
      status: 504,
      body: googleError(
        504,
        "DEADLINE_EXCEEDED",
        "Deadline expired before operation could complete.",
      ),
    };
  },
  /**
   * 404 NOT_FOUND for a model the API no longer serves (Google: retired model IDs "generally"
   * answer 404); applies only to `model`.
   */
  modelNotFound(model: string, method: "predict" | "generateContent" = "predict"): Fault {
    return {
      status: 404,
      model,
      body: googleError(
        404,
        "NOT_FOUND",
        `models/${model} is not found for API version v1beta, or is not supported for ${method}. Call ListModels to see the list of available models and their supported methods.`,
      ),
    };
  },
  /** 200 with a truncated JSON body. */
  malformed(): Fault {
    return commonFaults.malformed('{"predictions": [{"bytesBase64Encoded": "iVBOR', JSON_UTF8);
  },
};

// ---------------------------------------------------------------------------------------------
// The image service both APIs run
// ---------------------------------------------------------------------------------------------

/** Rough token count (about four characters a token), for the prompt limits. */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

export class GoogleImageService {
  readonly #api: GoogleApi;
  /** Gemini "partly-forbidden" calls seen, per prompt: every second one is withheld. */
  readonly #partlyCalls = new Map<string, number>();

  constructor(api: GoogleApi) {
    this.#api = api;
  }

  /** A model call's answer: the JSON body goes to `predict` or `generateContent` by the model's kind. */
  answer(modelId: string, rules: ModelRules, body: Buffer): object {
    const json = parseJsonBody(body);
    return rules.kind === "imagen"
      ? this.predict(modelId, rules, json)
      : this.generateContent(modelId, rules, json);
  }

  /** `:predict` for an Imagen model; throws GoogleApiError for a 400. */
  predict(modelId: string, rules: ImagenRules, raw: unknown): object {
    if (rules.editing) return predictEdit(modelId, rules, raw);
    const api = this.#api;
    const body = requireObject(raw, "");
    for (const key of Object.keys(body)) {
      if (!["instances", "parameters", ...(api === "vertex" ? ["labels"] : [])].includes(key))
        throw unknownName(key);
    }
    const instances = body.instances;
    if (!Array.isArray(instances) || instances.length === 0)
      throw invalidArgument("instances must be a non-empty list.", "instances");
    if (instances.length > 1)
      throw invalidArgument("Only one instance is supported per request.", "instances");
    const instance = requireObject(instances[0], "instances[0]");
    for (const key of Object.keys(instance))
      if (key !== "prompt") throw unknownName(key, "instances[0]");
    const prompt = instance.prompt;
    if (typeof prompt !== "string" || prompt.trim() === "")
      throw invalidArgument("A prompt is required.", "instances[0].prompt");
    if (estimateTokens(prompt) > IMAGEN_PROMPT_TOKENS) {
      throw invalidArgument(
        `The prompt is too long: the maximum is ${IMAGEN_PROMPT_TOKENS} tokens.`,
        "instances[0].prompt",
      );
    }
    const params =
      body.parameters === undefined ? {} : requireObject(body.parameters, "parameters");
    for (const key of Object.keys(params)) {
      if (IMAGEN_COMMON_PARAMS.includes(key)) continue;
      if (IMAGEN_VERTEX_ONLY_PARAMS.includes(key)) {
        if (api === "ai-studio")
          throw invalidArgument(
            `${key} parameter is not supported in Gemini API.`,
            `parameters.${key}`,
          );
        continue;
      }
      throw unknownName(key, "parameters");
    }
    const sampleCount = params.sampleCount ?? Math.min(4, rules.maxSampleCount);
    if (
      !Number.isInteger(sampleCount) ||
      (sampleCount as number) < 1 ||
      (sampleCount as number) > rules.maxSampleCount
    ) {
      throw invalidArgument(
        `sampleCount must be an integer from 1 to ${rules.maxSampleCount} for ${modelId}; got ${JSON.stringify(sampleCount)}.`,
        "parameters.sampleCount",
      );
    }
    const count = sampleCount as number;
    const ratio = params.aspectRatio ?? "1:1";
    if (typeof ratio !== "string" || !rules.aspectRatios.includes(ratio)) {
      throw invalidArgument(
        `Unsupported aspectRatio ${JSON.stringify(ratio)}; supported: ${rules.aspectRatios.join(", ")}.`,
        "parameters.aspectRatio",
      );
    }
    checkEnum(params, "personGeneration", PERSON_GENERATION[api], false);
    checkEnum(params, "safetySetting", SAFETY_SETTINGS[api], api === "vertex");
    checkEnum(params, "language", LANGUAGES, false);
    for (const flag of [
      "includeSafetyAttributes",
      "includeRaiReason",
      "addWatermark",
      "enhancePrompt",
    ]) {
      if (params[flag] !== undefined && typeof params[flag] !== "boolean") {
        throw invalidArgument(`${flag} must be a boolean.`, `parameters.${flag}`);
      }
    }
    if (params.guidanceScale !== undefined && typeof params.guidanceScale !== "number") {
      throw invalidArgument("guidanceScale must be a number.", "parameters.guidanceScale");
    }
    if (params.outputOptions !== undefined)
      checkOutputOptions(params.outputOptions, "parameters.outputOptions");
    let tier = "1K";
    if (params.sampleImageSize !== undefined) {
      const size = String(params.sampleImageSize);
      if (!rules.sampleImageSizes.includes(size)) {
        throw invalidArgument(
          rules.sampleImageSizes.length === 0
            ? `sampleImageSize is not supported by ${modelId}.`
            : `Unsupported sampleImageSize ${JSON.stringify(params.sampleImageSize)}; supported: ${rules.sampleImageSizes.join(", ")}.`,
          "parameters.sampleImageSize",
        );
      }
      if (size === "2K") tier = "2K";
    }
    if (params.negativePrompt !== undefined) {
      if (!rules.negativePrompt)
        throw invalidArgument(
          `negativePrompt is not supported by ${modelId}.`,
          "parameters.negativePrompt",
        );
      if (typeof params.negativePrompt !== "string")
        throw invalidArgument("negativePrompt must be a string.", "parameters.negativePrompt");
    }
    if (params.enhancePrompt !== undefined && !rules.enhancePrompt) {
      throw invalidArgument(
        `enhancePrompt is not supported by ${modelId}.`,
        "parameters.enhancePrompt",
      );
    }
    if (params.seed !== undefined) {
      const seed = params.seed;
      if (!Number.isInteger(seed) || (seed as number) < 0 || (seed as number) > 0xffff_ffff) {
        throw invalidArgument("seed must be an integer from 0 to 4294967295.", "parameters.seed");
      }
      if ((params.addWatermark ?? rules.watermarkByDefault) === true) {
        throw invalidArgument(
          "Seed is not supported when addWatermark is enabled. Set addWatermark to false to use a seed.",
          "parameters.seed",
        );
      }
    }
    if (
      params.storageUri !== undefined &&
      (typeof params.storageUri !== "string" || !params.storageUri.startsWith("gs://"))
    ) {
      throw invalidArgument("storageUri must be a gs:// URI.", "parameters.storageUri");
    }

    if (!PARTLY_FORBIDDEN.test(prompt) && !FORBIDDEN_IMAGE.test(prompt) && FORBIDDEN.test(prompt)) {
      throw invalidArgument(SENSITIVE_PROMPT);
    }
    const survivors = FORBIDDEN_IMAGE.test(prompt)
      ? 0
      : PARTLY_FORBIDDEN.test(prompt)
        ? Math.ceil(count / 2)
        : count;
    const [w1, h1] = IMAGEN_1K[ratio]!;
    const scale = SCALE_BY_TIER[tier]!;
    const predictions: object[] = [];
    for (let i = 0; i < survivors; i++) {
      const seed = `${modelId}|${prompt}|${String(params.seed ?? "")}|${i}`;
      const item: Record<string, unknown> =
        typeof params.storageUri === "string"
          ? {
              gcsUri: `${params.storageUri.replace(/\/+$/, "")}/sample_${i}.png`,
              mimeType: "image/png",
            }
          : {
              bytesBase64Encoded: renderPng(w1 * scale, h1 * scale, seed).toString("base64"),
              mimeType: "image/png",
            };
      if (params.enhancePrompt === true) item.prompt = `An enhanced rendering of: ${prompt}`;
      if (params.includeSafetyAttributes === true)
        item.safetyAttributes = { categories: [], scores: [] };
      predictions.push(item);
    }
    if (params.includeSafetyAttributes === true) {
      predictions.push({
        contentType: "Positive Prompt",
        safetyAttributes: { categories: [], scores: [] },
      });
    }
    if (survivors < count && params.includeRaiReason === true) {
      predictions.push({
        raiFilteredReason:
          survivors === 0
            ? ALL_FILTERED_REASON
            : `Your current safety filter threshold filtered out ${count - survivors} generated images. You will not be charged for blocked images. Try rephrasing the prompt. If you think this was an error, send feedback.`,
      });
    }
    // Everything filtered and nothing to say: Vertex answers an empty object
    // (docs/providers/vertex_ai.md, "Refusals").
    return predictions.length === 0 ? {} : { predictions };
  }

  /** `:generateContent` for a Gemini image model; throws GoogleApiError for a 400. */
  generateContent(modelId: string, rules: GeminiRules, raw: unknown): object {
    const api = this.#api;
    const body = requireObject(raw, "");
    for (const key of Object.keys(body))
      if (!GEMINI_TOP_LEVEL[api].includes(key)) throw unknownName(key);
    const { prompt, images } = this.#promptOf(body.contents);
    checkInputImages(images, rules);
    if (estimateTokens(prompt) > rules.maxPromptTokens) {
      throw invalidArgument(
        `The input token count (${estimateTokens(prompt)}) exceeds the maximum number of tokens allowed (${rules.maxPromptTokens}).`,
        "contents",
      );
    }
    const config =
      body.generationConfig === undefined
        ? {}
        : requireObject(body.generationConfig, "generation_config");
    for (const key of Object.keys(config))
      if (!GENERATION_CONFIG_FIELDS.includes(key)) throw unknownName(key, "generation_config");
    const modalities = config.responseModalities ?? ["TEXT"];
    if (!Array.isArray(modalities))
      throw invalidArgument(
        "responseModalities must be a list.",
        "generation_config.response_modalities",
      );
    for (const [i, m] of modalities.entries()) {
      if (typeof m !== "string" || !MODALITIES.includes(m)) {
        throw invalidArgument(
          `Invalid value at 'generation_config.response_modalities[${i}]' (type.googleapis.com/google.ai.generativelanguage.v1beta.GenerationConfig.Modality), ${JSON.stringify(m)}`,
          `generation_config.response_modalities[${i}]`,
        );
      }
    }
    if (config.candidateCount !== undefined && config.candidateCount !== 1) {
      throw invalidArgument(
        `Multiple candidates is not enabled for models/${modelId}`,
        "generation_config.candidate_count",
      );
    }
    const imageConfig =
      config.imageConfig === undefined
        ? {}
        : requireObject(config.imageConfig, "generation_config.image_config");
    for (const key of Object.keys(imageConfig)) {
      if (!IMAGE_CONFIG_FIELDS[api].includes(key))
        throw unknownName(key, "generation_config.image_config");
    }
    const ratio = imageConfig.aspectRatio ?? "1:1";
    if (typeof ratio !== "string" || rules.pixels1K[ratio] === undefined) {
      throw invalidArgument(
        `Unsupported aspect ratio ${JSON.stringify(ratio)}. Supported: ${Object.keys(rules.pixels1K).join(", ")}.`,
        "generation_config.image_config.aspect_ratio",
      );
    }
    const tier = imageConfig.imageSize ?? "1K";
    if (typeof tier !== "string" || !rules.imageSizes.includes(tier)) {
      throw invalidArgument(
        `Unsupported image size ${JSON.stringify(tier)} for models/${modelId}. Supported: ${rules.imageSizes.join(", ")}.`,
        "generation_config.image_config.image_size",
      );
    }
    if (imageConfig.imageOutputOptions !== undefined) {
      checkOutputOptions(
        imageConfig.imageOutputOptions,
        "generation_config.image_config.image_output_options",
      );
    }

    const inputImageTokens = images.length * rules.inputImageTokens;
    const promptTokens = estimateTokens(prompt) + inputImageTokens;
    const promptDetails = [{ modality: "TEXT", tokenCount: estimateTokens(prompt) }];
    if (inputImageTokens > 0)
      promptDetails.push({ modality: "IMAGE", tokenCount: inputImageTokens });
    const responseId = randomBytes(12).toString("base64url");
    const promptUsage = {
      promptTokenCount: promptTokens,
      totalTokenCount: promptTokens,
      promptTokensDetails: promptDetails,
    };
    if (!PARTLY_FORBIDDEN.test(prompt) && !FORBIDDEN_IMAGE.test(prompt) && FORBIDDEN.test(prompt)) {
      return {
        promptFeedback: { blockReason: "PROHIBITED_CONTENT" },
        usageMetadata: promptUsage,
        modelVersion: modelId,
        responseId,
      };
    }
    if (
      FORBIDDEN_IMAGE.test(prompt) ||
      (PARTLY_FORBIDDEN.test(prompt) && this.#withholdPartly(prompt))
    ) {
      return {
        candidates: [
          {
            finishReason: "IMAGE_SAFETY",
            finishMessage:
              "Unable to show the generated image. The image was filtered out because it violated Google's Generative AI Prohibited Use policy.",
            index: 0,
          },
        ],
        usageMetadata: promptUsage,
        modelVersion: modelId,
        responseId,
      };
    }
    const text = `Here is an image of ${prompt.slice(0, 60)}`;
    const textTokens = estimateTokens(text);
    const parts: object[] = [{ text }];
    const outputDetails = [{ modality: "TEXT", tokenCount: textTokens }];
    let imageTokens = 0;
    if (modalities.includes("IMAGE")) {
      const [w1, h1] = rules.pixels1K[ratio]!;
      const scale = SCALE_BY_TIER[tier]!;
      const png = renderPng(w1 * scale, h1 * scale, `${modelId}|${prompt}|${responseId}`);
      parts.push({ inlineData: { mimeType: "image/png", data: png.toString("base64") } });
      imageTokens = rules.tokensPerImage[tier]!;
      outputDetails.unshift({ modality: "IMAGE", tokenCount: imageTokens });
    }
    return {
      candidates: [{ content: { role: "model", parts }, finishReason: "STOP", index: 0 }],
      usageMetadata: {
        promptTokenCount: promptTokens,
        candidatesTokenCount: imageTokens + textTokens,
        totalTokenCount: promptTokens + imageTokens + textTokens,
        promptTokensDetails: promptDetails,
        candidatesTokensDetails: outputDetails,
      },
      modelVersion: modelId,
      responseId,
    };
  }

  /**
   * The text of the user's turns and their inline images; `contents` must hold at least one
   * non-empty text part.
   */
  #promptOf(contents: unknown): { prompt: string; images: InlineImage[] } {
    if (!Array.isArray(contents) || contents.length === 0) {
      throw invalidArgument(
        "* GenerateContentRequest.contents: contents is not specified",
        "contents",
      );
    }
    const texts: string[] = [];
    const images: InlineImage[] = [];
    for (const [i, c] of contents.entries()) {
      const content = requireObject(c, `contents[${i}]`);
      for (const key of Object.keys(content))
        if (key !== "role" && key !== "parts") throw unknownName(key, `contents[${i}]`);
      if (content.role !== undefined && content.role !== "user" && content.role !== "model") {
        throw invalidArgument(`Please use a valid role: user, model.`, `contents[${i}].role`);
      }
      if (!Array.isArray(content.parts) || content.parts.length === 0) {
        throw invalidArgument(
          `* GenerateContentRequest.contents[${i}].parts: contents.parts must not be empty.`,
          `contents[${i}].parts`,
        );
      }
      for (const [j, p] of content.parts.entries()) {
        const part = requireObject(p, `contents[${i}].parts[${j}]`);
        for (const key of Object.keys(part)) {
          if (key !== "text" && key !== "inlineData")
            throw unknownName(key, `contents[${i}].parts[${j}]`);
        }
        if (typeof part.text === "string") texts.push(part.text);
        if (part.inlineData !== undefined)
          images.push(inlineImage(part.inlineData, `contents[${i}].parts[${j}].inline_data`));
      }
    }
    const prompt = texts.join("\n");
    if (prompt.trim() === "")
      throw invalidArgument(
        "* GenerateContentRequest.contents: contents is not specified",
        "contents",
      );
    return { prompt, images };
  }

  #withholdPartly(prompt: string): boolean {
    const seen = (this.#partlyCalls.get(prompt) ?? 0) + 1;
    this.#partlyCalls.set(prompt, seen);
    return seen % 2 === 0;
  }
}

export function requireObject(value: unknown, at: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalidArgument(
      `Invalid JSON payload received. Expected an object${at ? ` at '${at}'` : ""}.`,
      at || undefined,
    );
  }
  return value as Record<string, unknown>;
}

function checkEnum(
  params: Record<string, unknown>,
  key: string,
  allowed: readonly string[],
  caseInsensitive: boolean,
): void {
  const value = params[key];
  if (value === undefined) return;
  const v = typeof value === "string" && caseInsensitive ? value.toLowerCase() : value;
  if (typeof v !== "string" || !allowed.includes(v)) {
    throw invalidArgument(
      `${String(value)} for ${key} is not supported. Supported values: ${allowed.join(", ")}.`,
      `parameters.${key}`,
    );
  }
}

/** Output options: PNG or JPEG and a quality; the emulator still returns PNG bytes labelled as such. */
function checkOutputOptions(value: unknown, at: string): void {
  const options = requireObject(value, at);
  for (const key of Object.keys(options))
    if (key !== "mimeType" && key !== "compressionQuality") throw unknownName(key, at);
  if (options.mimeType !== undefined && !OUTPUT_MIME_TYPES.includes(options.mimeType as string)) {
    throw invalidArgument(
      `Unsupported mimeType ${JSON.stringify(options.mimeType)}; supported: ${OUTPUT_MIME_TYPES.join(", ")}.`,
      `${at}.mimeType`,
    );
  }
  const q = options.compressionQuality;
  if (q !== undefined && (!Number.isInteger(q) || (q as number) < 0 || (q as number) > 100)) {
    throw invalidArgument(
      "compressionQuality must be an integer from 0 to 100.",
      `${at}.compressionQuality`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP plumbing
// ---------------------------------------------------------------------------------------------

const MAX_BODY_BYTES = 4 * 1024 * 1024;
const JSON_UTF8 = "application/json; charset=UTF-8";

export interface RecordedRequest {
  method: string;
  path: string;
  /** The model named in the path, when there is one. */
  model: string | undefined;
  headers: http.IncomingHttpHeaders;
  /** Parsed JSON (or form fields for the token endpoint), or undefined. */
  body: unknown;
}

/** What a Google emulator keeps: its fault queue and request log. */
export interface CallLog {
  faults: FaultQueue;
  requests: RecordedRequest[];
}

export function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return readBounded(
    req,
    MAX_BODY_BYTES,
    (limit) =>
      new GoogleApiError(
        413,
        "INVALID_ARGUMENT",
        `Request payload size exceeds the limit: ${limit} bytes.`,
      ),
  );
}

export function parseJsonBody(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    throw invalidArgument("Invalid JSON payload received. Unexpected token.");
  }
}

/** JSON as Google sends it (`application/json; charset=UTF-8`). */
export function sendGoogleJson(res: AnyResponse, status: number, body: unknown): void {
  sendJson(res, status, body, { "content-type": JSON_UTF8 });
}

export function notFound(message: string): GoogleApiError {
  return new GoogleApiError(404, "NOT_FOUND", message);
}

/**
 * The start of a model call, shared by both APIs: reads the body, finds the call's `route` in
 * the URL and records the call, refuses an unknown URL or a method other than POST, then plays
 * a queued fault (faults come before auth and validation: they stand for upstream trouble of
 * any kind). Returns the route and body, or undefined when a fault ended the exchange.
 */
export async function beginCall<Route extends { model: string }>(
  log: CallLog,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  url: URL,
  route: () => Route | undefined,
): Promise<{ route: Route; body: Buffer } | undefined> {
  const body = await readBody(req);
  const found = route();
  record(log.requests, {
    method: req.method ?? "GET",
    path: url.pathname,
    model: found?.model,
    headers: req.headers,
    body: parseJsonOrUndefined(body),
  });
  if (found === undefined)
    throw notFound(`The requested URL ${url.pathname} was not found on this server.`);
  if (req.method !== "POST")
    throw notFound(`Method ${req.method} is not allowed for ${url.pathname}.`);
  if (await playFault(log.faults, found.model, req, res)) return undefined;
  return { route: found, body };
}

/** The control endpoints answer in Google's error shape, and 204 to a queued fault. */
const CONTROL: ControlOptions = {
  readBody,
  invalid: (message) => invalidArgument(message),
  badMethod: (method) => notFound(`Method ${method} is not allowed here.`),
  sendJson: sendGoogleJson,
  queuedStatus: 204,
};

/** POST a Fault (JSON) to queue it (204), DELETE to clear, GET to see how many are pending. */
export function googleFaultControl(
  faults: FaultQueue,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  return faultControl(faults, req, res, CONTROL);
}

/** Serves `handle`; a GoogleApiError becomes Google's error body, anything else a 500. */
export function listenGoogle(
  handle: (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>,
  endpoint: Endpoint,
): Promise<Listening> {
  return listen(handle, endpoint, (res, err) => {
    if (err instanceof GoogleApiError) sendGoogleJson(res, err.status, err.body);
    else sendGoogleJson(res, 500, googleError(500, "INTERNAL", `Emulator bug: ${String(err)}`));
  });
}

interface InlineImage {
  mimeType: string;
  bytes: number;
  at: string;
}

/** An `inlineData` part: a media type and base64 data. */
function inlineImage(raw: unknown, at: string): InlineImage {
  const data = requireObject(raw, at);
  for (const key of Object.keys(data))
    if (key !== "mimeType" && key !== "data") throw unknownName(key, at);
  if (typeof data.mimeType !== "string" || data.mimeType === "")
    throw invalidArgument(`${at}.mime_type: a media type is required.`, `${at}.mime_type`);
  if (typeof data.data !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(data.data))
    throw invalidArgument(
      `Invalid value at '${at}.data' (TYPE_BYTES), Base64 decoding failed.`,
      `${at}.data`,
    );
  return { mimeType: data.mimeType, bytes: Buffer.byteLength(data.data, "base64"), at };
}

/** The input images a model takes: how many, which types, how large (Google's image-understanding table). */
function checkInputImages(images: readonly InlineImage[], rules: GeminiRules): void {
  if (images.length > rules.maxInputImages) {
    throw invalidArgument(
      `Too many images in the request: ${images.length}; the model takes at most ${rules.maxInputImages}.`,
      "contents",
    );
  }
  for (const image of images) {
    if (!rules.inputMimeTypes.includes(image.mimeType))
      throw invalidArgument(`Unsupported MIME type: ${image.mimeType}`, `${image.at}.mime_type`);
    if (image.bytes > MAX_INLINE_IMAGE_BYTES)
      throw invalidArgument(`The inline image is larger than 7 MB.`, `${image.at}.data`);
  }
}
