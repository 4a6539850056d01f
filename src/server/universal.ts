/**
 * A Node request as connect-es's universal request. Unlike connect-node's own helper, the
 * call's signal is aborted only when the client goes away before its answer is written:
 * connect-node also aborts it on every normal close, and an abort without a reason builds
 * a DOMException (with its stack) per request, a measurable cost on small requests.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { Code, ConnectError, type ContextValues } from "@connectrpc/connect";
import { HEADER, requestIdFrom } from "../call/call-info.ts";
import type { UniversalServerRequest } from "./connect-internals.ts";

/**
 * HTTP/1.1 and HTTP/2 compatibility requests share the API used here; the HTTP/1.1 types
 * stand for both so calls type-check without unions of overloads.
 */
export type NodeRequest = IncomingMessage;
export type NodeResponse = ServerResponse;
export type AnyNodeRequest = IncomingMessage | Http2ServerRequest;
export type AnyNodeResponse = ServerResponse | Http2ServerResponse;

export function universalRequest(
  req: NodeRequest,
  res: NodeResponse,
  body: UniversalServerRequest["body"],
  contextValues?: ContextValues,
): UniversalServerRequest {
  return {
    httpVersion: req.httpVersion,
    method: req.method ?? "",
    url: requestUrl(req),
    header: webHeaders(req.headers),
    body,
    signal: clientGoneController(res).signal,
    contextValues,
  };
}

/** A request header's (first) value. */
export function header(req: NodeRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The client's `x-request-id` when it is a sane token, else a fresh one. */
export function clientRequestId(req: NodeRequest): string {
  return requestIdFrom(header(req, HEADER.requestId));
}

/** The request's absolute URL, as connect-es's handlers see it. */
export function requestUrl(req: NodeRequest): string {
  return `http://${req.headers.host ?? req.headers[":authority"] ?? "localhost"}${req.url ?? "/"}`;
}

/** A controller the client's going away aborts; its owner may abort it too (when the call is over). */
export function clientGoneController(res: NodeResponse): AbortController {
  const controller = new AbortController();
  res.once("close", () => {
    if (!res.writableEnded)
      controller.abort(new ConnectError("the client went away", Code.Canceled));
  });
  return controller;
}

/** Node's request headers as web Headers, without HTTP/2 pseudo-headers and the names in `skip`. */
export function webHeaders(
  nodeHeaders: NodeRequest["headers"],
  skip?: ReadonlySet<string>,
): Headers {
  const header = new Headers();
  for (const name of Object.keys(nodeHeaders)) {
    const value = nodeHeaders[name];
    if (value === undefined || name.startsWith(":") || skip?.has(name)) continue;
    if (Array.isArray(value)) for (const v of value) header.append(name, v);
    else header.append(name, value);
  }
  return header;
}

/** A universal response's whole body. */
export async function readAll(body: AsyncIterable<Uint8Array> | undefined): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body ?? []) chunks.push(chunk);
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}
