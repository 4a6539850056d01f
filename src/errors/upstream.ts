/**
 * What follows from each reason an upstream attempt can fail for (errors.ts's closed
 * `UpstreamReason`), in one table: the error kind (and so the contract's status), the code
 * the client sees, whether and where another attempt could succeed, and which retry-policy
 * class counts it. Adapters name a reason (`upstreamError`); the router reads the table
 * (router/policy.ts), never an error's text or code.
 */
import {
  type ErrorKind,
  GatewayError,
  type GatewayErrorOptions,
  type UpstreamReason,
} from "./errors.ts";

export type { UpstreamReason };

/**
 * Where another attempt could succeed: `no` (the request's fault or a refusal: neither a retry
 * nor a fallback, and nothing held against the deployment), `elsewhere` (the deployment is
 * broken until its configuration or account changes: it cools down at once and is not tried
 * again for this request), `anywhere` (a passing failure: retried, counted toward
 * `allowed_fails`).
 */
export type RetryScope = "no" | "elsewhere" | "anywhere";

/** LiteLLM's error classes, as `router_settings.retry_policy` names them. */
export type ErrorClass =
  | "RateLimit"
  | "Timeout"
  | "InternalServer"
  | "Authentication"
  | "BadRequest"
  | "ContentPolicyViolation";

export interface ReasonFacts {
  kind: ErrorKind;
  /** The OpenAI `code` the client sees; undefined keeps the kind's default (render.ts). */
  code: string | undefined;
  /** The status of an `upstream` failure: 503 when the upstream said it is unavailable. */
  httpStatus?: 502 | 503;
  retry: RetryScope;
  errorClass: ErrorClass;
  /** `elsewhere` without a cooldown: false when resting the deployment cannot help (retired model). */
  coolsDown?: false;
}

export const UPSTREAM_REASONS: Readonly<Record<UpstreamReason, ReasonFacts>> = {
  auth_failed: {
    kind: "upstream",
    code: "upstream_auth_failed",
    httpStatus: 502,
    retry: "elsewhere",
    errorClass: "Authentication",
  },
  not_found: {
    kind: "upstream",
    code: "upstream_not_found",
    httpStatus: 502,
    retry: "elsewhere",
    errorClass: "InternalServer",
  },
  // As not_found, but certain to be the configuration (never read as a retired model).
  deployment_not_found: {
    kind: "upstream",
    code: "upstream_not_found",
    httpStatus: 502,
    retry: "elsewhere",
    errorClass: "InternalServer",
  },
  // The client's 404 `model_not_found` (its message names the successor): no retry can bring
  // the model back, but another deployment or fallback may serve the request.
  model_retired: {
    kind: "model_not_found",
    code: "model_not_found",
    retry: "elsewhere",
    errorClass: "InternalServer",
    coolsDown: false,
  },
  operation_not_supported: {
    kind: "upstream",
    code: "upstream_operation_not_supported",
    httpStatus: 502,
    retry: "elsewhere",
    errorClass: "InternalServer",
  },
  misconfigured: {
    kind: "upstream",
    code: "upstream_misconfigured",
    httpStatus: 502,
    retry: "elsewhere",
    errorClass: "InternalServer",
  },
  quota_exhausted: {
    kind: "rate_limit",
    code: "insufficient_quota",
    retry: "elsewhere",
    errorClass: "RateLimit",
  },
  throttled: {
    kind: "rate_limit",
    code: "rate_limit_exceeded",
    retry: "anywhere",
    errorClass: "RateLimit",
  },
  unavailable: {
    kind: "upstream",
    code: "upstream_unavailable",
    httpStatus: 503,
    retry: "anywhere",
    errorClass: "InternalServer",
  },
  server_error: {
    kind: "upstream",
    code: "upstream_error",
    httpStatus: 502,
    retry: "anywhere",
    errorClass: "InternalServer",
  },
  model_error: {
    kind: "upstream",
    code: "upstream_model_error",
    httpStatus: 502,
    retry: "anywhere",
    errorClass: "InternalServer",
  },
  malformed_response: {
    kind: "upstream",
    code: "upstream_malformed_response",
    httpStatus: 502,
    retry: "anywhere",
    errorClass: "InternalServer",
  },
  no_images: {
    kind: "upstream",
    code: "upstream_no_images",
    httpStatus: 502,
    retry: "anywhere",
    errorClass: "InternalServer",
  },
  unreachable: {
    kind: "upstream",
    code: "upstream_unreachable",
    httpStatus: 502,
    retry: "anywhere",
    errorClass: "InternalServer",
  },
  response_too_large: {
    kind: "upstream",
    code: "upstream_response_too_large",
    httpStatus: 502,
    retry: "anywhere",
    errorClass: "InternalServer",
  },
  timeout: { kind: "timeout", code: undefined, retry: "anywhere", errorClass: "Timeout" },
  bad_request: {
    kind: "invalid_request",
    code: undefined,
    retry: "no",
    errorClass: "BadRequest",
  },
  refused: {
    kind: "content_policy",
    code: undefined,
    retry: "no",
    errorClass: "ContentPolicyViolation",
  },
};

/** What an error made without a reason (by the gateway itself) counts as, by its kind. */
const REASON_OF_KIND: Partial<Record<ErrorKind, UpstreamReason>> = {
  upstream: "server_error",
  rate_limit: "throttled",
  timeout: "timeout",
  content_policy: "refused",
};

/** The facts that decide what happens after `e`: its reason's row, else its kind's. */
export function factsOf(e: GatewayError): ReasonFacts {
  const reason = e.reason ?? REASON_OF_KIND[e.kind] ?? "bad_request";
  return UPSTREAM_REASONS[reason];
}

export type UpstreamErrorOptions = Pick<
  GatewayErrorOptions,
  "param" | "retryAfterSeconds" | "details" | "cause"
> & {
  /** The upstream's own code for a rejected request (`bad_request`), which OpenAI clients know. */
  code?: string;
};

/** The GatewayError for an upstream failure: kind, code and status come from the reason's row. */
export function upstreamError(
  reason: UpstreamReason,
  message: string,
  options: UpstreamErrorOptions = {},
): GatewayError {
  const facts = UPSTREAM_REASONS[reason];
  return new GatewayError(facts.kind, message, {
    ...options,
    reason,
    code: options.code ?? facts.code,
    httpStatus: facts.httpStatus,
  });
}

/**
 * The reason an HTTP status says when the body says nothing more specific. The one mapping
 * every adapter falls back to; an adapter checks its provider's own error codes first.
 */
export function reasonForStatus(status: number): UpstreamReason {
  if (status === 400 || status === 422) return "bad_request";
  if (status === 401 || status === 403) return "auth_failed";
  if (status === 404) return "not_found";
  if (status === 408) return "timeout";
  if (status === 429) return "throttled";
  if (status === 503) return "unavailable";
  return "server_error";
}
