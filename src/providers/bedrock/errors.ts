/**
 * Bedrock's error answers (`x-amzn-ErrorType` and the JSON message) → the contract's errors.
 */
import type { GatewayError } from "../../errors/errors.ts";
import { type UpstreamReason, upstreamError } from "../../errors/upstream.ts";
import { first, type UpstreamResponse } from "../http.ts";
import { statusError } from "../status.ts";
import { parseJson, str } from "../json.ts";
import { clip } from "../../errors/redact.ts";

export const PROVIDER = "Bedrock";

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
  const upstreamMessage = clip(
    str(parsed?.message) ??
      str(parsed?.Message) ??
      (clip(res.body.toString("utf8"), 200) || "no body"),
    500,
  );
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
  // A model past its end of life, or Legacy for this account: the provider no longer serves it.
  if (errorType === "ResourceNotFoundException" && isRetiredMessage(upstreamMessage)) {
    return upstreamError("model_retired", message);
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

/** Bedrock's words for a model past its end of life, or Legacy and unused by this account. */
export function isRetiredMessage(message: string): boolean {
  return /reached the end of its life|marked by provider as Legacy/i.test(message);
}

export function modelFailure(why: string): GatewayError {
  return upstreamError("model_error", `${PROVIDER}: the model failed: ${why}`);
}
