/**
 * Where connect-es answers in ways the contract (or a client) does not accept, the answer
 * is corrected on its way out:
 * - a request body connect-es cannot read (protobuf that does not decode, a compressed
 *   frame without an encoding) is its INTERNAL, raised before any interceptor; it is the
 *   client's mistake: INVALID_ARGUMENT (HTTP 400) with the request id and ErrorInfo like
 *   every other error. Told apart by where it was raised, not by its text: an INTERNAL for
 *   a call the call-info interceptor never saw (no `kCallInfo` in the call's context values)
 *   came from connect-es reading the request, since every error after that point has
 *   passed through the interceptor;
 * - `grpc-message` is percent-encoded with encodeURIComponent, which grpc-js (decodeURI)
 *   leaves half-decoded; the gRPC spec encodes only `%` and bytes outside 0x20-0x7E.
 */
import { Code, ConnectError, type ContextValues } from "@connectrpc/connect";
import { HEADER, kCallInfo } from "../call/call-info.ts";
import { invalidParam } from "../errors/errors.ts";
import { toConnectError } from "../errors/render.ts";
import {
  errorFromJsonBytes,
  errorToJsonBytes,
  findTrailerError,
  setTrailerStatus,
  type UniversalServerResponse,
} from "./connect-internals.ts";
import { readAll } from "./universal.ts";

/** connect-es could not read the request: an INTERNAL before the interceptors ran. */
function unreadRequest(err: ConnectError | undefined, values: ContextValues): err is ConnectError {
  return err?.code === Code.Internal && values.get(kCallInfo) === undefined;
}

function asInvalidArgument(err: ConnectError): ConnectError {
  const message = `The request body could not be read as a protobuf message: ${err.rawMessage}.`;
  return toConnectError(invalidParam(undefined, message));
}

/** `values`: the context values the call was handled with (the interceptors write to them). */
export async function fixRpcResponse(
  uRes: UniversalServerResponse,
  requestId: string,
  values: ContextValues,
): Promise<UniversalServerResponse> {
  const contentType = uRes.header?.get("content-type") ?? "";
  if (contentType.startsWith("application/grpc")) return fixGrpc(uRes, requestId, values);
  if (uRes.status === 500 && contentType.startsWith("application/json"))
    return fixConnectError(uRes, requestId, values);
  return uRes;
}

function fixGrpc(
  uRes: UniversalServerResponse,
  requestId: string,
  values: ContextValues,
): UniversalServerResponse {
  const fix = (h: Headers | undefined) => {
    if (h === undefined) return;
    const err = findTrailerError(h);
    if (unreadRequest(err, values)) {
      setTrailerStatus(h, asInvalidArgument(err));
      uRes.header?.set(HEADER.requestId, uRes.header.get(HEADER.requestId) ?? requestId);
      uRes.header?.set(HEADER.attempts, "0");
      uRes.header?.set(HEADER.cost, "0");
    }
    const m = h.get("grpc-message");
    if (m != null) h.set("grpc-message", encodeGrpcMessage(decodeURIComponent(m)));
  };
  fix(uRes.header);
  const body = uRes.body;
  if (body === undefined) {
    fix(uRes.trailer);
    return uRes;
  }
  return {
    ...uRes,
    body: (async function* () {
      yield* body;
      // Trailers are final once the body has ended.
      fix(uRes.trailer);
    })(),
  };
}

async function fixConnectError(
  uRes: UniversalServerResponse,
  requestId: string,
  values: ContextValues,
): Promise<UniversalServerResponse> {
  const bytes = await readAll(uRes.body);
  const err = errorFromJsonBytes(
    bytes,
    undefined,
    new ConnectError("malformed error", Code.Internal),
  );
  if (!unreadRequest(err, values)) return { ...uRes, body: once(bytes) };
  const header = new Headers(uRes.header);
  header.set(HEADER.requestId, requestId);
  header.set(HEADER.attempts, "0");
  header.set(HEADER.cost, "0");
  header.delete("content-length");
  return { ...uRes, status: 400, header, body: once(errorToJsonBytes(asInvalidArgument(err), {})) };
}

async function* once(bytes: Uint8Array) {
  yield bytes;
}

function encodeGrpcMessage(message: string): string {
  let out = "";
  for (const byte of Buffer.from(message, "utf8")) {
    out +=
      byte < 0x20 || byte > 0x7e || byte === 0x25
        ? `%${byte.toString(16).toUpperCase().padStart(2, "0")}`
        : String.fromCharCode(byte);
  }
  return out;
}
