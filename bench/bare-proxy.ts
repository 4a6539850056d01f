/**
 * The floor for any Node gateway: a reverse proxy that parses nothing but HTTP framing and
 * streams request and response bytes through (node:http + stream.pipeline, pooled
 * keep-alive connections upstream).
 *
 * Run as `node bench/bare-proxy.ts --upstream http://127.0.0.1:PORT [--port N]`: prints
 * `{"url": "http://127.0.0.1:PORT"}` on stdout, then serves until SIGTERM/SIGINT or until
 * stdin closes.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { pipeline } from "node:stream";
import { parseArgs } from "node:util";

/** Connection-level headers, which describe one hop and are not forwarded. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
]);

function forwardable(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers))
    if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

export interface BareProxy {
  url: string;
  close(): Promise<void>;
}

export async function startBareProxy(upstream: string, port = 0): Promise<BareProxy> {
  const target = new URL(upstream);
  const agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  const server = http.createServer({ keepAlive: true }, (req, res) => {
    const headers = forwardable(req.headers);
    headers.host = target.host;
    const upReq = http.request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers,
        agent,
      },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, forwardable(upRes.headers));
        pipeline(upRes, res, () => {});
      },
    );
    upReq.on("error", () => {
      if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" }).end("bad gateway");
      else res.destroy();
    });
    pipeline(req, upReq, () => {});
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        agent.destroy();
      }),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { upstream: { type: "string" }, port: { type: "string" } },
  });
  if (values.upstream === undefined)
    throw new Error("usage: node bench/bare-proxy.ts --upstream URL [--port N]");
  const proxy = await startBareProxy(values.upstream, Number(values.port ?? 0));
  process.stdout.write(`${JSON.stringify({ url: proxy.url })}\n`);
  const stop = () => void proxy.close().finally(() => process.exit(0));
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  process.stdin.on("end", stop).resume();
}

if (import.meta.main) await main();
