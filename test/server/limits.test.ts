/**
 * Limits that keep the gateway standing: bounded concurrency and queue, slow clients cut
 * off, oversized URLs and headers refused.
 */
import http2 from "node:http2";
import net from "node:net";
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { openaiFaults } from "@imagegate/emulators/openai";
import { type Stack, startStack } from "../support/stack.ts";

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

const tiny = {
  model: "dall-e-2",
  prompt: "a fox",
  size: "256x256",
  response_format: "b64_json",
} as const;

function rawHttp1(port: number, text: string, waitMs: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write(text));
    let got = "";
    socket.on("data", (d) => {
      got += d;
    });
    const done = () => resolve(got);
    socket.on("close", done);
    socket.on("error", done);
    setTimeout(() => {
      socket.destroy();
    }, waitMs);
  });
}

describe("admission", () => {
  it("serves max_concurrent_requests at once, queues max_queued_requests, and answers 429 past that", async () => {
    stack = await startStack({
      yaml: "server:\n  max_concurrent_requests: 1\n  max_queued_requests: 1\n",
    });
    stack.openai.faults.push({ ...openaiFaults.latency(400), times: 2 });
    const client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: "x", maxRetries: 0 });
    const first = client.images.generate(tiny);
    await new Promise((r) => setTimeout(r, 50));
    const second = client.images.generate(tiny);
    await new Promise((r) => setTimeout(r, 50));
    const third = await client.images.generate(tiny).catch((e) => e);
    expect(third).toBeInstanceOf(OpenAI.RateLimitError);
    expect(third.code).toBe("gateway_overloaded");
    expect(third.headers.get("retry-after")).toBe("1");
    await expect(first).resolves.toBeDefined();
    await expect(second).resolves.toBeDefined();
    // Capacity comes back.
    await expect(client.images.generate(tiny)).resolves.toBeDefined();
  });
});

describe("slow and oversized clients", () => {
  it("cuts off an HTTP/1.1 client that trickles its body, with an OpenAI-shaped 408", async () => {
    stack = await startStack({ yaml: "server:\n  client_timeout: 1\n" });
    const answer = await rawHttp1(
      stack.gateway.port,
      'POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"prompt":',
      3000,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    expect(answer).toContain('"code":"request_timeout"');
  });

  it("cuts off an HTTP/2 client that trickles its body", async () => {
    stack = await startStack({ yaml: "server:\n  client_timeout: 1\n" });
    const session = http2.connect(stack.url);
    try {
      const req = session.request({
        ":method": "POST",
        ":path": "/v1/images/generations",
        "content-type": "application/json",
      });
      req.write('{"prompt":');
      const status = await new Promise<number>((resolve) =>
        req.on("response", (h) => resolve(Number(h[":status"]))),
      );
      expect(status).toBe(408);
      req.close();
    } finally {
      session.close();
    }
  });

  it("refuses a URL longer than 8 KiB with 414 and huge headers with 431", async () => {
    stack = await startStack();
    const long = await fetch(`${stack.url}/v1/images/generations?x=${"a".repeat(9000)}`, {
      method: "POST",
      headers: { "x-request-id": "client-414" },
    });
    expect(long.status).toBe(414);
    expect(long.headers.get("x-request-id")).toBe("client-414");
    // The gateway's own paths answer with a request id too, the client's when it sent one.
    const health = await fetch(`${stack.url}/healthz`, {
      headers: { "x-request-id": "client-health" },
    });
    expect(health.headers.get("x-request-id")).toBe("client-health");
    expect((await fetch(`${stack.url}/metrics`)).headers.get("x-request-id")).toMatch(/^req_/);
    expect((await long.json()).error.code).toBe("url_too_long");
    const answer = await rawHttp1(
      stack.gateway.port,
      `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${"b".repeat(20_000)}\r\n\r\n`,
      2000,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 431/);
  });
});
