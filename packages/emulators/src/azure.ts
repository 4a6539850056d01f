/**
 * An in-process emulator of an Azure OpenAI resource's image API
 * (`POST /openai/deployments/{deployment}/images/generations?api-version=…`) and of the
 * Entra ID token endpoint that issues its bearer tokens (`POST /{tenant}/oauth2/v2.0/token`),
 * used by the tests and by `npm run dev`. Its rules are its own, written from Azure's
 * documentation (summarised in docs/providers/azure.md), independent of the gateway's catalog.
 *
 * Test hooks:
 * - A prompt containing the word "forbidden" is refused by the "content filter": DALL·E
 *   deployments answer `content_policy_violation` with `inner_error.content_filter_results`,
 *   GPT-image deployments `moderation_blocked`.
 * - `faults` (or `POST /__emulator/faults`, `DELETE` to clear) injects errors, latency,
 *   hangs and resets into image requests; `azureFaults` builds Azure's usual ones.
 * - `requests` records every image request; `tokenRequests` counts token grants asked for.
 * - GPT-image deployments take `stream: true` (and `partial_images` 0–3): server-sent events
 *   as OpenAI's, paced `streamEventDelayMs` apart, broken mid-way by `streamFaults`
 *   (`stream-faults.ts`); `abandonedStreams` counts streams whose client went away.
 */
import { type StreamEvent, type StreamFault, sendEventStream } from "./stream-faults.ts";
import { randomBytes, randomUUID } from "node:crypto";
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
  BodyTooLarge,
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

export type AzureImageModel = "dall-e-3" | "gpt-image-1" | "gpt-image-1-mini" | "gpt-image-1.5";

interface ModelRules {
  family: "dall-e" | "gpt-image";
  promptMax: number;
  maxN: number;
  sizes: readonly string[];
  qualities: readonly string[];
  styles?: readonly string[];
  /** The first api-version (date part) that serves the model. */
  minApiVersion: string;
}

const DALL_E_3: ModelRules = {
  family: "dall-e",
  promptMax: 4000,
  maxN: 1,
  sizes: ["1024x1024", "1792x1024", "1024x1792"],
  qualities: ["standard", "hd", "auto"],
  styles: ["vivid", "natural"],
  minApiVersion: "2023-12-01",
};

const GPT_IMAGE_1: ModelRules = {
  family: "gpt-image",
  promptMax: 32000,
  maxN: 10,
  sizes: ["1024x1024", "1536x1024", "1024x1536", "auto"],
  qualities: ["low", "medium", "high", "auto"],
  minApiVersion: "2025-04-01",
};

const MODELS: Readonly<Record<AzureImageModel, ModelRules>> = {
  "dall-e-3": DALL_E_3,
  "gpt-image-1": GPT_IMAGE_1,
  "gpt-image-1-mini": GPT_IMAGE_1,
  "gpt-image-1.5": GPT_IMAGE_1,
};

/** api-versions of the data-plane inference API (GA and preview) the emulator knows. */
const API_VERSIONS = new Set([
  "2023-12-01-preview",
  "2024-02-01",
  "2024-02-15-preview",
  "2024-03-01-preview",
  "2024-04-01-preview",
  "2024-05-01-preview",
  "2024-06-01",
  "2024-07-01-preview",
  "2024-08-01-preview",
  "2024-09-01-preview",
  "2024-10-01-preview",
  "2024-10-21",
  "2024-12-01-preview",
  "2025-01-01-preview",
  "2025-02-01-preview",
  "2025-03-01-preview",
  "2025-04-01-preview",
]);
/** Later previews than the list above are taken as they come. */
const LATER_PREVIEW = /^(\d{4}-\d{2}-\d{2})-preview$/;

