/**
 * The one pooled HTTP client for every upstream call: keep-alive connections per origin,
 * a per-attempt timeout, cancellation from the caller, and a cap on response size.
 */
import { Agent, type Dispatcher } from "undici";
import { GatewayError } from "../errors/errors.ts";
import { upstreamError } from "../errors/upstream.ts";
import { deadline } from "../runtime/deadline.ts";

// Connections per upstream origin: enough for every admitted request to wait on a slow upstream.
const agent = new Agent({ keepAliveTimeout: 30_000, connections: 4096, pipelining: 1 });
/** The same pool, for streamed answers (`sse.ts`). */
export const sendUpstreamAgent = agent;

/** Upstream image responses are base64 JSON; 64 MiB is far above any real one. */
export const MAX_UPSTREAM_BYTES = 64 * 1024 * 1024;

/**
 * The cap applied when a call sets none. Mutable only so that a test can exercise the cap
 * with a small body (test/robustness/upstream-faults.test.ts); the gateway never changes it.
 */
export const upstreamLimits = { maxBytes: MAX_UPSTREAM_BYTES };

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

/**
 * A response as `sendUpstream` read it: the body also as the chunks it arrived in, so that a
 * large one can be read without joining them (`image-json.ts`); `body` joins them on first use.
 */
export interface ReceivedResponse extends UpstreamResponse {
  readonly chunks: readonly Buffer[];
}

export interface UpstreamRequest {
  method: "POST" | "GET";
  headers: Record<string, string>;
  /** A list of chunks is sent one after another (give its `content-length` in `headers`). */
  body?: string | Uint8Array | readonly Uint8Array[];
  /** The caller's signal (client disconnect, overall deadline). */
  signal: AbortSignal;
  timeoutMs: number;
  maxBytes?: number;
}

/**
 * Sends one request. A timeout becomes a `timeout` GatewayError, a network failure an
 * `upstream` one; a caller abort rethrows the abort reason. Messages name the host, never
 * the query string (which may carry a key).
 */
export async function sendUpstream(url: string, req: UpstreamRequest): Promise<ReceivedResponse> {
  const attempt = deadline(req.signal, req.timeoutMs, "upstream timeout");
  try {
    return await dispatchWhole(url, req, attempt.signal, req.maxBytes ?? upstreamLimits.maxBytes);
  } catch (e) {
    throw upstreamFailure(e, url, req, attempt.expired);
  } finally {
    attempt.dispose();
  }
}

/** Origin and path of the few upstream URLs there are, parsed once each. */
const targets = new Map<string, { origin: string; path: string }>();

function target(url: string): { origin: string; path: string } {
  let t = targets.get(url);
  if (t === undefined) {
    const u = new URL(url);
    t = { origin: u.origin, path: `${u.pathname}${u.search}` };
    if (targets.size > 1000) targets.clear();
    targets.set(url, t);
  }
  return t;
}

/**
 * One request and its whole answer, through undici's dispatch handler rather than
 * `request()`: the chunks are kept as they arrive, without a body stream and an async
 * iterator per call (a measurable share of a small call's cost). Rejects with the signal's
 * reason when it aborts, with `response_too_large` past `max` bytes.
 */
function dispatchWhole(
  url: string,
  req: UpstreamRequest,
  signal: AbortSignal,
  max: number,
): Promise<ReceivedResponse> {
  if (signal.aborted) return Promise.reject(signal.reason);
  const { origin, path } = target(url);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let status = 0;
    let headers: UpstreamResponse["headers"] = {};
    let controller: Dispatcher.DispatchController | undefined;
    let settled = false;
    const onAbort = () => controller?.abort(signal.reason);
    const settle = (error: unknown, value?: ReceivedResponse) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener("abort", onAbort);
      if (error !== undefined) reject(error);
      else resolve(value!);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
        if (signal.aborted) c.abort(signal.reason);
      },
      onResponseStart(_c, statusCode, responseHeaders) {
        status = statusCode;
        headers = responseHeaders;
      },
      onResponseData(c, chunk) {
        size += chunk.length;
        if (size > max) {
          const err = upstreamError(
            "response_too_large",
            `upstream ${safeUrl(url)} sent more than ${max} bytes`,
          );
          settle(err);
          c.abort(err);
          return;
        }
        chunks.push(chunk);
      },
      onResponseEnd() {
        settle(undefined, received(status, headers, chunks));
      },
      onResponseError(_c, error) {
        settle(signal.aborted ? signal.reason : error);
      },
    };
    try {
      agent.dispatch({ origin, path, method: req.method, ...dispatchBody(req) }, handler);
    } catch (e) {
      settle(e);
    }
  });
}

/**
 * The body and headers as undici takes them. A list of chunks is an Iterable, which undici
 * writes one chunk at a time (its documented `body` types include Iterable; its TypeScript
 * types lag), with its `content-length` (an upstream may refuse a chunked upload).
 */
export function dispatchBody(req: UpstreamRequest): {
  headers: Record<string, string>;
  body: string | Uint8Array | null;
} {
  const { body } = req;
  if (!Array.isArray(body)) return { headers: req.headers, body: (body ?? null) as string | null };
  let length = 0;
  for (const chunk of body as readonly Uint8Array[]) length += chunk.byteLength;
  return {
    headers: { ...req.headers, "content-length": String(length) },
    body: body as unknown as Uint8Array,
  };
}

/**
 * What a failed upstream call becomes: the caller's own abort as it is, our attempt timeout
 * as `timeout`, a GatewayError unchanged, anything else (socket, DNS) as `unreachable`.
 * Shared by whole-body calls and streams (sse.ts).
 */
export function upstreamFailure(
  e: unknown,
  url: string,
  req: UpstreamRequest,
  expired: boolean,
): unknown {
  if (req.signal.aborted) return req.signal.reason ?? e;
  if (expired) {
    return upstreamError(
      "timeout",
      `upstream ${safeUrl(url)} did not answer within ${req.timeoutMs / 1000} s`,
      { cause: e },
    );
  }
  if (e instanceof GatewayError) return e;
  const code = (e as { code?: string }).code;
  return upstreamError(
    "unreachable",
    `upstream ${safeUrl(url)} unreachable: ${code ?? (e as Error).message}`,
    { cause: e },
  );
}

function received(
  status: number,
  headers: UpstreamResponse["headers"],
  chunks: Buffer[],
): ReceivedResponse {
  let body: Buffer | undefined;
  return {
    status,
    headers,
    chunks,
    get body() {
      body ??= chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      return body;
    },
  };
}

/** Origin and path only: query strings may hold credentials. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return "(invalid url)";
  }
}

/** Reads a retry hint in seconds: `retry-after-ms`, then `retry-after` (seconds or an HTTP date). */
export function retryAfterSeconds(
  headers: UpstreamResponse["headers"],
  now = Date.now(),
): number | undefined {
  const ms = first(headers["retry-after-ms"]);
  if (ms !== undefined && Number.isFinite(Number(ms)) && Number(ms) >= 0) return Number(ms) / 1000;
  const ra = first(headers["retry-after"]);
  if (ra === undefined) return undefined;
  if (/^\d+(\.\d+)?$/.test(ra.trim())) return Number(ra);
  const date = Date.parse(ra);
  return Number.isNaN(date) ? undefined : Math.max(0, (date - now) / 1000);
}

export function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
