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
import type { AnyNodeRequest, AnyNodeResponse } from "./rest.ts";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export interface ListenOptions {
  host: string;
  port: number;
  tls?: { certFile: string; keyFile: string } | undefined;
  handler: (req: AnyNodeRequest, res: AnyNodeResponse) => void;
  /** Time a client has to send a whole request (headers and body) over HTTP/1.1. */
  clientTimeoutMs?: number;
}

export interface Listener {
  readonly host: string;
  readonly port: number;
  readonly tls: boolean;
  /** Stops accepting connections; open ones finish their requests. */
  stopAccepting(): void;
  /** Asks idle and HTTP/2 connections to close (GOAWAY); `force` destroys everything. */
  closeConnections(force: boolean): void;
}

export async function listen(options: ListenOptions): Promise<Listener> {
  const sessions = new Set<http2.Http2Session>();
  const trackSession = (s: http2.Http2Session) => {
    sessions.add(s);
    s.once("close", () => sessions.delete(s));
  };
  let outer: net.Server;
  let h1: http.Server | undefined;
  const settings = { maxConcurrentStreams: 1000, maxHeaderListSize: 16 * 1024 };
  // Node's default (10 MB buffered per HTTP/2 connection) resets streams once a few
  // multi-megabyte images are in flight on one gRPC connection.
  const maxSessionMemory = 512;

  if (options.tls) {
    const server = http2.createSecureServer(
      {
        cert: readFileSync(options.tls.certFile),
        key: readFileSync(options.tls.keyFile),
        allowHTTP1: true,
        settings,
        maxSessionMemory,
      },
      options.handler,
    );
    server.on("session", trackSession);
    outer = server;
  } else {
    const h2 = http2.createServer({ settings, maxSessionMemory }, options.handler);
    h2.on("session", trackSession);
    const clientTimeout = options.clientTimeoutMs ?? 30_000;
    h1 = http.createServer(
      {
        keepAliveTimeout: 65_000,
        // Slow clients are cut off: headers within 10 s (or the client timeout), the whole request within it.
        headersTimeout: Math.min(10_000, clientTimeout),
        requestTimeout: clientTimeout,
        maxHeaderSize: 16 * 1024,
      },
      options.handler,
    );
    const h1Server = h1;
    outer = net.createServer((socket) => sniff(socket, h2, h1Server));
  }

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
    },
  };
}

/** Buffers until the bytes either are or cannot be the HTTP/2 preface, then hands the socket over. */
function sniff(socket: net.Socket, h2: http2.Http2Server, h1: http.Server): void {
  let seen: Buffer = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, PREFACE.length);
    const isPrefix = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
    if (isPrefix && seen.length < PREFACE.length) return;
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
  const onError = () => socket.destroy();
  socket.on("error", onError);
  socket.on("data", onData);
}
