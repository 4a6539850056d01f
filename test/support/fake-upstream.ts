/**
 * One fake upstream for every provider: whatever the path, it answers with the answer set
 * last (status, headers, body), except `/token`, where a Google service account's token
 * exchange gets a token. For tests that need an upstream to say exactly some bytes.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface UpstreamAnswer {
  status: number;
  headers: Record<string, string>;
  body: string | Uint8Array;
}

export interface FakeUpstream {
  /** e.g. http://127.0.0.1:PORT */
  readonly url: string;
  /** Every request from now on gets this answer. */
  answer(a: UpstreamAnswer): void;
  close(): Promise<void>;
}

export async function startFakeUpstream(): Promise<FakeUpstream> {
  let current: UpstreamAnswer = { status: 500, headers: {}, body: "" };
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      if (req.url === "/token") {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(
          JSON.stringify({ access_token: "ya29.fake", expires_in: 3600, token_type: "Bearer" }),
        );
        return;
      }
      res.writeHead(current.status, current.headers);
      res.end(current.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    answer(a) {
      current = a;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