type ParamType = "string" | "integer" | "boolean";
const PARAMS: Readonly<Record<string, ParamType>> = {
  prompt: "string",
  model: "string",
  n: "integer",
  size: "string",
  quality: "string",
  response_format: "string",
  style: "string",
  user: "string",
  background: "string",
  moderation: "string",
  output_format: "string",
  output_compression: "integer",
  stream: "boolean",
  partial_images: "integer",
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
const ENUMS: Readonly<Record<string, readonly string[]>> = {
  response_format: ["url", "b64_json"],
  background: ["transparent", "opaque", "auto"],
  moderation: ["low", "auto"],
  output_format: ["png", "jpeg", "webp"],
};

const ENTRA_SCOPES = [
  "https://cognitiveservices.azure.com/.default",
  "https://ai.azure.com/.default",
];
const URL_TTL_MS = 24 * 60 * 60 * 1000;
const MAX_BODY_BYTES = 4 * 1024 * 1024;
const MAX_UPLOAD_BYTES = 128 * 1024 * 1024;
const REFUSAL_WORD = /\bforbidden\b/i;

const INVALID_KEY_MESSAGE =
  "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.";
const INVALID_TOKEN_MESSAGE =
  "Unauthorized. Access token is missing, invalid, audience is incorrect (https://cognitiveservices.azure.com), or have expired.";

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

export interface EntraApp {
  tenantId: string;
  clientId: string;
  clientSecret: string;
  /** `expires_in` of issued tokens; default 3599. */
  tokenTtlSeconds?: number;
}

export interface AzureEmulatorOptions {
  apiKey: string;
  /** The app registration the emulated token endpoint grants tokens to; none: no Entra ID. */
  entra?: EntraApp;
  /** Deployment name → model. Default: one deployment per model, named after it. */
  deployments?: Readonly<Record<string, AzureImageModel>>;
  host?: string;
  port?: number;
  /** Clock in ms (token and URL expiry); defaults to Date.now. */
  now?: () => number;
}

export interface AzureEmulator {
  /** The resource endpoint, e.g. http://127.0.0.1:PORT: what `api_base` takes. */
  endpoint: string;
  /** The Entra authority host (this same server): what `azure_authority_host` takes. */
  authorityHost: string;
  port: number;
  faults: FaultQueue;
  requests: RecordedRequest[];
  /** Token requests received (granted or not). */
  readonly tokenRequests: number;
  /** Streams whose client went away before their last event. */
  readonly abandonedStreams: number;
  /** Faults for the next streamed answers, one each, first in first out. */
  streamFaults: StreamFault[];
  /** Wait between streamed events (default 0). */
  streamEventDelayMs: number;
  close(): Promise<void>;
}

function azureError(code: string, message: string, extra: Record<string, unknown> = {}): object {
  return { error: { code, message, ...extra } };
}

/** Builders for the faults Azure OpenAI is known to produce. Spread to add `times` or `model`. */
export const azureFaults = {
  ...commonFaults,
  /** 429 with Azure's wording; `retry-after` header only when `header` is true. */
  rateLimit(retryAfterSeconds = 20, header = true): Fault {
    const headers: Record<string, string> = { "x-ratelimit-remaining-requests": "0" };
    if (header) headers["retry-after"] = String(retryAfterSeconds);
    return {
      status: 429,
      headers,
      body: azureError(
        "429",
        `Requests to the Images_Generations_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded call rate limit of your current OpenAI S0 pricing tier. Please retry after ${retryAfterSeconds} seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.`,
      ),
    };
  },
  serverError(): Fault {
    return {
      status: 500,
      body: azureError(
        "InternalServerError",
        "The server had an error while processing your request.",
      ),
    };
  },
  unavailable(): Fault {
    return {
      status: 503,
      body: azureError(
        "ServiceUnavailable",
        "The service is temporarily unable to process your request. Please try again later.",
      ),
    };
  },
  /** 200 with a truncated JSON body. */
  malformed(): Fault {
    return commonFaults.malformed('{"created": 1713833628, "data": [{"b64_json": "iVBO');
  },
};

export async function startAzureEmulator(opts: AzureEmulatorOptions): Promise<AzureEmulator> {
  const emulator = new Emulator(opts);
  const server = await listen((req, res) => emulator.handle(req, res), opts);
  emulator.origin = server.origin;
  return {
    endpoint: server.origin,
    authorityHost: server.origin,
    port: server.port,
    faults: emulator.faults,
    requests: emulator.requests,
    get tokenRequests() {
      return emulator.tokenRequests;
    },
    get abandonedStreams() {
      return emulator.abandonedStreams;
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
// Validation
// ---------------------------------------------------------------------------------------------

function badRequest(message: string, param: string | null, code: string): HttpError {
  return new HttpError(400, { error: { code, message, param, type: "invalid_request_error" } });
}

interface ImageRequest {
  model: AzureImageModel;
  rules: ModelRules;
  prompt: string;
  n: number;
  width: number;
  height: number;
  quality: string;
  responseFormat: "url" | "b64_json";
  stream: boolean;
  partialImages: number;
  background: string;
  outputFormat: string;
}

function validate(raw: unknown, model: AzureImageModel): ImageRequest {
  if (!isObject(raw))
    throw badRequest(
      "Invalid request body: expected a JSON object.",
      null,
      "invalid_request_error",
    );
  const rules = MODELS[model];
  for (const key of Object.keys(raw)) {
    if (!(key in PARAMS))
      throw badRequest(
        `Unrecognized request argument supplied: ${key}`,
        null,
        "invalid_request_error",
      );
  }
  const p = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== null));
  for (const [key, value] of Object.entries(p)) {
    const type = PARAMS[key];
    const ok = type === "integer" ? Number.isInteger(value) : typeof value === type;
    if (!ok)
      throw badRequest(
        `Invalid type for '${key}': expected ${type === "integer" ? "an integer" : type === "boolean" ? "a boolean" : "a string"}.`,
        key,
        "invalid_type",
      );
  }
  const prompt = p.prompt as string | undefined;
  if (prompt === undefined || prompt === "")
    throw badRequest(
      "Missing required parameter: 'prompt'.",
      "prompt",
      "missing_required_parameter",
    );
  if (prompt.length > rules.promptMax) {
    throw badRequest(
      `Invalid 'prompt': string too long. Expected a string with maximum length ${rules.promptMax}.`,
      "prompt",
      "string_above_max_length",
    );
  }
  for (const key of rules.family === "dall-e" ? GPT_IMAGE_ONLY : DALL_E_ONLY) {
    if (p[key] !== undefined)
      throw badRequest(
        `Unknown parameter: '${key}' is not supported with this model.`,
        key,
        "unknown_parameter",
      );
  }
  for (const [key, allowed] of Object.entries(ENUMS)) {
    if (p[key] !== undefined && !allowed.includes(p[key] as string))
      throw invalidValue(key, p[key], allowed);
  }
  const n = (p.n as number | undefined) ?? 1;
  if (n < 1 || n > rules.maxN) {
    throw badRequest(
      `Invalid 'n': ${n}. This model supports n from 1 to ${rules.maxN}.`,
      "n",
      rules.maxN === 1 ? "invalid_value" : "integer_above_max_value",
    );
  }
  const size = (p.size as string | undefined) ?? (rules.family === "dall-e" ? "1024x1024" : "auto");
  if (!rules.sizes.includes(size)) throw invalidValue("size", size, rules.sizes);
  const quality = (p.quality as string | undefined) ?? "auto";
  if (!rules.qualities.includes(quality)) throw invalidValue("quality", quality, rules.qualities);
  if (p.style !== undefined && !rules.styles?.includes(p.style as string))
    throw invalidValue("style", p.style, rules.styles ?? []);
  const outputFormat = (p.output_format as string | undefined) ?? "png";
  if (p.background === "transparent" && outputFormat === "jpeg") {
    throw badRequest(
      "Transparent background requires output_format 'png' or 'webp'.",
      "background",
      "invalid_value",
    );
  }
  if (p.output_compression !== undefined) {
    const c = p.output_compression as number;
    if (c < 0 || c > 100)
      throw badRequest(
        `Invalid 'output_compression': ${c}. Expected 0 to 100.`,
        "output_compression",
        "invalid_value",
      );
    // Azure documents output_compression for jpeg only.
    if (outputFormat !== "jpeg" && c < 100) {
      throw badRequest(
        "output_compression is only supported with output_format 'jpeg'.",
        "output_compression",
        "invalid_value",
      );
    }
  }
  const partialImages = (p.partial_images as number | undefined) ?? 0;
  if (partialImages < 0 || partialImages > 3)
    throw badRequest(
      `Invalid 'partial_images': ${partialImages}. Expected 0 to 3.`,
      "partial_images",
      "invalid_value",
    );
  if (p.partial_images !== undefined && p.stream !== true)
    throw badRequest("partial_images requires stream.", "partial_images", "invalid_value");
  const [width, height] = size === "auto" ? [1024, 1024] : size.split("x").map(Number);
  return {
    model,
    rules,
    prompt,
    n,
    width: width!,
    height: height!,
    quality: quality === "auto" ? (rules.family === "gpt-image" ? "medium" : "standard") : quality,
    responseFormat:
      rules.family === "gpt-image"
        ? "b64_json"
        : ((p.response_format as "url" | "b64_json" | undefined) ?? "url"),
    stream: p.stream === true,
    partialImages,
    background: (p.background as string | undefined) ?? "opaque",
    outputFormat,
  };
}

function invalidValue(param: string, value: unknown, allowed: readonly string[]): HttpError {
  return badRequest(
    `Invalid value: '${String(value)}'. Supported values are: ${allowed.map((v) => `'${v}'`).join(", ")}.`,
    param,
    "invalid_value",
  );
}

function apiVersionDate(version: string | null): string | undefined {
  if (version === null) return undefined;
  if (API_VERSIONS.has(version)) return version.slice(0, 10);
  const later = LATER_PREVIEW.exec(version);
  return later && later[1]! > "2025-04-01" ? later[1] : undefined;
}

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

/** The control endpoint answers in Azure's error shape; DELETE answers `{"pending": 0}`. */
const CONTROL: ControlOptions = {
  readBody: (req) => readBody(req, MAX_BODY_BYTES),
  invalid: (message) => badRequest(message, null, "invalid_fault"),
  clearedStatus: 200,
};

const DEPLOYMENT_PATH = /^\/openai\/deployments\/([^/]+)\/images\/generations$/;
const EDIT_PATH = /^\/openai\/deployments\/([^/]+)\/images\/edits$/;
const TOKEN_PATH = /^\/([^/]+)\/oauth2\/v2\.0\/token$/;
const IMAGE_PATH = /^\/private\/images\/([0-9a-f]+)\/generated_00\.png$/;

class Emulator {
  readonly faults = new FaultQueue();
  readonly requests: RecordedRequest[] = [];
  tokenRequests = 0;
  abandonedStreams = 0;
  readonly streamFaults: StreamFault[] = [];
  streamEventDelayMs = 0;
  origin = "";
  readonly #opts: AzureEmulatorOptions;
  readonly #now: () => number;
  readonly #deployments: Readonly<Record<string, AzureImageModel>>;
  readonly #tokens = new Map<string, number>();
  readonly #images: ImageStore;

  constructor(opts: AzureEmulatorOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.#images = new ImageStore({ now: this.#now, ttlMs: URL_TTL_MS });
    this.#deployments = opts.deployments ?? {
      "dall-e-3": "dall-e-3",
      "gpt-image-1": "gpt-image-1",
      "gpt-image-1-mini": "gpt-image-1-mini",
      "gpt-image-1.5": "gpt-image-1.5",
    };
  }

  async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const requestId = randomUUID();
    res.setHeader("apim-request-id", requestId);
    res.setHeader("x-request-id", requestId);
    res.setHeader("x-ms-region", "East US");
    const method = req.method ?? "GET";
    const url = new URL(req.url ?? "/", "http://emulator");
    try {
      if (url.pathname === "/__emulator/faults")
        return await faultControl(this.faults, req, res, CONTROL);
      const image = IMAGE_PATH.exec(url.pathname);
      if (image && method === "GET") return this.#download(res, image[1]!);
      const token = TOKEN_PATH.exec(url.pathname);
      if (token && method === "POST")
        return await this.#token(req, res, decodeURIComponent(token[1]!));
      const edit = EDIT_PATH.exec(url.pathname);
      if (edit && method === "POST")
        return await this.#edit(req, res, url, decodeURIComponent(edit[1]!));
      const deployment = DEPLOYMENT_PATH.exec(url.pathname);
      if (!deployment || method !== "POST")
        throw new HttpError(404, azureError("404", "Resource not found"));
      await this.#generate(req, res, url, decodeURIComponent(deployment[1]!));
    } catch (err) {
      if (err instanceof BodyTooLarge) {
        sendJson(
          res,
          413,
          azureError(
            "RequestEntityTooLarge",
            `Request body too large: limit is ${err.limit} bytes.`,
          ),
        );
        return;
      }
      if (!(err instanceof HttpError)) throw err;
      sendHttpError(res, err);
    }
  }

  async #generate(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
    deploymentName: string,
  ): Promise<void> {
    const body = await readBody(req, MAX_BODY_BYTES);
    const json = parseJsonOrUndefined(body);
    record(this.requests, {
      method: "POST",
      path: url.pathname + url.search,
      headers: req.headers,
      body: json,
    });
    // Faults come first: they stand for upstream trouble of any kind. They match on the deployment's model.
    if (await playFault(this.faults, this.#deployments[deploymentName], req, res)) return;

    this.#authenticate(req);
    const version = apiVersionDate(url.searchParams.get("api-version"));
    if (version === undefined) throw new HttpError(404, azureError("404", "Resource not found"));
    const model = this.#deployments[deploymentName];
    if (model === undefined) {
      throw new HttpError(
        404,
        azureError(
          "DeploymentNotFound",
          "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.",
        ),
      );
    }
    if (version < MODELS[model].minApiVersion) {
      throw badRequest(
        `The imagesGenerate operation does not work with the specified model, ${model}, in API version ${url.searchParams.get("api-version")}. Please choose different model and try again. You can learn more about which models can be used with each operation here: https://go.microsoft.com/fwlink/?linkid=2197993.`,
        null,
        "OperationNotSupported",
      );
    }
    if (!/^application\/json\b/i.test(req.headers["content-type"] ?? "")) {
      throw badRequest(
        "Unsupported Content-Type: expected application/json.",
        null,
        "invalid_request_error",
      );
    }
    if (json === undefined)
      throw badRequest(
        "We could not parse the JSON body of your request.",
        null,
        "invalid_request_error",
      );
    const request = validate(json, model);
    this.#refuseIfUnsafe(request);
    if (request.stream) return this.#stream(res, request);
    sendJson(res, 200, this.#answer(req, request));
  }

  /**
   * POST …/images/edits: multipart only (Azure's how-to: "edits take multipart form data,
   * not JSON"), GPT-image deployments only; PNG or JPG inputs under 50 MB, a PNG mask of
   * the first image's size, input_fidelity not on gpt-image-1-mini. Answered as a generation.
   */
  async #edit(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
    deploymentName: string,
  ): Promise<void> {
    const body = await readBody(req, MAX_UPLOAD_BYTES);
    const form = await readEditForm(req, body);
    record(this.requests, {
      method: "POST",
      path: url.pathname + url.search,
      headers: req.headers,
      body: form?.recorded,
    });
    if (await playFault(this.faults, this.#deployments[deploymentName], req, res)) return;
    this.#authenticate(req);
    const version = apiVersionDate(url.searchParams.get("api-version"));
    if (version === undefined) throw new HttpError(404, azureError("404", "Resource not found"));
    const model = this.#deployments[deploymentName];
    if (model === undefined)
      throw new HttpError(
        404,
        azureError("DeploymentNotFound", "The API deployment for this resource does not exist."),
      );
    const rules = MODELS[model];
    if (rules.family !== "gpt-image" || version < rules.minApiVersion) {
      throw badRequest(
        `The imagesEdit operation does not work with the specified model, ${model}, in API version ${url.searchParams.get("api-version")}.`,
        null,
        "OperationNotSupported",
      );
    }
    if (form === undefined)
      throw badRequest(
        "Unsupported Content-Type: expected multipart/form-data.",
        null,
        "invalid_request_error",
      );
    const { input_fidelity: fidelity, stream, ...fields } = form.fields;
    if (stream !== undefined && stream !== "false" && stream !== "true")
      throw invalidValue("stream", stream, ["true", "false"]);
    if (stream === "true") fields.stream = true;
    if (fidelity !== undefined) {
      if (model === "gpt-image-1-mini")
        throw badRequest(
          "input_fidelity is not supported by gpt-image-1-mini.",
          "input_fidelity",
          "invalid_value",
        );
      if (fidelity !== "high" && fidelity !== "low")
        throw invalidValue("input_fidelity", fidelity, ["high", "low"]);
    }
    checkEditFiles(form.files);
    const request = validate(fields, model);
    this.#refuseIfUnsafe(request);
    const imageTokens = inputImageTokens(form.files, fidelity === "high");
    if (request.stream) return this.#stream(res, request, "image_edit", imageTokens);
    sendJson(res, 200, this.#answer(req, request, imageTokens));
  }

  #authenticate(req: http.IncomingMessage): void {
    const key = req.headers["api-key"];
    if (typeof key === "string") {
      if (key === this.#opts.apiKey) return;
      throw new HttpError(401, azureError("401", INVALID_KEY_MESSAGE));
    }
    const bearer = bearerToken(req);
    if (bearer === undefined) throw new HttpError(401, azureError("401", INVALID_KEY_MESSAGE));
    const expiresAt = this.#tokens.get(bearer);
    if (expiresAt === undefined || expiresAt <= this.#now())
      throw new HttpError(401, azureError("401", INVALID_TOKEN_MESSAGE));
  }

  #refuseIfUnsafe(r: ImageRequest): void {
    if (!REFUSAL_WORD.test(r.prompt)) return;
    if (r.rules.family === "gpt-image") {
      throw new HttpError(400, {
        error: {
          code: "moderation_blocked",
          message:
            "Your request was rejected by the safety system. If you believe this is an error, contact us and include the request ID.",
          param: null,
          type: "image_generation_user_error",
        },
      });
    }
    throw new HttpError(400, {
      error: {
        code: "content_policy_violation",
        inner_error: {
          code: "ResponsibleAIPolicyViolation",
          content_filter_results: {
            hate: { filtered: false, severity: "safe" },
            self_harm: { filtered: false, severity: "safe" },
            sexual: { filtered: false, severity: "safe" },
            violence: { filtered: true, severity: "high" },
            jailbreak: { filtered: false, detected: false },
          },
          revised_prompt: `A detailed rendering of: ${r.prompt}`,
        },
        message:
          "Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.",
        type: "invalid_request_error",
      },
    });
  }

  /** `imageTokens`: an edit's input images, billed as input tokens (GPT image). */
  #answer(req: http.IncomingMessage, r: ImageRequest, imageTokens = 0): object {
    const created = Math.floor(this.#now() / 1000);
    const seeds = Array.from({ length: r.n }, (_, i) => `azure|${r.model}|${r.prompt}|${i}`);
    if (r.rules.family === "dall-e") {
      const safe = { filtered: false, severity: "safe" };
      const filters = { hate: safe, self_harm: safe, sexual: safe, violence: safe };
      const data = seeds.map((seed) => ({
        ...(r.responseFormat === "url"
          ? { url: this.#storeImage(req, r.width, r.height, seed) }
          : { b64_json: renderPng(r.width, r.height, seed).toString("base64") }),
        revised_prompt: `A detailed rendering of: ${r.prompt}`,
        content_filter_results: filters,
        prompt_filter_results: {
          ...filters,
          profanity: { detected: false, filtered: false },
          jailbreak: { detected: false, filtered: false },
        },
      }));
      return { created, data };
    }
    const text = Math.ceil(r.prompt.length / 4);
    const input = text + imageTokens;
    const perImage = { low: 272, medium: 1056, high: 4160 }[r.quality as "low" | "medium" | "high"];
    const output = Math.ceil((perImage * r.width * r.height) / 1024 ** 2) * r.n;
    return {
      created,
      data: seeds.map((seed) => ({
        b64_json: renderPng(r.width, r.height, seed).toString("base64"),
      })),
      usage: {
        input_tokens: input,
        input_tokens_details: { text_tokens: text, image_tokens: imageTokens },
        output_tokens: output,
        total_tokens: input + output,
      },
    };
  }

  /**
   * OpenAI's events: per image, its partial images, then a completed event with its usage
   * (`image_edit.*` for edits).
   */
  #stream(
    res: http.ServerResponse,
    r: ImageRequest,
    kind: "image_generation" | "image_edit" = "image_generation",
    imageTokens = 0,
  ): Promise<void> {
    const createdAt = Math.floor(this.#now() / 1000);
    const echo = {
      size: `${r.width}x${r.height}`,
      quality: r.quality,
      background: r.background,
      output_format: r.outputFormat,
    };
    const text = Math.ceil(r.prompt.length / 4);
    const input = text + imageTokens;
    const perImage = { low: 272, medium: 1056, high: 4160 }[r.quality as "low" | "medium" | "high"];
    const output = Math.ceil((perImage * r.width * r.height) / 1024 ** 2) + r.partialImages * 100;
    const events: StreamEvent[] = [];
    for (let i = 0; i < r.n; i++) {
      const seed = `azure|${r.model}|${r.prompt}|${i}`;
      for (let k = 0; k < r.partialImages; k++) {
        events.push({
          event: `${kind}.partial_image`,
          data: () => ({
            type: `${kind}.partial_image`,
            b64_json: renderPng(r.width, r.height, `${seed}|partial${k}`).toString("base64"),
            created_at: createdAt,
            ...echo,
            partial_image_index: k,
          }),
        });
      }
      events.push({
        event: `${kind}.completed`,
        data: () => ({
          type: `${kind}.completed`,
          b64_json: renderPng(r.width, r.height, seed).toString("base64"),
          created_at: createdAt,
          ...echo,
          usage: {
            input_tokens: input,
            input_tokens_details: { text_tokens: text, image_tokens: imageTokens },
            output_tokens: output,
            total_tokens: input + output,
          },
        }),
      });
    }
    return sendEventStream(res, events, {
      fault: this.streamFaults.shift(),
      eventDelayMs: this.streamEventDelayMs,
      onAbandoned: () => {
        this.abandonedStreams += 1;
      },
    });
  }

  #storeImage(req: http.IncomingMessage, width: number, height: number, seed: string): string {
    const { id, expiresAt } = this.#images.put(() => renderPng(width, height, seed), "image/png");
    const se = encodeURIComponent(new Date(expiresAt).toISOString());
    return `${requestOrigin(req, this.origin)}/private/images/${id}/generated_00.png?se=${se}&sig=${randomBytes(12).toString("base64url")}`;
  }

  #download(res: http.ServerResponse, id: string): void {
    const image = this.#images.get(id);
    if (image === undefined)
      sendBlobError(res, 404, "BlobNotFound", "The specified blob does not exist.");
    else if (image === "expired")
      sendBlobError(
        res,
        403,
        "AuthenticationFailed",
        "Signed expiry time must be after signed start time.",
      );
    else sendBytes(res, 200, image.bytes, { "content-type": image.contentType });
  }

  /** Entra ID client-credentials grant, answered as login.microsoftonline.com does. */
  async #token(req: http.IncomingMessage, res: http.ServerResponse, tenant: string): Promise<void> {
    this.tokenRequests += 1;
    const form = new URLSearchParams((await readBody(req, 64 * 1024)).toString("utf8"));
    const app = this.#opts.entra;
    const fail = (status: number, error: string, description: string) =>
      sendJson(res, status, {
        error,
        error_description: `${description}\r\nTrace ID: ${randomUUID()}\r\nCorrelation ID: ${randomUUID()}\r\nTimestamp: ${new Date(this.#now()).toISOString()}`,
        error_codes: [Number(/AADSTS(\d+)/.exec(description)?.[1] ?? 0)],
        timestamp: new Date(this.#now()).toISOString(),
      });
    if (!/^application\/x-www-form-urlencoded\b/i.test(req.headers["content-type"] ?? "")) {
      return fail(
        400,
        "invalid_request",
        "AADSTS900144: The request body must contain the following parameter: 'grant_type'.",
      );
    }
    if (form.get("grant_type") !== "client_credentials") {
      return fail(
        400,
        "unsupported_grant_type",
        "AADSTS70003: The app requested an unsupported grant type.",
      );
    }
    if (app === undefined || tenant !== app.tenantId) {
      return fail(
        400,
        "invalid_request",
        `AADSTS90002: Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID.`,
      );
    }
    if (form.get("client_id") !== app.clientId) {
      return fail(
        400,
        "unauthorized_client",
        `AADSTS700016: Application with identifier '${form.get("client_id") ?? ""}' was not found in the directory '${tenant}'.`,
      );
    }
    if (form.get("client_secret") !== app.clientSecret) {
      return fail(
        401,
        "invalid_client",
        `AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${app.clientId}'.`,
      );
    }
    if (!ENTRA_SCOPES.includes(form.get("scope") ?? "")) {
      return fail(
        400,
        "invalid_scope",
        `AADSTS70011: The provided value for the input parameter 'scope' is not valid.`,
      );
    }
    const ttl = app.tokenTtlSeconds ?? 3599;
    const token = `eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.${randomBytes(24).toString("base64url")}.`;
    this.#tokens.set(token, this.#now() + ttl * 1000);
    sendJson(res, 200, {
      token_type: "Bearer",
      expires_in: ttl,
      ext_expires_in: ttl,
      access_token: token,
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Edits
// ---------------------------------------------------------------------------------------------

interface EditFile {
  name: string;
  size: number;
  format: "png" | "jpeg" | "webp" | undefined;
  width: number | undefined;
  height: number | undefined;
}

/** A multipart edit body (the platform's own parser), or undefined for another content type. */
async function readEditForm(
  req: http.IncomingMessage,
  body: Buffer,
): Promise<{ fields: Record<string, unknown>; files: EditFile[]; recorded: object } | undefined> {
  const contentType = req.headers["content-type"] ?? "";
  if (!/^multipart\/form-data\b/i.test(contentType)) return undefined;
  let data: FormData;
  try {
    data = await new Request("http://emulator/", {
      method: "POST",
      headers: { "content-type": contentType },
      body: new Uint8Array(body),
    }).formData();
  } catch {
    throw badRequest("Could not parse multipart form.", null, "invalid_request_error");
  }
  const fields: Record<string, unknown> = {};
  const files: EditFile[] = [];
  for (const [name, value] of data.entries()) {
    if (typeof value === "string") {
      fields[name] = PARAMS[name] === "integer" && /^-?\d+$/.test(value) ? Number(value) : value;
    } else {
      const b = Buffer.from(await value.arrayBuffer());
      files.push({ name, size: b.length, ...sniffImage(b) });
    }
  }
  return { fields, files, recorded: { ...fields, files } };
}

function sniffImage(b: Buffer): Pick<EditFile, "format" | "width" | "height"> {
  if (b.length >= 24 && b.readUInt32BE(0) === 0x89504e47)
    return { format: "png", width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff)
    return { format: "jpeg", width: undefined, height: undefined };
  if (b.length >= 12 && b.toString("latin1", 8, 12) === "WEBP")
    return { format: "webp", width: undefined, height: undefined };
  return { format: undefined, width: undefined, height: undefined };
}

/**
 * An edit's input images as input tokens, as OpenAI bills GPT-image edits (third-party counts
 * for a 1024x1024 input: about 135 at low fidelity, 3,050 at high; scaled by area up to 4x).
 */
function inputImageTokens(files: readonly EditFile[], high: boolean): number {
  let tokens = 0;
  for (const f of files) {
    if (f.name !== "image" && f.name !== "image[]") continue;
    const area = (f.width ?? 1024) * (f.height ?? 1024);
    tokens += Math.ceil((high ? 3050 : 135) * Math.min(4, area / 1024 ** 2));
  }
  return tokens;
}

function checkEditFiles(files: readonly EditFile[]): void {
  const images = files.filter((f) => f.name === "image" || f.name === "image[]");
  const other = files.find((f) => f.name !== "image" && f.name !== "image[]" && f.name !== "mask");
  if (other)
    throw badRequest(
      `Unrecognized request argument supplied: ${other.name}`,
      null,
      "invalid_request_error",
    );
  if (images.length === 0)
    throw badRequest("Missing required parameter: 'image'.", "image", "missing_required_parameter");
  if (images.length > 16)
    throw badRequest("Too many images: at most 16.", "image", "invalid_value");
  for (const image of images) {
    if (image.format !== "png" && image.format !== "jpeg")
      throw badRequest("The image must be a PNG or JPG file.", "image", "invalid_image_format");
    if (image.size >= 50 * 1024 * 1024)
      throw badRequest("The image must be less than 50 MB.", "image", "image_too_large");
  }
  const mask = files.find((f) => f.name === "mask");
  if (mask !== undefined) {
    const first = images[0]!;
    if (mask.format !== "png")
      throw badRequest("The mask must be a PNG file.", "mask", "invalid_image_format");
    if (first.width !== undefined && (mask.width !== first.width || mask.height !== first.height))
      throw badRequest(
        "The mask must have the same dimensions as the image.",
        "mask",
        "invalid_image",
      );
  }
}
