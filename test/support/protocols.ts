/**
 * One CreateImage call over any of the gateway's protocols, through the real clients, with
 * one result shape so a table of cases can run over all of them:
 * - rest: the official `openai` SDK (HTTP/1.1)
 * - rest-h2: raw JSON over a `node:http2` client (h2c)
 * - grpc: grpc-js over h2c
 * - connect-*: `@connectrpc/connect-node`, HTTP/1.1 or h2, JSON or binary
 * - grpc-web: `@connectrpc/connect-node`'s gRPC-Web transport over HTTP/1.1
 *
 * Requests are written as OpenAI JSON (snake_case); RPC protocols get the same message via
 * `fromJson`. Successful answers become `ImagesResponse` messages (REST JSON is parsed with
 * `fromJson`, which rejects unknown keys, so REST is held to the proto's shape too).
 */
import http2 from "node:http2";
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcWebTransport,
  Http2SessionManager,
} from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import OpenAI from "openai";
import { ErrorInfoSchema } from "../../src/gen/google/rpc/error_details_pb.js";
import {
  CreateImageRequestSchema,
  ImageService,
  type ImagesResponse,
  ImagesResponseSchema,
} from "../../src/gen/imagegate/v1/images_pb.js";
import { grpcClient } from "./grpc.ts";
import { errorInfoOf, grpcStatusDetails } from "./rpc-status.ts";
import type { Stack } from "./stack.ts";

export const REST_PROTOCOLS = ["rest", "rest-h2"] as const;
export const RPC_PROTOCOLS = [
  "grpc",
  "connect-h1-json",
  "connect-h1-binary",
  "connect-h2-json",
  "connect-h2-binary",
  "grpc-web",
] as const;
export const ALL_PROTOCOLS = [...REST_PROTOCOLS, ...RPC_PROTOCOLS] as const;
export type Protocol = (typeof ALL_PROTOCOLS)[number];

export interface CallOptions {
  requestId?: string;
  signal?: AbortSignal;
}

export interface Success {
  ok: true;
  response: ImagesResponse;
  /** Response headers (REST) or response metadata (gRPC, Connect). */
  headers: Headers;
}

export interface Failure {
  ok: false;
  /** REST only. */
  httpStatus?: number;
  /** RPC protocols only (gRPC numbering, which Connect's `Code` shares). */
  grpcCode?: Code;
  message: string;
  /**
   * grpc only: the message as grpc-js hands it to users (`err.details`). `message` is the
   * one in `grpc-status-details-bin`, which grpc-js does not decode.
   */
  grpcJsDetails?: string;
  /** REST `type`, or ErrorInfo metadata `type`. */
  type: string | undefined;
  /** REST `code`, or ErrorInfo `reason`. */
  code: string | undefined;
  param: string | undefined;
  /** ErrorInfo domain (RPC only). */
  domain?: string;
  /** Headers, plus trailers for RPC protocols. */
  headers: Headers;
  /** The REST error object as sent. */
  body?: Record<string, unknown>;
}

export type Outcome = Success | Failure;

/** The outcome as a success, or the test fails saying what came instead. */
export function ok(outcome: Outcome): Success {
  if (!outcome.ok) throw new Error(`expected success, got ${JSON.stringify(outcome)}`);
  return outcome;
}

/** The outcome as a failure, or the test fails saying how many images came instead. */
export function failed(outcome: Outcome): Failure {
  if (outcome.ok)
    throw new Error(
      `expected an error, got a success with ${outcome.response.data.length} image(s)`,
    );
  return outcome;
}

export interface Clients {
  call(protocol: Protocol, body: Record<string, unknown>, options?: CallOptions): Promise<Outcome>;
  readonly sdk: OpenAI;
  readonly grpc: ReturnType<typeof grpcClient>;
  close(): void;
}

export function createClients(stack: Pick<Stack, "url" | "gateway">): Clients {
  const sdk = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: "x", maxRetries: 0 });
  const g = grpcClient(ImageService, `127.0.0.1:${stack.gateway.port}`);
  const sessions: Http2SessionManager[] = [];
  const h2 = () => {
    const m = new Http2SessionManager(stack.url);
    sessions.push(m);
    return m;
  };
  const transports: Record<Exclude<Protocol, "rest" | "rest-h2" | "grpc">, Transport> = {
    "connect-h1-json": createConnectTransport({
      baseUrl: stack.url,
      httpVersion: "1.1",
      useBinaryFormat: false,
    }),
    "connect-h1-binary": createConnectTransport({
      baseUrl: stack.url,
      httpVersion: "1.1",
      useBinaryFormat: true,
    }),
    "connect-h2-json": createConnectTransport({
      baseUrl: stack.url,
      httpVersion: "2",
      useBinaryFormat: false,
      sessionManager: h2(),
    }),
    "connect-h2-binary": createConnectTransport({
      baseUrl: stack.url,
      httpVersion: "2",
      useBinaryFormat: true,
      sessionManager: h2(),
    }),
    "grpc-web": createGrpcWebTransport({ baseUrl: stack.url, httpVersion: "1.1" }),
  };
  let h2Rest: http2.ClientHttp2Session | undefined;

  return {
    sdk,
    grpc: g,
    async call(protocol, body, options = {}) {
      switch (protocol) {
        case "rest":
          return callSdk(sdk, body, options);
        case "rest-h2":
          h2Rest ??= http2.connect(stack.url);
          return callRestH2(h2Rest, body, options);
        case "grpc":
          return callGrpc(g, body, options);
        default:
          return callConnect(transports[protocol], body, options);
      }
    },
    close() {
      g.close();
      h2Rest?.close();
      for (const s of sessions) s.abort();
    },
  };
}

