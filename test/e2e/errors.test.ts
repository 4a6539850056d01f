/**
 * The contract's error table through every protocol: validation 400s that never reach the
 * provider, unknown models, and upstream failures mapped to status, type, code, gRPC code
 * and ErrorInfo, with the call headers every error carries.
 */
import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import type { Fault } from "@imagegate/emulators/faults";
import { openaiFaults } from "@imagegate/emulators/openai";
import { BAD_UPSTREAM_KEY, useE2EStack } from "../support/e2e.ts";
import { ALL_PROTOCOLS, Code, failed, type Failure, type Protocol } from "../support/protocols.ts";

interface ErrorRow {
  name: string;
  body: Record<string, unknown>;
  fault?: Fault;
  status: number;
  grpc: Code;
  type: string;
  /** REST `code`; the ErrorInfo reason is this, or `type` when there is none. */
  code?: string;
  param?: string;
  message: RegExp;
  /** Upstream calls the request may cause (0: the gateway rejected it itself). */
  upstreamCalls: 0 | 1;
  /** Expected `x-imagegate-model` / `x-imagegate-deployment` when the call got that far. */
  model?: string;
  deployment?: string;
  retryAfter?: string;
  /** Text that must appear nowhere in the answer. */
  secret?: string;
}

const P = "a quiet harbour at dawn";

function invalid(
  name: string,
  body: Record<string, unknown>,
  param: string,
  message: RegExp,
): ErrorRow {
  return {
    name,
    body,
    status: 400,
    grpc: Code.InvalidArgument,
    type: "invalid_request_error",
    param,
    message,
    upstreamCalls: 0,
  };
}

