/**
 * Recraft image adapter (https://www.recraft.ai/docs/api-reference/endpoints#generate-image).
 * Pure mapping functions plus one upstream call per chunk of at most six images.
 */
import { GatewayError } from "../errors/errors.ts";
import { upstreamError } from "../errors/upstream.ts";
import type { CreateImageRequest } from "../gen/imagegate/v1/images_pb.js";
import { first, retryAfterSeconds, sendUpstream, type UpstreamResponse } from "./http.ts";
import { fanOut } from "./results.ts";
import { statusError } from "./status.ts";
import type { GeneratedImage, GenerationResult, ProviderAdapter, UpstreamCall } from "./types.ts";
import { malformedBody, parseJson, str } from "./json.ts";

export const RECRAFT_DEFAULT_BASE = "https://external.api.recraft.ai/v1";
const PROVIDER_NAME = "Recraft";

/** The body Recraft documents; only what the request calls for is sent. */
export interface RecraftImagesRequest {
  prompt: string;
  model: string;
  n: number;
  size: string;
  style?: string;
  substyle?: string;
  response_format?: string;
  negative_prompt?: string;
  random_seed?: number;
}

interface RecraftImagesResponse {
  created?: unknown;
  credits?: unknown;
  data?: Array<{ image_id?: unknown; url?: unknown; b64_json?: unknown }>;
}

/** Recraft's size tables differ by model generation; the model id names it. */
export type SizeTier = "v2v3" | "v4" | "v4_pro";

const SIZE_TIERS: ReadonlyArray<{ pattern: RegExp; tier: SizeTier }> = [
  { pattern: /^recraftv[23](_|$)/, tier: "v2v3" },
  { pattern: /^recraftv4.*_pro(_|$)/, tier: "v4_pro" },
  { pattern: /^recraftv4/, tier: "v4" },
];

export function sizeTier(model: string): SizeTier {
  return SIZE_TIERS.find((t) => t.pattern.test(model))?.tier ?? "v4";
}

/**
 * OpenAI sizes → the nearest-ratio Recraft size of each tier (providers.md §7 for V2/V3;
 * Recraft's appendix sizes for V4 and V4 Pro). Recraft's own sizes are sent as they are.
 */
export const OPENAI_SIZE_TO_RECRAFT: Readonly<Record<SizeTier, Readonly<Record<string, string>>>> =
  {
    v2v3: {
      auto: "1024x1024",
      "256x256": "1024x1024",
      "512x512": "1024x1024",
      "1024x1024": "1024x1024",
      "1792x1024": "1820x1024",
      "1024x1792": "1024x1820",
      "1536x1024": "1536x1024",
      "1024x1536": "1024x1536",
    },
    v4: {
      auto: "1024x1024",
      "256x256": "1024x1024",
      "512x512": "1024x1024",
      "1024x1024": "1024x1024",
      "1792x1024": "1344x768",
      "1024x1792": "768x1344",
      "1536x1024": "1280x832",
      "1024x1536": "832x1280",
    },
    v4_pro: {
      auto: "2048x2048",
      "256x256": "2048x2048",
      "512x512": "2048x2048",
      "1024x1024": "2048x2048",
      "1792x1024": "2688x1536",
      "1024x1792": "1536x2688",
      "1536x1024": "2560x1664",
      "1024x1536": "1664x2560",
    },
  };

