/**
 * Google's error answer (`{"error":{code, message, status, details}}`,
 * https://cloud.google.com/apis/design/errors) → the contract's errors.
 */
import type { GatewayError } from "../../errors/errors.ts";
import { reasonForStatus, type UpstreamReason, upstreamError } from "../../errors/upstream.ts";
import type { UpstreamResponse } from "../http.ts";
import { statusError } from "../status.ts";
import { parseJson, str } from "../json.ts";
import { type GoogleErrorBody, isObject } from "./shapes.ts";
import { clip } from "../../errors/redact.ts";
import { own } from "../../runtime/own.ts";

/**
 * A blocked prompt comes back as a 400 INVALID_ARGUMENT whose message says so
 * (docs/providers/vertex_ai.md, "Refusals").
 */
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

/**
 * Google's error answer (`{"error":{code, message, status, details}}`) → the contract's
 * error table. The retry hint is only `google.rpc.RetryInfo.retryDelay` (no header).
 */
export function fromGoogleError(res: UpstreamResponse, label: string): GatewayError {
  const err = (parseJson(res.body) as GoogleErrorBody | undefined)?.error;
  const upstreamMessage = str(err?.message) ?? (clip(res.body.toString("utf8"), 200) || "no body");
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
    const param = own(PARAM_BY_UPSTREAM_FIELD, last);
    if (param !== undefined) return param;
  }
  for (const [name, param] of Object.entries(PARAM_BY_UPSTREAM_FIELD)) {
    if (new RegExp(`\\b${name}\\b`).test(message)) return param;
  }
  return undefined;
}
