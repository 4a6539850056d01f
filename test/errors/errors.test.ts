import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { type ErrorKind, GatewayError, invalidParam } from "../../src/errors/errors.ts";
import { registerSecrets } from "../../src/errors/redact.ts";
import { connectToOpenAI, ERROR_DOMAIN, toConnectError } from "../../src/errors/render.ts";
import { ErrorInfoSchema, RetryInfoSchema } from "../../src/gen/google/rpc/error_details_pb.js";

interface Row {
  kind: ErrorKind;
  grpc: Code;
  status: number;
  type: string;
  code: string | null;
}

// The contract's errors table, plus the gateway's own 413/404/500 rows.
const TABLE: Row[] = [
  {
    kind: "invalid_request",
    grpc: Code.InvalidArgument,
    status: 400,
    type: "invalid_request_error",
    code: null,
  },
  {
    kind: "model_not_found",
    grpc: Code.NotFound,
    status: 404,
    type: "invalid_request_error",
    code: "model_not_found",
  },
  {
    kind: "authentication",
    grpc: Code.Unauthenticated,
    status: 401,
    type: "authentication_error",
    code: "invalid_api_key",
  },
  {
    kind: "permission",
    grpc: Code.PermissionDenied,
    status: 403,
    type: "permission_error",
    code: null,
  },
  {
    kind: "content_policy",
    grpc: Code.InvalidArgument,
    status: 400,
    type: "invalid_request_error",
    code: "content_policy_violation",
  },
  {
    kind: "rate_limit",
    grpc: Code.ResourceExhausted,
    status: 429,
    type: "rate_limit_error",
    code: "rate_limit_exceeded",
  },
  { kind: "upstream", grpc: Code.Unavailable, status: 502, type: "server_error", code: null },
  {
    kind: "timeout",
    grpc: Code.DeadlineExceeded,
    status: 504,
    type: "server_error",
    code: "timeout",
  },
  {
    kind: "too_large",
    grpc: Code.ResourceExhausted,
    status: 413,
    type: "invalid_request_error",
    code: "request_too_large",
  },
  {
    kind: "not_found",
    grpc: Code.NotFound,
    status: 404,
    type: "invalid_request_error",
    code: "unknown_url",
  },
  { kind: "internal", grpc: Code.Internal, status: 500, type: "server_error", code: null },
];

function errorInfo(err: ConnectError) {
  const infos = err.findDetails(ErrorInfoSchema);
  expect(infos).toHaveLength(1);
  return infos[0]!;
}

