/**
 * What the gateway does before it reads a request body, on every protocol: the key is
 * checked from the headers (a stranger's body is never read), then admission (a slot is
 * taken before the body, so bodies being read are counted), then the body within
 * `client_timeout`. Memory is measured in the gateway's own process.
 */
import http2 from "node:http2";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { type GatewayProcess, startGatewayProcess } from "../support/gateway-process.ts";
import { type Stack, startStack } from "../support/stack.ts";

const MASTER = "sk-master-before-the-body-0123456789";
const KEYED = `general_settings:\n  master_key: ${MASTER}\n`;
const CREATE = "/imagegate.v1.ImageService/CreateImage";
const MiB = 1024 * 1024;

let stack: Stack | undefined;
let child: GatewayProcess | undefined;
const sessions: http2.ClientHttp2Session[] = [];
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const s of sessions.splice(0)) s.destroy();
  for (const s of sockets.splice(0)) s.destroy();
  await stack?.close();
  await child?.close();
  stack = undefined;
  child = undefined;
});

/** A gRPC envelope header announcing `length` bytes of message. */
function envelope(length: number): Buffer {
  const b = Buffer.alloc(5);
  b.writeUInt32BE(length, 1);
  return b;
}

function connectH2(url: string): http2.ClientHttp2Session {
  const session = http2.connect(url, { maxSessionMemory: 256 });
  session.on("error", () => {});
  sessions.push(session);
  return session;
}

interface H2Answer {
  status: number;
  /** Response headers and trailers together. */
  headers: Record<string, string>;
  body: string;
}

/** Sends headers and `body` without ending the stream; resolves with the answer, if any comes. */
function h2Partial(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body: Buffer,
  waitMs = 10_000,
): Promise<H2Answer | "no answer"> {
  return new Promise((resolve) => {
    const stream = session.request({ ":method": "POST", ...headers }, { endStream: false });
    const answer: H2Answer = { status: 0, headers: {}, body: "" };
    const collect = (h: http2.IncomingHttpHeaders) => {
      for (const [k, v] of Object.entries(h)) answer.headers[k] = String(v);
    };
    const timer = setTimeout(() => resolve("no answer"), waitMs);
    const done = () => {
      clearTimeout(timer);
      resolve(answer.status === 0 ? "no answer" : answer);
    };
    stream.on("response", (h) => {
      answer.status = Number(h[":status"]);
      collect(h);
    });
    stream.on("trailers", collect);
    stream.on("data", (c: Buffer) => {
      answer.body += c.toString("latin1");
    });
    stream.on("end", done);
    stream.on("close", done);
    stream.on("error", () => {});
    stream.write(body);
  });
}

/** Writes `text` on a raw HTTP/1.1 connection left open; resolves with what comes back first. */
function h1Partial(port: number, text: string | Buffer, waitMs = 10_000): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write(text));
    sockets.push(socket);
    let got = "";
    const timer = setTimeout(() => resolve(got || "no answer"), waitMs);
    socket.on("data", (d) => {
      got += d.toString("latin1");
      // The head and a small error body arrive together.
      if (got.includes("\r\n\r\n")) {
        clearTimeout(timer);
        setTimeout(() => resolve(got), 50);
      }
    });
    socket.on("error", () => {});
  });
}

const announced = 4 * MiB - 64;
const partial = Buffer.alloc(64 * 1024, 0x20);

