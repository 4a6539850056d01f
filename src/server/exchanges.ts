/**
 * The exchanges (a request and its answer) in flight, and the two clocks a client runs
 * against once its headers are in:
 * - its body must arrive within `client_timeout` of being asked for (after the key check
 *   and admission), whatever the protocol and HTTP version: a REST call gets 408, an RPC
 *   the same error in its protocol;
 * - an answer it stops taking (a zero HTTP/2 window, a full TCP buffer) is cut once no byte
 *   has left for `write_timeout`, so an unread answer cannot pin memory (or an admission
 *   slot) for as long as the client likes.
 * One interval timer watches every exchange rather than a timer per request: small requests
 * pay a Set insertion, not a timer.
 */
import http2, { type Http2ServerRequest } from "node:http2";
import { GatewayError } from "../errors/errors.ts";
import type { NodeRequest, NodeResponse } from "./universal.ts";

export interface ExchangeLimits {
  clientTimeoutMs: number;
  writeTimeoutMs: number;
  /** How often the clocks are read. */
  checkEveryMs: number;
}

export class Exchange {
  readonly req: NodeRequest;
  readonly res: NodeResponse;
  /** When the body must be in (0: not being read). */
  bodyDeadline = 0;
  onBodyTimeout: (() => void) | undefined;
  /** Bytes of the answer still to leave, when last looked at, and since when unchanged. */
  pending = 0;
  stalledSince = 0;
  /** Set once the exchange holds an admission slot, released when it closes. */
  admitted = false;

  constructor(req: NodeRequest, res: NodeResponse) {
    this.req = req;
    this.res = res;
  }
}

export class Exchanges {
  readonly #live = new Set<Exchange>();
  readonly #limits: ExchangeLimits;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;

  constructor(limits: ExchangeLimits, now: () => number = performance.now.bind(performance)) {
    this.#limits = limits;
    this.#now = now;
  }

  open(req: NodeRequest, res: NodeResponse): Exchange {
    const exchange = new Exchange(req, res);
    this.#live.add(exchange);
    this.#timer ??= setInterval(() => this.#check(), this.#limits.checkEveryMs).unref();
    return exchange;
  }

  close(exchange: Exchange): void {
    this.#live.delete(exchange);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * The whole body, at most `maxBytes`, within the client timeout (from now): a client that
   * trickles it is cut off over HTTP/2 too, where Node has no request timeout.
   */
  readBody(exchange: Exchange, maxBytes: number): Promise<Buffer> {
    const { req } = exchange;
    const timeoutMs = this.#limits.clientTimeoutMs;
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const finish = (error: unknown, body?: Buffer) => {
        exchange.bodyDeadline = 0;
        exchange.onBodyTimeout = undefined;
        req.off("data", onData);
        req.off("end", onEnd);
        req.off("error", finish);
        if (error === undefined) resolve(body!);
        else reject(error);
      };
      const onData = (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) finish(tooLarge(maxBytes));
        else chunks.push(chunk);
      };
      // A small body arrives as one chunk: no copy.
      const onEnd = () =>
        finish(undefined, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
      exchange.bodyDeadline = this.#now() + timeoutMs;
      exchange.onBodyTimeout = () => finish(bodyTimeout(timeoutMs));
      req.on("data", onData);
      req.once("end", onEnd);
      req.once("error", finish);
    });
  }

  /**
   * The body read as it streams by `consume` (a multipart upload), within the client timeout
   * (from now): when it passes, `consume`'s signal aborts with the 408. `consume` counts
   * and limits what it reads.
   */
  consumeBody<T>(exchange: Exchange, consume: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const timeoutMs = this.#limits.clientTimeoutMs;
    const controller = new AbortController();
    const done = () => {
      exchange.bodyDeadline = 0;
      exchange.onBodyTimeout = undefined;
    };
    exchange.bodyDeadline = this.#now() + timeoutMs;
    exchange.onBodyTimeout = () => {
      done();
      controller.abort(bodyTimeout(timeoutMs));
    };
    return consume(controller.signal).finally(done);
  }

  /**
   * After an answer given without reading the whole body (refused, too large, too slow):
   * the rest is discarded as it comes, for at most the client timeout, then the exchange is
   * cut; HTTP/1.1 closes the connection after the answer. (Resetting an HTTP/2 stream at
   * once would make each DATA frame already in flight count toward Node's limit of invalid
   * frames, which ends the whole session with ENHANCE_YOUR_CALM.)
   */
  refuseBody(exchange: Exchange): void {
    const { req, res } = exchange;
    if (req.complete) return;
    if (req.httpVersionMajor === 1 && !res.headersSent) res.setHeader("connection", "close");
    req.resume();
    exchange.bodyDeadline = this.#now() + this.#limits.clientTimeoutMs;
    exchange.onBodyTimeout = () => {
      exchange.bodyDeadline = 0;
      this.#live.delete(exchange);
      cut(exchange);
    };
  }

  #check(): void {
    if (this.#live.size === 0) {
      this.stop();
      return;
    }
    const now = this.#now();
    for (const exchange of this.#live) {
      if (exchange.bodyDeadline !== 0 && now >= exchange.bodyDeadline) {
        exchange.onBodyTimeout?.();
        continue;
      }
      const { res } = exchange;
      if (!res.headersSent || res.writableFinished) continue;
      const pending = res.writableLength;
      if (pending === 0 || pending !== exchange.pending) {
        exchange.pending = pending;
        exchange.stalledSince = now;
      } else if (now - exchange.stalledSince >= this.#limits.writeTimeoutMs) {
        // The client stopped reading: its answer (and admission slot) are let go.
        this.#live.delete(exchange);
        cut(exchange);
      }
    }
  }
}

/** The body of an API call, read once the call is admitted, or given up unread. */
export interface CallBody {
  /** Resolves once the call may go on (key and admission), without reading the body. */
  admit(): Promise<void>;
  /** `admit`, then the whole body. */
  read(): Promise<Buffer>;
  /**
   * `admit`, then the body as a stream to `consume` (which limits what it holds), within
   * the client timeout; `limit` is the most it may read.
   */
  consume<T>(
    consume: (req: NodeRequest, limit: number, signal: AbortSignal) => Promise<T>,
  ): Promise<T>;
  refuse(): void;
}

/** Ends an exchange unfinished: HTTP/2 resets the stream (CANCEL), HTTP/1.1 closes the connection. */
function cut({ req, res }: Exchange): void {
  if (req.httpVersionMajor === 2)
    (req as unknown as Http2ServerRequest).stream.close(http2.constants.NGHTTP2_CANCEL);
  else res.destroy();
}

function bodyTimeout(timeoutMs: number): GatewayError {
  return new GatewayError(
    "invalid_request",
    `The request body did not arrive within ${timeoutMs / 1000} s.`,
    { code: "request_timeout", httpStatus: 408 },
  );
}

export function tooLarge(maxBytes: number) {
  return new GatewayError(
    "too_large",
    `The request body is larger than the limit of ${maxBytes} bytes.`,
  );
}