describe("toConnectError", () => {
  it.each(TABLE)(
    "maps $kind to gRPC code $grpc with an ErrorInfo",
    ({ kind, grpc, type, code }) => {
      const err = toConnectError(new GatewayError(kind, `something about ${kind}`));
      expect(err.code).toBe(grpc);
      expect(err.rawMessage).toBe(`something about ${kind}`);
      const info = errorInfo(err);
      expect(info.domain).toBe(ERROR_DOMAIN);
      expect(info.domain).toBe("imagegate");
      expect(info.reason).toBe(code ?? type);
      expect(info.metadata.type).toBe(type);
      expect(info.metadata.param).toBeUndefined();
    },
  );

  it("carries param and an explicit code", () => {
    const err = toConnectError(invalidParam("size", "Invalid size.", "invalid_value"));
    expect(err.code).toBe(Code.InvalidArgument);
    const info = errorInfo(err);
    expect(info.reason).toBe("invalid_value");
    expect(info.metadata.param).toBe("size");
    expect(info.metadata.type).toBe("invalid_request_error");
  });

  it("keeps the original GatewayError as the cause", () => {
    const original = new GatewayError("timeout", "too slow");
    expect(toConnectError(original).cause).toBe(original);
  });

  it("keeps a ConnectError's code and message, and adds the ErrorInfo every error carries", () => {
    const err = new ConnectError("already here", Code.Aborted);
    const out = toConnectError(err);
    expect(out.code).toBe(Code.Aborted);
    expect(out.rawMessage).toBe("already here");
    expect(out.cause).toBe(err.cause);
    const [info] = out.findDetails(ErrorInfoSchema);
    expect(info?.domain).toBe("imagegate");
    // Once it carries one, it passes through unchanged.
    expect(toConnectError(out)).toBe(out);
  });

  it.each([
    [Code.InvalidArgument, "invalid_request_error", "invalid_request_error", "400"],
    [Code.ResourceExhausted, "request_too_large", "invalid_request_error", "413"],
    [Code.Unimplemented, "unknown_url", "invalid_request_error", "404"],
    [Code.Internal, "server_error", "server_error", "500"],
    [Code.Unavailable, "server_error", "server_error", "503"],
  ])("gives a bare ConnectError with code %s the reason %s", (code, reason, type, status) => {
    const [info] = toConnectError(new ConnectError("x", code)).findDetails(ErrorInfoSchema);
    expect(info).toMatchObject({
      domain: "imagegate",
      reason,
      metadata: { type, http_status: status },
    });
  });

  it.each([
    ["an Error", new Error("db password=hunter2 at /srv/secret")],
    ["a TypeError", new TypeError("Cannot read properties of undefined (reading 'hunter2')")],
    ["a string", "hunter2"],
    ["an object", { password: "hunter2" }],
  ])("turns %s into Internal 'internal error' without its message", (_what, thrown) => {
    const err = toConnectError(thrown);
    expect(err.code).toBe(Code.Internal);
    expect(err.rawMessage).toBe("internal error");
    const info = errorInfo(err);
    expect(info.reason).toBe("server_error");
    expect(info.metadata.type).toBe("server_error");
    const visible = JSON.stringify({ message: err.message, info, metadata: [...err.metadata] });
    expect(visible).not.toContain("hunter2");
    const { status, body } = connectToOpenAI(err);
    expect(status).toBe(500);
    expect(body.error).toEqual({
      message: "internal error",
      type: "server_error",
      param: null,
      code: null,
    });
    expect(JSON.stringify(body)).not.toContain("hunter2");
  });

  it("adds Retry-After and RetryInfo when a retry hint is known, rounding up", () => {
    const err = toConnectError(
      new GatewayError("rate_limit", "slow down", { retryAfterSeconds: 1.2 }),
    );
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.metadata.get("retry-after")).toBe("2");
    const retry = err.findDetails(RetryInfoSchema);
    expect(retry).toHaveLength(1);
    expect(retry[0]!.retryDelay?.seconds).toBe(2n);

    const zero = toConnectError(new GatewayError("rate_limit", "now", { retryAfterSeconds: 0 }));
    expect(zero.metadata.get("retry-after")).toBe("0");

    const upstream = toConnectError(
      new GatewayError("upstream", "overloaded", { httpStatus: 503, retryAfterSeconds: 30 }),
    );
    expect(upstream.metadata.get("retry-after")).toBe("30");
    expect(upstream.findDetails(RetryInfoSchema)[0]!.retryDelay?.seconds).toBe(30n);
  });

  it("adds neither without a hint", () => {
    const err = toConnectError(new GatewayError("rate_limit", "slow down"));
    expect(err.metadata.get("retry-after")).toBeNull();
    expect(err.findDetails(RetryInfoSchema)).toEqual([]);
  });
});