async function callSdk(
  sdk: OpenAI,
  body: Record<string, unknown>,
  options: CallOptions,
): Promise<Outcome> {
  try {
    const { data, response } = await sdk.images
      .generate(body as never, {
        headers: options.requestId === undefined ? {} : { "x-request-id": options.requestId },
        signal: options.signal ?? null,
      })
      .withResponse();
    return {
      ok: true,
      response: fromJson(ImagesResponseSchema, data as unknown as JsonValue),
      headers: response.headers,
    };
  } catch (e) {
    if (!(e instanceof OpenAI.APIError) || e.status === undefined) throw e;
    const error = e.error as Record<string, unknown>;
    return restFailure(e.status, error, e.headers ?? new Headers());
  }
}

function restFailure(
  status: number,
  error: Record<string, unknown> | undefined,
  headers: Headers,
): Failure {
  return {
    ok: false,
    httpStatus: status,
    message: String(error?.message),
    type: error?.type as string | undefined,
    code: (error?.code ?? undefined) as string | undefined,
    param: (error?.param ?? undefined) as string | undefined,
    headers,
    ...(error === undefined ? {} : { body: error }),
  };
}

export interface RawResponse {
  status: number;
  headers: Headers;
  body: Buffer;
}

/** One request over an h2c session, collected. */
export function h2Request(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body?: string | Uint8Array,
  signal?: AbortSignal,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, signal === undefined ? {} : { signal });
    const chunks: Buffer[] = [];
    let status = 0;
    const out = new Headers();
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      for (const [k, v] of Object.entries(h)) {
        if (k.startsWith(":") || v === undefined) continue;
        out.set(k, Array.isArray(v) ? v.join(", ") : String(v));
      }
    });
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => resolve({ status, headers: out, body: Buffer.concat(chunks) }));
    stream.on("error", reject);
    stream.end(body);
  });
}

async function callRestH2(
  session: http2.ClientHttp2Session,
  body: Record<string, unknown>,
  options: CallOptions,
): Promise<Outcome> {
  const headers: http2.OutgoingHttpHeaders = {
    ":method": "POST",
    ":path": "/v1/images/generations",
    "content-type": "application/json",
    authorization: "Bearer x",
  };
  if (options.requestId !== undefined) headers["x-request-id"] = options.requestId;
  const res = await h2Request(session, headers, JSON.stringify(body), options.signal);
  const json = JSON.parse(res.body.toString("utf8")) as Record<string, unknown>;
  if (res.status === 200)
    return {
      ok: true,
      response: fromJson(ImagesResponseSchema, json as JsonValue),
      headers: res.headers,
    };
  return restFailure(res.status, json.error as Record<string, unknown> | undefined, res.headers);
}

export function metadataToHeaders(...mds: grpc.Metadata[]): Headers {
  const out = new Headers();
  for (const md of mds) {
    for (const [k, v] of Object.entries(md.getMap())) {
      if (!k.endsWith("-bin")) out.set(k, String(v));
    }
  }
  return out;
}

async function callGrpc(
  g: ReturnType<typeof grpcClient>,
  body: Record<string, unknown>,
  options: CallOptions,
): Promise<Outcome> {
  const request = fromJson(CreateImageRequestSchema, body as JsonValue);
  const md = new grpc.Metadata();
  if (options.requestId !== undefined) md.set("x-request-id", options.requestId);
  const method = (g.client as unknown as Record<string, GrpcUnaryMethod>).createImage!;
  let headers = new grpc.Metadata();
  try {
    const response = await new Promise<ImagesResponse>((resolve, reject) => {
      const call = method.call(g.client, request, md, {}, (err, res) =>
        err ? reject(err) : resolve(res as ImagesResponse),
      );
      call.on("metadata", (m: grpc.Metadata) => {
        headers = m;
      });
      options.signal?.addEventListener("abort", () => call.cancel(), { once: true });
    });
    return { ok: true, response, headers: metadataToHeaders(headers) };
  } catch (e) {
    const err = e as grpc.ServiceError;
    if (typeof err.code !== "number") throw e;
    const status = grpcStatusDetails(err);
    const info = status && errorInfoOf(status);
    return {
      ok: false,
      grpcCode: err.code as number as Code,
      message: status?.message ?? err.details,
      grpcJsDetails: err.details,
      type: info?.metadata.type,
      code: info?.reason,
      param: info?.metadata.param,
      ...(info === undefined ? {} : { domain: info.domain }),
      headers: metadataToHeaders(headers, err.metadata ?? new grpc.Metadata()),
    };
  }
}

type GrpcUnaryMethod = (
  this: grpc.Client,
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, res?: unknown) => void,
) => grpc.ClientUnaryCall;

async function callConnect(
  transport: Transport,
  body: Record<string, unknown>,
  options: CallOptions,
): Promise<Outcome> {
  const client = createClient(ImageService, transport);
  const request = fromJson(CreateImageRequestSchema, body as JsonValue);
  const headers = new Headers();
  const keep = (h: Headers) => {
    for (const [k, v] of h) headers.set(k, v);
  };
  try {
    const response = await client.createImage(request, {
      headers: options.requestId === undefined ? {} : { "x-request-id": options.requestId },
      onHeader: keep,
      onTrailer: keep,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    return { ok: true, response, headers };
  } catch (e) {
    if (!(e instanceof ConnectError)) throw e;
    keep(e.metadata);
    const info = e.findDetails(ErrorInfoSchema)[0];
    return {
      ok: false,
      grpcCode: e.code,
      message: e.rawMessage,
      type: info?.metadata.type,
      code: info?.reason,
      param: info?.metadata.param,
      ...(info === undefined ? {} : { domain: info.domain }),
      headers,
    };
  }
}

export { Code };
