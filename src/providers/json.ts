/**
 * Reading upstream JSON at the adapter's edge: parsing without throwing, typed field
 * readers, and the one error for a body that is not what the provider documents.
 */
import type { GatewayError } from "../errors/errors.ts";
import { upstreamError } from "../errors/upstream.ts";

/** The body as JSON, or undefined when it is not JSON. */
export function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    return undefined;
  }
}

/** The body as a JSON object, or undefined. */
export function parseJsonObject(body: Buffer): Record<string, unknown> | undefined {
  const v = parseJson(body);
  return typeof v === "object" && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
}

export function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

/** A token count as the proto's uint32 holds it: an absurd upstream number must not fail the answer's encoding. */
export function tokenCount(v: unknown): number {
  return typeof v === "number" && Number.isFinite(v) && v >= 0
    ? Math.min(Math.floor(v), 0xffff_ffff)
    : 0;
}

/** An answer that is not what the provider documents: the upstream failed, not the client. */
export function malformedBody(why: string, provider = "upstream"): GatewayError {
  return upstreamError("malformed_response", `${provider} answered with a malformed body: ${why}`);
}
