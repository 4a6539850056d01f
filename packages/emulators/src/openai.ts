/**
 * An in-process emulator of OpenAI's Images API (`POST /v1/images/generations`), used by the
 * tests and by `npm run dev`. It validates requests with its own rule table, written from the
 * reference docs and deliberately independent of the gateway's catalog, so that a gateway bug
 * cannot be mirrored by the emulator and go unnoticed.
 *
 * Test hooks:
 * - A prompt containing the word "forbidden" (any case) is refused by the "safety system".
 * - `faults` (or `POST /__emulator/faults` with a Fault as JSON, `DELETE` to clear) injects
 *   errors, latency, hangs and resets; `openaiFaults` builds the usual ones.
 * - `requests` records every `/v1/images/*` call, newest last.
 * - `abandonedRequests` counts calls whose client hung up during a hang or delay fault, or
 *   during a streamed answer (how a test sees that the gateway cancelled its upstream request).
 * - `stream: true` answers server-sent events, one event at a time (`streamEventDelayMs`
 *   apart); `streamFaults` (first in, first out, one per streamed request) break a stream
 *   mid-way (`stream-faults.ts`).
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type http from "node:http";
import {
  type ControlOptions,
  commonFaults,
  type Fault,
  FaultQueue,
  faultControl,
  playFault,
} from "./faults.ts";
import { type StreamEvent, type StreamFault, sendEventStream } from "./stream-faults.ts";
import {
  bearerToken,
  HttpError,
  ImageStore,
  isObject,
  listen,
  parseJsonOrUndefined,
  type RecordedRequest,
  readBody,
  record,
  requestOrigin,
  sendBlobError,
  sendBytes,
  sendHttpError,
  sendJson,
} from "./http-kit.ts";
import { renderPng } from "./png.ts";

export type { RecordedRequest };

// ---------------------------------------------------------------------------------------------
// Rule table
// ---------------------------------------------------------------------------------------------

type Family = "dall-e" | "gpt-image";

interface ModelRules {
  family: Family;
  promptMax: number;
  maxN: number;
  /** Allowed sizes, or "flexible" for gpt-image-2's any-WxH rule (see FLEXIBLE_SIZE). */
  sizes: readonly string[] | "flexible";
  defaultSize: string;
  qualities: readonly string[];
  /** Present only for models that accept `style`. */
  styles?: readonly string[];
  transparentBackground: boolean;
  revisedPrompt: boolean;
}

const DALL_E_2: ModelRules = {
  family: "dall-e",
  promptMax: 1000,
  maxN: 10,
  sizes: ["256x256", "512x512", "1024x1024"],
  defaultSize: "1024x1024",
  qualities: ["standard", "auto"],
  transparentBackground: false,
  revisedPrompt: false,
};

const DALL_E_3: ModelRules = {
  family: "dall-e",
  promptMax: 4000,
  maxN: 1,
  sizes: ["1024x1024", "1792x1024", "1024x1792"],
  defaultSize: "1024x1024",
  qualities: ["standard", "hd", "auto"],
  styles: ["vivid", "natural"],
  transparentBackground: false,
  revisedPrompt: true,
};

const GPT_IMAGE_1: ModelRules = {
  family: "gpt-image",
  promptMax: 32000,
  maxN: 10,
  sizes: ["1024x1024", "1536x1024", "1024x1536", "auto"],
  defaultSize: "auto",
  qualities: ["low", "medium", "high", "auto"],
  transparentBackground: true,
  revisedPrompt: false,
};

const GPT_IMAGE_2: ModelRules = {
  ...GPT_IMAGE_1,
  sizes: "flexible",
  transparentBackground: false,
};

const MODELS: Readonly<Record<string, ModelRules>> = {
  "dall-e-2": DALL_E_2,
  "dall-e-3": DALL_E_3,
  "gpt-image-1": GPT_IMAGE_1,
  "gpt-image-1-mini": GPT_IMAGE_1,
  // Not captured separately; the reference presumes it behaves like gpt-image-1.
  "gpt-image-1.5": GPT_IMAGE_1,
  "gpt-image-2": GPT_IMAGE_2,
  "gpt-image-2-2026-04-21": GPT_IMAGE_2,
};

/** gpt-image-2: sides multiples of 16, ratio within 1:3..3:1, long side and area within 3840x2160. */
const FLEXIBLE_SIZE = { multiple: 16, maxRatio: 3, maxSide: 3840, maxPixels: 3840 * 2160 };

type ParamType = "string" | "integer" | "boolean";

/** Every request field the emulator knows, with its JSON type. Anything else is "unrecognized". */
const PARAMS: Readonly<Record<string, ParamType>> = {
  prompt: "string",
  model: "string",
  n: "integer",
  size: "string",
  quality: "string",
  response_format: "string",
  style: "string",
  background: "string",
  moderation: "string",
  output_format: "string",
  output_compression: "integer",
  stream: "boolean",
  partial_images: "integer",
  user: "string",
  safety_identifier: "string",
};

type Operation = "generation" | "edit" | "variation";

const OPERATIONS: Readonly<Record<string, Operation>> = {
  "/v1/images/generations": "generation",
  "/v1/images/edits": "edit",
  "/v1/images/variations": "variation",
};

