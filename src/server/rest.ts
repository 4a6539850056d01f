/**
 * REST transcoding from `google.api.http` annotations: each annotated unary method of the
 * served services becomes a JSON route, answered by the same Connect handler (and so the
 * same interceptors) as gRPC and Connect. Errors are rendered in OpenAI's shape.
 *
 * A REST call is checked, converted to protobuf binary (small: a request carries no
 * image) and handed to the method's Connect handler as a binary Connect unary call. The
 * binary answer is decoded (bytes fields stay views of it, no copy) and written as JSON by
 * `rest-json.ts`, which writes an image's base64 straight from its bytes instead of
 * through a multi-megabyte JSON string. Errors are Connect's JSON, rendered in OpenAI's
 * shape.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { type DescMethod, fromBinary, fromJson, getOption, hasOption, type JsonWriteOptions, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextValues } from "@connectrpc/connect";
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import { errorFromJsonBytes } from "@connectrpc/connect/protocol-connect";
import { GatewayError, invalidParam } from "../errors/errors.ts";
import { connectToOpenAI, toConnectError } from "../errors/render.ts";
import { http } from "../gen/google/api/annotations_pb.js";
import { kViaRest, requestIdFrom } from "./call-info.ts";
import { checkJsonBody } from "./json-check.ts";
import { readAll, universalRequest } from "./universal.ts";
import { messageToJsonBytes } from "./rest-json.ts";

/**
 * HTTP/1.1 and HTTP/2 compatibility requests share the API used here; the HTTP/1.1 types
 * stand for both so calls type-check without unions of overloads.
 */
export type NodeRequest = IncomingMessage;
export type NodeResponse = ServerResponse;
export type AnyNodeRequest = IncomingMessage | Http2ServerRequest;
export type AnyNodeResponse = ServerResponse | Http2ServerResponse;

export interface RestRoute {
  verb: string;
  path: string;
  method: DescMethod;
  handler: UniversalHandler;
  /** How the handler's JSON protocol writes this method's answer; REST answers match it. */
  jsonOptions: Partial<JsonWriteOptions>;
}

/** Builds verb+path → handler from the annotations. Patterns it cannot serve stop startup. */
export function restRoutesFrom(handlers: readonly UniversalHandler[], jsonOptions: Partial<JsonWriteOptions> = {}): Map<string, RestRoute> {
  const routes = new Map<string, RestRoute>();
  for (const handler of handlers) {
    const method = handler.method;
    if (!hasOption(method, http)) continue;
    const rule = getOption(method, http);
    const { case: verb, value: path } = rule.pattern;
    if (verb === undefined || verb === "custom") throw new Error(`${method.parent.typeName}/${method.name}: unsupported http pattern`);
    if (path.includes("{")) throw new Error(`${method.parent.typeName}/${method.name}: path templates are not supported (${path})`);
    if (method.methodKind !== "unary") throw new Error(`${method.parent.typeName}/${method.name}: only unary methods can be REST routes`);
    if (rule.body !== "*" && verb !== "get" && verb !== "delete") {
      throw new Error(`${method.parent.typeName}/${method.name}: only body "*" is supported`);
    }
    routes.set(routeKey(verb.toUpperCase(), path), { verb: verb.toUpperCase(), path, method, handler, jsonOptions });
  }
  return routes;
}

export function routeKey(verb: string, path: string): string {
  return `${verb} ${path}`;
}

/** Request headers that describe the REST framing, not the call, and so are not passed on. */
const FRAMING_HEADERS = [
  "content-length",
  "content-type",
  "content-encoding",
  "accept-encoding",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "te",
  "upgrade",
  "accept",
  "connect-timeout-ms",
  "connect-protocol-version",
  "connect-content-encoding",
  "connect-accept-encoding",
];

export interface RestOptions {
  maxBodyBytes: number;
  /** A client must have sent its whole body within this many milliseconds. */
  bodyTimeoutMs: number;
}

