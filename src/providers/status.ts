/**
 * The one mapping from an upstream's failed HTTP answer to the contract's error, for answers
 * whose body names nothing more specific. Each adapter first reads its provider's own error
 * vocabulary (refusals, quota, Bedrock's error types, Google's status strings) and hands the
 * rest here, so that a 401, a 404 or a 503 means the same from every provider.
 */
import type { GatewayError } from "../errors/errors.ts";
import { reasonForStatus, type UpstreamReason, upstreamError } from "../errors/upstream.ts";

export interface FailedAnswer {
  /** Names the upstream in messages: "OpenAI", "Amazon Bedrock". */
  provider: string;
  status: number;
  /** The upstream's own words. */
  upstreamMessage: string;
  /**
   * Whether the upstream's words on refused credentials may be shown: AWS and Google never
   * quote the credential; OpenAI-style APIs may quote part of the key, so only the code is.
   */
  credentialMessageIsSafe?: boolean;
  /** The upstream's error code, status or class, quoted in messages. */
  upstreamCode?: string;
  /**
   * The code the client sees instead of the reason's: the upstream's own, where the upstream
   * speaks OpenAI's vocabulary and clients know its codes (`server_is_overloaded`).
   */
  clientCode?: string;
  /** The request field a 400 is about. */
  param?: string;
  retryAfterSeconds?: number;
  /** What to check after a 404 ("check api_base"). */
  notFoundHint?: string;
}

/** The error for `answer`: its reason from the status unless the caller knows better. */
export function statusError(
  answer: FailedAnswer,
  reason: UpstreamReason = reasonForStatus(answer.status),
): GatewayError {
  const { provider, status, upstreamMessage, upstreamCode } = answer;
  const quoted = upstreamCode ? ` ${upstreamCode}` : "";
  switch (reason) {
    case "auth_failed": {
      const words = answer.credentialMessageIsSafe ? `: ${upstreamMessage}` : "";
      return upstreamError(
        reason,
        `${provider} rejected the gateway's credentials (${status}${quoted})${words}`,
      );
    }
    case "not_found": {
      const hint = answer.notFoundHint ? ` (${answer.notFoundHint})` : "";
      return upstreamError(reason, `${provider} answered 404: ${upstreamMessage}${hint}`);
    }
    case "bad_request":
      return upstreamError(reason, `${provider}: ${upstreamMessage}`, {
        param: answer.param,
        code: answer.clientCode,
      });
    case "throttled":
      return upstreamError(reason, `${provider}: ${upstreamMessage}`, {
        retryAfterSeconds: answer.retryAfterSeconds,
      });
    case "quota_exhausted":
    case "timeout":
      return upstreamError(reason, `${provider}: ${upstreamMessage}`);
    default:
      return upstreamError(reason, `${provider} answered ${status}${quoted}: ${upstreamMessage}`, {
        code: answer.clientCode,
        retryAfterSeconds: answer.retryAfterSeconds,
      });
  }
}