/** Recraft's aspect ratios → the size each tier produces for them (Recraft API appendix). */
export const ASPECT_RATIO_TO_SIZE: Readonly<Record<SizeTier, Readonly<Record<string, string>>>> = {
  v2v3: {
    "1:1": "1024x1024",
    "2:1": "2048x1024",
    "1:2": "1024x2048",
    "3:2": "1536x1024",
    "2:3": "1024x1536",
    "4:3": "1365x1024",
    "3:4": "1024x1365",
    "5:4": "1280x1024",
    "4:5": "1024x1280",
    "6:10": "1024x1707",
    "14:10": "1434x1024",
    "10:14": "1024x1434",
    "16:9": "1820x1024",
    "9:16": "1024x1820",
  },
  v4: {
    "1:1": "1024x1024",
    "2:1": "1536x768",
    "1:2": "768x1536",
    "3:2": "1280x832",
    "2:3": "832x1280",
    "4:3": "1216x896",
    "3:4": "896x1216",
    "5:4": "1152x896",
    "4:5": "896x1152",
    "6:10": "832x1344",
    "14:10": "1280x896",
    "10:14": "896x1280",
    "16:9": "1344x768",
    "9:16": "768x1344",
  },
  v4_pro: {
    "1:1": "2048x2048",
    "2:1": "3072x1536",
    "1:2": "1536x3072",
    "3:2": "2560x1664",
    "2:3": "1664x2560",
    "4:3": "2432x1792",
    "3:4": "1792x2432",
    "5:4": "2304x1792",
    "4:5": "1792x2304",
    "6:10": "1664x2688",
    "14:10": "2560x1792",
    "10:14": "1792x2560",
    "16:9": "2688x1536",
    "9:16": "1536x2688",
  },
};

/** The WxH Recraft will produce for this request: from `aspect_ratio`, else `size` by table (default: the tier's square). */
export function recraftSize(req: CreateImageRequest, model: string): string {
  const tier = sizeTier(model);
  const size = req.size ?? "auto";
  if (req.aspectRatio !== undefined && size === "auto") {
    const mapped = ASPECT_RATIO_TO_SIZE[tier][req.aspectRatio];
    if (mapped === undefined) {
      throw new GatewayError(
        "invalid_request",
        `Invalid value: '${req.aspectRatio}' is not an aspect ratio ${model} supports.`,
        {
          param: "aspect_ratio",
        },
      );
    }
    return mapped;
  }
  return OPENAI_SIZE_TO_RECRAFT[tier][size] ?? size;
}

/** `_vector` models answer SVG (Recraft's naming rule). */
export function isVectorModel(model: string): boolean {
  return /_vector$/.test(model);
}

/** Our request → Recraft's body for `count` images of `size` (already mapped). */
export function toRecraftRequest(
  req: CreateImageRequest,
  model: string,
  count: number,
  size: string,
): RecraftImagesRequest {
  const body: RecraftImagesRequest = { prompt: req.prompt ?? "", model, n: count, size };
  if (req.style !== undefined) body.style = req.style;
  if (req.substyle !== undefined) body.substyle = req.substyle;
  if (req.responseFormat !== undefined) body.response_format = req.responseFormat;
  if (req.negativePrompt !== undefined) body.negative_prompt = req.negativePrompt;
  if (req.seed !== undefined) body.random_seed = req.seed;
  return body;
}

/** Magic numbers of what Recraft may return as bytes. */
const MAGIC: ReadonlyArray<{ test: (b: Buffer) => boolean; mimeType: string }> = [
  {
    test: (b) =>
      b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])),
    mimeType: "image/png",
  },
  {
    test: (b) => b.toString("latin1", 0, 4) === "RIFF" && b.toString("latin1", 8, 12) === "WEBP",
    mimeType: "image/webp",
  },
  { test: (b) => b[0] === 0xff && b[1] === 0xd8, mimeType: "image/jpeg" },
  {
    test: (b) => /^\s*(<\?xml[^>]*>\s*)?<svg\b/.test(b.toString("utf8", 0, 256)),
    mimeType: "image/svg+xml",
  },
];
const MIME_BY_EXTENSION: Readonly<Record<string, string>> = {
  png: "image/png",
  webp: "image/webp",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  svg: "image/svg+xml",
};

function mimeOfUrl(url: string, vector: boolean): string {
  const ext = /\.([a-z]+)$/i.exec(safePath(url))?.[1]?.toLowerCase();
  return (ext && MIME_BY_EXTENSION[ext]) || (vector ? "image/svg+xml" : "image/png");
}

function safePath(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return "";
  }
}

/**
 * Recraft's 200 body → our result: images as it sent them (a URL on its host, or bytes), SVG
 * for vector models, the size that was asked for, and `credits` (1000 = $1) as the charge.
 */
