/**
 * One status mapping for every adapter: an answer whose body names nothing more specific
 * means the same from every provider (same reason, client code and HTTP status).
 */
import { describe, expect, it } from "vitest";
import type { GatewayError } from "../../src/errors/errors.ts";
import { fromAzureError } from "../../src/providers/azure/errors.ts";
import { fromBedrockError } from "../../src/providers/bedrock/errors.ts";
import { fromGoogleError } from "../../src/providers/google-images/errors.ts";
import type { UpstreamResponse } from "../../src/providers/http.ts";
import { fromOpenAIError } from "../../src/providers/openai/errors.ts";
import { fromRecraftError } from "../../src/providers/recraft/errors.ts";
import { breaksDeployment, isRetryable } from "../../src/router/policy.ts";

const MAPPERS: Record<string, (res: UpstreamResponse) => GatewayError> = {
  openai: (res) => fromOpenAIError(res),
  azure: (res) => fromAzureError(res, "dalle3"),
  recraft: fromRecraftError,
  bedrock: fromBedrockError,
  google: (res) => fromGoogleError(res, "Vertex AI"),
};

const plain = (status: number): UpstreamResponse => ({
  status,
  headers: { "content-type": "text/plain" },
  body: Buffer.from("something went wrong"),
});

describe("a bare HTTP status means the same from every provider", () => {
  it.each([
    [401, "auth_failed", "upstream", "upstream_auth_failed", 502],
    [403, "auth_failed", "upstream", "upstream_auth_failed", 502],
    [404, "not_found", "upstream", "upstream_not_found", 502],
    [429, "throttled", "rate_limit", "rate_limit_exceeded", undefined],
    [500, "server_error", "upstream", "upstream_error", 502],
    [503, "unavailable", "upstream", "upstream_unavailable", 503],
  ])("%i is %s", (status, reason, kind, code, httpStatus) => {
    for (const [provider, map] of Object.entries(MAPPERS)) {
      const e = map(plain(status));
      expect({
        provider,
        reason: e.reason,
        kind: e.kind,
        code: e.code,
        status: e.httpStatus,
      }).toEqual({ provider, reason, kind, code, status: httpStatus });
    }
  });
});

describe("what follows from a reason", () => {
  it("the router reads the reason, not the code", () => {
    const e = fromOpenAIError(plain(404));
    expect([isRetryable(e), breaksDeployment(e)]).toEqual([true, true]);
    const bad = fromOpenAIError(plain(400));
    expect([isRetryable(bad), breaksDeployment(bad)]).toEqual([false, false]);
  });
});
