/**
 * RPC answers connect-es gives on its own, before (or without) the interceptors, held to the
 * contract like every other answer:
 * - Connect JSON rejects unknown fields as REST does (400 / INVALID_ARGUMENT naming it);
 * - every error carries `google.rpc.ErrorInfo` (domain "imagegate") and a request id, also
 *   a body that does not parse, one over the size limit, an unknown method;
 * - gRPC-Web trailers carry `grpc-message` as the gRPC spec encodes it (clients that read
 *   it as is see the message, not `%20`s).
 */
import http2 from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ErrorInfo, ErrorInfoSchema } from "../../src/gen/google/rpc/error_details_pb.js";
import { CreateImageRequestSchema, ImageService } from "../../src/gen/imagegate/v1/images_pb.js";
import { decodeRpcStatus, errorInfoOf } from "../support/rpc-status.ts";
import { type Stack, startStack } from "../support/stack.ts";

const MAX_BODY_BYTES = 4096;
const PATH = "/imagegate.v1.ImageService/CreateImage";
const UNKNOWN = "/imagegate.v1.ImageService/DeleteEverything";

let stack: Stack;
let h2: http2.ClientHttp2Session;

beforeAll(async () => {
  stack = await startStack({ yaml: `server:\n  max_body_bytes: ${MAX_BODY_BYTES}\n` });
  h2 = http2.connect(stack.url);
});

afterAll(async () => {
  h2?.close();
  await stack?.close();
});

function framed(message: Uint8Array, flags = 0): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(5 + message.length);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, message.length);
  out.set(message, 5);
  return out;
}

function request(fields: Record<string, unknown>): Uint8Array<ArrayBuffer> {
  return new Uint8Array(
    toBinary(CreateImageRequestSchema, create(CreateImageRequestSchema, fields)),
  );
}

interface RpcAnswer {
  status: number;
  headers: Headers;
  /** gRPC trailers (or the headers of a trailers-only answer); gRPC-Web's trailer frame. */
  trailers: Headers;
}

function errorInfo(trailers: Headers): ErrorInfo | undefined {
  const bin = trailers.get("grpc-status-details-bin");
  return bin === null ? undefined : errorInfoOf(decodeRpcStatus(Buffer.from(bin, "base64")));
}

function grpcCall(path: string, body: Uint8Array): Promise<RpcAnswer> {
  return new Promise((resolve, reject) => {
    const stream = h2.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
    });
    let status = 0;
    const headers = new Headers();
    const trailers = new Headers();
    const copy = (from: http2.IncomingHttpHeaders, to: Headers) => {
      for (const [k, v] of Object.entries(from))
        if (!k.startsWith(":") && v !== undefined) to.set(k, String(v));
    };
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      copy(h, headers);
      if (h["grpc-status"] !== undefined) copy(h, trailers); // trailers-only
    });
    stream.on("trailers", (t) => copy(t, trailers));
    stream.resume();
    stream.on("end", () => resolve({ status, headers, trailers }));
    stream.on("error", reject);
    stream.end(body);
  });
}

async function grpcWebCall(path: string, body: Uint8Array<ArrayBuffer>): Promise<RpcAnswer> {
  const res = await fetch(`${stack.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/grpc-web+proto" },
    body,
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  const trailers = new Headers();
  for (let at = 0; at + 5 <= bytes.length; ) {
    const length = bytes.readUInt32BE(at + 1);
    if (bytes[at] === 0x80) {
      for (const line of bytes
        .subarray(at + 5, at + 5 + length)
        .toString("latin1")
        .split("\r\n")) {
        const i = line.indexOf(":");
        if (i > 0) trailers.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
      }
    }
    at += 5 + length;
  }
  return { status: res.status, headers: res.headers, trailers };
}

async function connectCall(
  path: string,
  body: string | Uint8Array<ArrayBuffer>,
  contentType: string,
) {
  const res = await fetch(`${stack.url}${path}`, {
    method: "POST",
    headers: { "content-type": contentType, "connect-protocol-version": "1" },
    body,
  });
  const json = (await res.json()) as {
    code: string;
    message: string;
    details?: { type: string; value: string }[];
  };
  const detail = json.details?.find((d) => d.type === "google.rpc.ErrorInfo");
  const info =
    detail === undefined
      ? undefined
      : fromBinary(ErrorInfoSchema, Buffer.from(detail.value, "base64"));
  return { status: res.status, headers: res.headers, json, info };
}

describe("Connect JSON rejects unknown fields, as REST does", () => {
  it("answers 400 / invalid_argument naming the field", async () => {
    const body = JSON.stringify({ model: "dall-e-3", prompt: "a lighthouse", colour: "red" });
    const connect = await connectCall(PATH, body, "application/json");
    expect(connect.status).toBe(400);
    expect(connect.json.code).toBe("invalid_argument");
    expect(connect.json.message).toContain("colour");
    expect(connect.info).toMatchObject({ domain: "imagegate", reason: "invalid_request_error" });
    expect(connect.headers.get("x-request-id")).toMatch(/^req_/);

    const rest = await fetch(`${stack.url}/v1/images/generations`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    expect(rest.status).toBe(400);
    expect(((await rest.json()) as { error: { param: string } }).error.param).toBe("colour");
  });

  it("still accepts every known field, by JSON name or proto name", async () => {
    const res = await fetch(`${stack.url}${PATH}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "dall-e-3", prompt: "a lighthouse", response_format: "url" }),
    });
    expect(res.status).toBe(200);
  });
});

