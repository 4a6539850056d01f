/**
 * Small HTTP servers standing in for image hosts, good and bad: each records the requests
 * it gets, so a test can tell that the gateway never contacted it.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

export type Route = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  server: ImageHost,
) => void;

export interface ImageHost {
  /** e.g. http://127.0.0.2:PORT */
  origin: string;
  /** Paths requested, in order. */
  requests: string[];
  close(): Promise<void>;
}

/** Starts a server on `host` (any 127.x.y.z works on Linux) answering from `routes` by path. */
export async function startImageHost(
  host: string,
  routes: Record<string, Route>,
): Promise<ImageHost> {
  const requests: string[] = [];
  let self!: ImageHost;
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? "");
    const route = routes[(req.url ?? "").split("?")[0]!];
    if (route) route(req, res, self);
    else {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("no such image");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  self = {
    origin: `http://${host}:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  return self;
}

export function sendImage(bytes: Uint8Array, contentType = "image/png"): Route {
  return (_req, res) => {
    res.writeHead(200, { "content-type": contentType, "content-length": bytes.length });
    res.end(bytes);
  };
}

export function redirectTo(location: string | (() => string), status = 302): Route {
  return (_req, res) => {
    res.writeHead(status, { location: typeof location === "string" ? location : location() });
    res.end();
  };
}
