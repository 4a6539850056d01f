/**
 * The one place where GatewayError kinds become the contract's error table: HTTP status,
 * OpenAI `type`/`code`, gRPC code, and the `google.rpc.ErrorInfo` detail that carries
 * `param` and `type` to gRPC and Connect clients.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema, RetryInfoSchema } from "../gen/google/rpc/error_details_pb.js";
import { type ErrorKind, GatewayError } from "./errors.ts";
import { redact, redactValue } from "./redact.ts";

interface KindRow {
  status: number;
  type: string;
  code: string | undefined;
  grpc: Code;
}

const KINDS: Record<ErrorKind, KindRow> = {
  invalid_request: {
    status: 400,
    type: "invalid_request_error",
    code: undefined,
    grpc: Code.InvalidArgument,
  },
  model_not_found: {
    status: 404,
    type: "invalid_request_error",
    code: "model_not_found",
    grpc: Code.NotFound,
  },
  authentication: {
    status: 401,
    type: "authentication_error",
    code: "invalid_api_key",
    grpc: Code.Unauthenticated,
  },
  permission: {
    status: 403,
    type: "permission_error",
    code: undefined,
    grpc: Code.PermissionDenied,
  },
  content_policy: {
    status: 400,
    type: "invalid_request_error",
    code: "content_policy_violation",
    grpc: Code.InvalidArgument,
  },
  rate_limit: {
    status: 429,
    type: "rate_limit_error",
    code: "rate_limit_exceeded",
    grpc: Code.ResourceExhausted,
  },
  upstream: { status: 502, type: "server_error", code: undefined, grpc: Code.Unavailable },
  timeout: { status: 504, type: "server_error", code: "timeout", grpc: Code.DeadlineExceeded },
  too_large: {
    status: 413,
    type: "invalid_request_error",
    code: "request_too_large",
    grpc: Code.ResourceExhausted,
  },
  // OpenAI's own answer for money spent: 429 `insufficient_quota`, which clients must not retry.
  budget: {
    status: 429,
    type: "insufficient_quota",
    code: "budget_exceeded",
    grpc: Code.ResourceExhausted,
  },
  // Retryable: the database that keeps budgets is unreachable for now (contract: replicas, faults).
  budget_unavailable: {
    status: 503,
    type: "server_error",
    code: "budget_unavailable",
    grpc: Code.Unavailable,
  },
  not_found: {
    status: 404,
    type: "invalid_request_error",
    code: "unknown_url",
    grpc: Code.NotFound,
  },
  internal: { status: 500, type: "server_error", code: undefined, grpc: Code.Internal },
};

export const ERROR_DOMAIN = "imagegate";

/** OpenAI's error envelope. */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null } & Record<
    string,
    unknown
  >;
}

/**
 * Turns anything thrown (inside a handler, or by connect-es before the interceptors) into
 * the ConnectError the client will see: with its `ErrorInfo`, and every field that can carry
 * upstream text (message, param, code, details, metadata) through the redactor.
 */
export function toConnectError(e: unknown): ConnectError {
  if (e instanceof GatewayError) return gatewayToConnect(e);
  if (e instanceof ConnectError) return hasErrorInfo(e) ? e : withErrorInfo(e);
  return gatewayToConnect(new GatewayError("internal", "internal error", { cause: e }));
}

function hasErrorInfo(err: ConnectError): boolean {
  return err.findDetails(ErrorInfoSchema).some((d) => d.domain === ERROR_DOMAIN);
}

/**
 * The kind a bare ConnectError's code stands for. Bare ones come from connect-es itself
 * (our own errors are GatewayErrors): a body that does not decode (InvalidArgument), one
 * over the read limit (ResourceExhausted), an unknown method (Unimplemented), a bad timeout.
 */