describe("errors raised before the interceptors carry ErrorInfo and a request id", () => {
  const tooLarge = request({ model: "dall-e-3", prompt: "x".repeat(MAX_BODY_BYTES + 10) });

  it.each([
    [
      "an undecodable gRPC body",
      () => grpcCall(PATH, framed(Uint8Array.of(0xff, 0xff))),
      3,
      "invalid_request_error",
    ],
    ["a gRPC body over the limit", () => grpcCall(PATH, framed(tooLarge)), 8, "request_too_large"],
    ["an unknown gRPC method", () => grpcCall(UNKNOWN, framed(request({}))), 12, "unknown_url"],
    [
      "a gRPC-Web body over the limit",
      () => grpcWebCall(PATH, framed(tooLarge)),
      8,
      "request_too_large",
    ],
    [
      "an unknown gRPC-Web method",
      () => grpcWebCall(UNKNOWN, framed(request({}))),
      12,
      "unknown_url",
    ],
  ])("%s", async (_what, call, grpcStatus, reason) => {
    const answer = await call();
    expect(answer.status).toBe(200);
    expect(Number(answer.trailers.get("grpc-status"))).toBe(grpcStatus);
    expect(errorInfo(answer.trailers)).toMatchObject({ domain: "imagegate", reason });
    expect(errorInfo(answer.trailers)?.metadata.type).toBeDefined();
    // Response metadata: in the headers, or the trailers (where gRPC sends an error's).
    const meta = (name: string) => answer.headers.get(name) ?? answer.trailers.get(name);
    expect(meta("x-request-id")).toMatch(/^req_/);
    expect(meta("x-imagegate-cost-usd")).toBe("0");
  });

  it.each([
    [
      "malformed Connect JSON",
      PATH,
      "{not json",
      "application/json",
      400,
      "invalid_argument",
      "invalid_request_error",
    ],
    [
      "a Connect body over the limit",
      PATH,
      tooLarge,
      "application/proto",
      429,
      "resource_exhausted",
      "request_too_large",
    ],
    [
      "an unknown Connect method",
      UNKNOWN,
      "{}",
      "application/json",
      404,
      "unimplemented",
      "unknown_url",
    ],
  ])("%s", async (_what, path, body, contentType, status, code, reason) => {
    const answer = await connectCall(path, body, contentType);
    expect(answer.status).toBe(status);
    expect(answer.json.code).toBe(code);
    expect(answer.info).toMatchObject({ domain: "imagegate", reason });
    expect(answer.headers.get("x-request-id")).toMatch(/^req_/);
  });

  it("an unknown method's message names the path", async () => {
    const answer = await grpcCall(UNKNOWN, framed(request({})));
    expect(answer.trailers.get("grpc-message")).toBe(`Unknown RPC method: ${UNKNOWN}.`);
  });
});

describe("gRPC-Web trailers", () => {
  const invalid = { model: "dall-e-3", prompt: "a lighthouse", n: 2 };

  it("carry grpc-message as the gRPC spec encodes it, readable as is", async () => {
    const rest = await fetch(`${stack.url}/v1/images/generations`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(invalid),
    });
    const { message } = ((await rest.json()) as { error: { message: string } }).error;
    expect(message).toMatch(/ .*:/); // spaces and colons: what encodeURIComponent would escape

    const answer = await grpcWebCall(PATH, framed(request(invalid)));
    expect(answer.trailers.get("grpc-status")).toBe("3");
    expect(answer.trailers.get("grpc-message")).toBe(message);
  });

  it("are read whole by connect-es's gRPC-Web client", async () => {
    const client = createClient(
      ImageService,
      createGrpcWebTransport({ baseUrl: stack.url, httpVersion: "1.1" }),
    );
    const err = await client
      .createImage(create(CreateImageRequestSchema, { ...invalid, prompt: "100% a lighthouse é" }))
      .catch((e: unknown) => ConnectError.from(e));
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
    expect((err as ConnectError).rawMessage).toMatch(/^Invalid value for 'n'/);
    expect((err as ConnectError).findDetails(ErrorInfoSchema)[0]?.domain).toBe("imagegate");
  });

  it("percent-encode only '%' and bytes outside printable ASCII", async () => {
    const answer = await grpcWebCall(PATH, framed(request({ model: "nö-such 100%", prompt: "x" })));
    const raw = answer.trailers.get("grpc-message") ?? "";
    expect(raw).not.toContain("%20");
    expect(raw).toContain("n%C3%B6-such 100%25");
    expect(decodeURIComponent(raw)).toContain("nö-such 100%");
  });
});
