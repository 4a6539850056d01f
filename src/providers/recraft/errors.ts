/**
 * Recraft's error answers → the contract's errors.
 */
import type { GatewayError } from "../../errors/errors.ts";
import { upstreamError } from "../../errors/upstream.ts";
import { first, retryAfterSeconds, type UpstreamResponse } from "../http.ts";
import { statusError } from "../status.ts";
import { parseJson, str } from "../json.ts";
import { clip } from "../../errors/redact.ts";

export const PROVIDER_NAME = "Recraft";

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
    (clip(res.body.toString("utf8").trim(), 200) || "no body");
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
