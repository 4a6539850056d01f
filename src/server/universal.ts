/**
 * A Node request as connect-es's universal request. Unlike connect-node's own helper, the
 * call's signal is aborted only when the client goes away before its answer is written:
 * connect-node also aborts it on every normal close, and an abort without a reason builds
 * a DOMException (with its stack) per request, a measurable cost on small requests.
 */
import { Code, ConnectError, type ContextValues } from "@connectrpc/connect";
import type { UniversalServerRequest } from "@connectrpc/connect/protocol";
import type { NodeRequest, NodeResponse } from "./rest.ts";

export function universalRequest(
  req: NodeRequest,
  res: NodeResponse,
  body: UniversalServerRequest["body"],
  contextValues?: ContextValues,
): UniversalServerRequest {
  return {
    httpVersion: req.httpVersion,
    method: req.method ?? "",
    url: `http://${req.headers.host ?? req.headers[":authority"] ?? "localhost"}${req.url ?? "/"}`,
    header: webHeaders(req.headers),
    body,
    signal: clientGoneSignal(res),
    contextValues,
  };
}

/** Aborted when the client goes away before its answer is written; never on a normal end. */
export function clientGoneSignal(res: NodeResponse): AbortSignal {
  return clientGoneController(res).signal;
}

/** A controller the client's going away aborts; its owner may abort it too (when the call is over). */
export function clientGoneController(res: NodeResponse): AbortController {
  const controller = new AbortController();
  res.once("close", () => {
    if (!res.writableEnded) controller.abort(new ConnectError("the client went away", Code.Canceled));
  });
  return controller;
}

function webHeaders(nodeHeaders: NodeRequest["headers"]): Headers {
  const header = new Headers();
  for (const [name, value] of Object.entries(nodeHeaders)) {
    if (name.startsWith(":") || value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) header.append(name, v);
    else header.append(name, String(value));
  }
  return header;
}

/** A universal response's whole body. */
export async function readAll(body: AsyncIterable<Uint8Array> | undefined): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body ?? []) chunks.push(chunk);
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}
