/**
 * The plumbing the Azure and Recraft emulators share: a listening server, bounded body
 * reading, JSON and text answers, and a store of generated images served by URL.
 */
import { randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface Listening {
  /** e.g. http://127.0.0.1:PORT */
  origin: string;
  port: number;
  close(): Promise<void>;
}

/** Serves `handle` on host:port (0 picks a free port); an exception in it becomes a 500 or a reset. */
export async function listen(
  handle: (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>,
  host = "127.0.0.1",
  port = 0,
): Promise<Listening> {
  const server = http.createServer({ keepAlive: true }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendText(res, 500, `Emulator bug: ${String(err)}`);
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const shown = address.address === "0.0.0.0" || address.address === "::" ? "127.0.0.1" : address.address;
  return {
    origin: `http://${shown.includes(":") ? `[${shown}]` : shown}:${address.port}`,
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections(); // also ends hanging requests and idle keep-alive sockets
      }),
  };
}

export class BodyTooLarge extends Error {
  readonly limit: number;
  constructor(limit: number) {
    super(`request body over ${limit} bytes`);
    this.limit = limit;
  }
}

export function readBody(req: http.IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        reject(new BodyTooLarge(max));
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

export function parseJsonOrUndefined(body: Buffer): unknown {
  if (body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    return undefined;
  }
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { ...headers, "content-type": "application/json", "content-length": payload.length });
  res.end(payload);
}

export function sendText(res: http.ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  const payload = Buffer.from(text);
  res.writeHead(status, { ...headers, "content-type": "text/plain; charset=utf-8", "content-length": payload.length });
  res.end(payload);
}

/** The origin the client used to reach us (so URLs work through whichever address it dialled). */
export function requestOrigin(req: http.IncomingMessage, fallback: string): string {
  return req.headers.host ? `http://${req.headers.host}` : fallback;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

interface StoredImage {
  render: () => Buffer;
  contentType: string;
  expiresAt: number;
}

/**
 * Generated images kept for download by URL until they expire, rendered again on each GET
 * (renders are deterministic and cached), oldest dropped first past `maxEntries`.
 */
export class ImageStore {
  readonly #images = new Map<string, StoredImage>();
  readonly #maxEntries: number;

  constructor(maxEntries = 10_000) {
    this.#maxEntries = maxEntries;
  }

  /** Keeps an image; returns its unguessable id. */
  put(render: () => Buffer, contentType: string, expiresAt: number): string {
    const id = randomBytes(16).toString("hex");
    this.#images.set(id, { render, contentType, expiresAt });
    while (this.#images.size > this.#maxEntries) this.#images.delete(this.#images.keys().next().value!);
    return id;
  }

  /** The image, `expired`, or undefined when unknown. */
  get(id: string, now: number): { bytes: Buffer; contentType: string } | "expired" | undefined {
    const image = this.#images.get(id);
    if (image === undefined) return undefined;
    if (image.expiresAt <= now) return "expired";
    return { bytes: image.render(), contentType: image.contentType };
  }
}
