/**
 * The emulators' one-port HTTP/1.1 and cleartext HTTP/2 listener (the Bedrock emulator's): the
 * HTTP/2 preface, even when it arrives in pieces, selects HTTP/2; anything else HTTP/1.1.
 */
import http2 from "node:http2";
import net from "node:net";
import { type Listening, listenHttp1And2 } from "@imagegate/emulators/http-kit";
import { afterEach, describe, expect, it } from "vitest";

let listening: Listening | undefined;
afterEach(async () => {
  await listening?.close();
  listening = undefined;
});

async function start(): Promise<Listening> {
  listening = await listenHttp1And2((req, res) => {
    res.setHeader("content-type", "text/plain");
    res.end(`HTTP/${req.httpVersion} ${req.method} ${req.url}`);
  });
  return listening;
}

/** Writes `pieces` one by one on a fresh connection and resolves with the first `n` bytes back. */
function exchange(port: number, pieces: Buffer[], n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.setNoDelay(true);
    let got = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (got.length >= n) {
        socket.destroy();
        resolve(got.subarray(0, n));
      }
    });
    socket.on("error", reject);
    socket.on("close", () => reject(new Error(`closed after ${got.length} bytes`)));
    socket.once("connect", async () => {
      for (const piece of pieces) {
        socket.write(piece);
        await new Promise((r) => setTimeout(r, 20));
      }
    });
  });
}

describe("listenHttp1And2", () => {
  it("answers HTTP/1.1 and HTTP/2 (prior knowledge) on the same port", async () => {
    const { origin } = await start();
    const h1 = await fetch(`${origin}/one`, { method: "POST", body: "x" });
    expect(await h1.text()).toBe("HTTP/1.1 POST /one");

    const session = http2.connect(origin);
    try {
      const stream = session.request({ ":path": "/two" });
      stream.setEncoding("utf8");
      let body = "";
      for await (const chunk of stream) body += chunk;
      expect(body).toBe("HTTP/2.0 GET /two");
    } finally {
      session.close();
    }
  });

  it("takes a preface that arrives in pieces as HTTP/2", async () => {
    const { port } = await start();
    const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    const emptySettings = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
    const header = await exchange(
      port,
      [preface.subarray(0, 3), preface.subarray(3, 17), preface.subarray(17), emptySettings],
      9,
    );
    expect(header[3]).toBe(4); // the server's first frame: its SETTINGS
  });

  it("takes a request line that only begins like the preface as HTTP/1.1", async () => {
    const { port } = await start();
    const head = await exchange(
      port,
      [Buffer.from("P"), Buffer.from("UT /three HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n")],
      15,
    );
    expect(head.toString("latin1")).toBe("HTTP/1.1 200 OK");
  });
});
