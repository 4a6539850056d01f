/**
 * One port for every protocol. Cleartext: the first bytes of each connection decide
 * between HTTP/2 (the client preface: gRPC over h2c, Connect and REST over h2) and
 * HTTP/1.1 (REST, Connect, gRPC-Web); Node's `allowHTTP1` only works behind TLS. With TLS,
 * ALPN makes the same choice.
 */
import { readFileSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { ServerSettings } from "../config/load.ts";
import type { AnyNodeRequest, AnyNodeResponse } from "./universal.ts";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** What a connection may cost the gateway: `server:` in the config (config/load.ts). */
export type ConnectionLimits = Pick<
  ServerSettings,
  | "headersTimeoutMs"
  | "clientTimeoutMs"
  | "keepAliveTimeoutMs"
  | "writeTimeoutMs"
  | "maxConnections"
  | "maxStreamsPerConnection"
>;

export interface ListenOptions {
  host: string;
  port: number;
  tls?: { certFile: string; keyFile: string } | undefined;
  handler: (req: AnyNodeRequest, res: AnyNodeResponse) => void;
  limits: ConnectionLimits;
}

export interface Listener {
  readonly host: string;
  readonly port: number;
  readonly tls: boolean;
  /** Open client connections, as the listening server counts them. */
  connections(): Promise<number>;
  /** Stops accepting connections; open ones finish their requests. */
  stopAccepting(): void;
  /** Asks idle and HTTP/2 connections to close (GOAWAY); `force` destroys everything. */
  closeConnections(force: boolean): void;
}

/** Request headers past this many bytes get 431, over HTTP/1.1 and HTTP/2 alike. */
export const MAX_HEADER_BYTES = 16 * 1024;

export async function listen(options: ListenOptions): Promise<Listener> {
  const { limits } = options;
  const sessions = new Set<http2.Http2Session>();
  const trackSession = (s: http2.Http2Session) => {
    sessions.add(s);
    s.once("close", () => sessions.delete(s));
    closeWhenIdle(s, limits.keepAliveTimeoutMs);
  };
  let outer: net.Server;
  let h1: http.Server | undefined;
  const settings = {
    maxConcurrentStreams: limits.maxStreamsPerConnection,
    maxHeaderListSize: MAX_HEADER_BYTES,
  };
  // Node's default (10 MB buffered per HTTP/2 connection) resets streams once a few
  // multi-megabyte images are in flight on one gRPC connection.
  const maxSessionMemory = 512;
  // Node enforces these only from a checker it starts when a server listens (below).
  const h1Timeouts = {
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    headersTimeout: limits.headersTimeoutMs,
    // Headers, then the body: the gateway's own body timeout (an API error, not a bare 408)
    // comes first; this one catches what it does not see.
    requestTimeout: limits.headersTimeoutMs + limits.clientTimeoutMs,
    connectionsCheckingInterval: checkEveryMs(limits),
  };

  if (options.tls) {
    const server = http2.createSecureServer(
      {
        cert: readFileSync(options.tls.certFile),
        key: readFileSync(options.tls.keyFile),
        allowHTTP1: true,
        // Answers leave as they are written (Nagle off), as Node's own HTTP server does.
        noDelay: true,
        settings,
        maxSessionMemory,
        handshakeTimeout: limits.headersTimeoutMs,
      },
      options.handler,
    );
    // HTTP/1.1 over TLS is served by the secure server itself, which listens.
    Object.assign(server, h1Timeouts);
    server.on("session", trackSession);
    outer = server;
  } else {
    const h2 = http2.createServer({ settings, maxSessionMemory }, options.handler);
    h2.on("session", trackSession);
    h1 = http.createServer({ ...h1Timeouts, maxHeaderSize: MAX_HEADER_BYTES }, options.handler);
    // The HTTP/1.1 server gets its sockets from the sniffer and never listens, so its
    // connection tracking (the headers and request timeouts) is started by hand.
    h1.emit("listening");
    const h1Server = h1;
    // Nagle off on every connection, as Node's HTTP server sets it on the sockets it accepts
    // itself (this one accepts them for it): a small answer is not held back for an ACK.
    outer = net.createServer({ noDelay: true }, (socket) =>
      sniff(socket, h2, h1Server, limits.headersTimeoutMs),
    );
  }
  outer.maxConnections = limits.maxConnections;

  await new Promise<void>((resolve, reject) => {
    outer.once("error", reject);
    outer.listen(options.port, options.host, () => {
      outer.off("error", reject);
      resolve();
    });
  });
  const address = outer.address() as net.AddressInfo;
  return {
    host: options.host,
    port: address.port,
    tls: options.tls !== undefined,
    connections() {
      return new Promise((resolve, reject) =>
        outer.getConnections((e, n) => (e ? reject(e) : resolve(n))),
      );
    },
    stopAccepting() {
      outer.close();
    },
    closeConnections(force) {
      for (const s of sessions) {
        if (force) s.destroy();
        else s.close();
      }
      if (force) h1?.closeAllConnections();
      else h1?.closeIdleConnections();
      // With TLS, ALPN's HTTP/1.1 connections live on the secure server itself.
      if (force && options.tls) (outer as unknown as http.Server).closeAllConnections?.();
      // Stops Node's timeout checker.
      if (force) h1?.close();
    },
  };
}

/** How often the timeout checkers run: often enough for the shortest timeout. */
export function checkEveryMs(
  limits: Pick<ServerSettings, "headersTimeoutMs" | "clientTimeoutMs" | "writeTimeoutMs">,
): number {
  const shortest = Math.min(limits.headersTimeoutMs, limits.clientTimeoutMs, limits.writeTimeoutMs);
  return Math.max(50, Math.min(1000, shortest / 4));
}

/**
 * Closes an HTTP/2 session that has had no stream for `idleMs`. Node's session timeout
 * counts any frame as activity, and fires on a session whose one stream is waiting on an
 * upstream: the open streams are counted here.
 */
function closeWhenIdle(session: http2.Http2Session, idleMs: number): void {
  let open = 0;
  session.on("stream", (stream: http2.Http2Stream) => {
    open += 1;
    stream.once("close", () => {
      open -= 1;
    });
  });
  session.setTimeout(idleMs, () => {
    if (open === 0) session.close();
  });
}

/**
 * Buffers until the bytes either are or cannot be the HTTP/2 preface, then hands the socket
 * over. A connection that has not told within `timeoutMs` is closed.
 */
function sniff(
  socket: net.Socket,
  h2: http2.Http2Server,
  h1: http.Server,
  timeoutMs: number,
): void {
  let seen: Buffer = Buffer.alloc(0);
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  const onData = (chunk: Buffer) => {
    seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, PREFACE.length);
    const isPrefix = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
    if (isPrefix && seen.length < PREFACE.length) return;
    clearTimeout(timer);
    socket.off("data", onData);
    socket.off("error", onError);
    socket.pause();
    socket.unshift(seen);
    if (isPrefix) {
      h2.emit("connection", socket);
    } else {
      h1.emit("connection", socket);
      // The HTTP/1.1 parser reads through 'data' events, which an explicit pause() withholds.
      socket.resume();
    }
  };
  const onError = () => {
    clearTimeout(timer);
    socket.destroy();
  };
  socket.on("error", onError);
  socket.once("close", () => clearTimeout(timer));
  socket.on("data", onData);
}
