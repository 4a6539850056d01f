/**
 * The one place where GatewayError kinds become the contract's error table: HTTP status,
 * OpenAI `type`/`code`, gRPC code, and the `google.rpc.ErrorInfo` detail that carries
 * `param` and `type` to gRPC and Connect clients.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema, RetryInfoSchema } from "../gen/google/rpc/error_details_pb.js";
import { type ErrorKind, GatewayError } from "./errors.ts";
import { redact } from "./redact.ts";

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

/** Turns anything thrown inside a handler into the ConnectError the client will see. */
export function toConnectError(e: unknown): ConnectError {
  if (e instanceof GatewayError) return gatewayToConnect(e);
  if (e instanceof ConnectError) return e;
  return gatewayToConnect(new GatewayError("internal", "internal error", { cause: e }));
}

function gatewayToConnect(e: GatewayError): ConnectError {
  const row = KINDS[e.kind];
  const code = e.code ?? row.code;
  const metadata: Record<string, string> = {
    type: row.type,
    http_status: String(e.httpStatus ?? row.status),
  };
  if (e.param !== undefined) metadata.param = e.param;
  if (e.details !== undefined) metadata.details = JSON.stringify(e.details);
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
