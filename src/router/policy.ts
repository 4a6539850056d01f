/**
 * Retry and cooldown rules as pure functions: which failures are worth another attempt,
 * how many, how long to wait, and which take a deployment out of rotation.
 */
import type { RouterSettings } from "../config/schema.ts";
import type { GatewayError } from "../errors/errors.ts";

/** LiteLLM's error classes, as `retry_policy` names them. */
export type ErrorClass =
  | "RateLimit"
  | "Timeout"
  | "InternalServer"
  | "Authentication"
  | "BadRequest"
  | "ContentPolicyViolation";

/** Codes that no retry on the same deployment can fix; the deployment cools down at once. */
const DEPLOYMENT_BROKEN = new Set([
  "upstream_auth_failed",
  "upstream_not_found",
  "upstream_model_not_found",
  "upstream_operation_not_supported",
  "insufficient_quota",
]);

export function classify(e: GatewayError): ErrorClass {
  if (e.kind === "content_policy") return "ContentPolicyViolation";
  if (e.kind === "rate_limit") return "RateLimit";
  if (e.kind === "timeout") return "Timeout";
  if (e.code === "upstream_auth_failed") return "Authentication";
  if (e.kind === "upstream") return "InternalServer";
  return "BadRequest";
}

/** Whether another attempt (here or on another deployment) could succeed. */
export function isRetryable(e: GatewayError): boolean {
  const cls = classify(e);
  return (
    cls === "RateLimit" || cls === "Timeout" || cls === "InternalServer" || cls === "Authentication"
  );
}

/** Whether this deployment should leave rotation now, without counting to allowed_fails. */
export function breaksDeployment(e: GatewayError): boolean {
  return e.code !== undefined && DEPLOYMENT_BROKEN.has(e.code);
}

export const DEFAULTS = {
  numRetries: 2,
  allowedFails: 3,
  cooldownSeconds: 5,
  timeoutSeconds: 600,
  maxFallbacks: 5,
  latencyBuffer: 0.1,
  maxRetryWaitSeconds: 60,
} as const;

export function retriesFor(cls: ErrorClass, settings: RouterSettings): number {
  const policy = settings.retry_policy?.[`${cls}ErrorRetries`];
  if (policy !== undefined) return policy;
  // Refusals and bad requests cannot succeed by asking again.
  if (cls === "ContentPolicyViolation" || cls === "BadRequest") return 0;
  return settings.num_retries ?? DEFAULTS.numRetries;
}

/** Exponential backoff with jitter: min(0.5 s × 2^retry, 8 s), less up to 25 %. */
export function backoffMs(retry: number, random: () => number): number {
  return Math.min(500 * 2 ** retry, 8000) * (0.75 + 0.25 * random());
}

/** How long a failing deployment stays out: at least what the upstream asked for. */
export function cooldownMs(e: GatewayError, settings: RouterSettings): number {
  const base = (settings.cooldown_time ?? DEFAULTS.cooldownSeconds) * 1000;
  return Math.max(base, (e.retryAfterSeconds ?? 0) * 1000);
}
