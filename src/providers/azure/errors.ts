/**
 * Azure OpenAI's error answers → the contract's errors.
 */
import type { GatewayError } from "../../errors/errors.ts";
import { upstreamError } from "../../errors/upstream.ts";
import type { UpstreamResponse } from "../http.ts";
import { statusError } from "../status.ts";
import { parseJson } from "../json.ts";
import { fromOpenAIError } from "../openai/errors.ts";
import { clip } from "../../errors/redact.ts";

export const PROVIDER_NAME = "Azure OpenAI";

/**
 * Azure's error answers → the contract's errors. The shapes Azure shares with OpenAI
 * (content_policy_violation with `inner_error.content_filter_results`, moderation_blocked,
 * 401 `code:"401"`, 429 `code:"429"`) go through `fromOpenAIError`; a missing deployment or
 * an api-version that does not serve the model is the gateway's configuration, never the
 * client's request, so those are upstream failures naming what to fix.
 */
export function fromAzureError(res: UpstreamResponse, deploymentName: string): GatewayError {
  const err = (parseJson(res.body) as { error?: { code?: unknown; message?: unknown } } | undefined)
    ?.error;
  const code =
    typeof err?.code === "string" || typeof err?.code === "number" ? String(err.code) : undefined;
  const upstreamMessage =
    typeof err?.message === "string"
      ? err.message
      : clip(res.body.toString("utf8"), 200) || "no body";
  if (res.status === 404) {
    if (code === "DeploymentNotFound") {
      return upstreamError(
        "deployment_not_found",
        `${PROVIDER_NAME}: deployment '${deploymentName}' does not exist at this resource (DeploymentNotFound); check the model name and api_base`,
      );
    }
    return statusError({
      provider: PROVIDER_NAME,
      status: res.status,
      upstreamMessage,
      notFoundHint: "check api_base and api_version",
    });
  }
  if (code === "OperationNotSupported") {
    return upstreamError(
      "operation_not_supported",
      `${PROVIDER_NAME}: deployment '${deploymentName}' cannot generate images with this api_version: ${upstreamMessage}`,
    );
  }
  const mapped = fromOpenAIError(res, PROVIDER_NAME);
  if (mapped.kind === "rate_limit" && mapped.retryAfterSeconds === undefined) {
    // Azure also says it in words: "…Please retry after 20 seconds…".
    const hint = /retry after (\d+(?:\.\d+)?) second/i.exec(upstreamMessage);
    if (hint) {
      return upstreamError(mapped.reason ?? "throttled", mapped.message, {
        retryAfterSeconds: Number(hint[1]),
      });
    }
  }
  return mapped;
}