const ROWS: ErrorRow[] = [
  invalid("n=2 on dall-e-3", { model: "dall-e-3", prompt: P, n: 2 }, "n", /'n'.*only 1/),
  invalid("n=11 on dall-e-2", { model: "dall-e-2", prompt: P, n: 11 }, "n", /'n'.*from 1 to 10/),
  invalid("n=0", { model: "dall-e-2", prompt: P, n: 0 }, "n", /'n'/),
  invalid("size 999x999", { model: "dall-e-2", prompt: P, size: "999x999" }, "size", /999x999/),
  invalid(
    "size 1792x1024 on dall-e-2",
    { model: "dall-e-2", prompt: P, size: "1792x1024" },
    "size",
    /1792x1024/,
  ),
  invalid(
    "style on gpt-image-1",
    { model: "gpt-image-1", prompt: P, style: "vivid" },
    "style",
    /style/,
  ),
  invalid(
    "unknown style on dall-e-3",
    { model: "dall-e-3", prompt: P, style: "bright" },
    "style",
    /bright/,
  ),
  invalid(
    "a 5000-character prompt on dall-e-3",
    { model: "dall-e-3", prompt: "p".repeat(5000) },
    "prompt",
    /5000.*4000/,
  ),
  invalid("missing prompt", { model: "dall-e-3" }, "prompt", /prompt/),
  invalid("empty prompt", { model: "dall-e-3", prompt: "" }, "prompt", /prompt/),
  invalid(
    "response_format png on gpt-image-1",
    { model: "gpt-image-1", prompt: P, response_format: "png" },
    "response_format",
    /png/,
  ),
  invalid(
    "quality hd on gpt-image-1",
    { model: "gpt-image-1", prompt: P, quality: "hd" },
    "quality",
    /hd/,
  ),
  invalid(
    "quality hd on dall-e-2",
    { model: "dall-e-2", prompt: P, quality: "hd" },
    "quality",
    /hd/,
  ),
  invalid(
    "background on dall-e-3",
    { model: "dall-e-3", prompt: P, background: "transparent" },
    "background",
    /background/,
  ),
  invalid(
    "transparent background with jpeg",
    { model: "gpt-image-1", prompt: P, background: "transparent", output_format: "jpeg" },
    "background",
    /transparent.*output_format/,
  ),
  invalid(
    "output_compression 50 with png",
    { model: "gpt-image-1", prompt: P, output_compression: 50 },
    "output_compression",
    /output_compression/,
  ),
  invalid(
    "output_compression 101",
    { model: "gpt-image-1", prompt: P, output_format: "jpeg", output_compression: 101 },
    "output_compression",
    /101/,
  ),
  invalid(
    "moderation on dall-e-3",
    { model: "dall-e-3", prompt: P, moderation: "low" },
    "moderation",
    /moderation/,
  ),
  invalid(
    "partial_images on dall-e-3",
    { model: "dall-e-3", prompt: P, stream: true, partial_images: 1 },
    "partial_images",
    /partial_images/,
  ),
  invalid(
    "negative_prompt on dall-e-3",
    { model: "dall-e-3", prompt: P, negative_prompt: "fog" },
    "negative_prompt",
    /negative_prompt/,
  ),
  invalid("seed on gpt-image-1", { model: "gpt-image-1", prompt: P, seed: 7 }, "seed", /seed/),
  invalid(
    "n=2 on a model_list name for dall-e-3",
    { model: "image-hq", prompt: P, n: 2 },
    "n",
    /image-hq/,
  ),
  ...["no-such-model", "openai/no-such-model", "nowhere/dall-e-3"].map(
    (model): ErrorRow => ({
      name: `unknown model ${model}`,
      body: { model, prompt: P },
      status: 404,
      grpc: Code.NotFound,
      type: "invalid_request_error",
      code: "model_not_found",
      param: "model",
      message: new RegExp(`'${model}' does not exist`),
      upstreamCalls: 0,
    }),
  ),
  {
    name: "DALL·E content_policy_violation",
    body: { model: "dall-e-3", prompt: "a forbidden castle" },
    status: 400,
    grpc: Code.InvalidArgument,
    type: "invalid_request_error",
    code: "content_policy_violation",
    message: /safety system/,
    upstreamCalls: 1,
    model: "openai/dall-e-3",
    deployment: "openai/dall-e-3",
  },
  {
    name: "gpt-image moderation_blocked",
    body: { model: "gpt-image-1", prompt: "a forbidden castle", quality: "low" },
    status: 400,
    grpc: Code.InvalidArgument,
    type: "invalid_request_error",
    code: "content_policy_violation",
    message: /safety system/,
    upstreamCalls: 1,
    model: "openai/gpt-image-1",
    deployment: "openai/gpt-image-1",
  },
  {
    name: "upstream 429 with Retry-After",
    // Its own deployment: the gateway rests a deployment until Retry-After has passed.
    body: { model: "limited", prompt: P },
    fault: openaiFaults.rateLimit(7),
    status: 429,
    grpc: Code.ResourceExhausted,
    type: "rate_limit_error",
    code: "rate_limit_exceeded",
    message: /\[openai-limited\].*Rate limit exceeded/,
    upstreamCalls: 1,
    model: "limited",
    deployment: "openai-limited",
    retryAfter: "7",
  },
  {
    name: "upstream 429 insufficient_quota",
    body: { model: "dall-e-3", prompt: P },
    fault: openaiFaults.insufficientQuota(),
    status: 429,
    grpc: Code.ResourceExhausted,
    type: "rate_limit_error",
    code: "insufficient_quota",
    message: /\[openai\/dall-e-3\].*quota/,
    upstreamCalls: 1,
    model: "openai/dall-e-3",
    deployment: "openai/dall-e-3",
  },
  {
    name: "upstream 500",
    body: { model: "image-hq", prompt: P },
    fault: openaiFaults.serverError(),
    status: 502,
    grpc: Code.Unavailable,
    type: "server_error",
    code: "upstream_error",
    message: /\[openai-eu-1\].*OpenAI answered 500: The server had an error/,
    upstreamCalls: 1,
    model: "image-hq",
    deployment: "openai-eu-1",
  },
  {
    name: "upstream 503",
    body: { model: "dall-e-3", prompt: P },
    fault: openaiFaults.overloaded(),
    status: 503,
    grpc: Code.Unavailable,
    type: "server_error",
    code: "server_is_overloaded",
    message: /\[openai\/dall-e-3\].*OpenAI answered 503 server_is_overloaded: .*overloaded/,
    upstreamCalls: 1,
    model: "openai/dall-e-3",
    deployment: "openai/dall-e-3",
  },
  {
    name: "malformed upstream JSON",
    body: { model: "dall-e-3", prompt: P },
    fault: openaiFaults.malformed(),
    status: 502,
    grpc: Code.Unavailable,
    type: "server_error",
    code: "upstream_malformed_response",
    message: /\[openai\/dall-e-3\].*malformed/,
    upstreamCalls: 1,
    model: "openai/dall-e-3",
    deployment: "openai/dall-e-3",
  },
  {
    name: "upstream connection reset",
    body: { model: "dall-e-3", prompt: P },
    fault: openaiFaults.reset(),
    status: 502,
    grpc: Code.Unavailable,
    type: "server_error",
    code: "upstream_unreachable",
    message: /\[openai\/dall-e-3\].*unreachable/,
    upstreamCalls: 1,
    model: "openai/dall-e-3",
    deployment: "openai/dall-e-3",
  },
  {
    name: "wrong upstream key",
    body: { model: "bad-key", prompt: P },
    status: 502,
    grpc: Code.Unavailable,
    type: "server_error",
    code: "upstream_auth_failed",
    message: /\[openai-bad-key\].*credentials/,
    upstreamCalls: 1,
    model: "bad-key",
    deployment: "openai-bad-key",
    secret: BAD_UPSTREAM_KEY,
  },
  {
    name: "upstream timeout",
    body: { model: "slow", prompt: P },
    fault: openaiFaults.hang(),
    status: 504,
    grpc: Code.DeadlineExceeded,
    type: "server_error",
    code: "timeout",
    message: /\[openai-slow\].*0\.3 s/,
    upstreamCalls: 1,
    model: "slow",
    deployment: "openai-slow",
  },
];

