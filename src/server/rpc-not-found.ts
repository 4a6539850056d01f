/**
 * An unknown method on an RPC path (`/package.Service/Method` that the router does not
 * serve), answered in the caller's protocol with UNIMPLEMENTED and the ErrorInfo every error
 * carries, where connect-es has no handler to answer at all: gRPC gets a trailers-only
 * response, gRPC-Web a trailer frame, Connect its error JSON (or end-stream message).
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { HEADER } from "../call/call-info.ts";
import { toConnectError } from "../errors/render.ts";
import {
  endStreamFlag,
  endStreamToJson,
  errorToJsonBytes,
  setTrailerStatus,
  trailerFlag,
  trailerSerialize,
  type UniversalServerResponse,
} from "./connect-internals.ts";
import { encodeGrpcMessage } from "./rpc-fixups.ts";

/** `/package.Service/Method`, the shape of every gRPC, gRPC-Web and Connect path. */
const RPC_PATH = /^\/[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)+\/[A-Za-z_]\w*$/;

/** Whether a request that matched no route was meant as an RPC (and so wants an RPC answer). */
export function isRpcRequest(contentType: string | undefined, path: string): boolean {
  const type = (contentType ?? "").toLowerCase();
  if (type.startsWith("application/grpc") || type.startsWith("application/connect+")) return true;
  return (
    RPC_PATH.test(path) &&
    (type.startsWith("application/proto") || type.startsWith("application/json"))
  );
}

export function rpcNotFound(
  contentType: string | undefined,
  path: string,
  requestId: string,
): UniversalServerResponse {
  const type = (contentType ?? "").toLowerCase();
  const err = toConnectError(new ConnectError(`Unknown RPC method: ${path}.`, Code.Unimplemented));
  const header = new Headers({
    [HEADER.requestId]: requestId,
    [HEADER.attempts]: "0",
    [HEADER.cost]: "0",
  });
  if (type.startsWith("application/grpc-web")) {
    header.set("content-type", "application/grpc-web+proto");
    const trailers = new Headers();
    setGrpcStatus(trailers, err);
    return { status: 200, header, body: once(frame(trailerFlag, trailerSerialize(trailers))) };
  }
  if (type.startsWith("application/grpc")) {
    // Trailers-only: the status travels in the headers.
    header.set("content-type", "application/grpc+proto");
    setGrpcStatus(header, err);
    return { status: 200, header };
  }
  if (type.startsWith("application/connect+")) {
    header.set("content-type", "application/connect+json");
    const json = JSON.stringify(endStreamToJson(new Headers(), err, undefined));
    return {
      status: 200,
      header,
      body: once(frame(endStreamFlag, new TextEncoder().encode(json))),
    };
  }
  header.set("content-type", "application/json");
  return { status: 404, header, body: once(errorToJsonBytes(err, {})) };
}

function setGrpcStatus(h: Headers, err: ConnectError): void {
  setTrailerStatus(h, err);
  const m = h.get("grpc-message");
  if (m != null) h.set("grpc-message", encodeGrpcMessage(decodeURIComponent(m)));
}

function frame(flags: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + data.length);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, data.length);
  out.set(data, 5);
  return out;
}

async function* once(bytes: Uint8Array) {
  yield bytes;
}
