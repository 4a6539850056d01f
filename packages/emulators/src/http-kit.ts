/**
 * The HTTP plumbing every provider emulator shares: a listening server, bounded body reading,
 * JSON, text and byte answers, request recording, and a store of generated images served by
 * URL. What a provider says on the wire (error shapes, limits' wording) stays in its emulator:
 * the pieces here take it as arguments.
 */
import { randomBytes } from "node:crypto";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { AddressInfo } from "node:net";
import type { Readable } from "node:stream";

/** A request or response of either HTTP version (the Bedrock emulator also speaks HTTP/2). */
export type AnyRequest = http.IncomingMessage | http2.Http2ServerRequest;
export type AnyResponse = http.ServerResponse | http2.Http2ServerResponse;

export interface Listening {
  /** e.g. http://127.0.0.1:PORT */
  origin: string;
  port: number;
  close(): Promise<void>;
}

/** Where to listen: host (default 127.0.0.1) and port (default 0, a free one). */
export interface Endpoint {
  host?: string;
  port?: number;
}

/** Answers an exception the handler threw before any response byte went out. */
export type Failure<Res extends AnyResponse = http.ServerResponse> = (
  res: Res,
  err: unknown,
) => void;

/** The default failure: a plain-text 500. */
function emulatorBug(res: AnyResponse, err: unknown): void {
  sendText(res, 500, `Emulator bug: ${String(err)}`);
}

/**
 * `handle` as a request listener: an exception it throws is answered by `fail`, or, once the
 * answer has begun, ends the exchange (socket destroyed; on HTTP/2, the stream reset).
 */
export function guard<Req extends AnyRequest, Res extends AnyResponse>(
  handle: (req: Req, res: Res) => Promise<void>,
  fail: Failure<Res> = emulatorBug,
): (req: Req, res: Res) => void {
  return (req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) fail(res, err);
      else if (res instanceof http.ServerResponse) res.destroy();
      else res.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    });
  };
}

/**
 * Starts `server` on the endpoint. `close` stops listening and calls `dropConnections`, which
 * must also end hanging requests and idle keep-alive sockets.
 */
export async function serve(
  server: net.Server,
  endpoint: Endpoint,
  dropConnections: () => void,
): Promise<Listening> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(endpoint.port ?? 0, endpoint.host ?? "127.0.0.1", () => resolve());
  });
  const address = server.address() as AddressInfo;
  const shown =
    address.address === "0.0.0.0" || address.address === "::" ? "127.0.0.1" : address.address;
  return {
    origin: `http://${shown.includes(":") ? `[${shown}]` : shown}:${address.port}`,
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        dropConnections();
      }),
  };
}

/** Serves `handle` over HTTP/1.1 on the endpoint; an exception in it goes to `fail` (or a reset). */
export function listen(
  handle: (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>,
  endpoint: Endpoint = {},
  fail?: Failure,
): Promise<Listening> {
  const server = http.createServer({ keepAlive: true }, guard(handle, fail));
  return serve(server, endpoint, () => server.closeAllConnections());
}

/** The first bytes an HTTP/2 client sends (RFC 9113, 3.4). */
const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * Serves `handler` on the endpoint over HTTP/1.1 and over cleartext HTTP/2 (prior knowledge)
 * alike: a connection that opens with the HTTP/2 preface goes to an HTTP/2 server, any other
 * to an HTTP/1.1 one. (Node's `allowHTTP1` does that only behind TLS, where ALPN decides.)
 * The emulators keep this apart from the gateway's own listener, which they test.
 */
export function listenHttp1And2(
  handler: (req: AnyRequest, res: AnyResponse) => void,
  endpoint: Endpoint = {},
): Promise<Listening> {
  const h1 = http.createServer({ keepAlive: true }, handler);
  const h2 = http2.createServer({}, handler);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    sniff(socket, h1, h2);
  });
  return serve(server, endpoint, () => {
    for (const socket of sockets) socket.destroy(); // also ends hanging requests
  });
}

/** Hands a connection to the HTTP/2 server when it opens with the h2 preface, else to HTTP/1.1. */
function sniff(socket: net.Socket, h1: http.Server, h2: http2.Http2Server): void {
  let seen = Buffer.alloc(0);
  const onData = (chunk: Buffer): void => {
    seen = Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, H2_PREFACE.length);
    const isH2 = seen.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
    if (isH2 && seen.length < H2_PREFACE.length) return;
    socket.off("data", onData);
    socket.pause();
    socket.unshift(seen);
    if (isH2) {
      h2.emit("connection", socket);
    } else {
      h1.emit("connection", socket);
      socket.resume(); // the HTTP/1.1 parser reads through 'data' events
    }
  };
  socket.on("error", () => socket.destroy());
  socket.on("data", onData);
}

export class BodyTooLarge extends Error {
  readonly limit: number;
  constructor(limit: number) {
    super(`request body over ${limit} bytes`);
    this.limit = limit;
  }
}

/**
 * The request body, at most `max` bytes; past that it rejects with `tooLarge(max)` (by default
 * a BodyTooLarge) and drains the rest.
 */
