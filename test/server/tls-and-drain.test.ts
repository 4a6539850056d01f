/**
 * TLS on the same port (ALPN picks HTTP/2 or HTTP/1.1) and graceful shutdown: a request
 * in flight when shutdown starts still gets its answer; new connections are refused.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import OpenAI from "openai";
import { Agent } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { openaiFaults } from "@imagegate/emulators/openai";
import { pngSize } from "@imagegate/emulators/png";
import {
  type CreateImageRequestSchema,
  ImageService,
  type ImagesResponseSchema,
} from "../../src/gen/imagegate/v1/images_pb.js";
import { grpcClient } from "../support/grpc.ts";
import { type Stack, startStack } from "../support/stack.ts";

const certFile = fileURLToPath(new URL("../fixtures/tls/cert.pem", import.meta.url));
const keyFile = fileURLToPath(new URL("../fixtures/tls/key.pem", import.meta.url));
const ca = readFileSync(certFile);

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

describe("TLS on the one port", () => {
  it("serves the OpenAI SDK over HTTPS (HTTP/1.1 by ALPN) and grpc-js over TLS (h2)", async () => {
    stack = await startStack({ tls: { certFile, keyFile } });
    expect(stack.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);

    const dispatcher = new Agent({ connect: { ca } });
    const openai = new OpenAI({
      baseURL: `${stack.url}/v1`,
      apiKey: "x",
      maxRetries: 0,
      fetchOptions: { dispatcher } as never,
    });
    const res = await openai.images.generate({
      model: "dall-e-2",
      prompt: "a fox",
      size: "256x256",
      response_format: "b64_json",
    });
    expect(pngSize(Buffer.from(res.data![0]!.b64_json!, "base64"))).toEqual({
      width: 256,
      height: 256,
    });

    const c = grpcClient(
      ImageService,
      `localhost:${stack.gateway.port}`,
      grpc.credentials.createSsl(ca),
    );
    try {
      const { response } = await c.unary<
        typeof CreateImageRequestSchema,
        typeof ImagesResponseSchema
      >("createImage", {
        prompt: "a fox",
        model: "dall-e-2",
        size: "512x512",
        responseFormat: "b64_json",
      });
      expect(pngSize(response.data[0]!.b64Json!)).toEqual({ width: 512, height: 512 });
    } finally {
      c.close();
    }
  });
});

describe("graceful shutdown", () => {
  it("finishes an in-flight request, then refuses new connections", async () => {
    stack = await startStack();
    const { url } = stack;
    stack.openai.faults.push(openaiFaults.latency(600));
    const openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: "x", maxRetries: 0 });
    const inflight = openai.images.generate({
      model: "dall-e-2",
      prompt: "slow fox",
      size: "256x256",
      response_format: "b64_json",
    });
    // Wait until the upstream has the request, so shutdown starts with it in flight.
    while (stack.openai.requests.length === 0) await new Promise((r) => setTimeout(r, 10));
    const shutdown = stack.gateway.shutdown(5000);
    const res = await inflight;
    expect(res.data).toHaveLength(1);
    await shutdown;
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });
});
