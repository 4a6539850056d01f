import { createContextValues } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { type CallInfo, kCallInfo } from "../../src/call/call-info.ts";
import { fixRpcResponse } from "../../src/server/rpc-fixups.ts";

/** The context values of a call the call-info interceptor saw (it sets kCallInfo). */
function seenByInterceptors() {
  const info: CallInfo = { requestId: "req_x", protocol: "connect", attempts: 1, events: [] };
  return createContextValues().set(kCallInfo, info);
}

function connectInternal(message: string) {
  return {
    status: 500,
    header: new Headers({ "content-type": "application/json" }),
    body: (async function* () {
      yield new TextEncoder().encode(JSON.stringify({ code: "internal", message }));
    })(),
  };
}

function grpcTrailersOnly(status: number, message: string) {
  return {
    status: 200,
    header: new Headers({
      "content-type": "application/grpc+proto",
      "grpc-status": String(status),
      "grpc-message": encodeURIComponent(message),
    }),
  };
}

async function text(body: AsyncIterable<Uint8Array> | undefined) {
  const chunks: Uint8Array[] = [];
  for await (const c of body ?? []) chunks.push(c);
  return Buffer.concat(chunks).toString("utf8");
}

describe("rpc-fixups: an INTERNAL answer connect-es gives before the interceptors", () => {
  it("Connect: becomes 400 invalid_argument with the request id and ErrorInfo", async () => {
    const fixed = await fixRpcResponse(
      connectInternal("parse binary: premature EOF"),
      "req_given",
      createContextValues(),
    );
    expect(fixed.status).toBe(400);
    expect(fixed.header?.get("x-request-id")).toBe("req_given");
    const json = JSON.parse(await text(fixed.body)) as { code: string; details?: unknown[] };
    expect(json.code).toBe("invalid_argument");
    expect(json.details?.length).toBeGreaterThan(0);
  });

  it("gRPC: becomes INVALID_ARGUMENT, whatever connect-es's message says", async () => {
    // A compressed frame without grpc-encoding: not a protobuf parse error, the same mistake.
    const fixed = await fixRpcResponse(
      grpcTrailersOnly(13, "received compressed envelope, but do not know how to decompress"),
      "req_given",
      createContextValues(),
    );
    expect(fixed.header?.get("grpc-status")).toBe("3");
    expect(fixed.header?.get("x-request-id")).toBe("req_given");
  });
});

describe("rpc-fixups: an INTERNAL error from a call the interceptors saw", () => {
  // The service's own INTERNAL stays one, even worded like connect-es's decode error.
  it("Connect: stays 500 internal", async () => {
    const fixed = await fixRpcResponse(
      connectInternal("parse binary: from a handler"),
      "req_given",
      seenByInterceptors(),
    );
    expect(fixed.status).toBe(500);
    expect(JSON.parse(await text(fixed.body))).toEqual({
      code: "internal",
      message: "parse binary: from a handler",
    });
  });

  it("gRPC: stays INTERNAL, its grpc-message encoded as the gRPC spec says", async () => {
    const fixed = await fixRpcResponse(
      grpcTrailersOnly(13, "parse binary: 100% ✓"),
      "req_given",
      seenByInterceptors(),
    );
    expect(fixed.header?.get("grpc-status")).toBe("13");
    expect(fixed.header?.get("grpc-message")).toBe("parse binary: 100%25 %E2%9C%93");
  });
});