/** Fields each operation takes (files apart): edits add input_fidelity and drop style/moderation. */
const OPERATION_PARAMS: Readonly<Record<Operation, readonly string[]>> = {
  generation: Object.keys(PARAMS),
  edit: [
    ...Object.keys(PARAMS).filter((k) => k !== "style" && k !== "moderation"),
    "input_fidelity",
  ],
  variation: ["model", "n", "size", "response_format", "user"],
};

/** Models each edit operation takes (the SDK's ImageEditParams and ImageCreateVariationParams). */
const EDIT_MODELS: Readonly<Record<"edit" | "variation", readonly string[]>> = {
  edit: [
    "dall-e-2",
    "gpt-image-1",
    "gpt-image-1-mini",
    "gpt-image-1.5",
    "gpt-image-2",
    "gpt-image-2-2026-04-21",
  ],
  variation: ["dall-e-2"],
};

/** input_fidelity per model (openai 7.57 SDK): high|low on 1 and 1.5, low on 1-mini, none on 2. */
const INPUT_FIDELITY: Readonly<Record<string, readonly string[]>> = {
  "gpt-image-1": ["high", "low"],
  "gpt-image-1.5": ["high", "low"],
  "gpt-image-1-mini": ["low"],
};

const DALL_E_ONLY = ["response_format", "style"];
const GPT_IMAGE_ONLY = [
  "background",
  "moderation",
  "output_format",
  "output_compression",
  "stream",
  "partial_images",
];
/** Fields of the openai 7.57 SDK for newer models (gif/svg output) that no emulated model takes. */
const NEWER_MODEL_ONLY = ["complexity", "frame_count", "frame_duration_ms", "svg"];

const ENUMS: Readonly<Record<string, readonly string[]>> = {
  response_format: ["url", "b64_json"],
  background: ["transparent", "opaque", "auto"],
  moderation: ["low", "auto"],
  output_format: ["png", "jpeg", "webp"],
};

/**
 * gpt-image-1 output tokens per image (https://platform.openai.com/docs/guides/image-generation,
 * "Cost and latency"); other sizes scale by area from 1024x1024.
 */
const OUTPUT_TOKENS: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  low: { "1024x1024": 272, "1024x1536": 408, "1536x1024": 400 },
  medium: { "1024x1024": 1056, "1024x1536": 1584, "1536x1024": 1568 },
  high: { "1024x1024": 4160, "1024x1536": 6240, "1536x1024": 6208 },
};
/** Extra output tokens per streamed partial image (reference: "about 100"). */
const PARTIAL_IMAGE_TOKENS = 100;

const URL_TTL_MS = 60 * 60 * 1000;
const MAX_BODY_BYTES = 4 * 1024 * 1024;
/** Edits: up to 16 images of < 50 MB; the emulator stops at 128 MiB. */
const MAX_UPLOAD_BYTES = 128 * 1024 * 1024;
const RATE_LIMIT_PER_MINUTE = 500;
const REFUSAL_WORD = /\bforbidden\b/i;
const DOCS_URL = "https://platform.openai.com/docs/api-reference/";

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

export interface OpenAIEmulatorOptions {
  apiKey: string;
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Clock in ms, for tests of URL expiry; defaults to Date.now. */
  now?: () => number;
}

export interface OpenAIEmulator {
  /** e.g. http://127.0.0.1:PORT/v1 — what an OpenAI client takes as baseURL. */
  baseUrl: string;
  port: number;
  faults: FaultQueue;
  requests: RecordedRequest[];
  /** Requests whose client hung up during a `hang` or `delayMs` fault, or mid-stream. */
  readonly abandonedRequests: number;
  /** Faults for the next streamed answers, one each, first in first out. */
  streamFaults: StreamFault[];
  /** Wait between streamed events (default 0). */
  streamEventDelayMs: number;
  close(): Promise<void>;
}

/** Builders for the faults OpenAI is known to produce. Spread to add `times` or `model`. */
export const openaiFaults = {
  ...commonFaults,
  /** 429 rate_limit_exceeded; `retry-after` only when `retryAfterSeconds` is given. */
  rateLimit(retryAfterSeconds?: number): Fault {
    const headers: Record<string, string> = { "x-ratelimit-remaining-requests": "0" };
    if (retryAfterSeconds !== undefined) headers["retry-after"] = String(retryAfterSeconds);
    return {
      status: 429,
      headers,
      body: openaiError(
        "Rate limit exceeded for images per minute in organization org-emulator. Limit: 5/1min. Current: 6/1min.",
        "requests",
        null,
        "rate_limit_exceeded",
      ),
    };
  },
  /** 429 insufficient_quota: billing, so not worth retrying. */
  insufficientQuota(): Fault {
    return {
      status: 429,
      body: openaiError(
        "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
        "insufficient_quota",
        null,
        "insufficient_quota",
      ),
    };
  },
  serverError(): Fault {
    return {
      status: 500,
      body: openaiError(
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        null,
        null,
      ),
    };
  },
  overloaded(): Fault {
    return {
      status: 503,
      body: openaiError(
        "The server is overloaded or not ready yet.",
        "server_error",
        null,
        "server_is_overloaded",
      ),
    };
  },
  /**
   * 404 model_not_found for a shut-down model, in the words OpenAI answers with once a model
   * is gone (as seen for text-davinci-003 after its shutdown); applies only to `model`.
   */
  modelDeprecated(model: string): Fault {
    return {
      status: 404,
      model,
      body: openaiError(
        `The model \`${model}\` has been deprecated, learn more here: https://platform.openai.com/docs/deprecations`,
        "invalid_request_error",
        null,
        "model_not_found",
      ),
    };
  },
  /** 200 with a truncated JSON body. */
  malformed(): Fault {
    return commonFaults.malformed('{"created": 1713833628, "data": [{"b64_json": "iVBORw0KGgo');
  },
  /** 200 headers and half a body, then a TCP reset. */
  resetMidBody(): Fault {
    return commonFaults.resetMidBody({ created: 0, data: [{ b64_json: "x".repeat(4096) }] });
  },
};