const KIND_OF_CODE: Partial<Record<Code, ErrorKind>> = {
  [Code.InvalidArgument]: "invalid_request",
  [Code.ResourceExhausted]: "too_large",
  [Code.NotFound]: "not_found",
  [Code.Unimplemented]: "not_found",
  [Code.Unauthenticated]: "authentication",
  [Code.PermissionDenied]: "permission",
  [Code.DeadlineExceeded]: "timeout",
  [Code.Internal]: "internal",
};

/** A ConnectError raised outside our handlers, with the ErrorInfo every error carries; its code is kept. */
function withErrorInfo(err: ConnectError): ConnectError {
  const kind = KIND_OF_CODE[err.code];
  const row = kind === undefined ? undefined : KINDS[kind];
  const status = row?.status ?? GRPC_TO_HTTP[err.code] ?? 500;
  const type = row?.type ?? typeForStatus(status);
  const metadata = new Headers();
  for (const [k, v] of err.metadata) metadata.set(k, redact(v));
  const out = new ConnectError(redact(err.rawMessage), err.code, metadata, undefined, err.cause);
  out.details.push(...err.details, {
    desc: ErrorInfoSchema,
    value: {
      domain: ERROR_DOMAIN,
      reason: row?.code ?? type,
      metadata: { type, http_status: String(status) },
    },
  });
  return out;
}

function gatewayToConnect(e: GatewayError): ConnectError {
  const row = KINDS[e.kind];
  // Upstream text reaches param, code and details as well as the message: all are scrubbed.
  const code = e.code === undefined ? row.code : redact(e.code);
  const metadata: Record<string, string> = {
    type: row.type,
    http_status: String(e.httpStatus ?? row.status),
  };
  if (e.param !== undefined) metadata.param = redact(e.param);
  if (e.details !== undefined) metadata.details = JSON.stringify(redactValue(e.details));
  const details: ConstructorParameters<typeof ConnectError>[3] = [
    { desc: ErrorInfoSchema, value: { domain: ERROR_DOMAIN, reason: code ?? row.type, metadata } },
  ];
  const headers = new Headers();
  if (e.retryAfterSeconds !== undefined) {
    const seconds = Math.max(0, Math.ceil(e.retryAfterSeconds));
    headers.set("retry-after", String(seconds));
    details.push({
      desc: RetryInfoSchema,
      value: create(RetryInfoSchema, { retryDelay: { seconds: BigInt(seconds) } }),
    });
  }
  return new ConnectError(redact(e.message), row.grpc, headers, details, e);
}

/** The HTTP status Connect-less clients see for a gRPC code (used when no ErrorInfo is present). */
const GRPC_TO_HTTP: Partial<Record<Code, number>> = {
  [Code.InvalidArgument]: 400,
  [Code.OutOfRange]: 400,
  [Code.FailedPrecondition]: 400,
  [Code.Unauthenticated]: 401,
  [Code.PermissionDenied]: 403,
  [Code.NotFound]: 404,
  [Code.ResourceExhausted]: 429,
  [Code.Canceled]: 499,
  [Code.DeadlineExceeded]: 504,
  [Code.Unavailable]: 503,
  [Code.Unimplemented]: 501,
};

function typeForStatus(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 429) return "rate_limit_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

/** Renders a ConnectError (from our handlers or from Connect itself) as OpenAI's error body. */
export function connectToOpenAI(err: ConnectError): { status: number; body: OpenAIErrorBody } {
  const info = err.findDetails(ErrorInfoSchema).find((d) => d.domain === ERROR_DOMAIN);
  const status = Number(info?.metadata.http_status) || GRPC_TO_HTTP[err.code] || 500;
  const type = info?.metadata.type ?? typeForStatus(status);
  const reason = info?.reason;
  const body: OpenAIErrorBody = {
    error: {
      // Connect hides internal messages; keep that, but never show its "[code]" prefix.
      message: err.rawMessage,
      type,
      param: info?.metadata.param ?? null,
      code: reason !== undefined && reason !== type ? reason : null,
    },
  };
  const details = info?.metadata.details;
  if (details !== undefined) body.error.details = JSON.parse(details);
  return { status, body };
}
