/**
 * Retry and cooldown rules as pure functions: which failures are worth another attempt,
 * how many, how long to wait, and which take a deployment out of rotation. What each
 * failure allows is read from errors/upstream.ts's table, never from an error's text.
 */
import type { RouterSettings } from "../config/schema.ts";
import type { GatewayError } from "../errors/errors.ts";
import { type ErrorClass, factsOf } from "../errors/upstream.ts";

export type { ErrorClass };

/** The retry-policy class that counts `e` (errors/upstream.ts's table). */
export function classify(e: GatewayError): ErrorClass {
  return factsOf(e).errorClass;
}

/** Whether another attempt (here or on another deployment) could succeed. */
export function isRetryable(e: GatewayError): boolean {
  return factsOf(e).retry !== "no";
}

/**
 * Whether this deployment should leave rotation now, without counting to allowed_fails, and
 * not be tried again for this request: no retry on it can fix its configuration or account.
 */
export function breaksDeployment(e: GatewayError): boolean {
  return factsOf(e).retry === "elsewhere";
}

/** Whether a failure that breaks the deployment also takes it out of rotation (not a retired model). */
export function coolsDown(e: GatewayError): boolean {
  return factsOf(e).coolsDown !== false;
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