describe("the key is checked before the body is read", () => {
  it("answers a stranger at once over gRPC, Connect and REST on HTTP/2, with the body still unsent", async () => {
    stack = await startStack({ yaml: KEYED });
    const session = connectH2(stack.url);
    const grpc = await h2Partial(
      session,
      { ":path": CREATE, "content-type": "application/grpc", te: "trailers" },
      Buffer.concat([envelope(announced), partial]),
    );
    expect(grpc).not.toBe("no answer");
    expect((grpc as H2Answer).headers["grpc-status"]).toBe("16");
    expect((grpc as H2Answer).headers["x-request-id"]).toMatch(/^req_/);

    const connect = await h2Partial(
      session,
      { ":path": CREATE, "content-type": "application/proto", "content-length": announced },
      partial,
    );
    expect(connect).not.toBe("no answer");
    expect((connect as H2Answer).status).toBe(401);
    expect((connect as H2Answer).body).toContain('"code":"unauthenticated"');

    const rest = await h2Partial(
      session,
      {
        ":path": "/v1/images/generations",
        "content-type": "application/json",
        "content-length": announced,
      },
      partial,
    );
    expect(rest).not.toBe("no answer");
    expect((rest as H2Answer).status).toBe(401);
    expect(JSON.parse((rest as H2Answer).body).error.code).toBe("invalid_api_key");
  });

  it("answers a stranger at once over REST, Connect and gRPC-Web on HTTP/1.1, with the body still unsent", async () => {
    stack = await startStack({ yaml: KEYED });
    const port = stack.gateway.port;
    const head = (path: string, type: string) =>
      `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: ${type}\r\nContent-Length: ${announced}\r\n\r\n`;
    const rest = await h1Partial(
      port,
      Buffer.concat([Buffer.from(head("/v1/images/generations", "application/json")), partial]),
    );
    expect(rest).toMatch(/^HTTP\/1\.1 401/);
    expect(rest).toContain('"code":"invalid_api_key"');
    // The rest of the body is not waited for: the connection closes after the answer.
    expect(rest.toLowerCase()).toContain("connection: close");

    const connect = await h1Partial(
      port,
      Buffer.concat([Buffer.from(head(CREATE, "application/json")), partial]),
    );
    expect(connect).toMatch(/^HTTP\/1\.1 401/);
    expect(connect).toContain('"code":"unauthenticated"');

    const grpcWeb = await h1Partial(
      port,
      Buffer.concat([
        Buffer.from(head(CREATE, "application/grpc-web+proto")),
        envelope(announced - 5),
        partial,
      ]),
    );
    expect(grpcWeb).toMatch(/^HTTP\/1\.1 200/);
    expect(grpcWeb).toMatch(/grpc-status: ?16/i);
  });

  it("holds no memory for 20 unauthenticated HTTP/2 streams announcing 4 MiB each (measured in the gateway)", async () => {
    child = await startGatewayProcess({ yaml: KEYED });
    const baseline = await child.memory();
    const session = connectH2(child.url);
    const almostAll = Buffer.alloc(announced - 100, 0x20);
    const answers = await Promise.all(
      Array.from({ length: 20 }, () =>
        h2Partial(
          session,
          { ":path": CREATE, "content-type": "application/grpc", te: "trailers" },
          Buffer.concat([envelope(announced), almostAll]),
        ),
      ),
    );
    // Measured while the streams are still open on the client's side.
    const held = await child.memory();
    for (const a of answers) expect(a === "no answer" ? a : a.headers["grpc-status"]).toBe("16");
    const grown = held.heapUsed + held.external - (baseline.heapUsed + baseline.external);
    // Before the key was checked first, this was ~80 MiB (every body read whole).
    expect(grown).toBeLessThan(16 * MiB);
  });
});

describe("admission is taken before the body, which must arrive within client_timeout", () => {
  it("counts a call whose body is still arriving against max_concurrent_requests", async () => {
    stack = await startStack({
      yaml: `${KEYED}server:\n  max_concurrent_requests: 1\n  max_queued_requests: 0\n  client_timeout: 30\n`,
    });
    const session = connectH2(stack.url);
    // Holds the one slot: its body is announced but never completed.
    void h2Partial(
      session,
      {
        ":path": CREATE,
        "content-type": "application/grpc",
        te: "trailers",
        authorization: `Bearer ${MASTER}`,
      },
      Buffer.concat([envelope(1000), Buffer.alloc(10)]),
      30_000,
    );
    let overloaded: Response | undefined;
    // Bounded: the first call's headers reach the gateway before this answers.
    for (let i = 0; i < 20; i++) {
      const r = await fetch(`${stack.url}/v1/images/generations`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${MASTER}` },
        body: JSON.stringify({ model: "dall-e-2", prompt: "a fox", size: "256x256" }),
      });
      if (r.status === 429) {
        overloaded = r;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(overloaded?.status).toBe(429);
    expect((await overloaded!.json()).error.code).toBe("gateway_overloaded");
  });

  it("cuts off a gRPC or Connect body that trickles, over HTTP/2 and HTTP/1.1", async () => {
    stack = await startStack({ yaml: "server:\n  client_timeout: 1\n" });
    const session = connectH2(stack.url);
    const grpc = await h2Partial(
      session,
      { ":path": CREATE, "content-type": "application/grpc", te: "trailers" },
      Buffer.concat([envelope(1000), Buffer.alloc(10)]),
    );
    expect(grpc).not.toBe("no answer");
    expect(Number((grpc as H2Answer).headers["grpc-status"])).toBeGreaterThan(0);
    expect(decodeURIComponent((grpc as H2Answer).headers["grpc-message"] ?? "")).toContain(
      "did not arrive within 1 s",
    );

    const connect = await h2Partial(
      session,
      { ":path": CREATE, "content-type": "application/json", "content-length": 1000 },
      Buffer.from('{"prompt":'),
    );
    expect(connect).not.toBe("no answer");
    expect((connect as H2Answer).body).toContain("did not arrive within 1 s");

    const connectH1 = await h1Partial(
      stack.gateway.port,
      `POST ${CREATE} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"prompt":`,
    );
    expect(connectH1).toContain("did not arrive within 1 s");
  });
});