export function fromRecraftResponse(json: unknown, model: string, size: string): GenerationResult {
  if (
    json === null ||
    typeof json !== "object" ||
    !Array.isArray((json as RecraftImagesResponse).data)
  ) {
    throw malformedBody("the body has no `data` array", PROVIDER_NAME);
  }
  const body = json as RecraftImagesResponse;
  const vector = isVectorModel(model);
  const images = (body.data ?? []).map((item, i): GeneratedImage => {
    if (item === null || typeof item !== "object")
      throw malformedBody(`data[${i}] is not an object`, PROVIDER_NAME);
    if (typeof item.b64_json === "string") {
      const bytes = Buffer.from(item.b64_json, "base64");
      const mimeType =
        MAGIC.find((m) => m.test(bytes))?.mimeType ?? (vector ? "image/svg+xml" : "image/png");
      return { bytes, mimeType };
    }
    if (typeof item.url === "string")
      return { url: item.url, mimeType: mimeOfUrl(item.url, vector) };
    throw malformedBody(`data[${i}] has neither url nor b64_json`, PROVIDER_NAME);
  });
  if (images.length === 0) throw malformedBody("the body has no images", PROVIDER_NAME);
  const result: GenerationResult = { images, size, filtered: 0 };
  if (typeof body.credits === "number" && Number.isFinite(body.credits) && body.credits >= 0)
    result.costUsd = body.credits / 1000;
  return result;
}

/** Words in Recraft's error code or message that mark a safety refusal (the real shape is not captured). */
const REFUSAL = /moderat|nsfw|safety|inappropriate|prohibited/i;

/**
 * Recraft's errors → the contract's. 401 and 404 come as plain text; the rest as JSON
 * `{code, message}`. 429 carries no Retry-After, so the hint is whatever headers say (usually none).
 */
export function fromRecraftError(res: UpstreamResponse): GatewayError {
  const contentType = first(res.headers["content-type"]) ?? "";
  const json = contentType.includes("json")
    ? (parseJson(res.body) as Record<string, unknown> | undefined)
    : undefined;
  const nested =
    json?.error !== null && typeof json?.error === "object"
      ? (json.error as Record<string, unknown>)
      : undefined;
  const code = str(json?.code) ?? str(nested?.code);
  const upstreamMessage =
    str(json?.message) ??
    str(nested?.message) ??
    str(json?.detail) ??
    (res.body.toString("utf8").trim().slice(0, 200) || "no body");
  if (
    (res.status === 400 || res.status === 422) &&
    REFUSAL.test(`${code ?? ""} ${upstreamMessage}`)
  ) {
    return upstreamError("refused", `${PROVIDER_NAME}: ${upstreamMessage}`, {
      details: { provider_code: code ?? null },
    });
  }
  return statusError({
    provider: PROVIDER_NAME,
    status: res.status,
    upstreamMessage,
    upstreamCode: code,
    clientCode: code,
    retryAfterSeconds: retryAfterSeconds(res.headers),
    notFoundHint: "check api_base",
  });
}

export const recraftAdapter: ProviderAdapter = {
  provider: "recraft",
  async generate({ deployment, request, signal }: UpstreamCall): Promise<GenerationResult> {
    const { params, spec, model } = deployment;
    const url = `${(params.api_base ?? RECRAFT_DEFAULT_BASE).replace(/\/+$/, "")}/images/generations`;
    // The catalog entry's id decides the size table and raster/vector; the configured id is what is sent.
    const size = recraftSize(request, spec.model);
    const n = request.n ?? spec.n.default ?? 1;
    return fanOut(n, spec.upstream_max_n, async (count) => {
      const res = await sendUpstream(url, {
        method: "POST",
        headers: {
          authorization: `Bearer ${params.api_key ?? ""}`,
          "content-type": "application/json",
        },
        body: JSON.stringify(toRecraftRequest(request, model, count, size)),
        signal,
        timeoutMs: deployment.timeoutMs,
      });
      if (res.status !== 200) throw fromRecraftError(res);
      const json = (first(res.headers["content-type"]) ?? "").includes("json")
        ? parseJson(res.body)
        : undefined;
      if (json === undefined) throw malformedBody("the body is not JSON", PROVIDER_NAME);
      return fromRecraftResponse(json, spec.model, size);
    });
  },
};
