/**
 * Operations endpoints: liveness and readiness probes over HTTP, and the standard gRPC
 * health service through grpc-js and Connect.
 */
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Health,
  type HealthCheckRequestSchema,
  HealthCheckResponse_ServingStatus,
  type HealthCheckResponseSchema,
} from "../../src/gen/grpc/health/v1/health_pb.js";
import { grpcClient } from "../support/grpc.ts";
import { startStack, type Stack } from "../support/stack.ts";

let stack: Stack;
let health: ReturnType<typeof grpcClient>;
beforeAll(async () => {
  stack = await startStack();
  health = grpcClient(Health, `127.0.0.1:${stack.gateway.port}`);
});
afterAll(async () => {
  health?.close();
  await stack?.close();
});

describe("HTTP probes", () => {
  it.each(["/healthz", "/readyz"])("GET %s is 200", async (path) => {
    const res = await fetch(`${stack.url}${path}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
  });
});

describe("grpc.health.v1.Health/Check", () => {
  it.each(["", "imagegate.v1.ImageService"])(
    "grpc-js: service '%s' is SERVING",
    async (service) => {
      const { response } = await health.unary<
        typeof HealthCheckRequestSchema,
        typeof HealthCheckResponseSchema
      >("check", { service });
      expect(response.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    },
  );

  it("grpc-js: an unknown service is NOT_FOUND", async () => {
    const err = await health
      .unary<typeof HealthCheckRequestSchema, typeof HealthCheckResponseSchema>("check", {
        service: "no.such.Service",
      })
      .catch((e: unknown) => e as grpc.ServiceError);
    expect((err as grpc.ServiceError).code).toBe(grpc.status.NOT_FOUND);
  });

  it("Connect: the whole server is SERVING", async () => {
    const client = createClient(
      Health,
      createConnectTransport({ baseUrl: stack.url, httpVersion: "1.1" }),
    );
    const res = await client.check({ service: "" });
    expect(res.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
  });
});
