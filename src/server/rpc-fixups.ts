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
 * - any other error raised there (a body over the size limit, JSON that does not parse or
 *   names an unknown field, a bad timeout or encoding) gets the ErrorInfo and request id
 *   every error carries (`toConnectError`), told apart the same way;
 * - `grpc-message` is percent-encoded with encodeURIComponent, which grpc-js (decodeURI)
 *   leaves half-decoded and gRPC-Web clients that read it as is show with `%20`s; the gRPC
 *   spec encodes only `%` and bytes outside 0x20-0x7E, which every client reads right. For
 *   gRPC-Web the trailers are the body's last frame, rewritten there.
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
  trailerFlag,
  trailerParse,
  trailerSerialize,
  type UniversalServerResponse,
} from "./connect-internals.ts";
import { readAll } from "./universal.ts";

/** connect-es could not read the request: an INTERNAL before the interceptors ran. */
function unreadRequest(err: ConnectError | undefined, values: ContextValues): err is ConnectError {
  return err?.code === Code.Internal && values.get(kCallInfo) === undefined;
}

/** An error raised before the interceptors ran (connect-es's own), whatever its code. */
function beforeInterceptors(
  err: ConnectError | undefined,
  values: ContextValues,
): err is ConnectError {
  return err !== undefined && values.get(kCallInfo) === undefined;
}

/** The error a client sees for one raised before the interceptors. */
function earlyError(err: ConnectError, values: ContextValues): ConnectError {
  return unreadRequest(err, values) ? asInvalidArgument(err) : toConnectError(err);
}

/** What the interceptors would have written: the request id, no attempts, no cost. */
function setCallHeaders(header: Headers | undefined, requestId: string): void {
  header?.set(HEADER.requestId, header.get(HEADER.requestId) ?? requestId);
  header?.set(HEADER.attempts, header.get(HEADER.attempts) ?? "0");
  header?.set(HEADER.cost, header.get(HEADER.cost) ?? "0");
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
  if (uRes.status >= 400 && contentType.startsWith("application/json"))
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
    if (beforeInterceptors(err, values)) {
      setTrailerStatus(h, earlyError(err, values));
      setCallHeaders(uRes.header, requestId);
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
  if ((uRes.header?.get("content-type") ?? "").startsWith("application/grpc-web"))
    return { ...uRes, body: fixWebTrailers(body, fix) };
  return {
    ...uRes,
    body: (async function* () {
      yield* body;
      // Trailers are final once the body has ended.
      fix(uRes.trailer);
    })(),
  };
}

/**
 * gRPC-Web sends its trailers as the body's last frame (flag 0x80, an HTTP/1 header block):
 * frames pass through as they come, the trailer frame is fixed like gRPC's trailers.
 */
async function* fixWebTrailers(
  body: AsyncIterable<Uint8Array>,
  fix: (trailers: Headers) => void,
): AsyncIterable<Uint8Array> {
  let pending: Uint8Array = new Uint8Array(0);
  for await (const chunk of body) {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 5) {
      const length = new DataView(pending.buffer, pending.byteOffset).getUint32(1);
      if (pending.length < 5 + length) break;
      const flags = pending[0]!;
      const frame = pending.subarray(0, 5 + length);
      pending = pending.subarray(5 + length);
      // A compressed trailer frame (never sent: answers are not compressed) passes as is.
      if (flags !== trailerFlag) {
        yield frame;
        continue;
      }
      const trailers = trailerParse(frame.subarray(5));
      fix(trailers);
      const data = trailerSerialize(trailers);
      const out = new Uint8Array(5 + data.length);
      out[0] = trailerFlag;
      new DataView(out.buffer).setUint32(1, data.length);
      out.set(data, 5);
      yield out;
    }
  }
  if (pending.length > 0) yield pending;
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
  if (!beforeInterceptors(err, values)) return { ...uRes, body: once(bytes) };
  const fixed = earlyError(err, values);
  const header = new Headers(uRes.header);
  setCallHeaders(header, requestId);
  header.delete("content-length");
  const status = fixed.code === err.code ? uRes.status : 400;
  return { ...uRes, status, header, body: once(errorToJsonBytes(fixed, {})) };
}

async function* once(bytes: Uint8Array) {
  yield bytes;
}

export function encodeGrpcMessage(message: string): string {
  let out = "";
  for (const byte of Buffer.from(message, "utf8")) {
    out +=
      byte < 0x20 || byte > 0x7e || byte === 0x25
        ? `%${byte.toString(16).toUpperCase().padStart(2, "0")}`
        : String.fromCharCode(byte);
  }
  return out;
}
