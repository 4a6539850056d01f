/**
 * Shared by the robustness suites (test/robustness/): raw HTTP/1.1 and h2c requests that
 * send exactly the bytes and headers given, the contract's REST error shape as a checker
 * that names what is wrong, and the heap measured after a forced garbage collection.
 */
import http from "node:http";
import http2 from "node:http2";
import v8 from "node:v8";
import vm from "node:vm";
import { h2Request, type RawResponse } from "./protocols.ts";

export type RawAnswer = RawResponse;

export interface RawPost {
  transport: "h1" | "h2";
  path: string;
  /** null: no content-type header at all. */
  contentType: string | null;
  body: Uint8Array;
  headers?: Record<string, string>;
}

/**
 * Raw requests to one gateway: a keep-alive HTTP/1.1 agent and one h2c session, both
 * reopened if the gateway closes them (it ends an HTTP/1.1 connection after a 413).
 */
export class RawClient {
  readonly #url: string;
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  #h2: http2.ClientHttp2Session | undefined;

  constructor(url: string) {
    this.#url = url;
  }

  post(req: RawPost, timeoutMs = 15_000): Promise<RawAnswer> {
    const headers: Record<string, string> = { ...req.headers };
    if (req.contentType !== null) headers["content-type"] = req.contentType;
    return req.transport === "h1"
      ? this.#h1("POST", req.path, headers, req.body, timeoutMs)
      : this.#h2Request("POST", req.path, headers, req.body, timeoutMs);
  }

  get(path: string, transport: "h1" | "h2" = "h1", timeoutMs = 5_000): Promise<RawAnswer> {
    return transport === "h1"
      ? this.#h1("GET", path, {}, undefined, timeoutMs)
      : this.#h2Request("GET", path, {}, undefined, timeoutMs);
  }

  close(): void {
    this.#agent.destroy();
    this.#h2?.close();
  }

  #h1(
    method: string,
    path: string,
    headers: Record<string, string>,
    body: Uint8Array | undefined,
    timeoutMs: number,
  ): Promise<RawAnswer> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        `${this.#url}${path}`,
        {
          method,
          agent: this.#agent,
          headers:
            body === undefined ? headers : { ...headers, "content-length": String(body.length) },
          signal: AbortSignal.timeout(timeoutMs),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: toHeaders(res.headers),
              body: Buffer.concat(chunks),
            }),
          );
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  }

  #session(): http2.ClientHttp2Session {
    if (this.#h2 === undefined || this.#h2.closed || this.#h2.destroyed) {
      // The client's own default (10 MB of queued frames) would refuse a large body before
      // the gateway sees it.
      const session = http2.connect(this.#url, { maxSessionMemory: 64 });
      session.on("error", () => {});
      session.on("goaway", () => {
        if (this.#h2 === session) this.#h2 = undefined;
      });
      this.#h2 = session;
    }
    return this.#h2;
  }

  #h2Request(
    method: string,
    path: string,
    headers: Record<string, string>,
    body: Uint8Array | undefined,
    timeoutMs: number,
  ): Promise<RawAnswer> {
    return h2Request(
      this.#session(),
      { ":method": method, ":path": path, ...headers },
      body,
      AbortSignal.timeout(timeoutMs),
    );
  }
}

function toHeaders(h: http.IncomingHttpHeaders): Headers {
  const out = new Headers();
  for (const [k, v] of Object.entries(h)) {
    if (v !== undefined) out.set(k, Array.isArray(v) ? v.join(", ") : v);
  }
  return out;
}

export const ERROR_TYPES = new Set([
  "invalid_request_error",
  "authentication_error",
  "permission_error",
  "rate_limit_error",
  "insufficient_quota",
  "server_error",
]);

/** The request id grammar the gateway echoes (anything else gets a fresh id). */
export const ECHOED_REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

export interface OpenAIError {
  message: string;
  type: string;
  param: string | null;
  code: string | null;
}

/**
 * The contract's REST error: a JSON body `{"error":{"message","type","param","code"}}`,
 * `x-request-id`, `x-imagegate-cost-usd: 0`, and no internals (stack frames, file paths).
 * Throws an Error naming the first thing wrong; returns the error object.
 */
export function assertOpenAIError(answer: RawAnswer): OpenAIError {
  const where = `HTTP ${answer.status} ${answer.body.toString("utf8").slice(0, 300)}`;
  const fail = (why: string): never => {
    throw new Error(`not the contract's error shape (${why}): ${where}`);
  };
  if (!/^application\/json\b/.test(answer.headers.get("content-type") ?? "")) fail("content-type");
  let json: unknown;
  try {
    json = JSON.parse(answer.body.toString("utf8"));
  } catch {
    fail("body is not JSON");
  }
  const error = (json as { error?: unknown } | null)?.error as Record<string, unknown> | undefined;
  if (error === null || typeof error !== "object") return fail("no error object");
  if (typeof error.message !== "string" || error.message.length === 0) fail("message");
  if (typeof error.type !== "string" || !ERROR_TYPES.has(error.type)) fail("type");
  if (!("param" in error) || (error.param !== null && typeof error.param !== "string"))
    fail("param");
  if (!("code" in error) || (error.code !== null && typeof error.code !== "string")) fail("code");
  const message = error.message as string;
  if (/\n\s+at\s|node:internal|\/work\/|\.ts:\d+/.test(message)) fail("message leaks internals");
  const requestId = answer.headers.get("x-request-id");
  if (requestId === null || !ECHOED_REQUEST_ID.test(requestId)) fail("x-request-id");
  if (answer.headers.get("x-imagegate-cost-usd") !== "0") fail("x-imagegate-cost-usd is not 0");
  return error as unknown as OpenAIError;
}

let gcFn: (() => void) | undefined;

/**
 * `global.gc` without `--expose-gc` on the command line: the flag can be set at run time,
 * and a fresh context then has `gc` defined. Vitest runs this file in its own worker, so
 * nothing else is affected.
 */
export function forceGc(): () => void {
  if (gcFn) return gcFn;
  const existing = (globalThis as { gc?: () => void }).gc;
  if (typeof existing === "function") {
    gcFn = existing;
    return existing;
  }
  v8.setFlagsFromString("--expose-gc");
  gcFn = vm.runInNewContext("gc") as () => void;
  return gcFn;
}

/** Heap in use after full collections, once what is pending (timers, sockets) has settled. */
export async function settledHeapUsed(): Promise<number> {
  const gc = forceGc();
  let used = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 4; i++) {
    await new Promise((r) => setTimeout(r, 50));
    gc();
    used = Math.min(used, process.memoryUsage().heapUsed);
  }
  return used;
}

export const MiB = 1024 * 1024;