function expectContractError(protocol: Protocol, row: ErrorRow, err: Failure, requestId: string) {
  if (protocol === "rest" || protocol === "rest-h2") {
    expect(err.httpStatus).toBe(row.status);
    expect(err.body).toMatchObject({
      type: row.type,
      param: row.param ?? null,
      code: row.code ?? null,
    });
  } else {
    expect(err.grpcCode).toBe(row.grpc);
    expect(err.domain).toBe("imagegate");
    expect(err.code).toBe(row.code ?? row.type);
    expect(err.type).toBe(row.type);
    expect(err.param).toBe(row.param);
  }
  expect(err.message).toMatch(row.message);
  expect(err.headers.get("x-request-id")).toBe(requestId);
  expect(err.headers.get("x-imagegate-cost-usd")).toBe("0");
  expect(err.headers.get("x-imagegate-attempts")).toBe(String(row.upstreamCalls));
  if (row.model !== undefined) expect(err.headers.get("x-imagegate-model")).toBe(row.model);
  if (row.deployment !== undefined)
    expect(err.headers.get("x-imagegate-deployment")).toBe(row.deployment);
  if (row.retryAfter !== undefined) expect(err.headers.get("retry-after")).toBe(row.retryAfter);
  if (row.secret !== undefined) {
    expect(JSON.stringify(err)).not.toContain(row.secret);
    expect(JSON.stringify([...err.headers])).not.toContain(row.secret);
  }
}

// A stack per protocol: each run of the table starts with the router's state clean.
describe.each(ALL_PROTOCOLS)("errors over %s", (protocol) => {
  const e2e = useE2EStack();
  it.each(ROWS.map((r) => [r.name, r] as const))("%s", async (_name, row) => {
    if (row.fault) e2e.stack.openai.faults.push(row.fault);
    const before = e2e.stack.openai.requests.length;
    const requestId = `err-${protocol}-${Math.random().toString(36).slice(2)}`;
    const err = failed(await e2e.clients.call(protocol, row.body, { requestId }));
    expectContractError(protocol, row, err, requestId);
    expect(e2e.stack.openai.requests.length - before).toBe(row.upstreamCalls);
  });
});

describe("across protocols", () => {
  const e2e = useE2EStack();

  it.each([ROWS[0]!, ROWS.find((r) => r.name === "upstream 500")!])(
    "'$name' has the same message everywhere",
    async (row) => {
      const messages = new Set<string>();
      for (const protocol of ALL_PROTOCOLS) {
        if (row.fault) e2e.stack.openai.faults.push(row.fault);
        messages.add(failed(await e2e.clients.call(protocol, row.body)).message);
      }
      expect([...messages]).toHaveLength(1);
    },
  );

  it("a generated x-request-id comes with errors too", async () => {
    for (const protocol of ALL_PROTOCOLS) {
      const err = failed(await e2e.clients.call(protocol, { model: "dall-e-3", prompt: P, n: 2 }));
      expect(err.headers.get("x-request-id"), protocol).toMatch(/^\S{8,}$/);
    }
  });

  it("REST keeps the provider's refusal details", async () => {
    const err = failed(
      await e2e.clients.call("rest", { model: "gpt-image-1", prompt: "forbidden", quality: "low" }),
    );
    expect(err.body).toMatchObject({
      details: {
        provider_code: "moderation_blocked",
        moderation_details: { moderation_stage: "input" },
      },
    });
  });

  it("the OpenAI SDK raises its own error classes", async () => {
    const { sdk } = e2e.clients;
    await expect(
      sdk.images.generate({ model: "dall-e-3", prompt: P, n: 2 }),
    ).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(sdk.images.generate({ model: "no-such-model", prompt: P })).rejects.toBeInstanceOf(
      OpenAI.NotFoundError,
    );
    e2e.stack.openai.faults.push(openaiFaults.rateLimit(7));
    const limited = await sdk.images
      .generate({ model: "limited", prompt: P })
      .catch((e: unknown) => e);
    expect(limited).toBeInstanceOf(OpenAI.RateLimitError);
    expect((limited as InstanceType<typeof OpenAI.RateLimitError>).headers.get("retry-after")).toBe(
      "7",
    );
    e2e.stack.openai.faults.push(openaiFaults.serverError());
    const failedUpstream = await sdk.images
      .generate({ model: "image-hq", prompt: P })
      .catch((e: unknown) => e);
    expect(failedUpstream).toBeInstanceOf(OpenAI.InternalServerError);
    expect((failedUpstream as InstanceType<typeof OpenAI.InternalServerError>).status).toBe(502);
  });

  describe("grpc-message through grpc-js", () => {
    // connect-es percent-encodes grpc-message with encodeURIComponent and grpc-js decodes it
    // with decodeURI, which would leave "%3A" and "%2F" in what grpc-js users read; the
    // gateway re-encodes it as the gRPC spec does (only '%' and bytes outside 0x20-0x7E).
    it("err.details is the message as sent", async () => {
      const err = failed(await e2e.clients.call("grpc", { model: "dall-e-3", prompt: P, n: 2 }));
      expect(err.grpcJsDetails).toBe(err.message);
    });
  });
});