describe("connectToOpenAI", () => {
  it.each(TABLE)("renders $kind as HTTP $status $type / $code", ({ kind, status, type, code }) => {
    const rendered = connectToOpenAI(toConnectError(new GatewayError(kind, `message for ${kind}`)));
    expect(rendered.status).toBe(status);
    expect(rendered.body).toEqual({
      error: { message: `message for ${kind}`, type, param: null, code },
    });
  });

  it("renders param and code of a bad parameter", () => {
    const rendered = connectToOpenAI(
      toConnectError(invalidParam("n", "Invalid 'n': dall-e-3 takes only 1.", "invalid_value")),
    );
    expect(rendered).toEqual({
      status: 400,
      body: {
        error: {
          message: "Invalid 'n': dall-e-3 takes only 1.",
          type: "invalid_request_error",
          param: "n",
          code: "invalid_value",
        },
      },
    });
  });

  it("renders an unknown model with param model", () => {
    const rendered = connectToOpenAI(
      toConnectError(
        new GatewayError("model_not_found", "The model 'x' does not exist.", { param: "model" }),
      ),
    );
    expect(rendered.status).toBe(404);
    expect(rendered.body.error).toMatchObject({
      type: "invalid_request_error",
      code: "model_not_found",
      param: "model",
    });
  });

  it("renders an upstream failure as 503 when the error says so, keeping its code", () => {
    const rendered = connectToOpenAI(
      toConnectError(
        new GatewayError("upstream", "All upstream attempts failed", {
          httpStatus: 503,
          code: "server_is_overloaded",
        }),
      ),
    );
    expect(rendered.status).toBe(503);
    expect(rendered.body.error).toMatchObject({
      type: "server_error",
      code: "server_is_overloaded",
    });
  });

  it("keeps a refusal's provider details", () => {
    const details = {
      provider_code: "moderation_blocked",
      moderation_details: { moderation_stage: "input", categories: ["violence"] },
    };
    const rendered = connectToOpenAI(
      toConnectError(new GatewayError("content_policy", "refused", { details })),
    );
    expect(rendered.status).toBe(400);
    expect(rendered.body.error.code).toBe("content_policy_violation");
    expect(rendered.body.error.details).toEqual(details);
  });

  it("reads an ErrorInfo that arrived over the wire", () => {
    const info = create(ErrorInfoSchema, {
      domain: "imagegate",
      reason: "content_policy_violation",
      metadata: { type: "invalid_request_error", http_status: "400", param: "prompt" },
    });
    const err = new ConnectError("refused", Code.InvalidArgument);
    err.details = [{ type: "google.rpc.ErrorInfo", value: toBinary(ErrorInfoSchema, info) }];
    expect(connectToOpenAI(err)).toEqual({
      status: 400,
      body: {
        error: {
          message: "refused",
          type: "invalid_request_error",
          param: "prompt",
          code: "content_policy_violation",
        },
      },
    });
  });

  it("ignores an ErrorInfo from another domain", () => {
    const err = new ConnectError("denied", Code.PermissionDenied, undefined, [
      {
        desc: ErrorInfoSchema,
        value: {
          domain: "example.com",
          reason: "NOPE",
          metadata: { http_status: "418", type: "teapot" },
        },
      },
    ]);
    expect(connectToOpenAI(err)).toEqual({
      status: 403,
      body: { error: { message: "denied", type: "permission_error", param: null, code: null } },
    });
  });

  it.each([
    [Code.InvalidArgument, 400, "invalid_request_error"],
    [Code.Unauthenticated, 401, "authentication_error"],
    [Code.PermissionDenied, 403, "permission_error"],
    [Code.NotFound, 404, "invalid_request_error"],
    [Code.ResourceExhausted, 429, "rate_limit_error"],
    [Code.DeadlineExceeded, 504, "server_error"],
    [Code.Unavailable, 503, "server_error"],
    [Code.Unimplemented, 501, "server_error"],
    [Code.Unknown, 500, "server_error"],
    [Code.Internal, 500, "server_error"],
  ])("renders a Connect error with code %i and no ErrorInfo as %i %s", (code, status, type) => {
    const rendered = connectToOpenAI(new ConnectError("from connect", code));
    expect(rendered.status).toBe(status);
    expect(rendered.body.error).toEqual({ message: "from connect", type, param: null, code: null });
  });

  it("never shows Connect's [code] prefix", () => {
    const rendered = connectToOpenAI(new ConnectError("bad thing", Code.InvalidArgument));
    expect(rendered.body.error.message).toBe("bad thing");
  });
});

describe("redaction of every client-visible field", () => {
  it("scrubs message, param, code and details of an upstream error", () => {
    registerSecrets(["provider-key-0123456789", "master-key-9876543210"]);
    const err = new GatewayError("invalid_request", "OpenAI: bad key provider-key-0123456789", {
      param: "provider-key-0123456789",
      code: "master-key-9876543210",
      details: {
        moderation_details: { "master-key-9876543210": ["at db.internal.corp", "password=x"] },
      },
    });
    const out = toConnectError(err);
    const { body } = connectToOpenAI(out);
    const visible = JSON.stringify([out.rawMessage, out.findDetails(ErrorInfoSchema), body]);
    expect(visible).not.toContain("provider-key-0123456789");
    expect(visible).not.toContain("master-key-9876543210");
    expect(visible).not.toContain("db.internal.corp");
    expect(body.error).toMatchObject({
      param: "[redacted]",
      code: "[redacted]",
      details: { moderation_details: { "[redacted]": ["at [host]", "password=[redacted]"] } },
    });
  });
});
