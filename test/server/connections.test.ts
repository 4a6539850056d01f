/**
 * What a connection may cost the gateway: every state has a timeout (protocol sniff,
 * HTTP/1.1 headers, idle keep-alive, idle HTTP/2 session, an answer the client does not
 * read), connections are capped, an admission slot is held until the answer is written,
 * HTTP/2 header lists are held to 16 KiB, and health Watch (open, never ending) is gone.
 * Socket counts are the gateway's own (its listening server's); memory is measured in the
 * gateway's process.
 */
import http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";
import { fileURLToPath } from "node:url";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { type OpenAIEmulator, startOpenAIEmulator } from "@imagegate/emulators/openai";
import { Health } from "../../src/gen/grpc/health/v1/health_pb.js";
import { type GatewayProcess, startGatewayProcess } from "../support/gateway-process.ts";
import { EMULATOR_KEY, type Stack, startStack } from "../support/stack.ts";

const MiB = 1024 * 1024;
const certFile = fileURLToPath(new URL("../fixtures/tls/cert.pem", import.meta.url));
const keyFile = fileURLToPath(new URL("../fixtures/tls/key.pem", import.meta.url));
const CREATE = "/imagegate.v1.ImageService/CreateImage";

let stack: Stack | undefined;
let child: GatewayProcess | undefined;
let emulator: OpenAIEmulator | undefined;
const cleanups: (() => void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) c();
  await stack?.close();
  await child?.close();
  await emulator?.close();
  stack = undefined;
  child = undefined;
  emulator = undefined;
});

/** Resolves true when the gateway closes the socket, false if it is still open after `waitMs`. */
function closedByGateway(socket: net.Socket, waitMs = 10_000): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), waitMs);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

function rawSocket(port: number, text?: string): net.Socket {
  const socket = net.connect(port, "127.0.0.1", () => {
    if (text !== undefined) socket.write(text);
  });
  socket.on("error", () => {});
  socket.on("data", () => {});
  cleanups.push(() => socket.destroy());
  return socket;
}

async function until(check: () => Promise<boolean>, tries = 100): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

describe("timeouts on every connection state", () => {
  it("closes silent, half-sniffed, half-headed and idle connections, HTTP/1.1 and HTTP/2", async () => {
    stack = await startStack({
      yaml: "server:\n  headers_timeout: 0.3\n  keep_alive_timeout: 0.3\n  client_timeout: 1\n",
    });
    const port = stack.gateway.port;
    const silent = rawSocket(port);
    const halfPreface = rawSocket(port, "PRI * HTTP/2.0\r\n");
    const halfHeaders = rawSocket(port, "GET /healthz HTTP/1.1\r\nHost: x\r\n");
    const keptAlive = rawSocket(port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    const session = http2.connect(stack.url);
    session.on("error", () => {});
    cleanups.push(() => session.destroy());
    await new Promise<void>((resolve, reject) => {
      const req = session.request({ ":path": "/healthz" });
      req.on("response", () => {});
      req.on("data", () => {});
      req.on("end", resolve);
      req.on("error", reject);
    });
    const sessionClosed = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 10_000);
      session.once("close", () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    const closed = await Promise.all([
      closedByGateway(silent),
      closedByGateway(halfPreface),
      closedByGateway(halfHeaders),
      closedByGateway(keptAlive),
      sessionClosed,
    ]);
    expect(closed).toEqual([true, true, true, true, true]);
    expect(await until(async () => (await stack!.gateway.connections()) === 0)).toBe(true);
  });

  it("caps connections, so 320 silent ones under a low file limit leave /healthz answering", async () => {
    child = await startGatewayProcess({
      yaml: "server:\n  max_connections: 40\n  headers_timeout: 1\n",
      openFiles: 100,
    });
    const sockets = Array.from({ length: 320 }, () => rawSocket(child!.port));
    await Promise.all(
      sockets.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.once("connect", () => resolve());
            s.once("close", () => resolve());
          }),
      ),
    );
    expect(await child.connections()).toBeLessThanOrEqual(40);
    const healthy = await until(async () => {
      const r = await fetch(`${child!.url}/healthz`, { signal: AbortSignal.timeout(2000) }).catch(
        () => undefined,
      );
      return r?.status === 200;
    }, 50);
    expect(healthy).toBe(true);
  });
});