export async function serveRest(route: RestRoute, req: NodeRequest, res: NodeResponse, options: RestOptions) {
  let parsed: unknown;
  try {
    parsed = await readJsonBody(req, options.maxBodyBytes, options.bodyTimeoutMs);
    checkJsonBody(route.method.input, parsed);
  } catch (e) {
    // A body left unread (too large, too slow) ends the HTTP/1.1 connection with the answer.
    if (!req.complete && req.httpVersionMajor === 1) res.setHeader("connection", "close");
    return writeOpenAIError(res, toConnectError(e), requestIdFrom(header(req, "x-request-id")));
  }
  // The request as binary protobuf; what does not convert goes as JSON, for the handler's
  // own decoding error (exactly the answer a JSON call gets).
  let body: unknown = parsed;
  let contentType = "application/json";
  try {
    body = toBinary(route.method.input, fromJson(route.method.input, parsed as never));
    contentType = "application/proto";
  } catch {
    // left as JSON
  }
  const contextValues = createContextValues().set(kViaRest, true);
  const uReq = universalRequest(req, res, body as never, contextValues);
  for (const h of FRAMING_HEADERS) uReq.header.delete(h);
  uReq.header.set("content-type", contentType);
  uReq.header.set("connect-protocol-version", "1");

  const uRes = await route.handler(uReq);
  const headers = new Headers(uRes.header);
  for (const name of [...headers.keys()]) if (name.startsWith("connect-") || name.startsWith("trailer-")) headers.delete(name);
  if (uRes.status === 200) {
    let out = await readAll(uRes.body);
    if (uRes.header?.get("content-type")?.startsWith("application/proto")) {
      out = messageToJsonBytes(route.method.output, fromBinary(route.method.output, out), route.jsonOptions);
    }
    headers.set("content-type", "application/json");
    headers.set("content-length", String(out.byteLength));
    res.writeHead(200, Object.fromEntries(headers));
    res.end(out);
    return;
  }
  const err = errorFromJsonBytes(await readAll(uRes.body), uRes.header, new ConnectError("malformed error", Code.Internal));
  // An error raised before the interceptors ran (Connect's own decoding) has no request id yet.
  writeOpenAIError(res, err, headers.get("x-request-id") ?? requestIdFrom(header(req, "x-request-id")), headers);
}

/** Writes OpenAI's error envelope with the contract's status and headers. */
export function writeOpenAIError(res: NodeResponse, err: ConnectError, requestId: string, extra?: Headers): void {
  const { status, body } = connectToOpenAI(err);
  const headers: Record<string, string> = extra ? Object.fromEntries(extra) : {};
  // `extra` framed the Connect error body this one replaces; its length would stall the client.
  delete headers["content-length"];
  delete headers["content-encoding"];
  headers["content-type"] = "application/json";
  headers["x-request-id"] = requestId;
  headers["x-imagegate-cost-usd"] ??= "0";
  const retryAfter = err.metadata.get("retry-after");
  if (retryAfter !== null) headers["retry-after"] = retryAfter;
  if (res.headersSent) return void res.end();
  res.writeHead(status, headers);
  res.end(JSON.stringify(body));
}

function header(req: NodeRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Reads and parses a JSON body: 413 past the limit, 400 for a wrong content type, bad UTF-8 or bad JSON. */
async function readJsonBody(req: NodeRequest, maxBytes: number, timeoutMs: number): Promise<unknown> {
  const contentType = header(req, "content-type") ?? "";
  if (!/^application\/([a-z0-9.+-]*\+)?json\b/i.test(contentType)) {
    req.resume();
    throw invalidParam(
      undefined,
      `Invalid Content-Type header (${contentType || "none"}); the request body must be JSON sent as application/json.`,
    );
  }
  const declared = Number(header(req, "content-length"));
  if (declared > maxBytes) {
    req.resume();
    throw tooLarge(maxBytes);
  }
  const body = await readBody(req, maxBytes, timeoutMs);
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw invalidParam(undefined, "The request body is not valid UTF-8.");
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw invalidParam(
      undefined,
      `We could not parse the JSON body of your request: ${(e as Error).message}. The body must be a JSON object.`,
    );
  }
}

/**
 * Collects the body within `timeoutMs` (a client that trickles it is cut off, over HTTP/2
 * too, where Node has no request timeout) and `maxBytes`.
 */
function readBody(req: NodeRequest, maxBytes: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (error: unknown, body?: Buffer) => {
      clearTimeout(timer);
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", finish);
      if (error === undefined) resolve(body!);
      else {
        // Let the rest of the body drain unread; the answer closes the exchange.
        req.resume();
        reject(error);
      }
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) finish(tooLarge(maxBytes));
      else chunks.push(chunk);
    };
    const onEnd = () => finish(undefined, Buffer.concat(chunks, size));
    const timer = setTimeout(
      () =>
        finish(
          new GatewayError("invalid_request", `The request body did not arrive within ${timeoutMs / 1000} s.`, {
            code: "request_timeout",
            httpStatus: 408,
          }),
        ),
      timeoutMs,
    );
    req.on("data", onData);
    req.once("end", onEnd);
    req.once("error", finish);
  });
}

function tooLarge(maxBytes: number) {
  return new GatewayError("too_large", `The request body is larger than the limit of ${maxBytes} bytes.`);
}
