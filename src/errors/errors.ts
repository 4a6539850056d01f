/**
 * The gateway's error vocabulary. Every failure is a GatewayError of one of a few kinds;
 * `toConnectError` and `toOpenAIErrorBody` (in render.ts) are the one place where kinds
 * become the contract's HTTP statuses, OpenAI types and gRPC codes. An upstream failure also
 * carries its reason (upstream.ts), from which retries and cooldowns follow.
 */
export type ErrorKind =
  | "invalid_request" // 400: bad or unsupported parameter; `param` names it
  | "model_not_found" // 404: unknown model
  | "authentication" // 401: missing or wrong gateway key
  | "permission" // 403: key not allowed this model
  | "content_policy" // 400: refused by a provider's safety system
  | "rate_limit" // 429: throttled; `retryAfterSeconds` when known
  | "upstream" // 502/503: every upstream attempt failed
  | "timeout" // 504: upstream deadline passed
  | "too_large" // 413: request body over the limit
  | "budget" // 429: the gateway key has spent its budget (not retryable)
  | "budget_unavailable" // 503: the key has a budget and the database that keeps it is down
  | "not_found" // 404: unknown path
  | "internal"; // 500: a bug in the gateway

/** Why an upstream attempt failed, as a closed set; what follows from each is upstream.ts's table. */
export type UpstreamReason =
  | "auth_failed" // the upstream refused (or we lack) the deployment's credentials
  | "not_found" // 404: no such model, deployment or path at the configured api_base
  | "deployment_not_found" // Azure's DeploymentNotFound: the configured name, never a retired model
  | "model_retired" // the provider no longer serves the model (shut down): the client's 404
  | "operation_not_supported" // the deployment exists but cannot generate images (Azure api_version)
  | "misconfigured" // the deployment's configuration is incomplete (Vertex AI without a project)
  | "quota_exhausted" // the upstream account is out of money or quota
  | "throttled" // 429: too many requests right now
  | "unavailable" // 503: the upstream is down or overloaded
  | "server_error" // any other upstream failure (5xx, unexpected status)
  | "model_error" // the model itself failed (Bedrock's ModelErrorException)
  | "malformed_response" // an answer that is not what the provider documents
  | "no_images" // an answer without images and without a refusal
  | "unreachable" // no HTTP answer at all (DNS, refused connection, reset)
  | "response_too_large" // an answer over the size cap
  | "timeout" // the upstream did not answer in time
  | "bad_request" // 400: the upstream rejected the request itself
  | "refused"; // the provider's safety system refused the prompt or every image

/** One upstream attempt, as listed in a failure's message. */
export interface AttemptRecord {
  deployment: string;
  status: number | "timeout" | "network" | "skipped";
  message: string;
}

export interface GatewayErrorOptions {
  /** The request field at fault (OpenAI's `param`). */
  param?: string;
  /** OpenAI's `code`; each kind has a default. */
  code?: string;
  /** Overrides the kind's HTTP status where the contract allows a choice (502 or 503). */
  httpStatus?: number;
  /** How long the client should wait before retrying, from an upstream hint or a cooldown. */
  retryAfterSeconds?: number;
  /** Why an upstream attempt failed; set by `upstreamError`, read by the router. */
  reason?: UpstreamReason;
  /** Upstream attempts behind this error. */
  attempts?: AttemptRecord[];
  /** Extra provider facts kept for the client (e.g. Azure's content filter results). */
  details?: Record<string, unknown>;
  cause?: unknown;
}

export class GatewayError extends Error {
  readonly kind: ErrorKind;
  readonly param: string | undefined;
  readonly code: string | undefined;
  readonly httpStatus: number | undefined;
  readonly retryAfterSeconds: number | undefined;
  readonly reason: UpstreamReason | undefined;
  readonly attempts: AttemptRecord[];
  readonly details: Record<string, unknown> | undefined;

  constructor(kind: ErrorKind, message: string, options: GatewayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "GatewayError";
    this.kind = kind;
    this.param = options.param;
    this.code = options.code;
    this.httpStatus = options.httpStatus;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.reason = options.reason;
    this.attempts = options.attempts ?? [];
    this.details = options.details;
  }
}

/** A 400 naming the request field at fault. */
export function invalidParam(param: string | undefined, message: string, code?: string) {
  return new GatewayError("invalid_request", message, { param, code });
}

export function isGatewayError(e: unknown): e is GatewayError {
  return e instanceof GatewayError;
}
