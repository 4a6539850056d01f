/**
 * OpenAI's error answers → the contract's errors: refusals and quota by OpenAI's codes, the
 * rest by the shared status mapping (status.ts). Azure OpenAI's errors come here too.
 */
import type { GatewayError } from "../../errors/errors.ts";
import { upstreamError } from "../../errors/upstream.ts";
import { retryAfterSeconds, type UpstreamResponse } from "../http.ts";
import { statusError } from "../status.ts";
import { parseJson, str } from "../json.ts";
import { clip } from "../../errors/redact.ts";

interface OpenAIErrorBody {
  error?: {
    message?: unknown;
    type?: unknown;
    param?: unknown;
    code?: unknown;
    [k: string]: unknown;
  };
}

/** OpenAI's error answer → the contract's error table. `provider` prefixes the message. */
export function fromOpenAIError(res: UpstreamResponse, provider = "OpenAI"): GatewayError {
  const parsed = parseJson(res.body) as OpenAIErrorBody | undefined;
  const err = parsed?.error;
  const upstreamMessage = str(err?.message) ?? (clip(res.body.toString("utf8"), 200) || "no body");
  const code = str(err?.code);
  const type = str(err?.type);
  const message = `${provider}: ${upstreamMessage}`;
  if (code === "content_policy_violation" || code === "moderation_blocked") {
    const details: Record<string, unknown> = { provider_code: code };
    if (err?.moderation_details !== undefined) details.moderation_details = err.moderation_details;
    // Azure OpenAI adds its content filter's verdict (`inner_error`, `innererror` in older versions).
    const inner = err?.inner_error ?? err?.innererror;
    if (inner !== null && typeof inner === "object") {
      const {
        code: innerCode,
        content_filter_results,
        revised_prompt,
      } = inner as Record<string, unknown>;
      if (typeof innerCode === "string") details.provider_inner_code = innerCode;
      if (content_filter_results !== undefined)
        details.content_filter_results = content_filter_results;
      if (typeof revised_prompt === "string") details.revised_prompt = revised_prompt;
    }
    return upstreamError("refused", message, { details });
  }
  // A shut-down model: OpenAI's 404 model_not_found "The model `…` has been deprecated".
  if (code === "model_not_found" && /\b(deprecated|shut down|retired)\b/i.test(upstreamMessage)) {
    return upstreamError("model_retired", message);
  }
  const quota = code === "insufficient_quota" || type === "insufficient_quota";
  return statusError(
    {
      provider,
      status: res.status,
      upstreamMessage,
      upstreamCode: code,
      clientCode: code,
      param: str(err?.param),
      retryAfterSeconds: quota ? undefined : retryAfterSeconds(res.headers),
    },
    res.status === 429 && quota ? "quota_exhausted" : undefined,
  );
}