export function readBody(
  req: Readable,
  max: number,
  tooLarge: (limit: number) => unknown = (limit) => new BodyTooLarge(limit),
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        reject(tooLarge(max));
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/** For recording and fault matching: the JSON body if it parses, else undefined. */
export function parseJsonOrUndefined(body: Buffer): unknown {
  if (body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    return undefined;
  }
}

/** Sends `payload` with its length; `headers` add to (and override) what `res` already has. */
export function sendBytes(
  res: AnyResponse,
  status: number,
  payload: Buffer,
  headers: Record<string, string>,
): void {
  res.statusCode = status;
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.setHeader("content-length", payload.length);
  res.end(payload);
}

/** JSON answer; a `content-type` in `headers` overrides application/json. */
export function sendJson(
  res: AnyResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  sendBytes(res, status, Buffer.from(JSON.stringify(body)), {
    "content-type": "application/json",
    ...headers,
  });
}

export function sendText(
  res: AnyResponse,
  status: number,
  text: string,
  headers: Record<string, string> = {},
): void {
  sendBytes(res, status, Buffer.from(text), {
    ...headers,
    "content-type": "text/plain; charset=utf-8",
  });
}

/** Azure Blob Storage's XML error, as image URLs on blob storage (OpenAI's, Azure's) answer. */
export function sendBlobError(
  res: AnyResponse,
  status: number,
  code: string,
  message: string,
): void {
  const xml = `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`;
  sendBytes(res, status, Buffer.from(xml), { "content-type": "application/xml" });
}

/** An error answer: a string body is sent as text, anything else as JSON. */
export class HttpError extends Error {
  readonly status: number;
  readonly body: object | string;
  constructor(status: number, body: object | string) {
    super(`HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export function sendHttpError(res: AnyResponse, err: HttpError): void {
  if (typeof err.body === "string") sendText(res, err.status, err.body);
  else sendJson(res, err.status, err.body);
}

/** The origin the client used to reach us (so URLs work through whichever address it dialled). */
export function requestOrigin(req: AnyRequest, fallback: string): string {
  return req.headers.host ? `http://${req.headers.host}` : fallback;
}

/** The token of an `Authorization: Bearer …` header, trimmed; undefined without one. */
export function bearerToken(req: AnyRequest): string | undefined {
  return req.headers.authorization?.match(/^Bearer\s+(.+)$/i)?.[1]?.trim();
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A request as an emulator's `requests` list keeps it. */
export interface RecordedRequest {
  method: string;
  /** Path and query, e.g. /v1/images/generations */
  path: string;
  headers: http.IncomingHttpHeaders;
  /** Parsed JSON, or undefined when the body was absent or not JSON. */
  body: unknown;
}

const MAX_RECORDED_REQUESTS = 10_000;

/** Appends to an emulator's request log, dropping the oldest past 10,000. */
export function record<T>(requests: T[], entry: T): void {
  requests.push(entry);
  if (requests.length > MAX_RECORDED_REQUESTS) requests.shift();
}

interface StoredImage {
  render: () => Buffer;
  contentType: string;
  expiresAt: number;
}

export interface ImageStoreOptions {
  /** Clock in ms. */
  now: () => number;
  /** How long a URL works. */
  ttlMs: number;
  /** How long past its expiry an image is still known (downloads then say expired, not unknown); default forever. */
  keepExpiredMs?: number;
  /** Most images kept; the oldest go first. Default 10,000. */
  maxEntries?: number;
  /** A new unguessable id; default 32 hex digits. */
  newId?: () => string;
}

/**
 * Generated images kept for download by URL, rendered again on each GET (renders are
 * deterministic and cached). Storing one drops the oldest past `maxEntries` and those
 * expired more than `keepExpiredMs` ago.
 */
export class ImageStore {
  readonly #images = new Map<string, StoredImage>();
  readonly #opts: ImageStoreOptions;

  constructor(opts: ImageStoreOptions) {
    this.#opts = opts;
  }

  /** Keeps an image; returns its id and when its URL expires. */
  put(render: () => Buffer, contentType: string): { id: string; expiresAt: number } {
    const {
      now,
      ttlMs,
      keepExpiredMs = Number.POSITIVE_INFINITY,
      maxEntries = 10_000,
    } = this.#opts;
    const at = now();
    for (const [oldest, image] of this.#images) {
      if (image.expiresAt + keepExpiredMs > at && this.#images.size < maxEntries) break;
      this.#images.delete(oldest);
    }
    const id = this.#opts.newId?.() ?? randomBytes(16).toString("hex");
    const expiresAt = at + ttlMs;
    this.#images.set(id, { render, contentType, expiresAt });
    return { id, expiresAt };
  }

  /** The image, `expired`, or undefined when unknown. */
  get(id: string): { bytes: Buffer; contentType: string } | "expired" | undefined {
    const image = this.#images.get(id);
    if (image === undefined) return undefined;
    if (image.expiresAt <= this.#opts.now()) return "expired";
    return { bytes: image.render(), contentType: image.contentType };
  }
}