export async function startOpenAIEmulator(opts: OpenAIEmulatorOptions): Promise<OpenAIEmulator> {
  const emulator = new Emulator(opts);
  const server = await listen(
    (req, res) => emulator.handle(req, res),
    opts,
    (res, err) =>
      sendJson(res, 500, openaiError(`Emulator bug: ${String(err)}`, "server_error", null, null)),
  );
  emulator.origin = server.origin;
  return {
    baseUrl: `${server.origin}/v1`,
    port: server.port,
    faults: emulator.faults,
    requests: emulator.requests,
    get abandonedRequests() {
      return emulator.abandonedRequests;
    },
    streamFaults: emulator.streamFaults,
    get streamEventDelayMs() {
      return emulator.streamEventDelayMs;
    },
    set streamEventDelayMs(ms: number) {
      emulator.streamEventDelayMs = ms;
    },
    close: server.close,
  };
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

function openaiError(
  message: string,
  type: string,
  param: string | null,
  code: string | null,
): OpenAIErrorBody {
  return { error: { message, type, param, code } };
}

function badRequest(message: string, param: string | null, code: string | null): HttpError {
  return new HttpError(400, openaiError(message, "invalid_request_error", param, code));
}

function invalidValue(param: string, value: unknown, allowed: readonly string[]): HttpError {
  return badRequest(
    `Invalid value: '${String(value)}'. Supported values are: ${listValues(allowed)}.`,
    param,
    "invalid_value",
  );
}

/** 'a', 'b', and 'c' — OpenAI's phrasing. */
function listValues(values: readonly string[]): string {
  const quoted = values.map((v) => `'${v}'`);
  if (quoted.length <= 2) return quoted.join(" and ");
  return `${quoted.slice(0, -1).join(", ")}, and ${quoted.at(-1)}`;
}

function unknownParameter(param: string): HttpError {
  return badRequest(`Unknown parameter: '${param}'.`, param, "unknown_parameter");
}

function maskKey(key: string): string {
  if (key.length < 12) return `${"*".repeat(Math.max(4, key.length - 2))}${key.slice(-2)}`;
  return `${key.slice(0, 3)}${"*".repeat(key.length - 7)}${key.slice(-4)}`;
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

interface ImageRequest {
  model: string;
  rules: ModelRules;
  prompt: string;
  n: number;
  width: number;
  height: number;
  /** Quality as the model applies it (auto resolved). */
  quality: string;
  responseFormat: "url" | "b64_json";
  background: string;
  outputFormat: string;
  stream: boolean;
  partialImages: number;
  /** Echoed when sent non-empty (newer SDK surface). */
  safetyIdentifier: string | undefined;
  /** Edits: input_fidelity high (more input image tokens). */
  inputFidelityHigh: boolean;
}

function validate(raw: unknown, operation: Operation = "generation"): ImageRequest {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw badRequest("Invalid request body: expected a JSON object.", null, null);
  }
  const body = raw as Record<string, unknown>;
  const known = OPERATION_PARAMS[operation];
  for (const key of Object.keys(body)) {
    if (!known.includes(key) && !(operation === "generation" && NEWER_MODEL_ONLY.includes(key))) {
      throw badRequest(`Unrecognized request argument supplied: ${key}`, null, null);
    }
  }
  // Null means unset, so drop nulls once and validate what is left.
  const p = Object.fromEntries(Object.entries(body).filter(([, v]) => v !== null));
  for (const [key, value] of Object.entries(p)) checkType(key, value);

  // A variation has no prompt.
  const prompt = operation === "variation" ? "variation" : (p.prompt as string | undefined);
  if (prompt === undefined) {
    throw badRequest(
      "Missing required parameter: 'prompt'.",
      "prompt",
      "missing_required_parameter",
    );
  }
  if (prompt.length === 0) {
    throw badRequest(
      "Invalid 'prompt': empty string. Expected a string with minimum length 1, but got an empty string instead.",
      "prompt",
      "empty_string",
    );
  }
  // Without a model, OpenAI picks dall-e-2 unless a GPT-image-only field is present.
  const model =
    (p.model as string | undefined) ??
    (GPT_IMAGE_ONLY.some((k) => k in p) ? "gpt-image-1" : "dall-e-2");
  const rules = MODELS[model];
  if (rules && operation !== "generation" && !EDIT_MODELS[operation].includes(model)) {
    throw badRequest(
      operation === "edit"
        ? `Invalid model ${model}. The model does not support image edits; use dall-e-2 or a GPT image model.`
        : `Invalid model ${model}. Image variations are only supported with dall-e-2.`,
      "model",
      "invalid_value",
    );
  }
  if (!rules) {
    throw badRequest(
      `Invalid model: ${model}. The model must be one of: ${Object.keys(MODELS).join(", ")}.`,
      "model",
      "invalid_value",
    );
  }
  if (prompt.length > rules.promptMax) {
    throw badRequest(
      `Invalid 'prompt': string too long. Expected a string with maximum length ${rules.promptMax}, but got a string with length ${prompt.length} instead.`,
      "prompt",
      "string_above_max_length",
    );
  }
  checkFamilyParams(p, model, rules);

  const n = (p.n as number | undefined) ?? 1;
  checkRange("n", n, 1, rules.maxN);
  const [width, height] = resolveSize(p.size as string | undefined, rules);
  const quality = resolveQuality(p.quality as string | undefined, rules);
  if (p.style !== undefined && !rules.styles?.includes(p.style as string)) {
    throw invalidValue("style", p.style, rules.styles ?? []);
  }
  for (const key of Object.keys(ENUMS)) {
    if (p[key] !== undefined && !ENUMS[key]!.includes(p[key] as string)) {
      throw invalidValue(key, p[key], ENUMS[key]!);
    }
  }
  const outputFormat = (p.output_format as string | undefined) ?? "png";
  const background = (p.background as string | undefined) ?? "auto";
  checkBackground(background, outputFormat, model, rules);
  if (p.output_compression !== undefined) {
    const compression = p.output_compression as number;
    checkRange("output_compression", compression, 0, 100);
    if (outputFormat === "png" && compression < 100) {
      throw badRequest(
        "Invalid 'output_compression': compression less than 100 is only supported for the 'jpeg' and 'webp' output formats.",
        "output_compression",
        "invalid_value",
      );
    }
  }
  const partialImages = (p.partial_images as number | undefined) ?? 0;
  checkRange("partial_images", partialImages, 0, 3);

  return {
    model,
    rules,
    prompt,
    n,
    width,
    height,
    quality,
    responseFormat: (p.response_format as "url" | "b64_json" | undefined) ?? "url",
    background: background === "auto" ? "opaque" : background,
    outputFormat,
    stream: p.stream === true,
    partialImages,
    safetyIdentifier: (p.safety_identifier as string | undefined) || undefined,
    inputFidelityHigh: p.input_fidelity === "high",
  };
}

function checkType(key: string, value: unknown): void {
  const expected = PARAMS[key];
  if (expected === undefined) return; // NEWER_MODEL_ONLY fields are rejected per model later
  const ok = expected === "integer" ? Number.isInteger(value) : typeof value === expected;
  if (!ok) {
    throw badRequest(
      `Invalid type for '${key}': expected ${expected === "integer" ? "an integer" : `a ${expected}`}, but got ${describeType(value)} instead.`,
      key,
      "invalid_type",
    );
  }
}

function describeType(value: unknown): string {
  if (Array.isArray(value)) return "an array";
  if (typeof value === "number") return Number.isInteger(value) ? "an integer" : "a decimal";
  if (typeof value === "object") return "an object";
  return `a ${typeof value}`;
}

/** Fields that exist in the API but belong to the other model family (or to newer models). */
function checkFamilyParams(p: Record<string, unknown>, model: string, rules: ModelRules): void {
  const foreign = rules.family === "dall-e" ? GPT_IMAGE_ONLY : DALL_E_ONLY;
  for (const key of foreign) {
    if (p[key] !== undefined) throw unknownParameter(key);
  }
  if (p.style !== undefined && rules.styles === undefined) throw unknownParameter("style");
  for (const key of NEWER_MODEL_ONLY) {
    if (p[key] !== undefined) {
      throw badRequest(
        `The '${key}' parameter is not supported with model ${model}.`,
        key,
        "unsupported_parameter",
      );
    }
  }
}

function checkRange(param: string, value: number, min: number, max: number): void {
  if (value < min) {
    throw badRequest(
      `Invalid '${param}': integer below minimum value. Expected a value >= ${min}, but got ${value} instead.`,
      param,
      "integer_below_min_value",
    );
  }
  if (value > max) {
    throw badRequest(
      `Invalid '${param}': integer above maximum value. Expected a value <= ${max}, but got ${value} instead.`,
      param,
      "integer_above_max_value",
    );
  }
}

/** The size actually produced: `auto` renders 1024x1024. */
function resolveSize(requested: string | undefined, rules: ModelRules): [number, number] {
  const size = requested ?? rules.defaultSize;
  if (size === "auto" && (rules.sizes === "flexible" || rules.sizes.includes("auto"))) {
    return [1024, 1024];
  }
  if (rules.sizes !== "flexible") {
    if (!rules.sizes.includes(size)) throw invalidValue("size", size, rules.sizes);
    return parseSize(size)!;
  }
  const parsed = parseSize(size);
  if (!parsed) {
    throw badRequest(
      `Invalid value: '${size}'. Supported values are: 'auto' or 'WIDTHxHEIGHT'.`,
      "size",
      "invalid_value",
    );
  }
  const [w, h] = parsed;
  const f = FLEXIBLE_SIZE;
  const problem =
    w % f.multiple !== 0 || h % f.multiple !== 0 || w === 0 || h === 0
      ? `width and height must be positive multiples of ${f.multiple}`
      : Math.max(w, h) / Math.min(w, h) > f.maxRatio
        ? `the aspect ratio must be between 1:${f.maxRatio} and ${f.maxRatio}:1`
        : Math.max(w, h) > f.maxSide || w * h > f.maxPixels
          ? `the image must be at most 3840x2160 (long side ${f.maxSide}, ${f.maxPixels} pixels)`
          : undefined;
  if (problem) {
    throw badRequest(`Invalid size '${size}': ${problem}.`, "size", "invalid_value");
  }
  return [w, h];
}

function parseSize(size: string): [number, number] | undefined {
  const m = /^(\d{1,5})x(\d{1,5})$/.exec(size);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

function resolveQuality(requested: string | undefined, rules: ModelRules): string {
  const quality = requested ?? "auto";
  if (!rules.qualities.includes(quality)) throw invalidValue("quality", quality, rules.qualities);
  if (quality !== "auto") return quality;
  return rules.family === "gpt-image" ? "medium" : "standard";
}

function checkBackground(
  background: string,
  outputFormat: string,
  model: string,
  rules: ModelRules,
): void {
  if (background !== "transparent") return;
  if (!rules.transparentBackground) {
    throw badRequest(
      `Invalid value: 'transparent'. Transparent backgrounds are not supported for model ${model}.`,
      "background",
      "invalid_value",
    );
  }
  if (outputFormat !== "png" && outputFormat !== "webp") {
    throw badRequest(
      `Invalid value: 'transparent'. Transparent backgrounds require output_format 'png' or 'webp', got '${outputFormat}'.`,
      "background",
      "invalid_value",
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

class Emulator {
  readonly faults = new FaultQueue();
  readonly requests: RecordedRequest[] = [];
  abandonedRequests = 0;
  readonly streamFaults: StreamFault[] = [];
  streamEventDelayMs = 0;
  origin = "";
  readonly #apiKey: string;
  readonly #now: () => number;
  readonly #urlSecret = randomBytes(32);
  readonly #images: ImageStore;
  #windowStart = 0;
  #windowCount = 0;

  constructor(opts: OpenAIEmulatorOptions) {
    this.#apiKey = opts.apiKey;
    this.#now = opts.now ?? Date.now;
    // Images stay known one extra TTL past expiry, so late downloads get 403, not 404.
    this.#images = new ImageStore({
      now: this.#now,
      ttlMs: URL_TTL_MS,
      keepExpiredMs: URL_TTL_MS,
      newId: () => `img-${randomBytes(12).toString("hex")}`,
    });
  }

  async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const started = performance.now();
    const requestId = `req_${randomBytes(16).toString("hex")}`;
    res.setHeader("x-request-id", requestId);
    const method = req.method ?? "GET";
    const url = new URL(req.url ?? "/", "http://emulator");
    try {
      if (url.pathname === "/__emulator/faults") {
        return await faultControl(this.faults, req, res, CONTROL);
      }
      if (method === "GET" && url.pathname.startsWith("/v1/files/images/")) {
        return this.#download(res, url);
      }
      if (!url.pathname.startsWith("/v1/images/")) throw unknownUrl(method, url.pathname);

      const operation = OPERATIONS[url.pathname];
      if (operation !== undefined && operation !== "generation" && method === "POST")
        return await this.#edit(req, res, url, operation, started, requestId);
      const body = await readBody(req, MAX_BODY_BYTES, tooLarge);
      const json = parseJsonOrUndefined(body);
      record(this.requests, {
        method,
        path: url.pathname + url.search,
        headers: req.headers,
        body: json,
      });
      if (operation === undefined) throw unknownUrl(method, url.pathname);
      if (method !== "POST") {
        throw new HttpError(
          405,
          openaiError(
            `Invalid method for URL (${method} ${url.pathname})`,
            "invalid_request_error",
            null,
            null,
          ),
        );
      }
      this.#setRateLimitHeaders(res);
      // Faults come before auth and validation: they stand for upstream trouble of any kind.
      const model = isObject(json) && typeof json.model === "string" ? json.model : undefined;
      const fault = await playFault(this.faults, model, req, res);
      if (fault) {
        // Unanswered and not reset by the fault itself: the client went away.
        if (!res.writableEnded && !fault.reset) this.abandonedRequests += 1;
        return;
      }

      this.#authenticate(req);
      const parsed = parseJsonStrict(req, body);
      const request = validate(parsed);
      res.setHeader("openai-processing-ms", String(Math.round(performance.now() - started)));
      this.#refuseIfUnsafe(request, requestId);
      if (request.stream) return this.#stream(res, request);
      sendJson(res, 200, this.#generate(req, request));
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      sendHttpError(res, err);
    }
  }

  #authenticate(req: http.IncomingMessage): void {
    const key = bearerToken(req);
    if (key === this.#apiKey) return;
    const message =
      key === undefined || key === ""
        ? "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys."
        : `Incorrect API key provided: ${maskKey(key)}. You can find your API key at https://platform.openai.com/account/api-keys.`;
    throw new HttpError(
      401,
      openaiError(message, "invalid_request_error", null, "invalid_api_key"),
    );
  }

  /**
   * POST /v1/images/edits and /v1/images/variations: multipart/form-data as OpenAI's SDK
   * sends it, read with the platform's own form parser (not the gateway's), the inputs
   * checked as OpenAI documents them (editInputs), then answered as a generation.
   */
  async #edit(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
    operation: "edit" | "variation",
    started: number,
    requestId: string,
  ): Promise<void> {
    const body = await readBody(req, MAX_UPLOAD_BYTES, tooLarge);
    const form = await readForm(req, body);
    record(this.requests, {
      method: "POST",
      path: url.pathname + url.search,
      headers: req.headers,
      body: form?.recorded,
    });
    this.#setRateLimitHeaders(res);
    const fault = await playFault(this.faults, form?.fields.model as string | undefined, req, res);
    if (fault) {
      if (!res.writableEnded && !fault.reset) this.abandonedRequests += 1;
      return;
    }
    this.#authenticate(req);
    if (form === undefined) {
      throw badRequest(
        `Invalid Content-Type header (${req.headers["content-type"] ?? "none"}), expected multipart/form-data.`,
        null,
        null,
      );
    }
    // The SDK always sends `stream=false` on edits, which every model accepts.
    if (form.fields.stream === false) delete form.fields.stream;
    const request = validate(form.fields, operation);
    const inputs = editInputs(form.files, request, operation, form.fields);
    res.setHeader("openai-processing-ms", String(Math.round(performance.now() - started)));
    this.#refuseIfUnsafe(request, requestId);
    if (request.stream)
      return this.#stream(res, request, "image_edit", (u) =>
        addInputImageTokens(u, inputs, request),
      );
    const answer = this.#generate(req, request) as { usage?: Usage };
    if (answer.usage !== undefined) addInputImageTokens(answer.usage, inputs, request);
    sendJson(res, 200, answer);
  }

  #refuseIfUnsafe(request: ImageRequest, requestId: string): void {
    if (!REFUSAL_WORD.test(request.prompt)) return;
    if (request.rules.family === "dall-e") {
      throw badRequest(
        "Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.",
        null,
        "content_policy_violation",
      );
    }
    throw new HttpError(400, {
      error: {
        message: `Your request was rejected by the safety system. If you believe this is an error, contact us at help.openai.com and include the request ID ${requestId} safety_violations=[sexual].`,
        type: "image_generation_user_error",
        param: null,
        code: "moderation_blocked",
        moderation_details: { moderation_stage: "input", categories: ["sexual"] },
      },
    });
  }

  #generate(req: http.IncomingMessage, r: ImageRequest): object {
    const created = Math.floor(this.#now() / 1000);
    const seeds = Array.from({ length: r.n }, (_, i) => `${r.model}|${r.prompt}|${i}`);
    if (r.rules.family === "dall-e") {
      const data = seeds.map((seed) => {
        const item: Record<string, string> =
          r.responseFormat === "url"
            ? { url: this.#storeImage(req, r.width, r.height, seed) }
            : { b64_json: renderPng(r.width, r.height, seed).toString("base64") };
        if (r.rules.revisedPrompt) item.revised_prompt = `A detailed rendering of: ${r.prompt}`;
        return item;
      });
      return { created, data };
    }
    // output_format jpeg/webp still yields PNG bytes: the gateway passes images through, and
    // the echoed output_format is what clients act on (no extra encoder dependency needed).
    const data = seeds.map((seed) => ({
      b64_json: renderPng(r.width, r.height, seed).toString("base64"),
    }));
    return {
      created,
      data,
      background: r.background,
      output_format: r.outputFormat,
      size: `${r.width}x${r.height}`,
      quality: r.quality,
      usage: usage(r, r.n),
      ...(r.safetyIdentifier ? { safety_identifier: r.safetyIdentifier } : {}),
    };
  }

  /**
   * text/event-stream: per image, `partial_images` partial events, then a completed event.
   * Edits name their events `image_edit.*` and add the input images to each image's usage.
   */
  #stream(
    res: http.ServerResponse,
    r: ImageRequest,
    kind: "image_generation" | "image_edit" = "image_generation",
    addInputs: (u: Usage) => void = () => {},
  ): Promise<void> {
    const createdAt = Math.floor(this.#now() / 1000);
    const echo = {
      size: `${r.width}x${r.height}`,
      quality: r.quality,
      background: r.background,
      output_format: r.outputFormat,
    };
    const events: StreamEvent[] = [];
    for (let i = 0; i < r.n; i++) {
      for (let k = 0; k < r.partialImages; k++) {
        events.push({
          event: `${kind}.partial_image`,
          data: () => ({
            type: `${kind}.partial_image`,
            b64_json: renderPng(
              r.width,
              r.height,
              `${r.model}|${r.prompt}|${i}|partial${k}`,
            ).toString("base64"),
            created_at: createdAt,
            ...echo,
            partial_image_index: k,
          }),
        });
      }
      // Each image's completed event carries that image's usage (the prompt counted each time).
      events.push({
        event: `${kind}.completed`,
        data: () => {
          const imageUsage = usage(r, 1) as Usage;
          addInputs(imageUsage);
          return {
            type: `${kind}.completed`,
            b64_json: renderPng(r.width, r.height, `${r.model}|${r.prompt}|${i}`).toString(
              "base64",
            ),
            created_at: createdAt,
            ...echo,
            usage: imageUsage,
          };
        },
      });
    }
    return sendEventStream(res, events, {
      fault: this.streamFaults.shift(),
      eventDelayMs: this.streamEventDelayMs,
      onAbandoned: () => {
        this.abandonedRequests += 1;
      },
    });
  }

  #storeImage(req: http.IncomingMessage, width: number, height: number, seed: string): string {
    const { id, expiresAt } = this.#images.put(() => renderPng(width, height, seed), "image/png");
    const se = new Date(expiresAt).toISOString();
    return `${requestOrigin(req, this.origin)}/v1/files/images/${id}.png?se=${encodeURIComponent(se)}&sig=${this.#sign(id, se)}`;
  }

  #sign(id: string, se: string): string {
    return createHmac("sha256", this.#urlSecret).update(`${id}\n${se}`).digest("base64url");
  }

  /** GET /v1/files/images/<id>.png?se=&sig= — a stand-in for OpenAI's signed blob URLs. */
  #download(res: http.ServerResponse, url: URL): void {
    const id = url.pathname.slice("/v1/files/images/".length).replace(/\.png$/, "");
    const image = this.#images.get(id);
    if (image === undefined) {
      sendBlobError(res, 404, "BlobNotFound", "The specified blob does not exist.");
      return;
    }
    const se = url.searchParams.get("se") ?? "";
    const expected = Buffer.from(this.#sign(id, se));
    const given = Buffer.from(url.searchParams.get("sig") ?? "");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      sendBlobError(res, 403, "AuthenticationFailed", "Signature did not match.");
      return;
    }
    if (image === "expired") {
      sendBlobError(res, 403, "AuthenticationFailed", "Signed expiry time must be after now.");
      return;
    }
    sendBytes(res, 200, image.bytes, { "content-type": image.contentType });
  }

  /** Informational only: the emulator never throttles by itself (use a fault for that). */
  #setRateLimitHeaders(res: http.ServerResponse): void {
    const now = this.#now();
    if (now - this.#windowStart >= 60_000) {
      this.#windowStart = now;
      this.#windowCount = 0;
    }
    this.#windowCount += 1;
    const resetMs = Math.max(0, this.#windowStart + 60_000 - now);
    res.setHeader("x-ratelimit-limit-requests", String(RATE_LIMIT_PER_MINUTE));
    res.setHeader(
      "x-ratelimit-remaining-requests",
      String(Math.max(0, RATE_LIMIT_PER_MINUTE - this.#windowCount)),
    );
    res.setHeader("x-ratelimit-reset-requests", `${(resetMs / 1000).toFixed(3)}s`);
    res.setHeader("openai-version", "2020-10-01");
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

function usage(r: ImageRequest, images: number): object {
  const input = Math.ceil(r.prompt.length / 4);
  const table = OUTPUT_TOKENS[r.quality]!;
  const perImage =
    table[`${r.width}x${r.height}`] ??
    Math.ceil((table["1024x1024"]! * r.width * r.height) / 1024 ** 2);
  const output = images * (perImage + r.partialImages * (r.stream ? PARTIAL_IMAGE_TOKENS : 0));
  return {
    input_tokens: input,
    input_tokens_details: { text_tokens: input, image_tokens: 0 },
    output_tokens: output,
    total_tokens: input + output,
  };
}

function unknownUrl(method: string, path: string): HttpError {
  return new HttpError(
    404,
    openaiError(
      `Unknown request URL: ${method} ${path}. Please check the URL for typos, or see the docs at ${DOCS_URL}.`,
      "invalid_request_error",
      null,
      "unknown_url",
    ),
  );
}

function tooLarge(limit: number): HttpError {
  return new HttpError(
    413,
    openaiError(
      `Request body too large: limit is ${limit} bytes.`,
      "invalid_request_error",
      null,
      null,
    ),
  );
}

/** The control endpoint answers in OpenAI's error shape. */
const CONTROL: ControlOptions = {
  readBody: (req) => readBody(req, MAX_BODY_BYTES, tooLarge),
  invalid: (message) => badRequest(message, null, null),
  badMethod: (method) => unknownUrl(method, "/__emulator/faults"),
};

function parseJsonStrict(req: http.IncomingMessage, body: Buffer): unknown {
  const contentType = req.headers["content-type"] ?? "";
  if (!/^application\/json\b/i.test(contentType)) {
    throw badRequest(
      `Invalid Content-Type header (${contentType || "none"}), expected application/json.`,
      null,
      null,
    );
  }
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    throw badRequest(
      "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)",
      null,
      null,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Edits and variations
// ---------------------------------------------------------------------------------------------

interface FormFileInfo {
  name: string;
  type: string;
  bytes: Buffer;
  /** png | jpeg | webp by magic numbers, else undefined. */
  format: string | undefined;
  width: number | undefined;
  height: number | undefined;
}

interface ReadForm {
  /** Text fields, typed as the JSON API types them. */
  fields: Record<string, unknown>;
  files: FormFileInfo[];
  /** What `requests` records: the fields, and per file its name, type, size and dimensions. */
  recorded: object;
}

type Usage = {
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
  input_tokens_details: { text_tokens: number; image_tokens: number };
};

/** The body as multipart/form-data (the platform's own parser), or undefined for another content type. */
async function readForm(req: http.IncomingMessage, body: Buffer): Promise<ReadForm | undefined> {
  const contentType = req.headers["content-type"] ?? "";
  if (!/^multipart\/form-data\b/i.test(contentType)) return undefined;
  let data: FormData;
  try {
    data = await new Request("http://emulator/", {
      method: "POST",
      headers: { "content-type": contentType },
      body: new Uint8Array(body),
    }).formData();
  } catch (e) {
    throw badRequest(`Could not parse multipart form: ${(e as Error).message}`, null, null);
  }
  const fields: Record<string, unknown> = {};
  const files: FormFileInfo[] = [];
  for (const [name, value] of data.entries()) {
    if (typeof value === "string") {
      const type = PARAMS[name] ?? (name === "input_fidelity" ? "string" : undefined);
      fields[name] =
        type === "integer" && /^-?\d+$/.test(value)
          ? Number(value)
          : type === "boolean" && (value === "true" || value === "false")
            ? value === "true"
            : value;
      continue;
    }
    const bytes = Buffer.from(await value.arrayBuffer());
    files.push({ name, type: value.type, bytes, ...sniff(bytes) });
  }
  const recorded = {
    ...fields,
    files: files.map(({ name, type, bytes, format, width, height }) => ({
      name,
      type,
      size: bytes.length,
      format,
      width,
      height,
    })),
  };
  return { fields, files, recorded };
}

function sniff(b: Buffer): Pick<FormFileInfo, "format" | "width" | "height"> {
  if (b.length >= 24 && b.subarray(0, 8).equals(PNG_SIGNATURE))
    return { format: "png", width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff)
    return { format: "jpeg", width: undefined, height: undefined };
  if (
    b.length >= 12 &&
    b.toString("latin1", 0, 4) === "RIFF" &&
    b.toString("latin1", 8, 12) === "WEBP"
  )
    return { format: "webp", width: undefined, height: undefined };
  return { format: undefined, width: undefined, height: undefined };
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const FOUR_MB = 4 * 1024 * 1024;
const FIFTY_MB = 50 * 1024 * 1024;

/**
 * The input files as OpenAI documents them (openai 7.57 SDK, ImageEditParams and
 * ImageCreateVariationParams): dall-e-2 one square PNG < 4 MB (as `image`); GPT image up to
 * 16 PNG/WebP/JPEG < 50 MB each (`image` or `image[]`); a mask PNG < 4 MB with the first
 * image's dimensions; input_fidelity where the model takes it.
 */
function editInputs(
  files: readonly FormFileInfo[],
  r: ImageRequest,
  operation: "edit" | "variation",
  fields: Record<string, unknown>,
): FormFileInfo[] {
  const dalle = r.rules.family === "dall-e";
  for (const f of files) {
    const known = f.name === "image" || f.name === "mask" || (!dalle && f.name === "image[]");
    if (!known || (operation === "variation" && f.name !== "image"))
      throw badRequest(`Unrecognized request argument supplied: ${f.name}`, null, null);
  }
  const images = files.filter((f) => f.name === "image" || f.name === "image[]");
  const masks = files.filter((f) => f.name === "mask");
  if (images.length === 0)
    throw badRequest("Missing required parameter: 'image'.", "image", "missing_required_parameter");
  const most = dalle ? 1 : 16;
  if (images.length > most)
    throw badRequest(
      `Invalid 'image': too many images; ${r.model} takes at most ${most}.`,
      "image",
      "invalid_value",
    );
  for (const image of images) {
    if (dalle) {
      if (image.format !== "png")
        throw badRequest(
          "Invalid input image - format must be in ['png'], got " +
            (image.format ?? "unknown") +
            ".",
          "image",
          "invalid_image_format",
        );
      if (image.bytes.length >= FOUR_MB)
        throw badRequest(
          "Invalid input image - image must be less than 4 MB.",
          "image",
          "image_too_large",
        );
      if (image.width !== image.height)
        throw badRequest(
          `Invalid input image - image must be square, got ${image.width}x${image.height}.`,
          "image",
          "invalid_image",
        );
    } else {
      if (image.format === undefined)
        throw badRequest(
          "Invalid input image - format must be in ['png', 'webp', 'jpeg'].",
          "image",
          "invalid_image_format",
        );
      if (image.bytes.length >= FIFTY_MB)
        throw badRequest(
          "Invalid input image - image must be less than 50 MB.",
          "image",
          "image_too_large",
        );
    }
  }
  if (masks.length > 1)
    throw badRequest("Invalid 'mask': only one mask is taken.", "mask", "invalid_value");
  const mask = masks[0];
  if (mask !== undefined) {
    if (mask.format !== "png")
      throw badRequest(
        "Invalid mask image - format must be in ['png'].",
        "mask",
        "invalid_image_format",
      );
    if (mask.bytes.length >= FOUR_MB)
      throw badRequest(
        "Invalid mask image - mask must be less than 4 MB.",
        "mask",
        "image_too_large",
      );
    const first = images[0]!;
    if (first.width !== undefined && (mask.width !== first.width || mask.height !== first.height))
      throw badRequest(
        `Invalid mask image - mask size (${mask.width}x${mask.height}) does not match image size (${first.width}x${first.height}).`,
        "mask",
        "invalid_image",
      );
  }
  const fidelity = fields.input_fidelity;
  if (fidelity !== undefined) {
    const allowed = INPUT_FIDELITY[r.model];
    if (allowed === undefined) throw unknownParameter("input_fidelity");
    if (!allowed.includes(fidelity as string))
      throw invalidValue("input_fidelity", fidelity, allowed);
  }
  return images;
}

/**
 * GPT-image edits bill their input images as input image tokens (third-party counts for a
 * 1024x1024 input: about 135 at low fidelity, 3,050 at high; scaled by area here).
 */
function addInputImageTokens(usage: Usage, images: readonly FormFileInfo[], r: ImageRequest): void {
  let tokens = 0;
  for (const image of images) {
    const area = (image.width ?? 1024) * (image.height ?? 1024);
    tokens += Math.ceil((r.inputFidelityHigh ? 3050 : 135) * Math.min(4, area / 1024 ** 2));
  }
  usage.input_tokens_details.image_tokens = tokens;
  usage.input_tokens += tokens;
  usage.total_tokens += tokens;
}