describe("timeouts behind TLS", () => {
  it("closes a silent TLS connection and half-sent HTTP/1.1 headers over TLS", async () => {
    stack = await startStack({
      yaml: `server:\n  headers_timeout: 0.3\n  tls:\n    cert_file: ${certFile}\n    key_file: ${keyFile}\n`,
    });
    const port = stack.gateway.port;
    const silent = rawSocket(port);
    const halfHeaders = tls.connect({ port, host: "127.0.0.1", rejectUnauthorized: false }, () =>
      halfHeaders.write("GET /healthz HTTP/1.1\r\nHost: x\r\n"),
    );
    halfHeaders.on("error", () => {});
    halfHeaders.on("data", () => {});
    cleanups.push(() => halfHeaders.destroy());
    expect(await Promise.all([closedByGateway(silent), closedByGateway(halfHeaders)])).toEqual([
      true,
      true,
    ]);
  });
});

describe("answers a client does not read", () => {
  it("are cut after write_timeout, and hold their admission slot until then (memory measured in the gateway)", async () => {
    emulator = await startOpenAIEmulator({ apiKey: EMULATOR_KEY, host: "127.0.0.1", port: 0 });
    child = await startGatewayProcess({
      yaml: "server:\n  write_timeout: 2\n  max_concurrent_requests: 2\n  max_queued_requests: 0\n",
      env: { OPENAI_API_KEY: EMULATOR_KEY, OPENAI_BASE_URL: emulator.baseUrl },
    });
    const baseline = await child.memory();
    // A stream window of zero: the gateway can send headers, never a byte of an answer.
    const stuck = http2.connect(child.url, { settings: { initialWindowSize: 0 } });
    stuck.on("error", () => {});
    cleanups.push(() => stuck.destroy());
    const message = Buffer.from(
      JSON.stringify({ model: "dall-e-2", prompt: "a fox", size: "1024x1024" }),
    );
    const streams = [0, 1].map(() => {
      const s = stuck.request({
        ":method": "POST",
        ":path": CREATE,
        "content-type": "application/json",
      });
      s.on("error", () => {});
      s.end(message);
      return s;
    });
    const answered = streams.map(
      (s) => new Promise<void>((resolve) => s.once("response", () => resolve())),
    );
    const cut = streams.map(
      (s) =>
        new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), 15_000);
          s.once("close", () => {
            clearTimeout(timer);
            resolve(true);
          });
        }),
    );
    await Promise.all(answered);
    // Both answers are being written: their slots are still taken.
    const third = await fetch(`${child.url}/v1/images/generations`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "dall-e-2", prompt: "a fox", size: "256x256" }),
    });
    expect(third.status).toBe(429);
    expect((await third.json()).error.code).toBe("gateway_overloaded");
    expect(await Promise.all(cut)).toEqual([true, true]);
    for (const s of streams) expect(s.rstCode).not.toBe(http2.constants.NGHTTP2_NO_ERROR);
    const after = await child.memory();
    expect(after.heapUsed + after.external - (baseline.heapUsed + baseline.external)).toBeLessThan(
      32 * MiB,
    );
    // Capacity comes back.
    const again = await fetch(`${child.url}/v1/images/generations`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "dall-e-2", prompt: "a fox", size: "256x256" }),
    });
    expect(again.status).toBe(200);
  });
});

describe("HTTP/2 limits", () => {
  it("answers a header list over 16 KiB with 431, as HTTP/1.1 does", async () => {
    stack = await startStack();
    const session = http2.connect(stack.url);
    session.on("error", () => {});
    cleanups.push(() => session.destroy());
    const status = await new Promise<number>((resolve, reject) => {
      const req = session.request({ ":path": "/healthz", "x-big": "b".repeat(20_000) });
      req.on("response", (h) => resolve(Number(h[":status"])));
      req.on("error", reject);
      req.end();
    });
    expect(status).toBe(431);
  });

  it("does not serve health Watch (open to anyone, never ending); Check answers", async () => {
    stack = await startStack();
    const health = createClient(Health, createGrpcTransport({ baseUrl: stack.url }));
    expect((await health.check({ service: "" })).status).toBe(1);
    const watched = await (async () => {
      for await (const _ of health.watch({ service: "" }, { signal: AbortSignal.timeout(5000) }))
        return "streamed";
      return "ended";
    })().catch((e: unknown) => ConnectError.from(e).code);
    expect(watched).toBe(Code.Unimplemented);
  });
});
